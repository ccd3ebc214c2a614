//! Blobs as files in a directory.

use std::path::{Path, PathBuf};

use super::{blob_name, check_len, check_name, BlobError, BlobStore};

const SCHEME: &str = "atmls-blob://";

/// Keeps each blob as a file named by its SHA-256 in one directory; URLs are
/// `atmls-blob://<sha256 hex>`, so a URL can never name a file outside it. Writes go
/// to a temporary file first and are renamed into place (a crash leaves no partial blob).
///
/// ```
/// # let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// # rt.block_on(async {
/// use atmls::blob::{BlobStore, FsBlobStore};
/// let dir = tempfile::tempdir()?;
/// let store = FsBlobStore::new(dir.path())?;
/// let url = store.put(b"ciphertext").await?;
/// assert_eq!(store.get(&url).await?, b"ciphertext");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    dir: PathBuf,
}

impl FsBlobStore {
    /// A store in `dir`, created if missing.
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(Self {
            dir: dir.as_ref().to_path_buf(),
        })
    }

    /// The file that holds the blob at `url`.
    pub fn path_of(&self, url: &str) -> Result<PathBuf, BlobError> {
        let name = url
            .strip_prefix(SCHEME)
            .ok_or_else(|| BlobError::InvalidUrl(url.chars().take(100).collect()))?;
        check_name(name, url)?;
        Ok(self.dir.join(name))
    }
}

#[async_trait::async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, ciphertext: &[u8]) -> Result<String, BlobError> {
        check_len(ciphertext.len())?;
        let url = format!("{SCHEME}{}", blob_name(ciphertext));
        let path = self.path_of(&url)?;
        let tmp = self
            .dir
            .join(format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
        tokio::fs::write(&tmp, ciphertext).await?;
        tokio::fs::rename(&tmp, &path).await?;
        Ok(url)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, BlobError> {
        let path = self.path_of(url)?;
        // Check the size before reading, so a planted huge file cannot exhaust memory.
        match tokio::fs::metadata(&path).await {
            Ok(m) => check_len(usize::try_from(m.len()).unwrap_or(usize::MAX))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(url.into()))
            }
            Err(e) => return Err(e.into()),
        }
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(url.into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, _group: Option<&[u8; 32]>, url: &str) -> Result<bool, BlobError> {
        match tokio::fs::remove_file(self.path_of(url)?).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fs_store_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsBlobStore::new(dir.path()).unwrap();
        let url = s.put(b"abc").await.unwrap();
        assert_eq!(s.get(&url).await.unwrap(), b"abc");
        assert!(s.path_of(&url).unwrap().starts_with(dir.path()));
        assert!(s.delete(None, &url).await.unwrap());
        assert!(!s.delete(None, &url).await.unwrap());
        assert!(!s.path_of(&url).unwrap().exists());
        for bad in ["atmls-blob://../../etc/passwd", "atmls-blob://", "mem://x"] {
            assert!(
                matches!(s.get(bad).await, Err(BlobError::InvalidUrl(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            s.get(&format!("atmls-blob://{}", "a".repeat(64))).await,
            Err(BlobError::NotFound(_))
        ));
    }
}
