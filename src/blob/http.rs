//! Blobs at an atmls-ds service (spec/content.md CONTENT-25g to CONTENT-25k, routes in
//! [`atmls_ds_wire::blob_api`]): uploaded chunk by chunk under a group mailbox's capability,
//! downloaded by random id with `Range` resumption, both from and to files, one chunk in
//! memory at a time, reporting progress.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};

use super::{BlobError, BlobStore, Progress, ProgressFn};
use crate::transport::{HttpTransport, MailboxId, TransportError};
use atmls_ds_wire::api::ErrorBody;
use atmls_ds_wire::blob_api::{code, BlobCreate, BlobCreated, BlobStatus, BLOB_CHUNK, MAX_BLOB};

/// Tries of one chunk (or of the download) before the transfer gives up; each after a cut
/// connection or an unavailable service resumes where the last one stopped.
const ATTEMPTS: u32 = 6;

/// An attachment-blob store at the atmls-ds service of an [`HttpTransport`] (same URL, TLS
/// roots and timeouts). URLs are `<service>/v1/blobs/<id>`; this store only fetches from its
/// own service. Storing and erasing need the group's mailbox capability
/// ([`BlobStore::put_file`] or [`BlobStore::put_for`] with `Some`): [`BlobStore::put`] alone is refused
/// ([`BlobError::NeedsGroup`]).
#[derive(Clone)]
pub struct HttpBlobStore {
    transport: Arc<HttpTransport>,
    backoff: Duration,
}

impl std::fmt::Debug for HttpBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBlobStore")
            .field("service", &self.transport.base_url())
            .finish()
    }
}

fn transport_error(e: TransportError) -> BlobError {
    if e.is_retryable() {
        BlobError::Unavailable(e.to_string())
    } else {
        BlobError::Refused(e.to_string())
    }
}

fn http_error(e: reqwest::Error) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

/// The error of an error answer.
async fn refusal(resp: reqwest::Response, url: &str) -> BlobError {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let e: Option<ErrorBody> = serde_json::from_slice(&body[..body.len().min(64 << 10)]).ok();
    match (status, e.as_ref().map(|e| e.error.as_str())) {
        (_, Some(code::UNKNOWN_BLOB)) | (StatusCode::NOT_FOUND, None) => {
            BlobError::NotFound(url.chars().take(100).collect())
        }
        (_, Some(code::OVER_BUDGET)) => BlobError::OverBudget {
            limit: e.and_then(|e| e.limit).unwrap_or(0),
        },
        (s, _) if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            BlobError::Unavailable(format!("service answered {s}"))
        }
        (s, Some(c)) => BlobError::Refused(format!("{s} {c}")),
        (s, None) => BlobError::Refused(format!("service answered {s}")),
    }
}

