//! What every request passes through (spec/ds.md DS-15, DS-API-9): a bound on the requests
//! in flight, so that a flood is answered `503 busy` at once instead of queueing without end,
//! and JSON errors on every route, so that no answer (an unknown route, a path that is not
//! UTF-8, a wrong method) is in a shape a client must guess.

use std::sync::Arc;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::server::ApiError;
use atmls_ds_wire::api::code;

/// Longest message kept from an error answer that is not ours.
const MAX_MESSAGE: usize = 200;

/// Requests in flight, at most `n` (0: unbounded). Long polls and subscriptions hold their
/// connection for long and are bounded by the connection limit instead (DS-15).
#[derive(Clone)]
pub(crate) struct InFlight(Option<Arc<Semaphore>>);

impl InFlight {
    /// A bound of `n` requests (0: none).
    pub(crate) fn new(n: usize) -> Self {
        InFlight((n > 0).then(|| Arc::new(Semaphore::new(n))))
    }
}

/// Whether a request waits for news rather than working: a subscription, or a fetch with
/// `wait_ms` above 0.
fn waits(req: &Request) -> bool {
    if req.uri().path() == "/v1/subscribe" {
        return true;
    }
    req.uri().query().is_some_and(|q| {
        q.split('&')
            .filter_map(|kv| kv.strip_prefix("wait_ms="))
            .any(|v| v.parse::<u64>().map_or(true, |w| w > 0))
    })
}

/// Answers `503 busy` (with `Retry-After: 1`) when the bound of requests in flight is
/// reached.
pub(crate) async fn limit_in_flight(
    State(f): State<InFlight>,
    req: Request,
    next: Next,
) -> Response {
    let Some(sem) = f.0.as_ref().filter(|_| !waits(&req)) else {
        return next.run(req).await;
    };
    let Ok(_permit) = sem.clone().try_acquire_owned() else {
        let mut r = ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            code::BUSY,
            "too many requests in flight; retry".into(),
            None,
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    next.run(req).await
}

/// The code for an error answer made outside our handlers (axum's own rejections).
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => code::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => code::METHOD_NOT_ALLOWED,
        StatusCode::PAYLOAD_TOO_LARGE => code::PAYLOAD_TOO_LARGE,
        StatusCode::REQUEST_TIMEOUT => code::REQUEST_TIMEOUT,
        s if s.is_server_error() => code::UNAVAILABLE,
        _ => code::MALFORMED,
    }
}

/// Turns every error answer that is not JSON into our JSON error body (DS-API-9).
pub(crate) async fn json_errors(req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let status = r.status();
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return r;
    }
    let text = to_bytes(r.into_body(), 4096).await.unwrap_or_default();
    let message: String = String::from_utf8_lossy(&text)
        .trim()
        .chars()
        .take(MAX_MESSAGE)
        .collect();
    let message = match message.is_empty() {
        true => status.canonical_reason().unwrap_or("error").to_owned(),
        false => message,
    };
    ApiError(status, code_for(status), message, None).into_response()
}

/// The answer for a route that does not exist.
pub(crate) async fn not_found() -> Response {
    ApiError(
        StatusCode::NOT_FOUND,
        code::NOT_FOUND,
        "no such route".into(),
        None,
    )
    .into_response()
}
