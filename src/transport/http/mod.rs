//! The client side of atmls-ds: [`Transport`] over HTTP (spec/ds.md DS-API-*). Retryable
//! failures are retried a few times with the same idempotency key, so a send whose answer was
//! lost is still stored once (DS-6).
//!
//! The connection is protected (spec/transport.md TRANSPORT-8): TLS through rustls, and plain
//! `http://` only to loopback unless the caller explicitly allows it; every request has a
//! timeout, and every answer is read up to a cap.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::{Response, StatusCode};
use tokio::sync::mpsc;

use super::stamp::{make_stamp, stamp_header, MAX_STAMP_BITS, STAMP_HEADER};
use super::{
    CommitOutcome, Delivered, EpochTag, IdempotencyKey, Mailbox, MailboxId, Page, SendOutcome,
    Subscription, Transport, TransportError, TreeLocator, WelcomeReadProof, MAX_COMMIT_PAYLOAD,
    MAX_TREE_BLOB, MAX_WELCOME_PAYLOAD,
};
use atmls_ds_wire::api::{self, code, Accepted, ErrorBody, Item, PageBody, SubscribeBody};

mod connect;

pub use connect::HttpTransportBuilder;
use connect::Pools;

/// Attempts per request when the service is unreachable, overloaded or rate limiting.
const ATTEMPTS: u32 = 6;
/// Posts of one Welcome at rising prices before giving up (DS-17).
const STAMP_TRIES: u32 = 4;

/// A stamp of `bits` for a Welcome post (DS-17), `None` for 0 bits. Work past a few thousand
/// hashes runs off the async threads.
async fn pay_stamp(
    mailbox: &MailboxId,
    key: &IdempotencyKey,
    payload: &[u8],
    bits: u8,
) -> Result<Option<u64>, TransportError> {
    let too_dear = || TransportError::StampTooDear {
        bits: u64::from(bits),
        max: MAX_STAMP_BITS,
    };
    if bits == 0 {
        return Ok(None);
    }
    if bits <= 12 {
        return make_stamp(mailbox, &key.0, payload, bits)
            .map(Some)
            .ok_or_else(too_dear);
    }
    let (m, k, p) = (*mailbox, key.0, payload.to_vec());
    tokio::task::spawn_blocking(move || make_stamp(&m, &k, &p, bits))
        .await
        .map_err(|_| TransportError::Unavailable("stamp worker failed".into()))?
        .map(Some)
        .ok_or_else(too_dear)
}

/// Base64 (standard, padded) length of `n` bytes.
const fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// JSON around one item of a page (`{"seq":…,"kind":"welcome","payload":""},`) is under 64
/// bytes; this is twice that.
const ITEM_OVERHEAD: usize = 128;

/// Largest single item a page may carry: the DS stops a page once its payloads reach
/// [`api::MAX_PAGE_BYTES`], so the last item may take it past that by one whole payload.
const MAX_ITEM: usize = if MAX_COMMIT_PAYLOAD > MAX_WELCOME_PAYLOAD {
    MAX_COMMIT_PAYLOAD
} else {
    MAX_WELCOME_PAYLOAD
};

/// Largest fetch answer read (TRANSPORT-8): a full page of payloads (DS-7: under 4 MiB, then
/// at most one more item of up to 16 MiB), in base64, with the JSON of 1,000 items around it.
const MAX_PAGE_ANSWER: usize = base64_len(api::MAX_PAGE_BYTES + MAX_ITEM)
    + api::MAX_PAGE_ITEMS as usize * ITEM_OVERHEAD
    + (64 << 10);

/// Largest answer to a post read: `{"seq": N}`, or an `epoch_taken` refusal carrying the
/// winning commit (up to 16 MiB, in base64).
const MAX_POST_ANSWER: usize = base64_len(MAX_COMMIT_PAYLOAD) + (64 << 10);

/// Largest tree blob read (`GET /v1/trees/…` answers the raw bytes, DS-API-10).
const MAX_TREE_ANSWER: usize = MAX_TREE_BLOB;

/// Largest error body (or small JSON answer) read anywhere else: `{"error", "message"}`.
const MAX_ERROR_ANSWER: usize = 64 << 10;

/// Longest line of a subscription stream (a line is `data: <64 hex digits>`).
const MAX_EVENT_LINE: usize = 64 << 10;

