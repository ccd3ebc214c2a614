//! Ratchet-tree blobs (spec/large-groups.md LG-T-3, LG-T-4; spec/ds.md DS-API-10): a committer
//! stores the encrypted tree of a Welcome once under a random locator, each joiner reads it
//! once. The service sees an opaque locator, opaque bytes and their size.
//!
//! Blobs are streamed in chunks of [`TREE_CHUNK`] bytes both ways, never held whole (DS-15):
//! an upload is hashed and written chunk by chunk as its body arrives, counted against
//! `--max-tree`, and published under its locator only once complete; a download reads one
//! chunk from storage at a time, as the client takes them. At most `--max-tree-transfers`
//! uploads and downloads run at once; the others wait their turn.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, StreamExt as _};
use sha2::Digest as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::server::{body_timed_out, malformed, rate_limited, unavailable, ApiError, Service};
use super::store::{unix_now, TreeMeta, TreePut, TreeUpload, TREE_CHUNK};
use atmls_ds_wire::api::{code, parse_hex, TreeStored};

/// At most `n` tree uploads and downloads at once (0: unbounded), so that a crowd of them
/// cannot take the storage's whole time (DS-15); more wait for a turn, up to the body timeout.
pub(super) struct TreeGate(Option<Arc<Semaphore>>);

impl TreeGate {
    pub(super) fn new(n: usize) -> Self {
        TreeGate((n > 0).then(|| Arc::new(Semaphore::new(n))))
    }

    /// A turn, held until dropped; `503 busy` if none came within `wait`.
    pub(super) async fn enter(
        &self,
        wait: Duration,
    ) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        let Some(sem) = &self.0 else {
            return Ok(None);
        };
        match tokio::time::timeout(wait, Arc::clone(sem).acquire_owned()).await {
            Ok(Ok(p)) => Ok(Some(p)),
            _ => Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                code::BUSY,
                "too many tree transfers at once; retry".into(),
                None,
            )),
        }
    }
}

/// The response of an error, with `Retry-After` when a retry will do.
fn error_response(e: ApiError) -> Response {
    let busy = e.1 == code::BUSY;
    let mut r = e.into_response();
    if busy {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

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
        Err(e) => (e.1, error_response(e)),
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
    let _turn = svc.tree_gate.enter(svc.limits.body_timeout).await?;
    // A live blob under the locator: the body is only hashed, to tell a repeat from a
    // conflict. Otherwise it is stored as it arrives, and published once complete.
    let live = svc
        .store
        .tree(locator, unix_now())
        .await
        .map_err(unavailable)?;
    let mut upload: Option<Box<dyn TreeUpload>> = match live {
        Some(_) => None,
        None => Some(
            svc.store
                .begin_tree(unix_now())
                .await
                .map_err(unavailable)?,
        ),
    };
    let deadline = tokio::time::Instant::now() + svc.limits.body_timeout;
    let mut frames = body.into_data_stream();
    let mut hash = sha2::Sha256::new();
    let mut size = 0usize;
    let mut chunk: Vec<u8> = Vec::new();
    // Returning early drops `upload`, which discards what it stored: an over-size, timed
    // out or broken body leaves nothing behind.
    loop {
        let frame = tokio::time::timeout_at(deadline, frames.next())
            .await
            .map_err(|_| body_timed_out())?;
        let Some(frame) = frame else { break };
        let data = frame.map_err(|_| malformed("request body: it ended before its length"))?;
        size = size.saturating_add(data.len());
        if size > limit {
            return Err(too_large(None));
        }
        hash.update(&data);
        let Some(up) = upload.as_mut() else {
            continue;
        };
        let mut rest = &data[..];
        while !rest.is_empty() {
            if chunk.capacity() == 0 {
                chunk.reserve_exact(TREE_CHUNK);
            }
            let take = (TREE_CHUNK - chunk.len()).min(rest.len());
            chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if chunk.len() == TREE_CHUNK {
                up.write(std::mem::take(&mut chunk))
                    .await
                    .map_err(unavailable)?;
            }
        }
    }
    if size == 0 {
        return Err(malformed("empty tree"));
    }
    let digest = hash.finalize().to_vec();
    let now = unix_now();
    let expires = now.saturating_add(i64::try_from(svc.limits.tree_retention).unwrap_or(i64::MAX));
    let put = match (upload, live) {
        (Some(mut up), _) => {
            if !chunk.is_empty() {
                up.write(chunk).await.map_err(unavailable)?;
            }
            up.finish(locator, digest, now, expires)
                .await
                .map_err(unavailable)?
        }
        (None, Some(t)) => t.answer(&digest),
        (None, None) => return Err(unavailable(super::store::StoreError::Closed)),
    };
    match put {
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

/// `GET /v1/trees/{locator}`: the blob as `application/octet-stream`, streamed from storage a
/// chunk at a time, or `404 unknown_tree`.
pub(super) async fn get_tree(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(locator): Path<String>,
) -> Response {
    get_inner(&svc, addr, &locator)
        .await
        .unwrap_or_else(error_response)
}

async fn get_inner(svc: &Service, addr: SocketAddr, locator: &str) -> Result<Response, ApiError> {
    let t = Instant::now();
    if !svc.allow_address(&addr) {
        return Err(rate_limited());
    }
    let locator = locator_of(locator)?;
    let tree = svc
        .store
        .tree(locator, unix_now())
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
    let turn = Turn::held_for(
        svc.tree_gate.enter(svc.limits.body_timeout).await?,
        svc.limits.body_timeout,
    );
    svc.metrics.fetch(1, t.elapsed());
    let size = tree.size;
    let body = Body::from_stream(chunks(Arc::clone(&svc.store), tree, turn));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CONTENT_LENGTH, HeaderValue::from(size)),
        ],
        body,
    )
        .into_response())
}