/// A JSON answer of at most 64 KiB (a status of the largest blob is about 6 KiB).
async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, BlobError> {
    const LIMIT: u64 = 64 << 10;
    if resp.content_length().is_some_and(|n| n > LIMIT) {
        return Err(BlobError::Refused(
            "the service's answer is too large".into(),
        ));
    }
    let body = resp.bytes().await.map_err(http_error)?;
    if body.len() as u64 > LIMIT {
        return Err(BlobError::Refused(
            "the service's answer is too large".into(),
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|_| BlobError::Refused("the service's answer is not the expected JSON".into()))
}

impl HttpBlobStore {
    /// A store at `transport`'s service.
    pub fn new(transport: Arc<HttpTransport>) -> Self {
        HttpBlobStore {
            transport,
            backoff: Duration::from_millis(200),
        }
    }

    fn client(&self, scope: &[u8; 32]) -> Result<(reqwest::Client, Duration), BlobError> {
        self.transport.scoped_client(scope).map_err(transport_error)
    }

    fn mailbox_url(&self, cap: &[u8; 32]) -> String {
        let mb = MailboxId::for_capability(cap);
        format!(
            "{}/v1/mailboxes/{}/blobs",
            self.transport.base_url(),
            hex::encode(mb.0)
        )
    }

    /// The blob id in `url`, if `url` names a blob of this store's service.
    fn id_of(&self, url: &str) -> Result<[u8; 32], BlobError> {
        let bad = || BlobError::InvalidUrl(url.chars().take(100).collect());
        let id = url
            .strip_prefix(self.transport.base_url())
            .and_then(|r| r.strip_prefix("/v1/blobs/"))
            .ok_or_else(bad)?;
        let mut out = [0u8; 32];
        if id.len() != 64 || hex::decode_to_slice(id, &mut out).is_err() || id != id.to_lowercase()
        {
            return Err(bad());
        }
        Ok(out)
    }

    /// Runs `f` up to [`ATTEMPTS`] times while it fails with a retryable error, waiting longer
    /// each time.
    async fn retrying<T, F, Fut>(&self, mut f: F) -> Result<T, BlobError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BlobError>>,
    {
        let mut wait = self.backoff;
        let mut n = 1;
        loop {
            match f().await {
                Err(e) if e.is_retryable() && n < ATTEMPTS => {
                    tracing::debug!(error = %e, attempt = n, "blob transfer: retrying");
                    tokio::time::sleep(wait).await;
                    wait = wait.saturating_mul(2);
                    n += 1;
                }
                other => return other,
            }
        }
    }

    /// Begins an upload of `size` bytes for the group of capability `cap`: the blob's id.
    pub async fn begin_upload(&self, cap: &[u8; 32], size: u64) -> Result<[u8; 32], BlobError> {
        let (client, timeout) = self.client(&MailboxId::for_capability(cap).0)?;
        let url = self.mailbox_url(cap);
        let resp = client
            .post(&url)
            .bearer_auth(hex::encode(cap))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(
                serde_json::to_vec(&BlobCreate { size })
                    .map_err(|e| BlobError::Refused(e.to_string()))?,
            )
            .timeout(timeout)
            .send()
            .await
            .map_err(http_error)?;
        if resp.status() != StatusCode::CREATED {
            return Err(refusal(resp, &url).await);
        }
        let created: BlobCreated = json(resp).await?;
        let mut id = [0u8; 32];
        hex::decode_to_slice(&created.id, &mut id)
            .map_err(|_| BlobError::Refused("the service answered a malformed blob id".into()))?;
        if created.chunk != BLOB_CHUNK as u64 {
            return Err(BlobError::Refused(
                "the service uses another chunk size".into(),
            ));
        }
        Ok(id)
    }

    /// Which chunks of upload `id` the service has, and whether it is complete.
    pub async fn upload_status(
        &self,
        cap: &[u8; 32],
        id: &[u8; 32],
    ) -> Result<BlobStatus, BlobError> {
        let (client, timeout) = self.client(&MailboxId::for_capability(cap).0)?;
        let url = format!("{}/{}", self.mailbox_url(cap), hex::encode(id));
        let resp = client
            .get(&url)
            .bearer_auth(hex::encode(cap))
            .timeout(timeout)
            .send()
            .await
            .map_err(http_error)?;
        if !resp.status().is_success() {
            return Err(refusal(resp, &url).await);
        }
        json(resp).await
    }

    /// Sends the chunks of `path` that upload `id` lacks (asking the service which it has
    /// first), then completes it. Call again after a failure to resume.
    pub async fn resume_upload(
        &self,
        cap: &[u8; 32],
        id: &[u8; 32],
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<(), BlobError> {
        let status = self.upload_status(cap, id).await?;
        let mut file = tokio::fs::File::open(path).await?;
        let total = file.metadata().await?.len();
        if total != status.size {
            return Err(BlobError::Refused(
                "the file is not the size of the upload".into(),
            ));
        }
        let chunks = total.div_ceil(BLOB_CHUNK as u64).max(1);
        let have: std::collections::HashSet<u64> = status.have.into_iter().collect();
        let mut done = have.len() as u64 * BLOB_CHUNK as u64;
        progress(Progress {
            done: done.min(total),
            total,
        });
        let mut buf = Vec::with_capacity(BLOB_CHUNK);
        for i in (0..chunks).filter(|i| !have.contains(i)) {
            let start = i * BLOB_CHUNK as u64;
            let len = (total - start).min(BLOB_CHUNK as u64) as usize;
            file.seek(std::io::SeekFrom::Start(start)).await?;
            buf.resize(len, 0);
            file.read_exact(&mut buf).await?;
            self.put_chunk(cap, id, i, buf.clone()).await?;
            done += len as u64;
            progress(Progress {
                done: done.min(total),
                total,
            });
        }
        self.complete(cap, id).await
    }

    async fn put_chunk(
        &self,
        cap: &[u8; 32],
        id: &[u8; 32],
        i: u64,
        data: Vec<u8>,
    ) -> Result<(), BlobError> {
        let (client, timeout) = self.client(&MailboxId::for_capability(cap).0)?;
        let url = format!("{}/{}/chunks/{i}", self.mailbox_url(cap), hex::encode(id));
        let resp = client
            .put(&url)
            .bearer_auth(hex::encode(cap))
            .body(data)
            .timeout(timeout)
            .send()
            .await
            .map_err(http_error)?;
        if !resp.status().is_success() {
            return Err(refusal(resp, &url).await);
        }
        Ok(())
    }

    async fn complete(&self, cap: &[u8; 32], id: &[u8; 32]) -> Result<(), BlobError> {
        let (client, timeout) = self.client(&MailboxId::for_capability(cap).0)?;
        let url = format!("{}/{}/complete", self.mailbox_url(cap), hex::encode(id));
        let resp = client
            .post(&url)
            .bearer_auth(hex::encode(cap))
            .timeout(timeout)
            .send()
            .await
            .map_err(http_error)?;
        if !resp.status().is_success() {
            return Err(refusal(resp, &url).await);
        }
        Ok(())
    }

    /// The URL readers fetch blob `id` by.
    pub fn url_of(&self, id: &[u8; 32]) -> String {
        format!("{}/v1/blobs/{}", self.transport.base_url(), hex::encode(id))
    }

    /// Appends the blob from byte `from` on to `file`; the bytes it now holds.
    async fn download_from(
        &self,
        id: &[u8; 32],
        url: &str,
        file: &mut tokio::fs::File,
        from: u64,
        progress: ProgressFn<'_>,
    ) -> Result<u64, BlobError> {
        let (client, timeout) = self.client(id)?;
        let mut req = client.get(url);
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let resp = req.send().await.map_err(http_error)?;
        let expect = if from > 0 {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        if resp.status() != expect {
            return Err(refusal(resp, url).await);
        }
        let rest = resp
            .content_length()
            .ok_or_else(|| BlobError::Refused("the service sent no length".into()))?;
        let total = from.saturating_add(rest);
        if total > MAX_BLOB {
            return Err(BlobError::TooLarge {
                len: usize::try_from(total).unwrap_or(usize::MAX),
                max: MAX_BLOB as usize,
            });
        }
        let mut done = from;
        let mut body = resp.bytes_stream();
        // A stalled body is a cut connection: resumed by the caller.
        while let Some(frame) = tokio::time::timeout(timeout, body.next())
            .await
            .map_err(|_| BlobError::Unavailable("the download stalled".into()))?
        {
            let frame = frame.map_err(http_error)?;
            done += frame.len() as u64;
            if done > total {
                return Err(BlobError::Refused(
                    "the service sent more than it announced".into(),
                ));
            }
            file.write_all(&frame).await?;
            progress(Progress { done, total });
        }
        file.flush().await?;
        if done != total {
            return Err(BlobError::Unavailable("the download was cut short".into()));
        }
        Ok(done)
    }
}

#[async_trait::async_trait]
impl BlobStore for HttpBlobStore {
    async fn put(&self, _ciphertext: &[u8]) -> Result<String, BlobError> {
        Err(BlobError::NeedsGroup)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, BlobError> {
        let dir = tempfile_dir();
        let path = dir.join(format!(
            ".atmls-blob-{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let r = self.get_to_file(url, &path, &super::no_progress).await;
        let out = match r {
            Ok(_) => tokio::fs::read(&path).await.map_err(BlobError::from),
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&path).await;
        out
    }

    /// Uploads `ciphertext` (a padded size, CONTENT-25d) chunk by chunk, each retried and
    /// resumed on its own.
    async fn put_for(
        &self,
        group: Option<&[u8; 32]>,
        ciphertext: &[u8],
    ) -> Result<String, BlobError> {
        let cap = group.ok_or(BlobError::NeedsGroup)?;
        let size = ciphertext.len() as u64;
        let id = self.retrying(|| self.begin_upload(cap, size)).await?;
        for (i, chunk) in ciphertext.chunks(BLOB_CHUNK).enumerate() {
            self.retrying(|| self.put_chunk(cap, &id, i as u64, chunk.to_vec()))
                .await?;
        }
        self.retrying(|| self.complete(cap, &id)).await?;
        Ok(self.url_of(&id))
    }

    async fn put_file(
        &self,
        group: Option<&[u8; 32]>,
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<String, BlobError> {
        let cap = group.ok_or(BlobError::NeedsGroup)?;
        let size = tokio::fs::metadata(path).await?.len();
        if size > MAX_BLOB {
            return Err(BlobError::TooLarge {
                len: usize::try_from(size).unwrap_or(usize::MAX),
                max: MAX_BLOB as usize,
            });
        }
        let id = self.retrying(|| self.begin_upload(cap, size)).await?;
        self.retrying(|| self.resume_upload(cap, &id, path, progress))
            .await?;
        Ok(self.url_of(&id))
    }

    async fn get_to_file(
        &self,
        url: &str,
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<u64, BlobError> {
        let id = self.id_of(url)?;
        tokio::fs::File::create(path).await?;
        self.retrying(|| async move {
            // Resume after what the file already holds (a cut connection).
            let mut file = tokio::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .await?;
            let have = file.metadata().await?.len();
            self.download_from(&id, url, &mut file, have, progress)
                .await
        })
        .await
    }

    async fn delete(&self, group: Option<&[u8; 32]>, url: &str) -> Result<bool, BlobError> {
        let cap = group.ok_or(BlobError::NeedsGroup)?;
        let id = self.id_of(url)?;
        let (client, timeout) = self.client(&MailboxId::for_capability(cap).0)?;
        let target = format!("{}/{}", self.mailbox_url(cap), hex::encode(id));
        let resp = client
            .delete(&target)
            .bearer_auth(hex::encode(cap))
            .timeout(timeout)
            .send()
            .await
            .map_err(http_error)?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            _ => match refusal(resp, url).await {
                BlobError::NotFound(_) => Ok(false),
                e => Err(e),
            },
        }
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    std::env::temp_dir()
}
