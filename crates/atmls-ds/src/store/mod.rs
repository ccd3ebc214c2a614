//! Storage of the delivery service: a trait with a SQLite implementation (default) and a
//! PostgreSQL one (feature `postgres`). Both enforce the ordering rules inside a database
//! transaction (DS-4..DS-7, DS-14), so several processes on one PostgreSQL agree.

pub mod blobs;
mod sqlite;
mod sqlite_blobs;
mod sqlite_trees;

#[cfg(feature = "postgres")]
mod pg_blobs;
#[cfg(feature = "postgres")]
mod pg_trees;
#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;

use atmls_ds_wire::Kind;

/// A notification that a mailbox has a new item. Welcome mailboxes are told apart so that
/// only their owner's proven subscription hears of them (spec/ds.md DS-W-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    /// The mailbox.
    pub mailbox: [u8; 32],
    /// Whether it is a Welcome mailbox.
    pub welcome: bool,
}

/// A write request, validated by the HTTP layer (capability, sizes, formats).
#[derive(Clone, Debug)]
pub struct Post {
    /// Commit, message or Welcome.
    pub kind: Kind,
    /// Mailbox id.
    pub mailbox: [u8; 32],
    /// Epoch tag (zero for Welcomes).
    pub epoch: [u8; 32],
    /// The poster's cursor: the last position it has processed (zero for Welcomes, and for
    /// clients that do not say). Commits for `epoch` at or before it do not refuse the post,
    /// and the post marks them superseded (DS-4, DS-14).
    pub after: u64,
    /// Idempotency key.
    pub idem: [u8; 16],
    /// Opaque payload.
    pub payload: Vec<u8>,
}

/// A stored item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredItem {
    /// Position.
    pub seq: u64,
    /// Kind.
    pub kind: Kind,
    /// Payload.
    pub payload: Vec<u8>,
}

/// What the store did with a post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Stored at this position, or already stored there under the same idempotency key.
    Accepted(u64),
    /// A commit for this epoch is stored after the poster's cursor: the first such.
    Rejected(StoredItem),
    /// A message for an epoch with a commit stored after the poster's cursor.
    Stale,
    /// A group post to a Welcome mailbox, or a Welcome to a group mailbox.
    WrongKind,
    /// The idempotency key was already used for a different request.
    IdempotencyConflict,
}

/// Whether this post created a new item (for notifications).
impl Outcome {
    /// The position, if the post is (now) stored.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Outcome::Accepted(s) => Some(*s),
            _ => None,
        }
    }
}

/// A page read from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Items after the cursor, and whether more follow.
    Page(Vec<StoredItem>, bool),
    /// The cursor is past the end of the mailbox.
    CursorAhead,
}

/// What the store did with a tree blob (LG-T-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreePut {
    /// Stored (now, or before with the same bytes) until this time, unix seconds.
    Stored(i64),
    /// Other bytes are stored under this locator; nothing was changed.
    Conflict,
}

/// Errors of a store: all retryable from the client's point of view.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Db(String),
    /// The store is shutting down.
    #[error("store closed")]
    Closed,
}

impl StoreError {
    /// Whether retrying can help (always: nothing was stored).
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// Where atmls-ds keeps mailboxes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies one post atomically and durably (DS-4, DS-5, DS-6, DS-14).
    async fn post(&self, post: Post) -> Result<(Outcome, bool), StoreError>;

