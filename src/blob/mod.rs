//! Where encrypted attachments go: a [`BlobStore`] keeps opaque ciphertexts and
//! gives back a URL to fetch them by (spec/content.md CONTENT-25). The store sees
//! only ciphertext; the key travels in the (end-to-end encrypted) message.
//!
//! [`MemoryBlobStore`] keeps blobs in process (tests, demos); [`FsBlobStore`]
//! keeps them as files in a directory; with feature `ds-client`, [`HttpBlobStore`] keeps them
//! at an atmls-ds service, uploaded and downloaded in chunks, resumably, with progress
//! (CONTENT-25g to CONTENT-25k).
//!

// The `unwrap`/`expect` calls in this file are in doc examples, which run as tests on
// values they build themselves: none is on input from another party.
#![cfg_attr(feature = "ds-client", doc = "[`HttpBlobStore`]: HttpBlobStore")]
#![cfg_attr(not(feature = "ds-client"), doc = "[`HttpBlobStore`]: crate::blob")]

use std::path::Path;

mod fs;
#[cfg(feature = "ds-client")]
mod http;
mod memory;
mod reference;

pub use fs::FsBlobStore;
#[cfg(feature = "ds-client")]
pub use http::HttpBlobStore;
pub use memory::MemoryBlobStore;
pub use reference::{RemoteAttachment, StreamKey, StreamedAttachment};

/// How far a transfer got, for a progress bar: `done` of `total` bytes.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Mutex;
/// use atmls::blob::{BlobStore, MemoryBlobStore, Progress};
/// let dir = tempfile::tempdir()?;
/// let file = dir.path().join("photo.enc");
/// std::fs::write(&file, [7u8; 1000])?;
/// let seen = Mutex::new(Vec::new());
/// let report = |p: Progress| seen.lock().unwrap().push(p);
/// MemoryBlobStore::new().put_file(None, &file, &report).await?;
/// let last = seen.lock().unwrap().last().copied();
/// assert_eq!(last, Some(Progress { done: 1000, total: 1000 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes transferred (or found already there, after a resumption).
    pub done: u64,
    /// Bytes of the whole blob.
    pub total: u64,
}

/// A callback told of a transfer's [`Progress`] after each chunk.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// A progress callback that draws nothing.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::blob::{no_progress, BlobStore, FsBlobStore};
/// let dir = tempfile::tempdir()?;
/// let store = FsBlobStore::new(dir.path().join("blobs"))?;
/// let file = dir.path().join("clip.enc");
/// std::fs::write(&file, b"ciphertext")?;
/// let url = store.put_file(None, &file, &no_progress).await?;
/// assert_eq!(store.get(&url).await?, b"ciphertext");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub fn no_progress(_: Progress) {}

/// Largest blob a store accepts: 128 MiB, a 100 MiB attachment streamed and padded
/// (CONTENT-25d).
pub const MAX_BLOB_LEN: usize = 128 << 20;

/// Errors of a blob store.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::blob::{BlobError, BlobStore, MemoryBlobStore};
/// let store = MemoryBlobStore::new();
/// let url = store.put(b"ciphertext").await?;
/// store.delete(None, &url).await?;
/// match store.get(&url).await {
///     Err(e @ BlobError::NotFound(_)) => assert!(!e.is_retryable()),
///     other => panic!("expected NotFound, got {other:?}"),
/// }
/// let foreign = store.get("https://example.com/blob").await;
/// assert!(matches!(foreign, Err(BlobError::InvalidUrl(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No blob at this URL (never stored, or removed).
    #[error("no blob at {0}")]
    NotFound(String),
    /// The URL does not belong to this store or is malformed.
    #[error("invalid blob URL: {0}")]
    InvalidUrl(String),
    /// The blob is larger than [`MAX_BLOB_LEN`].
    #[error("blob of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Reading or writing the underlying storage failed.
    #[error("blob storage: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be reached or failed; the transfer can be resumed.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
    /// The group's blobs at the store would pass its budget (CONTENT-25h).
    #[error("blob store budget of {limit} bytes for this group would be passed")]
    OverBudget {
        /// The budget.
        limit: u64,
    },
    /// The store needs the group's mailbox capability to store or erase a blob, and none was
    /// given.
    #[error("this blob store stores blobs for a group only")]
    NeedsGroup,
    /// The store refused the request for another reason (retrying does not help).
    #[error("blob store refused: {0}")]
    Refused(String),
}

impl BlobError {
    /// Whether retrying may help (I/O failures and an unreachable store).
    ///
    /// ```
    /// use atmls::blob::{BlobError, MAX_BLOB_LEN};
    /// assert!(BlobError::Unavailable("connection reset".into()).is_retryable());
    /// let too_large = BlobError::TooLarge { len: MAX_BLOB_LEN + 1, max: MAX_BLOB_LEN };
    /// assert!(!too_large.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            BlobError::Io(_) | BlobError::Unavailable(_) => true,
            BlobError::NotFound(_)
            | BlobError::InvalidUrl(_)
            | BlobError::TooLarge { .. }
            | BlobError::OverBudget { .. }
            | BlobError::NeedsGroup
            | BlobError::Refused(_) => false,
        }
    }
}

