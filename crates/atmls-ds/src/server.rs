//! The HTTP service (spec/ds.md DS-API-*): validates requests, applies rate limits, hands posts
//! to the store and wakes subscribers.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use futures_util::stream::{self, Stream};
use tokio::sync::{broadcast, watch};

use super::layers::{json_errors, limit_in_flight, not_found, InFlight};
use super::limits::{RateLimiter, StampPrice};
use super::metrics::Metrics;
use super::store::{Fetched, Note, Outcome, Post, Store, StoreError, StoredItem};
use atmls_ds_wire::api::{
    self, code, parse_hex, Accepted, ErrorBody, Item, PageBody, SubscribeBody,
};
use atmls_ds_wire::stamp::{parse_stamp, stamp_ok, STAMP_HEADER};
use atmls_ds_wire::{Kind, MailboxId};

/// Most mailboxes one subscription may name.
pub const MAX_SUBSCRIBE: usize = 10_000;

/// Limits of one service (DS-9).
///
/// ```
/// # use std::{net::SocketAddr, sync::Arc, time::Duration};
/// # use atmls_ds::server::{metrics_router, router, Limits, Service};
/// # use atmls_ds::store::SqliteStore;
/// # use axum::{body::{to_bytes, Body}, extract::ConnectInfo, http::{Request, StatusCode}};
/// # use tower::ServiceExt as _;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = Arc::new(SqliteStore::open(dir.path().join("ds.db"))?);
/// let limits = Limits {
///     max_payload: atmls_ds_wire::MAX_PAYLOAD,
///     max_commit: atmls_ds_wire::MAX_COMMIT_PAYLOAD,
///     rate_mailbox: 100,
///     // Strangers' posts to Welcome mailboxes pay 8 bits of work.
///     stamp_bits: 8,
///     rate_welcome: 10,
///     rate_address: 0,
///     max_tree: atmls_ds_wire::MAX_TREE_BLOB,
///     tree_retention: atmls_ds_wire::TREE_TTL_SECS,
///     body_timeout: Duration::from_secs(30),
///     max_subscriptions: 10_000,
///     max_tree_transfers: 64,
///     blob_budget: atmls_ds_wire::blob_api::BLOB_BUDGET,
/// };
/// # let (hub, _) = tokio::sync::broadcast::channel(16);
/// # let (_stop, stopped) = tokio::sync::watch::channel(false);
/// # let peer = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000)));
/// let app = router(Arc::new(Service::new(store, hub, limits, stopped)), 0);
/// let mut req = Request::post(format!("/v1/mailboxes/{}/welcomes", "ab".repeat(32)))
///     .header("idempotency-key", "01".repeat(16))
///     .body(Body::from("a Welcome"))?;
/// req.extensions_mut().insert(peer);
/// let resp = app.oneshot(req).await?;
/// // Without a stamp the post is refused, with the price.
/// assert_eq!(resp.status(), StatusCode::PRECONDITION_REQUIRED);
/// let body: atmls_ds_wire::api::ErrorBody =
///     serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 16).await?)?;
/// assert_eq!(body.error, "stamp_required");
/// assert_eq!(body.limit, Some(8));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest application message or Welcome, bytes.
    pub max_payload: usize,
    /// Largest commit, bytes (LG-13).
    pub max_commit: usize,
    /// Posts per second per group mailbox and epoch tag (0: unlimited): a tag is known only to
    /// the epoch's members, so nobody else can spend their budget (DS-9).
    pub rate_mailbox: u32,
    /// Proof-of-work bits a post to a Welcome mailbox carries at least (DS-17).
    pub stamp_bits: u8,
    /// Posts per second to one Welcome mailbox above which its price rises (0: never, DS-17).
    pub rate_welcome: u32,
    /// Requests per second per client address (0: unlimited).
    pub rate_address: u32,
    /// Largest ratchet-tree blob, bytes (LG-T-3).
    pub max_tree: usize,
    /// Seconds a ratchet-tree blob is kept (LG-T-4).
    pub tree_retention: u64,
    /// Time to receive a request's body once its headers arrived (DS-15).
    pub body_timeout: Duration,
    /// Subscriptions open at once, over all connections (0: unbounded, DS-15).
    pub max_subscriptions: usize,
    /// Tree uploads and downloads at once (0: unbounded, DS-15).
    pub max_tree_transfers: usize,
    /// Bytes of attachment blobs one group mailbox may hold (CONTENT-25h).
    pub blob_budget: u64,
}

