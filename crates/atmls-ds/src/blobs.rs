//! The attachment-blob routes (spec/content.md CONTENT-25g to CONTENT-25k; paths and bodies in
//! [`blob_api`](atmls_ds_wire::blob_api)). Uploads need the group mailbox's capability (DS-3) and fit
//! its budget; reads go by the random id alone. Chunks are read and written one at a time.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures_util::stream::{self, Stream};

use super::server::{body_timed_out, malformed, rate_limited, read_body, unavailable};
use super::server::{ApiError, BodyError, Service};
use super::store::blobs::{BlobMeta, BlobStorage, Reserve};
use super::store::unix_now;
use super::trees::Turn;
use atmls_ds_wire::api::{code, parse_hex};
use atmls_ds_wire::blob_api::{self as wire, BlobCreate, BlobCreated, BlobStatus, BLOB_CHUNK};
use atmls_ds_wire::MailboxId;

/// The blob routes, to merge into the service's router.
pub(super) fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/v1/mailboxes/{mailbox}/blobs", post(create))
        .route(
            "/v1/mailboxes/{mailbox}/blobs/{id}",
            get(status).delete(erase),
        )
        .route(
            "/v1/mailboxes/{mailbox}/blobs/{id}/chunks/{index}",
            put(put_chunk),
        )
        .route(
            "/v1/mailboxes/{mailbox}/blobs/{id}/complete",
            post(complete),
        )
        .route("/v1/blobs/{id}", get(download))
}

type Answer = Result<Response, ApiError>;

fn answer(r: Answer) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

fn storage(svc: &Service) -> Result<Arc<dyn BlobStorage>, ApiError> {
    svc.store.blobs().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_IMPLEMENTED,
            wire::code::NOT_IMPLEMENTED,
            "this service's storage keeps no attachment blobs".into(),
            None,
        )
    })
}

/// The mailbox of the path, if the request carries its capability (DS-3).
fn authorized(headers: &HeaderMap, mailbox: &str) -> Result<[u8; 32], ApiError> {
    let mailbox = parse_hex::<32>(mailbox).ok_or_else(|| malformed("mailbox id: 64 hex digits"))?;
    let cap = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(parse_hex::<32>);
    match cap {
        Some(c) if MailboxId::for_capability(&c).0 == mailbox => Ok(mailbox),
        _ => Err(ApiError(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            "missing or wrong capability for this mailbox".into(),
            None,
        )),
    }
}

fn unknown_blob() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        wire::code::UNKNOWN_BLOB,
        "no blob under this id (never issued, erased, or expired)".into(),
        None,
    )
}

fn blob_id(s: &str) -> Result<[u8; 32], ApiError> {
    parse_hex::<32>(s).ok_or_else(|| malformed("blob id: 64 hex digits"))
}

/// The blob `id` of `mailbox` (a blob of another mailbox is as unknown as none).
async fn owned(blobs: &dyn BlobStorage, mailbox: [u8; 32], id: &str) -> Result<BlobMeta, ApiError> {
    match blobs.meta(blob_id(id)?).await.map_err(unavailable)? {
        Some(m) if m.mailbox == mailbox => Ok(m),
        _ => Err(unknown_blob()),
    }
}

fn check_size(size: u64) -> Result<(), ApiError> {
    if size > wire::MAX_BLOB {
        return Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            format!(
                "blob of {size} bytes exceeds the limit of {}",
                wire::MAX_BLOB
            ),
            Some(wire::MAX_BLOB),
        ));
    }
    if atmls_ds_wire::blob_api::padded_len(size) != size {
        return Err(malformed("blob size must be a padded size (CONTENT-25d)"));
    }
    Ok(())
}

async fn create(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(create_inner(&svc, addr, &mailbox, &headers, body).await)
}

