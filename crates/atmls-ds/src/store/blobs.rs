//! Attachment blobs at the service (spec/content.md CONTENT-25g to CONTENT-25k): uploaded in
//! chunks of [`BLOB_CHUNK`] bytes under a group mailbox, within its byte budget, and read by a
//! random id. The service sees the mailbox id, a random id, a padded size and ciphertext.

use async_trait::async_trait;

use super::StoreError;

/// Blobs are uploaded, stored and read in chunks of this many bytes (the last one shorter),
/// so no request holds a whole blob in memory (CONTENT-25h).
pub use atmls_ds_wire::blob_api::BLOB_CHUNK;

/// A blob, without its bytes.
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
    pub fn chunks(&self) -> u64 {
        self.size.div_ceil(BLOB_CHUNK as u64).max(1)
    }

    /// The length chunk `index` must have, if it is one of the blob's.
    pub fn chunk_len(&self, index: u64) -> Option<usize> {
        let start = index.checked_mul(BLOB_CHUNK as u64)?;
        if index >= self.chunks() {
            return None;
        }
        Some((self.size - start).min(BLOB_CHUNK as u64) as usize)
    }
}

/// The answer to a new upload.
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
#[async_trait]
pub trait BlobStorage: Send + Sync + 'static {
    /// Registers an upload of `size` bytes under `mailbox` with id `id`, unless the mailbox's
    /// blobs (uploads under way included) would then take more than `budget` bytes.
    async fn reserve(
        &self,
        mailbox: [u8; 32],
        id: [u8; 32],
        size: u64,
        budget: u64,
        now: i64,
    ) -> Result<Reserve, StoreError>;

    /// The blob `id`, complete or not.
    async fn meta(&self, id: [u8; 32]) -> Result<Option<BlobMeta>, StoreError>;

    /// Stores chunk `index` of the incomplete blob `id` (again: replaced); `false` if there is
    /// no such incomplete blob.
    async fn write_chunk(
        &self,
        id: [u8; 32],
        index: u64,
        data: Vec<u8>,
    ) -> Result<bool, StoreError>;

    /// The indexes of the chunks of `id` stored so far, in order.
    async fn have(&self, id: [u8; 32]) -> Result<Vec<u64>, StoreError>;

    /// Marks `id` complete if all its `chunks` chunks are stored; whether it is complete now.
    async fn complete(&self, id: [u8; 32], chunks: u64) -> Result<bool, StoreError>;

    /// Chunk `index` of `id`, if stored.
    async fn chunk(&self, id: [u8; 32], index: u64) -> Result<Option<Vec<u8>>, StoreError>;

    /// Deletes `id` and its chunks; whether it was there.
    async fn delete(&self, id: [u8; 32]) -> Result<bool, StoreError>;

    /// Deletes the blobs whose upload began before `created_before` (the message retention,
    /// CONTENT-25j), and the uploads never completed that began before `stale_before` (an
    /// uploader that gave up must not hold the mailbox's budget for the whole retention); how
    /// many went.
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
