//! Reading Welcome mailboxes (spec/ds.md DS-W-1, DS-W-2): only with a proof by the device's
//! installation key, on routes of their own. Anyone may post Welcomes (DS-API-5); the group
//! routes read a Welcome mailbox as empty and never notify of one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::Json;
use futures_util::stream::Stream;

use super::server::{malformed, note_stream, rate_limited, serve_page, ApiError, Service};
use crate::store::unix_now;
use atmls_ds_wire::api::{code, parse_hex, PageBody, WELCOME_PROOF_HEADER};
use atmls_ds_wire::{MailboxId, WelcomeReadProof};

/// The mailbox of the path, once the request's proof shows the caller owns it: `403
/// forbidden` otherwise, whether or not the mailbox exists.
fn proven(
    svc: &Service,
    addr: &SocketAddr,
    mailbox: &str,
    headers: &HeaderMap,
) -> Result<[u8; 32], ApiError> {
    if !svc.allow_address(addr) {
        return Err(rate_limited());
    }
    let mailbox = parse_hex::<32>(mailbox).ok_or_else(|| malformed("mailbox id: 64 hex digits"))?;
    let forbidden = |why: String| ApiError(StatusCode::FORBIDDEN, code::FORBIDDEN, why, None);
    let value = headers
        .get(WELCOME_PROOF_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            forbidden(format!(
                "reading a Welcome mailbox needs {WELCOME_PROOF_HEADER}"
            ))
        })?;
    WelcomeReadProof::from_header(MailboxId(mailbox), value)
        .and_then(|p| p.verify(u64::try_from(unix_now()).unwrap_or(0)))
        .map_err(|e| forbidden(e.to_string()))?;
    Ok(mailbox)
}

/// `GET /v1/welcomes/{mailbox}/items` (DS-API-11).
pub(super) async fn fetch_welcomes(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PageBody>, ApiError> {
    let mailbox = proven(&svc, &addr, &mailbox, &headers)?;
    serve_page(&svc, mailbox, &q, true).await
}

/// `POST /v1/welcomes/{mailbox}/subscribe` (DS-API-11): notifications of this one Welcome
/// mailbox.
pub(super) async fn subscribe_welcomes(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let mailbox = proven(&svc, &addr, &mailbox, &headers)?;
    note_stream(&svc, move |n| n.welcome && n.mailbox == mailbox)
}