/// Why a request body was not read.
pub(super) enum BodyError {
    TooLarge,
    TimedOut,
}

/// Reads a body of at most `limit` bytes within `timeout`: a trickled body holds neither a
/// buffer nor a connection for long (DS-15).
pub(super) async fn read_body(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<axum::body::Bytes, BodyError> {
    match tokio::time::timeout(timeout, to_bytes(body, limit)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::TimedOut),
    }
}

pub(super) fn body_timed_out() -> ApiError {
    ApiError(
        StatusCode::REQUEST_TIMEOUT,
        code::REQUEST_TIMEOUT,
        "the request body did not arrive in time".into(),
        None,
    )
}

/// The key of an address's rate limit: an IPv6 client controls a whole /64, so it is one
/// key (DS-9); an IPv4 address is its own.
///
/// ```
/// use atmls_ds::server::address_key;
/// use std::net::IpAddr;
/// let ip = |s: &str| s.parse::<IpAddr>().unwrap();
/// // Two addresses of one IPv6 /64 share a rate limit...
/// assert_eq!(address_key(ip("2001:db8:1:2::1")), address_key(ip("2001:db8:1:2:ffff::9")));
/// assert_eq!(address_key(ip("2001:db8:1:2::1")), ip("2001:db8:1:2::"));
/// // ...another /64 does not, and IPv4 addresses stay apart.
/// assert_ne!(address_key(ip("2001:db8:1:3::1")), address_key(ip("2001:db8:1:2::1")));
/// assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
/// ```
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => ip,
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
    }
}

/// Shared state of the handlers.
///
/// ```
/// # use std::{net::SocketAddr, sync::Arc, time::Duration};
/// # use atmls_ds::server::{metrics_router, router, Limits, Service};
/// # use atmls_ds::store::SqliteStore;
/// # use axum::{body::{to_bytes, Body}, extract::ConnectInfo, http::{Request, StatusCode}};
/// # use tower::ServiceExt as _;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = Arc::new(SqliteStore::open(dir.path().join("ds.db"))?);
/// # let limits = Limits {
/// #     max_payload: atmls_ds_wire::MAX_PAYLOAD,
/// #     max_commit: atmls_ds_wire::MAX_COMMIT_PAYLOAD,
/// #     rate_mailbox: 100,
/// #     stamp_bits: 0,
/// #     rate_welcome: 10,
/// #     rate_address: 0,
/// #     max_tree: atmls_ds_wire::MAX_TREE_BLOB,
/// #     tree_retention: atmls_ds_wire::TREE_TTL_SECS,
/// #     body_timeout: Duration::from_secs(30),
/// #     max_subscriptions: 10_000,
/// #     max_tree_transfers: 64,
/// #     blob_budget: atmls_ds_wire::blob_api::BLOB_BUDGET,
/// # };
/// # let (hub, _) = tokio::sync::broadcast::channel(16);
/// # let (_stop, stopped) = tokio::sync::watch::channel(false);
/// # let peer = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40_000)));
/// use atmls_ds::store::{Fetched, Store as _};
/// use atmls_ds_wire::{api::Accepted, MailboxId};
/// let svc = Arc::new(Service::new(store.clone(), hub, limits, stopped));
/// let app = router(Arc::clone(&svc), 0);
/// // A member posts a message with the mailbox's capability.
/// let capability = [5u8; 32];
/// let mailbox = MailboxId::for_capability(&capability);
/// let mut req = Request::post(format!("/v1/mailboxes/{}/messages", hex::encode(mailbox.0)))
///     .header("authorization", format!("Bearer {}", hex::encode(capability)))
///     .header("atmls-epoch", "11".repeat(32))
///     .header("idempotency-key", "01".repeat(16))
///     .body(Body::from("ciphertext"))?;
/// req.extensions_mut().insert(peer);
/// let resp = app.oneshot(req).await?;
/// assert_eq!(resp.status(), StatusCode::OK);
/// let accepted: Accepted = serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 16).await?)?;
/// // The store holds it, and the metrics counted it.
/// let Fetched::Page(items, _) = store.fetch(mailbox.0, 0, 10, 1 << 20).await? else {
///     panic!("a page")
/// };
/// assert_eq!((items[0].seq, &items[0].payload[..]), (accepted.seq, &b"ciphertext"[..]));
/// assert!(svc.metrics.render().contains("atmls_ds_posts_total{kind=\"message\",outcome=\"accepted\"} 1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Service {
    pub(super) store: Arc<dyn Store>,
    pub(super) hub: broadcast::Sender<Note>,
    pub(super) limits: Limits,
    by_mailbox: RateLimiter<([u8; 32], [u8; 32])>,
    stamps: StampPrice,
    by_address: RateLimiter<IpAddr>,
    /// The metrics.
    pub metrics: Metrics,
    shutdown: watch::Receiver<bool>,
    open_subs: AtomicUsize,
    pub(super) tree_gate: super::trees::TreeGate,
}