async fn create_inner(
    svc: &Service,
    addr: SocketAddr,
    mailbox: &str,
    headers: &HeaderMap,
    body: Body,
) -> Answer {
    if !svc.allow_address(&addr) {
        return Err(rate_limited());
    }
    let mailbox = authorized(headers, mailbox)?;
    let blobs = storage(svc)?;
    let body = read_body(body, 1024, svc.limits.body_timeout)
        .await
        .map_err(body_error)?;
    let req: BlobCreate =
        serde_json::from_slice(&body).map_err(|_| malformed("body: {\"size\": N}"))?;
    check_size(req.size)?;
    let id: [u8; 32] = rand::random();
    let reserved = blobs
        .reserve(mailbox, id, req.size, svc.limits.blob_budget, unix_now())
        .await
        .map_err(unavailable)?;
    let outcome = match reserved {
        Reserve::Reserved => "reserved",
        Reserve::OverBudget { .. } => "over_budget",
    };
    svc.metrics.blob("create", outcome);
    match reserved {
        Reserve::Reserved => Ok((
            StatusCode::CREATED,
            Json(BlobCreated {
                id: hex::encode(id),
                chunk: BLOB_CHUNK as u64,
            }),
        )
            .into_response()),
        Reserve::OverBudget { used } => Err(ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            wire::code::OVER_BUDGET,
            format!(
                "the mailbox's blobs take {used} bytes; {} more would pass its budget",
                req.size
            ),
            Some(svc.limits.blob_budget),
        )),
    }
}

fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::TooLarge => ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            "request body too large".into(),
            None,
        ),
        BodyError::TimedOut => body_timed_out(),
    }
}

async fn status(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path((mailbox, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            if !svc.allow_address(&addr) {
                return Err(rate_limited());
            }
            let mailbox = authorized(&headers, &mailbox)?;
            let blobs = storage(&svc)?;
            let m = owned(blobs.as_ref(), mailbox, &id).await?;
            let have = blobs.have(m.id).await.map_err(unavailable)?;
            Ok(Json(BlobStatus {
                size: m.size,
                chunk: BLOB_CHUNK as u64,
                have,
                complete: m.complete,
            })
            .into_response())
        }
        .await,
    )
}

