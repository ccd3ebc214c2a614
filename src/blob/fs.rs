//! Blobs as files in a directory.

use std::path::{Path, PathBuf};

use super::{blob_name, check_len, check_name, BlobError, BlobStore, Progress, ProgressFn};

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

/// A temporary file name in the store's directory, removed when dropped unless renamed.
struct TempName(PathBuf);

impl TempName {
    fn in_dir(dir: &Path) -> Self {
        TempName(dir.join(format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>()))))
    }
}

impl Drop for TempName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

    /// Copies the file into the store a buffer at a time, hashing it on the way (bounded
    /// memory, CONTENT-25b).
    async fn put_file(
        &self,
        _group: Option<&[u8; 32]>,
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<String, BlobError> {
        use sha2::Digest as _;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut input = tokio::fs::File::open(path).await?;
        let total = input.metadata().await?.len();
        check_len(usize::try_from(total).unwrap_or(usize::MAX))?;
        let tmp = TempName::in_dir(&self.dir);
        let mut out = tokio::fs::File::create(&tmp.0).await?;
        let (mut hash, mut buf, mut done) = (sha2::Sha256::new(), vec![0u8; 256 << 10], 0u64);
        loop {
            let n = input.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            out.write_all(&buf[..n]).await?;
            done += n as u64;
            progress(Progress { done, total });
        }
        out.sync_all().await?;
        let url = format!("{SCHEME}{}", hex::encode(hash.finalize()));
        tokio::fs::rename(&tmp.0, self.path_of(&url)?).await?;
        Ok(url)
    }

    /// Copies the blob to `path` (bounded memory).
    async fn get_to_file(
        &self,
        url: &str,
        path: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<u64, BlobError> {
        let from = self.path_of(url)?;
        let total = match tokio::fs::copy(&from, path).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(url.into()))
            }
            Err(e) => return Err(e.into()),
        };
        progress(Progress { done: total, total });
        Ok(total)
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
        // Files in and out, a buffer at a time, named by the same digest as `put`.
        let src = dir.path().join("src");
        std::fs::write(&src, vec![5u8; 600_000]).unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let tick = |p: Progress| seen.lock().unwrap().push(p.done);
        let url = s.put_file(None, &src, &tick).await.unwrap();
        assert_eq!(url, s.put(&[5u8; 600_000]).await.unwrap());
        assert_eq!(seen.lock().unwrap().last(), Some(&600_000));
        let out = dir.path().join("out");
        assert_eq!(s.get_to_file(&url, &out, &tick).await.unwrap(), 600_000);
        assert_eq!(std::fs::read(&out).unwrap(), vec![5u8; 600_000]);
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".tmp-")));
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
