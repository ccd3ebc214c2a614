//! Where encrypted attachments go: a [`BlobStore`] keeps opaque ciphertexts and
//! gives back a URL to fetch them by (spec/content.md CONTENT-25). The store sees
//! only ciphertext; the key travels in the (end-to-end encrypted) message.
//!
//! [`MemoryBlobStore`] keeps blobs in process (tests, demos); [`FsBlobStore`]
//! keeps them as files in a directory.

mod fs;
mod memory;

pub use fs::FsBlobStore;
pub use memory::MemoryBlobStore;

/// Largest blob a store accepts: 100 MiB.
pub const MAX_BLOB_LEN: usize = 100 << 20;

/// Errors of a blob store.
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
}

impl BlobError {
    /// Whether retrying may help (I/O failures only).
    pub fn is_retryable(&self) -> bool {
        matches!(self, BlobError::Io(_))
    }
}

// The example's `unwrap`s are on values it builds itself (a runtime, a fresh store).
/// Stores ciphertexts of attachments.
///
/// ```
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
    async fn put(&self, ciphertext: &[u8]) -> Result<String, BlobError>;
    /// Fetches the blob at `url`. Callers check its digest (the store is not trusted).
    async fn get(&self, url: &str) -> Result<Vec<u8>, BlobError>;
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
