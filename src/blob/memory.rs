//! Blobs in process memory.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{blob_name, check_len, check_name, BlobError, BlobStore};

const SCHEME: &str = "mem://";

/// Keeps blobs in memory; URLs are `mem://<sha256 hex>`. Share one (in an `Arc`)
/// between the clients that should see the same blobs.
///
/// ```
/// let store = atmls::blob::MemoryBlobStore::new();
/// assert!(store.is_empty());
/// ```
#[derive(Debug, Default)]
pub struct MemoryBlobStore {
    blobs: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryBlobStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no blob is stored.
    pub fn is_empty(&self) -> bool {
        self.blobs.lock().map(|b| b.is_empty()).unwrap_or(true)
    }

    /// Replaces the bytes stored at `url`, as a misbehaving server could (for tests of
    /// digest checking).
    pub fn overwrite(&self, url: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let name = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| BlobError::InvalidUrl(url.into()))?;
        let mut blobs = self.blobs.lock().map_err(|_| poisoned())?;
        let slot = blobs
            .get_mut(name)
            .ok_or_else(|| BlobError::NotFound(url.into()))?;
        *slot = bytes;
        Ok(())
    }
}

fn poisoned() -> BlobError {
    BlobError::Io(std::io::Error::other("blob store lock poisoned"))
}

#[async_trait::async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, ciphertext: &[u8]) -> Result<String, BlobError> {
        check_len(ciphertext.len())?;
        let name = blob_name(ciphertext);
        self.blobs
            .lock()
            .map_err(|_| poisoned())?
            .insert(name.clone(), ciphertext.to_vec());
        Ok(format!("{SCHEME}{name}"))
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, BlobError> {
        let name = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| BlobError::InvalidUrl(url.chars().take(100).collect()))?;
        check_name(name, url)?;
        self.blobs
            .lock()
            .map_err(|_| poisoned())?
            .get(name)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(url.into()))
    }

    async fn delete(&self, _group: Option<&[u8; 32]>, url: &str) -> Result<bool, BlobError> {
        let name = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| BlobError::InvalidUrl(url.chars().take(100).collect()))?;
        check_name(name, url)?;
        Ok(self
            .blobs
            .lock()
            .map_err(|_| poisoned())?
            .remove(name)
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_round_trip_and_errors() {
        let s = MemoryBlobStore::new();
        let url = s.put(b"abc").await.unwrap();
        assert!(url.starts_with("mem://"));
        assert_eq!(s.get(&url).await.unwrap(), b"abc");
        assert_eq!(s.put(b"abc").await.unwrap(), url, "idempotent");
        assert!(matches!(
            s.get("mem://00").await,
            Err(BlobError::InvalidUrl(_))
        ));
        assert!(matches!(
            s.get(&format!("mem://{}", "0".repeat(64))).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(matches!(
            s.get("file:///etc/passwd").await,
            Err(BlobError::InvalidUrl(_))
        ));
        s.overwrite(&url, b"abd".to_vec()).unwrap();
        assert_eq!(s.get(&url).await.unwrap(), b"abd");
        assert!(s.delete(None, &url).await.unwrap());
        assert!(!s.delete(None, &url).await.unwrap());
        assert!(matches!(s.get(&url).await, Err(BlobError::NotFound(_))));
    }
}