impl Service {
    /// A service over `store`; `hub` carries new-item notifications, `shutdown` ends
    /// subscriptions and long polls.
    ///
    /// ```
    /// # use std::{net::SocketAddr, sync::Arc, time::Duration};
    /// # use atmls_ds::server::{metrics_router, router, Limits, Service};
    /// # use atmls_ds::store::SqliteStore;
    /// # use axum::{body::{to_bytes, Body}, extract::ConnectInfo, http::{Request, StatusCode}};
    /// # use tower::ServiceExt as _;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Arc::new(SqliteStore::open(dir.path().join("ds.db"))?);
    /// # let limits = Limits {
    /// #     max_payload: atmls_ds_wire::MAX_PAYLOAD,
    /// #     max_commit: atmls_ds_wire::MAX_COMMIT_PAYLOAD,
    /// #     rate_mailbox: 100,
    /// #     stamp_bits: 0,
    /// #     rate_welcome: 10,
    /// #     rate_address: 0,
    /// #     max_tree: atmls_ds_wire::MAX_TREE_BLOB,
    /// #     tree_retention: atmls_ds_wire::TREE_TTL_SECS,
    /// #     body_timeout: Duration::from_secs(30),
    /// #     max_subscriptions: 10_000,
    /// #     max_tree_transfers: 64,
    /// #     blob_budget: atmls_ds_wire::blob_api::BLOB_BUDGET,
    /// # };
    /// # let (hub, _) = tokio::sync::broadcast::channel(16);
    /// # let (_stop, stopped) = tokio::sync::watch::channel(false);
    /// // `hub` carries new-item notifications to subscribers; `stopped` ends them at shutdown.
    /// let svc = Arc::new(Service::new(store, hub, limits, stopped));
    /// let app = router(Arc::clone(&svc), 0);
    /// let resp = app.oneshot(Request::get("/health").body(Body::empty())?).await?;
    /// assert_eq!(resp.status(), StatusCode::OK);
    /// // A new service has counted nothing yet.
    /// assert!(svc.metrics.render().contains("atmls_ds_fetches_total 0"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn new(
        store: Arc<dyn Store>,
        hub: broadcast::Sender<Note>,
        limits: Limits,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Service {
            store,
            hub,
            by_mailbox: RateLimiter::new(limits.rate_mailbox),
            stamps: StampPrice::new(limits.stamp_bits, limits.rate_welcome),
            by_address: RateLimiter::new(limits.rate_address),
            tree_gate: super::trees::TreeGate::new(limits.max_tree_transfers),
            limits,
            metrics: Metrics::default(),
            shutdown,
            open_subs: AtomicUsize::new(0),
        }
    }

    /// Takes a token of the client address's rate limit (DS-9).
    pub(super) fn allow_address(&self, addr: &SocketAddr) -> bool {
        self.by_address.allow(&address_key(addr.ip()))
    }
}