async fn put_chunk(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path((mailbox, id, index)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(put_chunk_inner(&svc, addr, (&mailbox, &id, &index), &headers, body).await)
}

async fn put_chunk_inner(
    svc: &Service,
    addr: SocketAddr,
    (mailbox, id, index): (&str, &str, &str),
    headers: &HeaderMap,
    body: Body,
) -> Answer {
    if !svc.allow_address(&addr) {
        return Err(rate_limited());
    }
    let mailbox = authorized(headers, mailbox)?;
    let blobs = storage(svc)?;
    let m = owned(blobs.as_ref(), mailbox, id).await?;
    let index: u64 = index
        .parse()
        .map_err(|_| malformed("chunk index: a decimal integer"))?;
    let want = m
        .chunk_len(index)
        .ok_or_else(|| malformed(format!("chunk index: the blob has {} chunks", m.chunks())))?;
    let data = read_body(body, BLOB_CHUNK, svc.limits.body_timeout)
        .await
        .map_err(body_error)?;
    if data.len() != want {
        return Err(malformed(format!(
            "chunk {index} must be {want} bytes, not {}",
            data.len()
        )));
    }
    if !blobs
        .write_chunk(m.id, index, data.to_vec())
        .await
        .map_err(unavailable)?
    {
        svc.metrics.blob("chunk", "complete");
        return Err(ApiError(
            StatusCode::CONFLICT,
            wire::code::COMPLETE,
            "the blob is complete; its chunks cannot change".into(),
            None,
        ));
    }
    svc.metrics.blob("chunk", "stored");
    svc.metrics.blob_bytes(true, want as u64);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn complete(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path((mailbox, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            if !svc.allow_address(&addr) {
                return Err(rate_limited());
            }
            let mailbox = authorized(&headers, &mailbox)?;
            let blobs = storage(&svc)?;
            let m = owned(blobs.as_ref(), mailbox, &id).await?;
            if m.complete
                || blobs
                    .complete(m.id, m.chunks())
                    .await
                    .map_err(unavailable)?
            {
                svc.metrics
                    .stored(usize::try_from(m.size).unwrap_or(usize::MAX));
                svc.metrics.blob("complete", "stored");
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
            svc.metrics.blob("complete", "incomplete");
            Err(ApiError(
                StatusCode::CONFLICT,
                wire::code::INCOMPLETE,
                "chunks are missing; ask which the service has".into(),
                None,
            ))
        }
        .await,
    )
}

async fn erase(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path((mailbox, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            if !svc.allow_address(&addr) {
                return Err(rate_limited());
            }
            let mailbox = authorized(&headers, &mailbox)?;
            let blobs = storage(&svc)?;
            let m = owned(blobs.as_ref(), mailbox, &id).await?;
            blobs.delete(m.id).await.map_err(unavailable)?;
            svc.metrics.blob("erase", "erased");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        .await,
    )
}

/// The first byte of `Range: bytes=N-` (the only form served), or 0.
fn range_start(headers: &HeaderMap) -> Result<u64, ApiError> {
    let Some(v) = headers.get(header::RANGE) else {
        return Ok(0);
    };
    v.to_str()
        .ok()
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| malformed("Range: only bytes=N- is served"))
}

async fn download(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer(
        async {
            if !svc.allow_address(&addr) {
                return Err(rate_limited());
            }
            let blobs = storage(&svc)?;
            let m = match blobs.meta(blob_id(&id)?).await.map_err(unavailable)? {
                Some(m) if m.complete => m,
                _ => return Err(unknown_blob()),
            };
            let start = range_start(&headers)?;
            if start > 0 && start >= m.size {
                return Err(ApiError(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    code::MALFORMED,
                    format!("the blob has {} bytes", m.size),
                    None,
                ));
            }
            // Downloads take a turn of the tree transfers' gate (DS-15): a crowd of them
            // cannot take the storage's whole time; uploads come in short chunk requests.
            let turn = Turn::held_for(
                svc.tree_gate.enter(svc.limits.body_timeout).await?,
                svc.limits.body_timeout,
            );
            svc.metrics.blob("download", "served");
            svc.metrics.blob_bytes(false, m.size.saturating_sub(start));
            Ok(ranged(blobs, m, start, turn))
        }
        .await,
    )
}

fn ranged(blobs: Arc<dyn BlobStorage>, m: BlobMeta, start: u64, turn: Turn) -> Response {
    let mut headers = vec![
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        ),
        (header::CONTENT_LENGTH, HeaderValue::from(m.size - start)),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ];
    let status = if start > 0 {
        let range = format!("bytes {start}-{}/{}", m.size - 1, m.size);
        if let Ok(v) = HeaderValue::from_str(&range) {
            headers.push((header::CONTENT_RANGE, v));
        }
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut r = Body::from_stream(chunks(blobs, m, start, turn)).into_response();
    *r.status_mut() = status;
    r.headers_mut().extend(headers);
    r
}

/// The blob's bytes from `start` on, read from storage a chunk at a time as the client takes
/// them, holding the download's `turn` until the end; a chunk that went meanwhile (erased,
/// pruned) or has the wrong length ends the body early, which the client sees as a broken
/// transfer (the length was announced).
fn chunks(
    blobs: Arc<dyn BlobStorage>,
    m: BlobMeta,
    start: u64,
    turn: Turn,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let first = start / BLOB_CHUNK as u64;
    let skip = (start % BLOB_CHUNK as u64) as usize;
    stream::unfold(
        (first, skip, blobs, m, turn),
        |(i, skip, blobs, m, turn)| async move {
            let want = m.chunk_len(i)?;
            let item = match blobs.chunk(m.id, i).await {
                Ok(Some(c)) if c.len() == want && skip <= c.len() => {
                    Ok(Bytes::from(c).slice(skip..))
                }
                _ => {
                    tracing::warn!("blob download cut short");
                    Err(std::io::Error::other("blob chunk missing"))
                }
            };
            let next = if item.is_ok() { i + 1 } else { m.chunks() };
            Some((item, (next, 0, blobs, m, turn)))
        },
    )
}