    /// Items with `seq > after`, at most `limit` items or about `max_bytes` bytes (DS-7).
    async fn fetch(
        &self,
        mailbox: [u8; 32],
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Fetched, StoreError>;

    /// Deletes messages, Welcomes and superseded commits created before `messages_before`, and
    /// whole mailboxes not written since `idle_before` (unix seconds); returns how many items
    /// went (DS-10, DS-14).
    async fn prune(&self, messages_before: i64, idle_before: i64) -> Result<u64, StoreError>;

    /// The live tree blob under `locator` at time `now`, if any (LG-T-4): its digest, size
    /// and where its chunks are, not its bytes (DS-15).
    async fn tree(&self, locator: [u8; 32], now: i64) -> Result<Option<TreeMeta>, StoreError>;

    /// Chunk `index` (from 0, of `tree.chunks`) of a tree found by [`Store::tree`]; an error
    /// if it went since (pruned, or replaced after expiring).
    async fn tree_chunk(&self, tree: &TreeMeta, index: u64) -> Result<Vec<u8>, StoreError>;

    /// Starts storing a tree blob: chunks are written as they arrive and nothing is visible
    /// until [`TreeUpload::finish`]; an upload dropped unfinished leaves nothing behind.
    async fn begin_tree(&self, now: i64) -> Result<Box<dyn TreeUpload>, StoreError>;

    /// Deletes tree blobs expired at `now`, and what uploads that never finished left behind;
    /// returns how many trees went (LG-T-4).
    async fn prune_trees(&self, now: i64) -> Result<u64, StoreError>;

    /// Stores a whole blob (tests and tools; the service streams, [`Store::begin_tree`]):
    /// under `locator` until `expires`, unless a live blob is already there, and then the
    /// same bytes answer `Stored` with the original expiry, other bytes `Conflict` (LG-T-3).
    async fn put_tree(
        &self,
        locator: [u8; 32],
        blob: Vec<u8>,
        now: i64,
        expires: i64,
    ) -> Result<TreePut, StoreError> {
        let digest = tree_digest(&blob);
        if let Some(t) = self.tree(locator, now).await? {
            return Ok(t.answer(&digest));
        }
        let mut up = self.begin_tree(now).await?;
        for chunk in blob.chunks(TREE_CHUNK) {
            up.write(chunk.to_vec()).await?;
        }
        up.finish(locator, digest, now, expires).await
    }

    /// Where this store keeps attachment blobs (CONTENT-25h), if it keeps them; the service
    /// answers the blob routes `501 not_implemented` without.
    fn blobs(&self) -> Option<std::sync::Arc<dyn blobs::BlobStorage>> {
        None
    }

    /// The whole live blob under `locator` at time `now`, if any (tests and tools).
    async fn get_tree(&self, locator: [u8; 32], now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(t) = self.tree(locator, now).await? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(usize::try_from(t.size).unwrap_or(0));
        for i in 0..t.chunks {
            out.extend(self.tree_chunk(&t, i).await?);
        }
        Ok(Some(out))
    }
}

/// Tree blobs are stored, written and read in chunks of this many bytes (the last one
/// shorter), so that no request holds a whole blob in memory (DS-15).
pub const TREE_CHUNK: usize = 256 << 10;

/// Uploads that never finished are deleted by pruning once they are this old (seconds): an
/// upload that takes longer than the body timeout is refused long before.
pub(crate) const STALE_UPLOAD_SECS: i64 = 24 * 3600;

/// A stored tree blob, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeMeta {
    /// Its locator.
    pub locator: [u8; 32],
    /// SHA-256 of the blob.
    pub digest: Vec<u8>,
    /// Its length in bytes.
    pub size: u64,
    /// How many chunks hold it.
    pub chunks: u64,
    /// Unix seconds after which it is gone.
    pub expires: i64,
    /// The upload that holds its chunks (`None`: a row of an earlier version holding the
    /// whole blob, read in chunks all the same).
    pub(crate) upload: Option<i64>,
}

impl TreeMeta {
    /// The answer to a repeated upload with `digest`: the same bytes are a success with the
    /// original expiry, other bytes a conflict (LG-T-3).
    pub fn answer(&self, digest: &[u8]) -> TreePut {
        if self.digest == digest {
            TreePut::Stored(self.expires)
        } else {
            TreePut::Conflict
        }
    }
}

/// A tree blob being stored (DS-15): chunks in order, then `finish`. Dropped unfinished (the
/// client went away, the blob is over the limit, the body timed out), it is discarded.
#[async_trait]
pub trait TreeUpload: Send {
    /// Appends the next chunk.
    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), StoreError>;

    /// Publishes the chunks written under `locator` until `expires`, unless a live blob is
    /// there: then they are discarded and the answer is that of [`TreeMeta::answer`]. An
    /// expired blob not yet pruned counts as absent and is replaced.
    async fn finish(
        self: Box<Self>,
        locator: [u8; 32],
        digest: Vec<u8>,
        now: i64,
        expires: i64,
    ) -> Result<TreePut, StoreError>;
}

/// The digest a store keeps beside a tree blob to recognise a repeated upload cheaply.
pub(crate) fn tree_digest(blob: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(blob).to_vec()
}

pub(crate) fn kind_to_i16(k: Kind) -> i16 {
    match k {
        Kind::Commit => 1,
        Kind::Message => 2,
        Kind::Welcome => 3,
    }
}

pub(crate) fn kind_from_i16(v: i16) -> Result<Kind, StoreError> {
    Ok(match v {
        1 => Kind::Commit,
        2 => Kind::Message,
        3 => Kind::Welcome,
        _ => return Err(StoreError::Db(format!("bad kind {v}"))),
    })
}

/// Mailbox kinds.
pub(crate) const MAILBOX_GROUP: i16 = 1;
pub(crate) const MAILBOX_WELCOME: i16 = 2;

pub(crate) fn mailbox_kind_of(k: Kind) -> i16 {
    if k == Kind::Welcome {
        MAILBOX_WELCOME
    } else {
        MAILBOX_GROUP
    }
}

/// A cursor as a database integer (the HTTP layer refuses cursors above 2^63-1).
pub(crate) fn cursor_i64(after: u64) -> i64 {
    i64::try_from(after).unwrap_or(i64::MAX)
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
