//! The client side of atmls-ds: [`Transport`] over HTTP (spec/ds.md DS-API-*). Retryable
//! failures are retried a few times with the same idempotency key, so a send whose answer was
//! lost is still stored once (DS-6).

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::{Response, StatusCode};
use tokio::sync::mpsc;

use super::{
    CommitOutcome, Delivered, EpochTag, IdempotencyKey, Mailbox, MailboxId, Page, SendOutcome,
    Subscription, Transport, TransportError, TreeLocator, MAX_TREE_BLOB,
};
use crate::ds::api::{self, code, Accepted, ErrorBody, Item, PageBody, SubscribeBody};

/// Attempts per request when the service is unreachable, overloaded or rate limiting.
const ATTEMPTS: u32 = 6;
/// Largest response body accepted (a full page plus its base64 and JSON overhead).
const MAX_RESPONSE: usize = api::MAX_PAGE_BYTES * 2 + (1 << 20);

/// A [`Transport`] speaking to an atmls-ds at `base` (e.g. `http://127.0.0.1:8080`).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use atmls::transport::HttpTransport;
/// let transport = Arc::new(HttpTransport::new("http://127.0.0.1:8080")?);
/// // Client::builder(directory, transport, store) ...
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HttpTransport {
    base: String,
    http: reqwest::Client,
}

fn unavailable(e: impl std::fmt::Display) -> TransportError {
    TransportError::Unavailable(e.to_string())
}

fn decode_item(i: Item) -> Result<Delivered, TransportError> {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(i.payload.as_bytes())
        .map_err(|_| TransportError::Refused("malformed payload from service".into()))?;
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
    /// A transport for the service at `base`.
    pub fn new(base: &str) -> Result<Self, TransportError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(unavailable)?;
        Ok(HttpTransport {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    async fn body(resp: Response) -> Result<Vec<u8>, TransportError> {
        Self::body_limited(resp, MAX_RESPONSE).await
    }

    async fn body_limited(resp: Response, limit: usize) -> Result<Vec<u8>, TransportError> {
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(TransportError::Refused("response too large".into()));
        }
        let mut out = Vec::new();
        let mut s = resp.bytes_stream();
        while let Some(chunk) = s.next().await {
            let chunk = chunk.map_err(unavailable)?;
            if out.len() + chunk.len() > limit {
                return Err(TransportError::Refused("response too large".into()));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
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
            code::EPOCH_TAKEN | code::STALE_EPOCH => return Ok(e),
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
                Err(e) if e.is_retryable() => last = e,
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
    ) -> Result<Answer, TransportError> {
        let url = format!(
            "{}/v1/mailboxes/{}/{path}",
            self.base,
            hex::encode(mailbox.id.0)
        );
        let mut last = TransportError::Unavailable("no attempt".into());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            }
            let mut req = self
                .http
                .post(&url)
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
            let result = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    match Self::body(resp).await {
                        Ok(body) if status.is_success() => {
                            serde_json::from_slice::<Accepted>(&body)
                                .map(|a| Answer::Stored(a.seq))
                                .map_err(|_| TransportError::Refused("malformed answer".into()))
                        }
                        Ok(body) => Self::classify(status, &body).map(Answer::Refused),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(unavailable(e)),
            };
            match result {
                Err(e) if e.is_retryable() => last = e,
                Err(TransportError::PayloadTooLarge { limit, .. }) => {
                    return Err(TransportError::PayloadTooLarge {
                        size: payload.len(),
                        limit,
                    })
                }
                other => return other,
            }
        }
        Err(last)
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
            .post("commits", mailbox, Some((epoch, after)), payload, key)
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
            .post("messages", mailbox, Some((epoch, after)), payload, key)
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
        match self.post("welcomes", &mb, None, payload, key).await? {
            Answer::Stored(seq) => Ok(seq),
            Answer::Refused(e) => Err(TransportError::Refused(e.message)),
        }
    }

    async fn fetch(
        &self,
        mailbox: &MailboxId,
        after: u64,
        limit: u32,
    ) -> Result<Page, TransportError> {
        let url = format!(
            "{}/v1/mailboxes/{}/items?after={after}&limit={}",
            self.base,
            hex::encode(mailbox.0),
            limit.clamp(1, api::MAX_PAGE_ITEMS)
        );
        let mut last = TransportError::Unavailable("no attempt".into());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
            }
            let result = async {
                let resp = self.http.get(&url).send().await.map_err(unavailable)?;
                let status = resp.status();
                let body = Self::body(resp).await?;
                if !status.is_success() {
                    return Err(Self::classify(status, &body)
                        .err()
                        .unwrap_or_else(|| TransportError::Refused(format!("answered {status}"))));
                }
                let page: PageBody = serde_json::from_slice(&body)
                    .map_err(|_| TransportError::Refused("malformed page".into()))?;
                let items = page
                    .items
                    .into_iter()
                    .map(decode_item)
                    .collect::<Result<Vec<_>, _>>()?;
                // A page must continue the cursor in order (TRANSPORT-5): refuse anything else.
                let mut prev = after;
                for i in &items {
                    if i.seq <= prev {
                        return Err(TransportError::Refused("page out of order".into()));
                    }
                    prev = i.seq;
                }
                Ok(Page {
                    items,
                    more: page.more,
                })
            }
            .await;
            match result {
                Err(e) if e.is_retryable() => last = e,
                other => return other,
            }
        }
        Err(last)
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
                .http
                .put(&url)
                .header("content-type", "application/octet-stream")
                .body(blob.to_vec())
                .send()
                .await
                .map_err(unavailable)?;
            let status = resp.status();
            let body = Self::body(resp).await?;
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
            let resp = self.http.get(&url).send().await.map_err(unavailable)?;
            let status = resp.status();
            if status.is_success() {
                return Self::body_limited(resp, MAX_TREE_BLOB).await;
            }
            let body = Self::body(resp).await?;
            Err(Self::classify(status, &body)
                .err()
                .unwrap_or_else(|| TransportError::Refused(format!("answered {status}"))))
        })
        .await
    }

    async fn subscribe(&self, mailboxes: &[MailboxId]) -> Result<Subscription, TransportError> {
        let body = SubscribeBody {
            mailboxes: mailboxes.iter().map(|m| hex::encode(m.0)).collect(),
        };
        let resp = self
            .http
            .post(format!("{}/v1/subscribe", self.base))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).map_err(|e| TransportError::Refused(e.to_string()))?)
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status();
        if !status.is_success() {
            let body = Self::body(resp).await?;
            return Err(Self::classify(status, &body)
                .err()
                .unwrap_or_else(|| TransportError::Refused(format!("answered {status}"))));
        }
        let all: Vec<MailboxId> = mailboxes.to_vec();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(item) = stream.next().await {
                let Ok(chunk) = item else { break };
                buf.extend_from_slice(chunk.as_ref());
                if buf.len() > 1 << 20 {
                    return; // a misbehaving service: end the subscription
                }
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
            }
            // Dropping `tx` ends the subscription; the watcher re-subscribes.
        });
        Ok(Subscription::new(rx))
    }
}