/// An API error: status, code, message, limit.
pub(super) struct ApiError(
    pub(super) StatusCode,
    pub(super) &'static str,
    pub(super) String,
    pub(super) Option<u64>,
);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.0,
            Json(ErrorBody {
                error: self.1.into(),
                message: self.2,
                winner: None,
                limit: self.3,
            }),
        )
            .into_response();
        if self.1 == code::RATE_LIMITED {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        r
    }
}

pub(super) fn rate_limited() -> ApiError {
    ApiError(
        StatusCode::TOO_MANY_REQUESTS,
        code::RATE_LIMITED,
        "too many requests from this address".into(),
        None,
    )
}

pub(super) fn malformed(what: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, code::MALFORMED, what.into(), None)
}

pub(super) fn unavailable(e: StoreError) -> ApiError {
    tracing::warn!(error = %e, "store unavailable");
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        code::UNAVAILABLE,
        "storage unavailable; retry with the same idempotency key".into(),
        None,
    )
}

fn wire_item(i: &StoredItem) -> Item {
    Item {
        seq: i.seq,
        kind: i.kind.into(),
        payload: base64::engine::general_purpose::STANDARD.encode(&i.payload),
    }
}

/// The router of the service; at most `max_in_flight` requests are worked on at once (0:
/// unbounded, DS-15).
///
/// ```
/// # use std::{net::SocketAddr, sync::Arc, time::Duration};
/// # use atmls_ds::server::{metrics_router, router, Limits, Service};
/// # use atmls_ds::store::SqliteStore;
/// # use axum::{body::{to_bytes, Body}, extract::ConnectInfo, http::{Request, StatusCode}};
/// # use tower::ServiceExt as _;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = Arc::new(SqliteStore::open(dir.path().join("ds.db"))?);
/// # let limits = Limits {
/// #     max_payload: atmls_ds_wire::MAX_PAYLOAD,
/// #     max_commit: atmls_ds_wire::MAX_COMMIT_PAYLOAD,
/// #     rate_mailbox: 100,
/// #     stamp_bits: 0,
/// #     rate_welcome: 10,
/// #     rate_address: 0,
/// #     max_tree: atmls_ds_wire::MAX_TREE_BLOB,
/// #     tree_retention: atmls_ds_wire::TREE_TTL_SECS,
/// #     body_timeout: Duration::from_secs(30),
/// #     max_subscriptions: 10_000,
/// #     max_tree_transfers: 64,
/// #     blob_budget: atmls_ds_wire::blob_api::BLOB_BUDGET,
/// # };
/// # let (hub, _) = tokio::sync::broadcast::channel(16);
/// # let (_stop, stopped) = tokio::sync::watch::channel(false);
/// let app = router(Arc::new(Service::new(store, hub, limits, stopped)), 0);
/// let resp = app.clone().oneshot(Request::get("/health").body(Body::empty())?).await?;
/// assert_eq!(resp.status(), StatusCode::OK);
/// assert_eq!(&to_bytes(resp.into_body(), 64).await?[..], b"ok\n");
/// // Unknown routes answer a JSON error; the metrics are not on this router.
/// let resp = app.oneshot(Request::get("/metrics").body(Body::empty())?).await?;
/// assert_eq!(resp.status(), StatusCode::NOT_FOUND);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn router(svc: Arc<Service>, max_in_flight: usize) -> Router {
    Router::new()
        .route("/v1/mailboxes/{mailbox}/commits", post(post_commit))
        .route("/v1/mailboxes/{mailbox}/messages", post(post_message))
        .route("/v1/mailboxes/{mailbox}/welcomes", post(post_welcome))
        .route("/v1/mailboxes/{mailbox}/items", get(fetch))
        .route(
            "/v1/trees/{locator}",
            get(super::trees::get_tree).put(super::trees::put_tree),
        )
        .route("/v1/subscribe", post(subscribe))
        .route(
            "/v1/welcomes/{mailbox}/items",
            get(super::welcomes::fetch_welcomes),
        )
        .route(
            "/v1/welcomes/{mailbox}/subscribe",
            post(super::welcomes::subscribe_welcomes),
        )
        .route("/health", get(health))
        .merge(super::blobs::routes())
        .fallback(not_found)
        // Bodies are read with our own limit, so that oversized ones get our error (DS-9).
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            InFlight::new(max_in_flight),
            limit_in_flight,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(trace_request))
        .with_state(svc)
}