/// A download's turn: given back when the download ends or its client goes, or after `limit`
/// at the latest. A client that reads slowly (or not at all) does not hold a turn for longer
/// than an upload may; its download goes on without one, holding its connection and about
/// one chunk.
pub(super) struct Turn(Arc<std::sync::Mutex<Option<OwnedSemaphorePermit>>>);

impl Turn {
    pub(super) fn held_for(permit: Option<OwnedSemaphorePermit>, limit: Duration) -> Self {
        let slot = Arc::new(std::sync::Mutex::new(permit));
        if slot.lock().is_ok_and(|p| p.is_some()) {
            let weak = Arc::downgrade(&slot);
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                if let Some(slot) = weak.upgrade() {
                    if let Ok(mut p) = slot.lock() {
                        p.take();
                    }
                }
            });
        }
        Turn(slot)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Ok(mut p) = self.0.lock() {
            p.take();
        }
    }
}

/// The chunks of `tree`, read from storage one at a time as the client takes them; the turn
/// is held until the last one is sent or the client goes (or its time is up, [`Turn`]). A chunk that went in between
/// (pruned) or does not add up ends the body early, which the client sees as a broken
/// transfer (the length was announced).
fn chunks(
    store: Arc<dyn super::store::Store>,
    tree: TreeMeta,
    turn: Turn,
) -> impl stream::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    stream::unfold(
        (0u64, 0u64, store, tree, turn),
        |(i, sent, store, tree, turn)| async move {
            if i >= tree.chunks {
                return None;
            }
            let read = store.tree_chunk(&tree, i).await.and_then(|c| {
                let sent = sent + c.len() as u64;
                let last = i + 1 == tree.chunks;
                if c.is_empty() || sent > tree.size || (last && sent != tree.size) {
                    Err(super::store::StoreError::Db(
                        "tree chunks do not add up".into(),
                    ))
                } else {
                    Ok((c, sent))
                }
            });
            match read {
                Ok((c, sent)) => Some((Ok(Bytes::from(c)), (i + 1, sent, store, tree, turn))),
                Err(e) => {
                    tracing::warn!(error = %e, "tree download cut short");
                    let end = tree.chunks;
                    Some((
                        Err(std::io::Error::other(e)),
                        (end, sent, store, tree, turn),
                    ))
                }
            }
        },
    )
}