// The example's `unwrap`s are on values it builds itself (a runtime, a fresh store).
/// Stores ciphertexts of attachments.
///
/// ```
/// # // unwrap: a runtime the example builds itself; no untrusted input.
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use atmls::blob::{BlobStore, MemoryBlobStore};
/// let store = MemoryBlobStore::new();
/// let url = store.put(b"ciphertext").await?;
/// assert_eq!(store.get(&url).await?, b"ciphertext");
/// # Ok::<(), atmls::blob::BlobError>(())
/// # }).unwrap();
/// ```
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `ciphertext` and returns the URL to fetch it by.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::blob::{BlobStore, MemoryBlobStore};
    /// let store = MemoryBlobStore::new();
    /// let url = store.put(b"ciphertext").await?;
    /// // Named by its content: storing the same bytes again gives the same URL.
    /// assert_eq!(store.put(b"ciphertext").await?, url);
    /// assert_ne!(store.put(b"other").await?, url);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn put(&self, ciphertext: &[u8]) -> Result<String, BlobError>;
    /// Fetches the blob at `url`. Callers check its digest (the store is not trusted).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use sha2::{Digest, Sha256};
    /// use atmls::blob::{BlobStore, MemoryBlobStore};
    /// let store = MemoryBlobStore::new();
    /// let url = store.put(b"ciphertext").await?;
    /// let digest = Sha256::digest(b"ciphertext"); // travels in the encrypted message
    /// store.overwrite(&url, b"tampered!!".to_vec())?; // as a hostile store could
    /// let fetched = store.get(&url).await?;
    /// assert_ne!(Sha256::digest(&fetched), digest); // so the receiver refuses it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn get(&self, url: &str) -> Result<Vec<u8>, BlobError>;

    /// Stores `ciphertext` for the group whose mailbox capability is `group` (stores that
    /// need one refuse `None`: [`BlobError::NeedsGroup`]). The default calls
    /// [`put`](Self::put).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::blob::{BlobStore, MemoryBlobStore};
    /// let store = MemoryBlobStore::new();
    /// let capability = [9u8; 32]; // the group's mailbox capability
    /// let url = store.put_for(Some(&capability), b"ciphertext").await?;
    /// assert_eq!(store.get(&url).await?, b"ciphertext");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn put_for(
        &self,
        group: Option<&[u8; 32]>,
        ciphertext: &[u8],
    ) -> Result<String, BlobError> {
        let _ = group;
        self.put(ciphertext).await
    }

    /// Stores the blob in file `path` for the group whose mailbox capability is `group`
    /// (stores that need one refuse `None`: [`BlobError::NeedsGroup`]), reporting progress.
    /// The default reads the file whole and calls [`put`](Self::put); stores that hold large
    /// blobs stream it.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use atmls::blob::{BlobStore, FsBlobStore, Progress};
    /// let dir = tempfile::tempdir()?;
    /// let store = FsBlobStore::new(dir.path().join("blobs"))?;
    /// let file = dir.path().join("video.enc");
    /// std::fs::write(&file, vec![1u8; 64 * 1024])?;
    /// let done = AtomicU64::new(0);
    /// let progress = |p: Progress| done.store(p.done, Ordering::SeqCst);
    /// let url = store.put_file(None, &file, &progress).await?;
    /// assert_eq!(done.into_inner(), 64 * 1024);
    /// assert_eq!(store.get(&url).await?, std::fs::read(&file)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn put_file(
        &self,
        group: Option<&[u8; 32]>,
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<String, BlobError> {
        let _ = group;
        check_len(usize::try_from(tokio::fs::metadata(path).await?.len()).unwrap_or(usize::MAX))?;
        let bytes = tokio::fs::read(path).await?;
        let url = self.put(&bytes).await?;
        let total = bytes.len() as u64;
        progress(Progress { done: total, total });
        Ok(url)
    }

    /// Fetches the blob at `url` into file `path`, reporting progress; the bytes written.
    /// Callers check its digest. The default fetches it whole with [`get`](Self::get).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::blob::{no_progress, BlobStore, MemoryBlobStore};
    /// let store = MemoryBlobStore::new();
    /// let url = store.put(b"ciphertext").await?;
    /// let dir = tempfile::tempdir()?;
    /// let file = dir.path().join("download.enc");
    /// assert_eq!(store.get_to_file(&url, &file, &no_progress).await?, 10);
    /// assert_eq!(std::fs::read(&file)?, b"ciphertext");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn get_to_file(
        &self,
        url: &str,
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<u64, BlobError> {
        let bytes = self.get(url).await?;
        tokio::fs::write(path, &bytes).await?;
        let total = bytes.len() as u64;
        progress(Progress { done: total, total });
        Ok(total)
    }

    /// Erases the blob at `url` (CONTENT-25k); `false` if it was not there. `group` is the
    /// capability of the group it was stored for, as for [`put_file`](Self::put_file).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::blob::{BlobError, BlobStore, MemoryBlobStore};
    /// let store = MemoryBlobStore::new();
    /// let url = store.put(b"ciphertext").await?;
    /// assert!(store.delete(None, &url).await?);
    /// assert!(!store.delete(None, &url).await?); // already gone
    /// assert!(matches!(store.get(&url).await, Err(BlobError::NotFound(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn delete(&self, group: Option<&[u8; 32]>, url: &str) -> Result<bool, BlobError>;
}

/// The name a store gives a blob: the hex SHA-256 of its bytes (so storing the
/// same ciphertext twice is idempotent).
fn blob_name(ciphertext: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(ciphertext))
}

fn check_len(len: usize) -> Result<(), BlobError> {
    if len > MAX_BLOB_LEN {
        return Err(BlobError::TooLarge {
            len,
            max: MAX_BLOB_LEN,
        });
    }
    Ok(())
}

/// A blob name is 64 lowercase hex digits (anything else could escape a directory).
fn check_name(name: &str, url: &str) -> Result<(), BlobError> {
    if name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(BlobError::InvalidUrl(url.chars().take(100).collect()))
    }
}