/// The metrics, on their own listen address (DS-12): not on the API's, where anyone could
/// read the service's load.
///
/// ```
/// # use std::{net::SocketAddr, sync::Arc, time::Duration};
/// # use atmls_ds::server::{metrics_router, router, Limits, Service};
/// # use atmls_ds::store::SqliteStore;
/// # use axum::{body::{to_bytes, Body}, extract::ConnectInfo, http::{Request, StatusCode}};
/// # use tower::ServiceExt as _;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = Arc::new(SqliteStore::open(dir.path().join("ds.db"))?);
/// # let limits = Limits {
/// #     max_payload: atmls_ds_wire::MAX_PAYLOAD,
/// #     max_commit: atmls_ds_wire::MAX_COMMIT_PAYLOAD,
/// #     rate_mailbox: 100,
/// #     stamp_bits: 0,
/// #     rate_welcome: 10,
/// #     rate_address: 0,
/// #     max_tree: atmls_ds_wire::MAX_TREE_BLOB,
/// #     tree_retention: atmls_ds_wire::TREE_TTL_SECS,
/// #     body_timeout: Duration::from_secs(30),
/// #     max_subscriptions: 10_000,
/// #     max_tree_transfers: 64,
/// #     blob_budget: atmls_ds_wire::blob_api::BLOB_BUDGET,
/// # };
/// # let (hub, _) = tokio::sync::broadcast::channel(16);
/// # let (_stop, stopped) = tokio::sync::watch::channel(false);
/// let svc = Arc::new(Service::new(store, hub, limits, stopped));
/// svc.metrics.pruned(3);
/// let app = metrics_router(svc);
/// let resp = app.oneshot(Request::get("/metrics").body(Body::empty())?).await?;
/// assert_eq!(resp.status(), StatusCode::OK);
/// let text = String::from_utf8(to_bytes(resp.into_body(), 1 << 20).await?.to_vec())?;
/// assert!(text.contains("atmls_ds_pruned_items_total 3"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn metrics_router(svc: Arc<Service>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(svc)
}

/// Logs each request at debug level by route template, never by mailbox id (DS-12).
async fn trace_request(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let t = Instant::now();
    let r = next.run(req).await;
    tracing::debug!(%method, %route, status = r.status().as_u16(), us = t.elapsed().as_micros() as u64, "request");
    r
}

async fn health() -> &'static str {
    "ok\n"
}

async fn metrics(State(svc): State<Arc<Service>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        svc.metrics.render(),
    )
}

fn kind_word(k: Kind) -> &'static str {
    match k {
        Kind::Commit => "commit",
        Kind::Message => "message",
        Kind::Welcome => "welcome",
    }
}

async fn post_commit(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_post(&svc, Kind::Commit, addr, &mailbox, &headers, body).await
}

async fn post_message(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_post(&svc, Kind::Message, addr, &mailbox, &headers, body).await
}

async fn post_welcome(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(mailbox): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_post(&svc, Kind::Welcome, addr, &mailbox, &headers, body).await
}

