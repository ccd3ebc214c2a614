//! Ratchet-tree blobs (spec/large-groups.md LG-T-3, LG-T-4; spec/ds.md DS-API-10): a committer
//! stores the encrypted tree of a Welcome once under a random locator, each joiner reads it
//! once. The service sees an opaque locator, opaque bytes and their size.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::api::{code, parse_hex, TreeStored};
use super::server::{
    body_timed_out, malformed, rate_limited, read_body, unavailable, ApiError, BodyError, Service,
};
use super::store::{unix_now, TreePut};

fn locator_of(s: &str) -> Result<[u8; 32], ApiError> {
    parse_hex::<32>(s).ok_or_else(|| malformed("tree locator: 64 hex digits"))
}

/// `PUT /v1/trees/{locator}`: stores the body until the tree retention runs out. Repeating an
/// upload with the same bytes answers as the first time; other bytes under a live locator are
/// `422 idempotency_conflict`.
pub(super) async fn put_tree(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(locator): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let t = Instant::now();
    let (outcome, resp) = match put_inner(&svc, addr, &locator, &headers, body).await {
        Ok((word, r)) => (word, r),
        Err(e) => (e.1, e.into_response()),
    };
    svc.metrics.post("tree", outcome, t.elapsed());
    resp
}

async fn put_inner(
    svc: &Service,
    addr: SocketAddr,
    locator: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'static str, Response), ApiError> {
    if !svc.allow_address(&addr) {
        return Err(rate_limited());
    }
    let locator = locator_of(locator)?;
    let limit = svc.limits.max_tree;
    let too_large = |size: Option<u64>| {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            match size {
                Some(s) => format!("tree of {s} bytes exceeds the limit of {limit}"),
                None => format!("tree exceeds the limit of {limit}"),
            },
            Some(limit as u64),
        )
    };
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(declared));
    }
    let blob = read_body(body, limit, svc.limits.body_timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => too_large(None),
            BodyError::TimedOut => body_timed_out(),
        })?;
    if blob.is_empty() {
        return Err(malformed("empty tree"));
    }
    let size = blob.len();
    let now = unix_now();
    let expires = now.saturating_add(i64::try_from(svc.limits.tree_retention).unwrap_or(i64::MAX));
    match svc
        .store
        .put_tree(locator, blob.to_vec(), now, expires)
        .await
        .map_err(unavailable)?
    {
        TreePut::Stored(e) => {
            if e == expires {
                svc.metrics.stored(size);
            }
            Ok(("accepted", Json(TreeStored { expires: e }).into_response()))
        }
        TreePut::Conflict => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::IDEMPOTENCY_CONFLICT,
            "another tree is stored under this locator".into(),
            None,
        )),
    }
}

/// `GET /v1/trees/{locator}`: the blob as `application/octet-stream`, or `404 unknown_tree`.
pub(super) async fn get_tree(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(locator): Path<String>,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    if !svc.allow_address(&addr) {
        return Err(rate_limited());
    }
    let locator = locator_of(&locator)?;
    let blob = svc
        .store
        .get_tree(locator, unix_now())
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                code::UNKNOWN_TREE,
                "no tree under this locator (never stored, or expired)".into(),
                None,
            )
        })?;
    svc.metrics.fetch(1, t.elapsed());
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], blob).into_response())
}
