//! Attachment blobs at the service (spec/content.md CONTENT-25g to CONTENT-25k): uploaded in
//! chunks of [`BLOB_CHUNK`] bytes under a group mailbox, within its byte budget, and read by a
//! random id. The service sees the mailbox id, a random id, a padded size and ciphertext.

use async_trait::async_trait;

use super::StoreError;

/// Blobs are uploaded, stored and read in chunks of this many bytes (the last one shorter),
/// so no request holds a whole blob in memory (CONTENT-25h).
pub use atmls_ds_wire::blob_api::BLOB_CHUNK;

/// A blob, without its bytes.
///
/// ```
/// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let blobs = store.blobs().expect("SQLite keeps blobs");
/// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
/// let size = BLOB_CHUNK as u64 + 5;
/// blobs.reserve(mailbox, id, size, 1 << 30, 1_000).await?;
/// let meta = blobs.meta(id).await?.expect("reserved");
/// assert_eq!(meta, BlobMeta { id, mailbox, size, complete: false, created: 1_000 });
/// assert_eq!(meta.chunks(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobMeta {
    /// Its random id.
    pub id: [u8; 32],
    /// The group mailbox it was uploaded under (and counts against).
    pub mailbox: [u8; 32],
    /// Its size in bytes, declared when the upload began.
    pub size: u64,
    /// Whether every chunk arrived and the uploader completed it (only then can it be read).
    pub complete: bool,
    /// Unix seconds when the upload began; it is pruned with the mailbox's messages.
    pub created: i64,
}

impl BlobMeta {
    /// How many chunks hold it (at least one).
    ///
    /// ```
    /// use atmls_ds::store::blobs::{BlobMeta, BLOB_CHUNK};
    /// let meta = |size| BlobMeta { id: [2; 32], mailbox: [1; 32], size, complete: false, created: 0 };
    /// assert_eq!(meta(0).chunks(), 1);
    /// assert_eq!(meta(BLOB_CHUNK as u64).chunks(), 1);
    /// assert_eq!(meta(BLOB_CHUNK as u64 + 1).chunks(), 2);
    /// ```
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(BLOB_CHUNK as u64).max(1)
    }

    /// The length chunk `index` must have, if it is one of the blob's.
    ///
    /// ```
    /// use atmls_ds::store::blobs::{BlobMeta, BLOB_CHUNK};
    /// let meta = BlobMeta { id: [2; 32], mailbox: [1; 32], size: BLOB_CHUNK as u64 + 5, complete: false, created: 0 };
    /// assert_eq!(meta.chunk_len(0), Some(BLOB_CHUNK));
    /// // The last chunk holds the rest; there is no third.
    /// assert_eq!(meta.chunk_len(1), Some(5));
    /// assert_eq!(meta.chunk_len(2), None);
    /// assert_eq!(meta.chunk_len(u64::MAX), None);
    /// ```
    pub fn chunk_len(&self, index: u64) -> Option<usize> {
        let start = index.checked_mul(BLOB_CHUNK as u64)?;
        if index >= self.chunks() {
            return None;
        }
        Some((self.size - start).min(BLOB_CHUNK as u64) as usize)
    }
}

/// The answer to a new upload.
///
/// ```
/// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let blobs = store.blobs().expect("SQLite keeps blobs");
/// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
/// let budget = 1 << 20;
/// assert_eq!(blobs.reserve(mailbox, id, budget, budget, 1_000).await?, Reserve::Reserved);
/// // The mailbox's budget is spent: the next upload is refused with what is used.
/// assert_eq!(
///     blobs.reserve(mailbox, [3; 32], 1, budget, 1_000).await?,
///     Reserve::OverBudget { used: budget }
/// );
/// // Another mailbox has its own budget.
/// assert_eq!(blobs.reserve([9; 32], [4; 32], 1, budget, 1_000).await?, Reserve::Reserved);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reserve {
    /// The blob is registered; its chunks may come.
    Reserved,
    /// The mailbox's blobs already take `used` bytes; this one would pass the budget.
    OverBudget {
        /// Bytes the mailbox's blobs take (uploads under way included).
        used: u64,
    },
}