async fn handle_post(
    svc: &Service,
    kind: Kind,
    addr: SocketAddr,
    mailbox: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let t = Instant::now();
    let (outcome, resp) = match post_inner(svc, kind, addr, mailbox, headers, body).await {
        Ok((word, r)) => (word, r),
        Err(e) => {
            let word = e.1;
            (word, e.into_response())
        }
    };
    svc.metrics.post(kind_word(kind), outcome, t.elapsed());
    resp
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The epoch tag, the poster's cursor (DS-4) and the capability (DS-3) of a group post.
fn group_post_headers(
    headers: &HeaderMap,
    mailbox: &[u8; 32],
) -> Result<([u8; 32], u64), ApiError> {
    let epoch = header_str(headers, api::H_EPOCH)
        .and_then(parse_hex::<32>)
        .ok_or_else(|| malformed("atmls-epoch header: 64 hex digits"))?;
    // A client that does not send its cursor gets the rule of cursor 0.
    let after = match headers.get(api::H_AFTER) {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(api::parse_cursor)
            .ok_or_else(|| malformed("atmls-after header: a decimal integer up to 2^63-1"))?,
    };
    // The capability: the mailbox id must be its hash.
    let cap = header_str(headers, header::AUTHORIZATION.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(parse_hex::<32>);
    match cap {
        Some(c) if MailboxId::for_capability(&c).0 == *mailbox => Ok((epoch, after)),
        _ => Err(ApiError(
            StatusCode::FORBIDDEN,
            code::FORBIDDEN,
            "missing or wrong posting capability for this mailbox".into(),
            None,
        )),
    }
}

/// A post to a Welcome mailbox must carry a stamp of the mailbox's current price (DS-17); the
/// refusal names the price, so the poster can pay it and retry.
fn check_stamp(
    svc: &Service,
    headers: &HeaderMap,
    mailbox: &MailboxId,
    idem: &[u8; 16],
    payload: &[u8],
) -> Result<(), ApiError> {
    let price = svc.stamps.price(&mailbox.0);
    if price == 0 {
        return Ok(());
    }
    let paid = match header_str(headers, STAMP_HEADER) {
        None => false,
        Some(v) => {
            let nonce =
                parse_stamp(v).ok_or_else(|| malformed("atmls-stamp header: 16 hex digits"))?;
            stamp_ok(mailbox, idem, payload, nonce, price)
        }
    };
    if paid {
        return Ok(());
    }
    Err(ApiError(
        StatusCode::PRECONDITION_REQUIRED,
        code::STAMP_REQUIRED,
        format!("a post to this mailbox needs a stamp of {price} bits"),
        Some(u64::from(price)),
    ))
}

async fn post_inner(
    svc: &Service,
    kind: Kind,
    addr: SocketAddr,
    mailbox: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'static str, Response), ApiError> {
    if !svc.allow_address(&addr) {
        return Err(rate_limited());
    }
    let mailbox = parse_hex::<32>(mailbox).ok_or_else(|| malformed("mailbox id: 64 hex digits"))?;
    let idem = header_str(headers, api::H_IDEMPOTENCY)
        .and_then(parse_hex::<16>)
        .ok_or_else(|| malformed("idempotency-key header: 32 hex digits"))?;
    let (epoch, after) = if kind == Kind::Welcome {
        ([0u8; 32], 0)
    } else {
        group_post_headers(headers, &mailbox)?
    };
    // Members' budget is per epoch tag, which only the epoch's members know (DS-9); strangers'
    // posts to Welcome mailboxes pay in work instead (DS-17).
    if kind != Kind::Welcome && !svc.by_mailbox.allow(&(mailbox, epoch)) {
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            code::RATE_LIMITED,
            "too many posts to this mailbox in this epoch".into(),
            None,
        ));
    }
    let limit = match kind {
        Kind::Commit => svc.limits.max_commit,
        Kind::Message | Kind::Welcome => svc.limits.max_payload,
    };
    let too_large = |size: Option<u64>| {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::PAYLOAD_TOO_LARGE,
            match size {
                Some(s) => format!("payload of {s} bytes exceeds the limit of {limit}"),
                None => format!("payload exceeds the limit of {limit}"),
            },
            Some(limit as u64),
        )
    };
    let declared =
        header_str(headers, header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok());
    if declared.is_some_and(|n: u64| n > limit as u64) {
        return Err(too_large(declared));
    }
    let payload = read_body(body, limit, svc.limits.body_timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => too_large(None),
            BodyError::TimedOut => body_timed_out(),
        })?;
    if payload.is_empty() {
        return Err(malformed("empty payload"));
    }
    if kind == Kind::Welcome {
        check_stamp(svc, headers, &MailboxId(mailbox), &idem, &payload)?;
    }
    let size = payload.len();
    let (outcome, new) = svc
        .store
        .post(Post {
            kind,
            mailbox,
            epoch,
            after,
            idem,
            payload: payload.to_vec(),
        })
        .await
        .map_err(unavailable)?;
    if new {
        svc.metrics.stored(size);
        let welcome = kind == Kind::Welcome;
        if welcome {
            svc.stamps.paid(&mailbox);
        }
        let _ = svc.hub.send(Note { mailbox, welcome });
    }
    let conflict = |c: &'static str, m: &str| ApiError(StatusCode::CONFLICT, c, m.into(), None);
    match outcome {
        Outcome::Accepted(seq) => Ok((
            if new { "accepted" } else { "duplicate" },
            Json(Accepted { seq }).into_response(),
        )),
        Outcome::Rejected(w) => Ok((
            "epoch_taken",
            (
                StatusCode::CONFLICT,
                Json(ErrorBody {
                    error: code::EPOCH_TAKEN.into(),
                    message: "a commit for this epoch follows your cursor".into(),
                    winner: Some(wire_item(&w)),
                    limit: None,
                }),
            )
                .into_response(),
        )),
        Outcome::Stale => Err(conflict(
            code::STALE_EPOCH,
            "a commit for this epoch follows your cursor; catch up and re-send",
        )),
        Outcome::WrongKind => Err(conflict(
            code::WRONG_MAILBOX_KIND,
            "group posts and Welcomes cannot share a mailbox",
        )),
        Outcome::IdempotencyConflict => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            code::IDEMPOTENCY_CONFLICT,
            "idempotency key already used for a different request".into(),
            None,
        )),
    }
}