/// Default time to open a connection (TCP and TLS handshake).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time for one request, from sending it to the end of its answer's body.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time for one tree-blob upload or download (up to 64 MiB each).
const DEFAULT_TREE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default longest silence on a subscription stream before it is ended (and the watcher
/// re-subscribes). atmls-ds sends a keep-alive comment every 15 s (axum's default), so this
/// is three missed keep-alives.
const DEFAULT_SUBSCRIPTION_IDLE_TIMEOUT: Duration = Duration::from_secs(45);

/// A [`Transport`] speaking to an atmls-ds at `base` (e.g. `https://ds.example.com`).
///
/// `https://` is always accepted; `http://` only to a loopback host (`127.0.0.0/8`, `::1`,
/// `localhost`) unless [`HttpTransportBuilder::allow_plain_http_to_remote_hosts`] says
/// otherwise, because the posting capability and epoch tags would travel in clear
/// (TRANSPORT-8).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use atmls::transport::HttpTransport;
/// let transport = Arc::new(HttpTransport::new("https://ds.example.com")?);
/// // A private deployment: trust its own root as well, and shorter requests.
/// let pem = std::fs::read("ds-root.pem")?;
/// let private = HttpTransport::builder("https://ds.internal:8443")
///     .add_root_certificate_pem(&pem)
///     .request_timeout(Duration::from_secs(20))
///     .build()?;
/// // Client::builder(directory, transport, store) ...
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpTransport {
    base: String,
    /// One connection pool per mailbox (DS-W-3): no connection carries requests of two of
    /// the device's mailboxes, so the service cannot link them by connection.
    pools: Arc<Pools>,
    request_timeout: Duration,
    tree_timeout: Duration,
    subscription_idle_timeout: Duration,
    /// The last price of a Welcome post this service named (DS-17), so that the next post
    /// pays it without a refusal first.
    stamp_bits: Arc<AtomicU8>,
}

fn unavailable(e: impl std::fmt::Display) -> TransportError {
    TransportError::Unavailable(e.to_string())
}

/// The transport error of a failed request: a timeout, a TLS failure (the service's
/// certificate refused, or the handshake failed), else the service is unavailable.
fn http_error(e: reqwest::Error) -> TransportError {
    if e.is_timeout() {
        return TransportError::Timeout(e.to_string());
    }
    // The rustls error sits in an `io::Error` (itself in another one), whose `source` skips
    // the error it wraps: descend into those with `get_ref`.
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return TransportError::Tls(tls.to_string());
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    unavailable(e)
}

/// Whether a failed attempt is retried here: the retryable errors, except timeouts, which
/// already took the whole time the caller gave the request (the caller may retry them).
fn retry_here(e: &TransportError) -> bool {
    e.is_retryable() && !matches!(e, TransportError::Timeout(_))
}

fn decode_item(i: Item) -> Result<Delivered, TransportError> {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(i.payload.as_bytes())
        .map_err(|_| TransportError::InvalidResponse("malformed payload from service".into()))?;
    Ok(Delivered {
        seq: i.seq,
        kind: i.kind.into(),
        payload,
    })
}

/// What a post answered, before the caller interprets it.
enum Answer {
    Stored(u64),
    Refused(ErrorBody),
}

impl HttpTransport {
    /// Largest fetch answer read, in bytes (TRANSPORT-8): a page of payloads just under
    /// 4 MiB followed by one 16 MiB item (DS-7), in base64, with the JSON of 1,000 items.
    pub const MAX_PAGE_ANSWER: usize = MAX_PAGE_ANSWER;
    /// Largest answer to a post read, in bytes: an `epoch_taken` refusal carries the winning
    /// commit (up to 16 MiB, in base64).
    pub const MAX_POST_ANSWER: usize = MAX_POST_ANSWER;
    /// Largest tree blob read, in bytes ([`MAX_TREE_BLOB`], the raw bytes).
    pub const MAX_TREE_ANSWER: usize = MAX_TREE_ANSWER;
    /// Largest error body (or other small answer) read, in bytes.
    pub const MAX_ERROR_ANSWER: usize = MAX_ERROR_ANSWER;
    /// Default time to open a connection, TCP and TLS handshake.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = DEFAULT_CONNECT_TIMEOUT;
    /// Default time for one request, from sending it to the end of its answer.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = DEFAULT_REQUEST_TIMEOUT;
    /// Default time for one tree-blob upload or download.
    pub const DEFAULT_TREE_TIMEOUT: Duration = DEFAULT_TREE_TIMEOUT;
    /// Default longest silence on a subscription stream.
    pub const DEFAULT_SUBSCRIPTION_IDLE_TIMEOUT: Duration = DEFAULT_SUBSCRIPTION_IDLE_TIMEOUT;

    /// A transport for the service at `base`, with the default options
    /// ([`builder`](Self::builder)): `https://`, or `http://` to loopback.
    pub fn new(base: &str) -> Result<Self, TransportError> {
        Self::builder(base).build()
    }

    /// Options for a transport to the service at `base`; nothing is checked or sent until
    /// [`HttpTransportBuilder::build`].
    pub fn builder(base: &str) -> HttpTransportBuilder {
        HttpTransportBuilder {
            base: base.to_owned(),
            roots: Vec::new(),
            allow_plain_http_to_remote_hosts: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            tree_timeout: DEFAULT_TREE_TIMEOUT,
            subscription_idle_timeout: DEFAULT_SUBSCRIPTION_IDLE_TIMEOUT,
        }
    }

    /// The service's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A client of the connection pool of `scope` (DS-W-3), and the time for one request:
    /// for the attachment-blob store over this service (`crate::blob::HttpBlobStore`).
    pub(crate) fn scoped_client(
        &self,
        scope: &[u8; 32],
    ) -> Result<(reqwest::Client, Duration), TransportError> {
        Ok((self.pools.get(scope)?, self.request_timeout))
    }

    /// Reads an answer's status and body: up to `ok_limit` bytes for a success, `err_limit`
    /// for an error. A larger body is refused as soon as it is known to be larger
    /// (`Content-Length`, or the bytes received so far), and none of it is used.
    async fn answer(
        resp: Response,
        ok_limit: usize,
        err_limit: usize,
    ) -> Result<(StatusCode, Vec<u8>), TransportError> {
        let status = resp.status();
        let limit = if status.is_success() {
            ok_limit
        } else {
            err_limit
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(TransportError::ResponseTooLarge { limit });
        }
        let mut out = Vec::new();
        let mut s = resp.bytes_stream();
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(http_error)?;
            if out.len() + chunk.len() > limit {
                return Err(TransportError::ResponseTooLarge { limit });
            }
            out.extend_from_slice(&chunk);
        }
        Ok((status, out))
    }

    /// The error of an error answer that the caller does not interpret.
    fn refusal(status: StatusCode, body: &[u8]) -> TransportError {
        Self::classify(status, body)
            .err()
            .unwrap_or_else(|| TransportError::Refused(format!("answered {status}")))
    }

    /// Maps an error answer to a transport error; `Ok` for answers the caller interprets.
    fn classify(status: StatusCode, body: &[u8]) -> Result<ErrorBody, TransportError> {
        let e: ErrorBody = serde_json::from_slice(body).map_err(|_| {
            if status.is_server_error() {
                TransportError::Unavailable(format!("service answered {status}"))
            } else {
                TransportError::Refused(format!("service answered {status}"))
            }
        })?;
        Err(match e.error.as_str() {
            code::EPOCH_TAKEN | code::STALE_EPOCH | code::STAMP_REQUIRED => return Ok(e),
            code::PAYLOAD_TOO_LARGE => TransportError::PayloadTooLarge {
                size: 0,
                limit: e.limit.unwrap_or(0) as usize,
            },
            code::FORBIDDEN => TransportError::Forbidden,
            code::UNKNOWN_TREE => TransportError::NotFound,
            code::RATE_LIMITED => TransportError::RateLimited,
            code::UNAVAILABLE | code::BUSY | code::REQUEST_TIMEOUT => {
                TransportError::Unavailable(e.message)
            }
            _ => TransportError::Refused(format!("{}: {}", e.error, e.message)),
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or [`ATTEMPTS`] retryable failures.
    /// A timeout is returned at once (it already took the request's whole time).
    async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, TransportError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, TransportError>>,
    {
        let mut last = TransportError::Unavailable("no attempt".into());
        for n in 0..ATTEMPTS {
            if n > 0 {
                tokio::time::sleep(Duration::from_millis(50 << n.min(5))).await;
            }
            match attempt().await {
                Err(e) if retry_here(&e) => last = e,
                other => return other,
            }
        }
        Err(last)
    }

    /// Posts to `path`; `group` is the epoch tag and the poster's cursor of a group post.
    async fn post(
        &self,
        path: &str,
        mailbox: &Mailbox,
        group: Option<(&EpochTag, u64)>,
        payload: &[u8],
        key: &IdempotencyKey,
        stamp: Option<u64>,
    ) -> Result<Answer, TransportError> {
        let url = format!(
            "{}/v1/mailboxes/{}/{path}",
            self.base,
            hex::encode(mailbox.id.0)
        );
        let result = self
            .retrying(|| async {
                let mut req = self
                    .pools
                    .get(&mailbox.id.0)?
                    .post(&url)
                    .timeout(self.request_timeout)
                    .header(api::H_IDEMPOTENCY, hex::encode(key.0))
                    .header("content-type", "application/octet-stream")
                    .body(payload.to_vec());
                if let Some((e, after)) = group {
                    req = req
                        .header(api::H_EPOCH, hex::encode(e.0))
                        .header(api::H_AFTER, after.to_string());
                }
                if let Some(s) = &mailbox.post_secret {
                    req = req.bearer_auth(hex::encode(s));
                }
                if let Some(n) = stamp {
                    req = req.header(STAMP_HEADER, stamp_header(n));
                }
                let resp = req.send().await.map_err(http_error)?;
                let (status, body) = Self::answer(resp, MAX_ERROR_ANSWER, MAX_POST_ANSWER).await?;
                if status.is_success() {
                    return serde_json::from_slice::<Accepted>(&body)
                        .map(|a| Answer::Stored(a.seq))
                        .map_err(|_| TransportError::InvalidResponse("malformed answer".into()));
                }
                Self::classify(status, &body).map(Answer::Refused)
            })
            .await;
        match result {
            Err(TransportError::PayloadTooLarge { limit, .. }) => {
                Err(TransportError::PayloadTooLarge {
                    size: payload.len(),
                    limit,
                })
            }
            other => other,
        }
    }

    /// [`Transport::fetch`] as a long poll: when no item follows `after`, the service holds
    /// the answer until one arrives or `wait` (at most 30 s, DS-8) is up, and the request's
    /// timeout is `wait` plus the request timeout.
    pub async fn fetch_wait(
        &self,
        mailbox: &MailboxId,
        after: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<Page, TransportError> {
        self.fetch_page(mailbox, None, after, limit, wait).await
    }

    /// A page of a group mailbox, or of a Welcome mailbox with its owner's `proof` (DS-W-1),
    /// over the mailbox's own connections (DS-W-3).
    async fn fetch_page(
        &self,
        mailbox: &MailboxId,
        proof: Option<&WelcomeReadProof>,
        after: u64,
        limit: u32,
        wait: Duration,
    ) -> Result<Page, TransportError> {
        let wait = wait.min(Duration::from_millis(api::MAX_WAIT_MS));
        let limit = limit.clamp(1, api::MAX_PAGE_ITEMS);
        let route = if proof.is_some() {
            "welcomes"
        } else {
            "mailboxes"
        };
        let mut url = format!(
            "{}/v1/{route}/{}/items?after={after}&limit={limit}",
            self.base,
            hex::encode(mailbox.0),
        );
        let http = self.pools.get(&mailbox.0)?;
        let proof = proof.map(WelcomeReadProof::to_header);
        if !wait.is_zero() {
            url.push_str(&format!("&wait_ms={}", wait.as_millis()));
        }
        let timeout = self.request_timeout + wait;
        self.retrying(|| async {
            let mut req = http.get(&url).timeout(timeout);
            if let Some(p) = &proof {
                req = req.header(api::WELCOME_PROOF_HEADER, p);
            }
            let resp = req.send().await.map_err(http_error)?;
            let (status, body) = Self::answer(resp, MAX_PAGE_ANSWER, MAX_ERROR_ANSWER).await?;
            if !status.is_success() {
                return Err(Self::refusal(status, &body));
            }
            let page: PageBody = serde_json::from_slice(&body)
                .map_err(|_| TransportError::InvalidResponse("malformed page".into()))?;
            // No more than asked for (TRANSPORT-8), continuing the cursor in order
            // (TRANSPORT-5): refuse anything else.
            if page.items.len() > limit as usize {
                return Err(TransportError::InvalidResponse(format!(
                    "a page of {} items, {limit} asked for",
                    page.items.len()
                )));
            }
            let items = page
                .items
                .into_iter()
                .map(decode_item)
                .collect::<Result<Vec<_>, _>>()?;
            let mut prev = after;
            for i in &items {
                if i.seq <= prev {
                    return Err(TransportError::InvalidResponse("page out of order".into()));
                }
                prev = i.seq;
            }
            Ok(Page {
                items,
                more: page.more,
            })
        })
        .await
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn submit_commit(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError> {
        match self
            .post("commits", mailbox, Some((epoch, after)), payload, key, None)
            .await?
        {
            Answer::Stored(seq) => Ok(CommitOutcome::Accepted { seq }),
            Answer::Refused(ErrorBody {
                winner: Some(w), ..
            }) => Ok(CommitOutcome::Rejected {
                winner: decode_item(w)?,
            }),
            Answer::Refused(e) => Err(TransportError::Refused(e.message)),
        }
    }

    async fn send_message(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<SendOutcome, TransportError> {
        match self
            .post(
                "messages",
                mailbox,
                Some((epoch, after)),
                payload,
                key,
                None,
            )
            .await?
        {
            Answer::Stored(seq) => Ok(SendOutcome::Accepted { seq }),
            Answer::Refused(e) if e.error == code::STALE_EPOCH => Ok(SendOutcome::StaleEpoch),
            Answer::Refused(e) => Err(TransportError::Refused(e.message)),
        }
    }

    async fn send_welcome(
        &self,
        mailbox: &MailboxId,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<u64, TransportError> {
        let mb = Mailbox {
            id: *mailbox,
            post_secret: None,
        };
        let mut bits = self.stamp_bits.load(Ordering::Relaxed);
        // The price can rise between two tries (a flood under way): pay what is asked, a few
        // times, then give up with a retryable error.
        for _ in 0..STAMP_TRIES {
            let stamp = pay_stamp(mailbox, key, payload, bits).await?;
            match self
                .post("welcomes", &mb, None, payload, key, stamp)
                .await?
            {
                Answer::Stored(seq) => {
                    // Prices fall when a flood ends: try one bit less next time.
                    self.stamp_bits
                        .store(bits.saturating_sub(1), Ordering::Relaxed);
                    return Ok(seq);
                }
                Answer::Refused(e) if e.error == code::STAMP_REQUIRED => {
                    let asked = e.limit.unwrap_or(u64::MAX);
                    if asked > u64::from(MAX_STAMP_BITS) {
                        return Err(TransportError::StampTooDear {
                            bits: asked,
                            max: MAX_STAMP_BITS,
                        });
                    }
                    bits = asked as u8;
                    self.stamp_bits.store(bits, Ordering::Relaxed);
                }
                Answer::Refused(e) => return Err(TransportError::Refused(e.message)),
            }
        }
        Err(TransportError::StampTooDear {
            bits: u64::from(bits),
            max: MAX_STAMP_BITS,
        })
    }

    async fn fetch(
        &self,
        mailbox: &MailboxId,
        after: u64,
        limit: u32,
    ) -> Result<Page, TransportError> {
        self.fetch_wait(mailbox, after, limit, Duration::ZERO).await
    }

    async fn put_tree(&self, locator: &TreeLocator, blob: &[u8]) -> Result<(), TransportError> {
        if blob.len() > MAX_TREE_BLOB {
            return Err(TransportError::PayloadTooLarge {
                size: blob.len(),
                limit: MAX_TREE_BLOB,
            });
        }
        let url = format!("{}/v1/trees/{}", self.base, hex::encode(locator.0));
        // The locator makes the upload idempotent (DS-API-10): retrying is safe.
        self.retrying(|| async {
            let resp = self
                .pools
                .get(&locator.0)?
                .put(&url)
                .timeout(self.tree_timeout)
                .header("content-type", "application/octet-stream")
                .body(blob.to_vec())
                .send()
                .await
                .map_err(http_error)?;
            let (status, body) = Self::answer(resp, MAX_ERROR_ANSWER, MAX_ERROR_ANSWER).await?;
            if status.is_success() {
                return Ok(());
            }
            Err(match Self::classify(status, &body) {
                Err(TransportError::PayloadTooLarge { limit, .. }) => {
                    TransportError::PayloadTooLarge {
                        size: blob.len(),
                        limit,
                    }
                }
                Err(e) => e,
                Ok(e) => TransportError::Refused(e.message),
            })
        })
        .await
    }

    async fn fetch_tree(&self, locator: &TreeLocator) -> Result<Vec<u8>, TransportError> {
        let url = format!("{}/v1/trees/{}", self.base, hex::encode(locator.0));
        self.retrying(|| async {
            let resp = self
                .pools
                .get(&locator.0)?
                .get(&url)
                .timeout(self.tree_timeout)
                .send()
                .await
                .map_err(http_error)?;
            let (status, body) = Self::answer(resp, MAX_TREE_ANSWER, MAX_ERROR_ANSWER).await?;
            if status.is_success() {
                return Ok(body);
            }
            Err(Self::refusal(status, &body))
        })
        .await
    }

    async fn subscribe(&self, mailboxes: &[MailboxId]) -> Result<Subscription, TransportError> {
        let body = SubscribeBody {
            mailboxes: mailboxes.iter().map(|m| hex::encode(m.0)).collect(),
        };
        let body = serde_json::to_vec(&body).map_err(|e| TransportError::Refused(e.to_string()))?;
        // One mailbox: over its own connections (DS-W-3); several: a pool of their own.
        let http = match mailboxes {
            [one] => self.pools.get(&one.0)?,
            _ => self.pools.options.client()?,
        };
        let req = http
            .post(format!("{}/v1/subscribe", self.base))
            .header("content-type", "application/json")
            .body(body);
        self.open_stream(req, mailboxes.to_vec()).await
    }

    async fn fetch_welcomes(
        &self,
        proof: &WelcomeReadProof,
        after: u64,
        limit: u32,
    ) -> Result<Page, TransportError> {
        self.fetch_page(&proof.mailbox, Some(proof), after, limit, Duration::ZERO)
            .await
    }

    async fn subscribe_welcomes(
        &self,
        proof: &WelcomeReadProof,
    ) -> Result<Subscription, TransportError> {
        let req = self
            .pools
            .get(&proof.mailbox.0)?
            .post(format!(
                "{}/v1/welcomes/{}/subscribe",
                self.base,
                hex::encode(proof.mailbox.0)
            ))
            .header(api::WELCOME_PROOF_HEADER, proof.to_header());
        self.open_stream(req, vec![proof.mailbox]).await
    }
}

impl HttpTransport {
    /// Sends a subscription request and reads its event stream into a [`Subscription`]:
    /// `data: *` (missed notifications) stands for every mailbox in `all`.
    async fn open_stream(
        &self,
        req: reqwest::RequestBuilder,
        all: Vec<MailboxId>,
    ) -> Result<Subscription, TransportError> {
        // No total timeout on the stream (it lasts as long as the subscription): the answer's
        // head must come within the request timeout, then each read within the idle timeout.
        let send = req.send();
        let resp = match tokio::time::timeout(self.request_timeout, send).await {
            Ok(r) => r.map_err(http_error)?,
            Err(_) => {
                return Err(TransportError::Timeout(
                    "no answer to the subscription in time".into(),
                ))
            }
        };
        let status = resp.status();
        if !status.is_success() {
            let answer = tokio::time::timeout(
                self.request_timeout,
                Self::answer(resp, MAX_ERROR_ANSWER, MAX_ERROR_ANSWER),
            )
            .await
            .map_err(|_| TransportError::Timeout("no answer to the subscription in time".into()))?;
            let (status, body) = answer?;
            return Err(Self::refusal(status, &body));
        }
        let idle = self.subscription_idle_timeout;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut buf: Vec<u8> = Vec::new();
            // Silence longer than `idle` (no event, no keep-alive) ends the subscription, and so
            // does a line longer than any the service sends.
            while let Ok(Some(item)) = tokio::time::timeout(idle, stream.next()).await {
                let Ok(chunk) = item else { break };
                buf.extend_from_slice(chunk.as_ref());
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let Some(data) = line.strip_prefix(b"data:") else {
                        continue;
                    };
                    let data = String::from_utf8_lossy(data);
                    let data = data.trim();
                    let ids = if data == "*" {
                        all.clone()
                    } else {
                        api::parse_hex::<32>(data)
                            .map(MailboxId)
                            .into_iter()
                            .collect()
                    };
                    for id in ids {
                        if tx.send(id).is_err() {
                            return;
                        }
                    }
                }
                if buf.len() > MAX_EVENT_LINE {
                    return; // a line longer than any the service sends: end the subscription
                }
            }
            // Dropping `tx` ends the subscription; the watcher re-subscribes.
        });
        Ok(Subscription::new(rx))
    }
}

#[cfg(test)]
mod tests;