/// Where the service keeps attachment blobs (SQLite: a file of its own; PostgreSQL: rows).
///
/// ```
/// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let blobs = store.blobs().expect("SQLite keeps blobs");
/// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
/// // Reserve, upload the chunks, complete, read.
/// blobs.reserve(mailbox, id, 5, 1 << 30, 1_000).await?;
/// assert!(blobs.write_chunk(id, 0, b"bytes".to_vec()).await?);
/// assert!(blobs.complete(id, 1).await?);
/// assert_eq!(blobs.chunk(id, 0).await?, Some(b"bytes".to_vec()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait BlobStorage: Send + Sync + 'static {
    /// Registers an upload of `size` bytes under `mailbox` with id `id`, unless the mailbox's
    /// blobs (uploads under way included) would then take more than `budget` bytes.
    ///
    /// ```
    /// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let blobs = store.blobs().expect("SQLite keeps blobs");
    /// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
    /// use atmls_ds_wire::blob_api::BLOB_BUDGET;
    /// assert_eq!(blobs.reserve(mailbox, id, 100 << 20, BLOB_BUDGET, 1_000).await?, Reserve::Reserved);
    /// // Uploads under way count against the budget too.
    /// let over = blobs.reserve(mailbox, [3; 32], BLOB_BUDGET, BLOB_BUDGET, 1_000).await?;
    /// assert_eq!(over, Reserve::OverBudget { used: 100 << 20 });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn reserve(
        &self,
        mailbox: [u8; 32],
        id: [u8; 32],
        size: u64,
        budget: u64,
        now: i64,
    ) -> Result<Reserve, StoreError>;

    /// The blob `id`, complete or not.
    ///
    /// ```
    /// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let blobs = store.blobs().expect("SQLite keeps blobs");
    /// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
    /// assert_eq!(blobs.meta(id).await?, None);
    /// blobs.reserve(mailbox, id, 5, 1 << 30, 1_000).await?;
    /// assert_eq!(blobs.meta(id).await?.map(|m| (m.size, m.complete)), Some((5, false)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn meta(&self, id: [u8; 32]) -> Result<Option<BlobMeta>, StoreError>;

    /// Stores chunk `index` of the incomplete blob `id` (again: replaced); `false` if there is
    /// no such incomplete blob.
    ///
    /// ```
    /// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let blobs = store.blobs().expect("SQLite keeps blobs");
    /// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
    /// blobs.reserve(mailbox, id, 5, 1 << 30, 1_000).await?;
    /// assert!(blobs.write_chunk(id, 0, b"first".to_vec()).await?);
    /// // Again: replaced.
    /// assert!(blobs.write_chunk(id, 0, b"again".to_vec()).await?);
    /// assert!(blobs.complete(id, 1).await?);
    /// // A complete blob is read-only, and an unknown id is refused.
    /// assert!(!blobs.write_chunk(id, 0, b"later".to_vec()).await?);
    /// assert!(!blobs.write_chunk([9; 32], 0, b"stray".to_vec()).await?);
    /// assert_eq!(blobs.chunk(id, 0).await?, Some(b"again".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn write_chunk(
        &self,
        id: [u8; 32],
        index: u64,
        data: Vec<u8>,
    ) -> Result<bool, StoreError>;

    /// The indexes of the chunks of `id` stored so far, in order.
    ///
    /// ```
    /// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let blobs = store.blobs().expect("SQLite keeps blobs");
    /// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
    /// let size = 3 * BLOB_CHUNK as u64;
    /// blobs.reserve(mailbox, id, size, 1 << 30, 1_000).await?;
    /// blobs.write_chunk(id, 2, vec![0; BLOB_CHUNK]).await?;
    /// blobs.write_chunk(id, 0, vec![0; BLOB_CHUNK]).await?;
    /// assert_eq!(blobs.have(id).await?, [0, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn have(&self, id: [u8; 32]) -> Result<Vec<u64>, StoreError>;

    /// Marks `id` complete if all its `chunks` chunks are stored; whether it is complete now.
    ///
    /// ```
    /// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let blobs = store.blobs().expect("SQLite keeps blobs");
    /// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
    /// blobs.reserve(mailbox, id, BLOB_CHUNK as u64 + 5, 1 << 30, 1_000).await?;
    /// blobs.write_chunk(id, 1, vec![9; 5]).await?;
    /// // Chunk 0 is missing.
    /// assert!(!blobs.complete(id, 2).await?);
    /// blobs.write_chunk(id, 0, vec![8; BLOB_CHUNK]).await?;
    /// assert!(blobs.complete(id, 2).await?);
    /// assert!(blobs.meta(id).await?.expect("stored").complete);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn complete(&self, id: [u8; 32], chunks: u64) -> Result<bool, StoreError>;

    /// Chunk `index` of `id`, if stored.
    ///
    /// ```
    /// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let blobs = store.blobs().expect("SQLite keeps blobs");
    /// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
    /// blobs.reserve(mailbox, id, 5, 1 << 30, 1_000).await?;
    /// assert_eq!(blobs.chunk(id, 0).await?, None);
    /// blobs.write_chunk(id, 0, b"bytes".to_vec()).await?;
    /// assert_eq!(blobs.chunk(id, 0).await?, Some(b"bytes".to_vec()));
    /// assert_eq!(blobs.chunk(id, 1).await?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn chunk(&self, id: [u8; 32], index: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes `id` and its chunks; whether it was there.
    ///
    /// ```
    /// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let blobs = store.blobs().expect("SQLite keeps blobs");
    /// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
    /// blobs.reserve(mailbox, id, 5, 5, 1_000).await?;
    /// assert!(blobs.delete(id).await?);
    /// assert!(!blobs.delete(id).await?);
    /// assert_eq!(blobs.meta(id).await?, None);
    /// // Its bytes no longer count against the budget.
    /// assert_eq!(blobs.reserve(mailbox, [3; 32], 5, 5, 1_000).await?, Reserve::Reserved);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn delete(&self, id: [u8; 32]) -> Result<bool, StoreError>;

    /// Deletes the blobs whose upload began before `created_before` (the message retention,
    /// CONTENT-25j), and the uploads never completed that began before `stale_before` (an
    /// uploader that gave up must not hold the mailbox's budget for the whole retention); how
    /// many went.
    ///
    /// ```
    /// # use atmls_ds::store::{blobs::{BlobMeta, Reserve, BLOB_CHUNK}, SqliteStore, Store as _};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let blobs = store.blobs().expect("SQLite keeps blobs");
    /// # let (mailbox, id) = ([1u8; 32], [2u8; 32]);
    /// blobs.reserve(mailbox, id, 5, 1 << 30, 100).await?;
    /// blobs.write_chunk(id, 0, b"bytes".to_vec()).await?;
    /// blobs.complete(id, 1).await?;
    /// blobs.reserve(mailbox, [3; 32], 5, 1 << 30, 100).await?;
    /// // The upload never completed goes once stale; the complete blob with the retention.
    /// assert_eq!(blobs.prune(100, 101).await?, 1);
    /// assert!(blobs.meta(id).await?.is_some());
    /// assert_eq!(blobs.prune(101, 0).await?, 1);
    /// assert_eq!(blobs.meta(id).await?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn prune(&self, created_before: i64, stale_before: i64) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_25h_chunk_lengths() {
        let m = |size| BlobMeta {
            id: [0; 32],
            mailbox: [0; 32],
            size,
            complete: false,
            created: 0,
        };
        assert_eq!(m(0).chunks(), 1);
        assert_eq!(m(0).chunk_len(0), Some(0));
        let b = BLOB_CHUNK as u64;
        assert_eq!(m(b).chunks(), 1);
        assert_eq!(m(b + 1).chunks(), 2);
        assert_eq!(m(b + 1).chunk_len(1), Some(1));
        assert_eq!(m(b + 1).chunk_len(2), None);
        assert_eq!(m(b).chunk_len(u64::MAX), None);
    }
}