async fn fetch(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Path(mailbox): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<PageBody>, ApiError> {
    if !svc.allow_address(&addr) {
        return Err(rate_limited());
    }
    let mailbox =
        parse_hex::<32>(&mailbox).ok_or_else(|| malformed("mailbox id: 64 hex digits"))?;
    serve_page(&svc, mailbox, &q, false).await
}

/// A page of `mailbox` after the query's cursor, long-polling up to its `wait_ms`. Only a
/// mailbox of the kind asked for is read: through the group route a Welcome mailbox reads
/// as empty, as an absent one does, and never wakes a long poll (DS-W-1, DS-W-2).
pub(super) async fn serve_page(
    svc: &Arc<Service>,
    mailbox: [u8; 32],
    q: &HashMap<String, String>,
    welcome: bool,
) -> Result<Json<PageBody>, ApiError> {
    let t = Instant::now();
    let num = |name: &str, default: u64| -> Result<u64, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| malformed(format!("{name}: a decimal integer"))),
        }
    };
    let after = q
        .get("after")
        .map(|v| v.parse::<u64>().ok().filter(|a| *a <= i64::MAX as u64))
        .unwrap_or(Some(0))
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                code::CURSOR_OUT_OF_RANGE,
                "after: a decimal integer up to 2^63-1".into(),
                None,
            )
        })?;
    let limit = num("limit", 100)?.clamp(1, u64::from(api::MAX_PAGE_ITEMS)) as u32;
    let wait = Duration::from_millis(num("wait_ms", 0)?.min(api::MAX_WAIT_MS));
    // Subscribe before reading, so that an item stored in between still wakes us (only when
    // the client is willing to wait).
    let mut rx = (!wait.is_zero()).then(|| svc.hub.subscribe());
    let mut shutdown = svc.shutdown.clone();
    let deadline = tokio::time::Instant::now() + wait;
    let wanted = Note { mailbox, welcome };
    loop {
        let page = svc
            .store
            .fetch(mailbox, after, limit, api::MAX_PAGE_BYTES)
            .await
            .map_err(unavailable)?;
        // A cursor past the end reads as an empty page, as an absent mailbox does: an answer
        // that differed would tell whoever asks which mailboxes exist (DS-7).
        let (items, more) = match page {
            Fetched::Page(items, _)
                if items.iter().any(|i| (i.kind == Kind::Welcome) != welcome) =>
            {
                (Vec::new(), false)
            }
            Fetched::Page(items, more) => (items, more),
            Fetched::CursorAhead => (Vec::new(), false),
        };
        if !items.is_empty() || tokio::time::Instant::now() >= deadline || *shutdown.borrow() {
            svc.metrics.fetch(items.len(), t.elapsed());
            return Ok(Json(PageBody {
                items: items.iter().map(wire_item).collect(),
                more,
            }));
        }
        // Long poll (DS-8): wait for this mailbox, the deadline, or shutdown.
        let Some(rx) = rx.as_mut() else {
            continue;
        };
        let woke = async {
            loop {
                match rx.recv().await {
                    Ok(note) if note == wanted => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = woke => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Server-sent events: one `data: <mailbox hex>` per new item in a named mailbox; `data: *`
/// after missed notifications (DS-8).
async fn subscribe(
    State(svc): State<Arc<Service>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Body,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    if !svc.allow_address(&addr) {
        return Err(rate_limited());
    }
    let bytes = read_body(body, MAX_SUBSCRIBE * 80 + 1024, svc.limits.body_timeout)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => malformed("subscription body too large"),
            BodyError::TimedOut => body_timed_out(),
        })?;
    let req: SubscribeBody =
        serde_json::from_slice(&bytes).map_err(|e| malformed(format!("subscription body: {e}")))?;
    if req.mailboxes.len() > MAX_SUBSCRIBE {
        return Err(malformed(format!("at most {MAX_SUBSCRIBE} mailboxes")));
    }
    let set: HashSet<[u8; 32]> = req
        .mailboxes
        .iter()
        .map(|m| parse_hex::<32>(m))
        .collect::<Option<_>>()
        .ok_or_else(|| malformed("mailbox id: 64 hex digits"))?;
    // Welcome mailboxes only through their owner's subscription (DS-W-2).
    note_stream(&svc, move |n| !n.welcome && set.contains(&n.mailbox))
}

/// An event stream of the notes `accept` takes: `data: <mailbox hex>` for each, `data: *`
/// after missed ones; counted against the subscription limit while open (DS-8, DS-15).
pub(super) fn note_stream(
    svc: &Arc<Service>,
    accept: impl Fn(&Note) -> bool + Send + 'static,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let guard = SubGuard::open(svc)?;
    let rx = svc.hub.subscribe();
    let shutdown = svc.shutdown.clone();
    let first = stream::once(async { Ok(SseEvent::default().comment("subscribed")) });
    let rest = stream::unfold(
        (rx, accept, shutdown, guard),
        |(mut rx, accept, mut shutdown, guard)| async move {
            loop {
                if *shutdown.borrow() {
                    return None;
                }
                let got = tokio::select! {
                    r = rx.recv() => r,
                    _ = shutdown.changed() => return None,
                };
                let data = match got {
                    Ok(n) if accept(&n) => hex::encode(n.mailbox),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => "*".to_owned(),
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((
                    Ok(SseEvent::default().data(data)),
                    (rx, accept, shutdown, guard),
                ));
            }
        },
    );
    Ok(Sse::new(stream::StreamExt::chain(first, rest)).keep_alive(KeepAlive::default()))
}

/// One open subscription, counted against `max_subscriptions` until dropped.
struct SubGuard(Arc<Service>);

impl SubGuard {
    fn open(svc: &Arc<Service>) -> Result<Self, ApiError> {
        let max = svc.limits.max_subscriptions;
        let n = svc.open_subs.fetch_add(1, Ordering::SeqCst);
        if max > 0 && n >= max {
            svc.open_subs.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                code::BUSY,
                "too many subscriptions open; retry".into(),
                None,
            ));
        }
        svc.metrics.subscribers(1);
        Ok(SubGuard(Arc::clone(svc)))
    }
}

impl Drop for SubGuard {
    fn drop(&mut self) {
        self.0.open_subs.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.subscribers(-1);
    }
}
