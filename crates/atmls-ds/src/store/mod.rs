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
///
/// ```
/// use atmls_ds::store::Note;
/// let (hub, mut rx) = tokio::sync::broadcast::channel(16);
/// hub.send(Note { mailbox: [1; 32], welcome: false })?;
/// let note = rx.try_recv()?;
/// // A group mailbox's note may go to any subscriber of it; a Welcome mailbox's only to its owner.
/// assert_eq!(note, Note { mailbox: [1; 32], welcome: false });
/// assert!(!note.welcome);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Note {
    /// The mailbox.
    pub mailbox: [u8; 32],
    /// Whether it is a Welcome mailbox.
    pub welcome: bool,
}

/// A write request, validated by the HTTP layer (capability, sizes, formats).
///
/// ```
/// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
/// # use atmls_ds_wire::Kind;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let post = |kind, idem: u8, payload: &[u8]| Post {
/// #     kind,
/// #     mailbox: [1; 32],
/// #     epoch: [0; 32],
/// #     after: 0,
/// #     idem: [idem; 16],
/// #     payload: payload.to_vec(),
/// # };
/// let commit = Post {
///     kind: Kind::Commit,
///     mailbox: [1; 32],
///     epoch: [0; 32],
///     after: 0,
///     idem: [1; 16],
///     payload: b"commit".to_vec(),
/// };
/// assert_eq!(store.post(commit.clone()).await?, (Outcome::Accepted(1), true));
/// // The same post again (a retry) is the same item, not a new one (DS-5).
/// assert_eq!(store.post(commit).await?, (Outcome::Accepted(1), false));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
///
/// ```
/// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
/// # use atmls_ds_wire::Kind;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let post = |kind, idem: u8, payload: &[u8]| Post {
/// #     kind,
/// #     mailbox: [1; 32],
/// #     epoch: [0; 32],
/// #     after: 0,
/// #     idem: [idem; 16],
/// #     payload: payload.to_vec(),
/// # };
/// store.post(post(Kind::Message, 1, b"hello")).await?;
/// let Fetched::Page(items, _) = store.fetch([1; 32], 0, 10, 1 << 20).await? else {
///     panic!("a page")
/// };
/// assert_eq!(items, [StoredItem { seq: 1, kind: Kind::Message, payload: b"hello".to_vec() }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
///
/// ```
/// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
/// # use atmls_ds_wire::Kind;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let post = |kind, idem: u8, payload: &[u8]| Post {
/// #     kind,
/// #     mailbox: [1; 32],
/// #     epoch: [0; 32],
/// #     after: 0,
/// #     idem: [idem; 16],
/// #     payload: payload.to_vec(),
/// # };
/// assert_eq!(store.post(post(Kind::Commit, 1, b"c1")).await?.0, Outcome::Accepted(1));
/// // Another commit for the same epoch loses to the first, which the answer carries (DS-4).
/// let Outcome::Rejected(winner) = store.post(post(Kind::Commit, 2, b"c2")).await?.0 else {
///     panic!("rejected")
/// };
/// assert_eq!(winner.payload, b"c1");
/// // So does a message for that epoch, now committed away.
/// assert_eq!(store.post(post(Kind::Message, 3, b"m")).await?.0, Outcome::Stale);
/// // A Welcome to a group mailbox, and a key reused for other bytes.
/// assert_eq!(store.post(post(Kind::Welcome, 4, b"w")).await?.0, Outcome::WrongKind);
/// assert_eq!(store.post(post(Kind::Commit, 1, b"other")).await?.0, Outcome::IdempotencyConflict);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// let (accepted, _) = store.post(post(Kind::Commit, 1, b"c1")).await?;
    /// assert_eq!(accepted.seq(), Some(1));
    /// let (rejected, new) = store.post(post(Kind::Commit, 2, b"c2")).await?;
    /// assert_eq!((rejected.seq(), new), (None, false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn seq(&self) -> Option<u64> {
        match self {
            Outcome::Accepted(s) => Some(*s),
            _ => None,
        }
    }
}

/// A page read from the store.
///
/// ```
/// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
/// # use atmls_ds_wire::Kind;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let post = |kind, idem: u8, payload: &[u8]| Post {
/// #     kind,
/// #     mailbox: [1; 32],
/// #     epoch: [0; 32],
/// #     after: 0,
/// #     idem: [idem; 16],
/// #     payload: payload.to_vec(),
/// # };
/// store.post(post(Kind::Message, 1, b"a")).await?;
/// store.post(post(Kind::Message, 2, b"b")).await?;
/// // One item per page: the first, and more follow.
/// let Fetched::Page(items, more) = store.fetch([1; 32], 0, 1, 1 << 20).await? else {
///     panic!("a page")
/// };
/// assert_eq!((items[0].seq, more), (1, true));
/// // A cursor past the end of the mailbox.
/// assert_eq!(store.fetch([1; 32], 3, 10, 1 << 20).await?, Fetched::CursorAhead);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// Items after the cursor, and whether more follow.
    Page(Vec<StoredItem>, bool),
    /// The cursor is past the end of the mailbox.
    CursorAhead,
}

/// What the store did with a tree blob (LG-T-3).
///
/// ```
/// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
/// # use atmls_ds_wire::Kind;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let post = |kind, idem: u8, payload: &[u8]| Post {
/// #     kind,
/// #     mailbox: [1; 32],
/// #     epoch: [0; 32],
/// #     after: 0,
/// #     idem: [idem; 16],
/// #     payload: payload.to_vec(),
/// # };
/// use atmls_ds::store::TreePut;
/// let (locator, now) = ([7; 32], 1_000);
/// assert_eq!(store.put_tree(locator, b"tree".to_vec(), now, now + 60).await?, TreePut::Stored(now + 60));
/// // Other bytes under a live locator change nothing.
/// assert_eq!(store.put_tree(locator, b"evil".to_vec(), now, now + 60).await?, TreePut::Conflict);
/// assert_eq!(store.get_tree(locator, now).await?, Some(b"tree".to_vec()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TreePut {
    /// Stored (now, or before with the same bytes) until this time, unix seconds.
    Stored(i64),
    /// Other bytes are stored under this locator; nothing was changed.
    Conflict,
}

/// Errors of a store: all retryable from the client's point of view.
///
/// ```
/// use atmls_ds::store::StoreError;
/// let e = StoreError::Db("disk I/O error".into());
/// assert_eq!(e.to_string(), "database: disk I/O error");
/// assert_eq!(StoreError::Closed.to_string(), "store closed");
/// assert!(e.is_retryable());
/// ```
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
    ///
    /// ```
    /// use atmls_ds::store::StoreError;
    /// // Nothing was stored: the client retries with the same idempotency key.
    /// assert!(StoreError::Closed.is_retryable());
    /// assert!(StoreError::Db("locked".into()).is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// Where atmls-ds keeps mailboxes.
///
/// ```
/// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
/// # use atmls_ds_wire::Kind;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let post = |kind, idem: u8, payload: &[u8]| Post {
/// #     kind,
/// #     mailbox: [1; 32],
/// #     epoch: [0; 32],
/// #     after: 0,
/// #     idem: [idem; 16],
/// #     payload: payload.to_vec(),
/// # };
/// use std::sync::Arc;
/// use atmls_ds::store::Store;
/// // The service holds its store as a trait object.
/// let store: Arc<dyn Store> = Arc::new(store);
/// assert_eq!(store.post(post(Kind::Commit, 1, b"c")).await?.0, Outcome::Accepted(1));
/// // A message of the next epoch.
/// let message = Post { epoch: [9; 32], ..post(Kind::Message, 2, b"m") };
/// assert_eq!(store.post(message).await?.0, Outcome::Accepted(2));
/// let Fetched::Page(items, false) = store.fetch([1; 32], 1, 10, 1 << 20).await? else {
///     panic!("a last page")
/// };
/// assert_eq!(items[0].payload, b"m");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies one post atomically and durably (DS-4, DS-5, DS-6, DS-14).
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// // Posting after the commit (the poster's cursor at 1) is no longer refused (DS-4).
    /// assert_eq!(store.post(post(Kind::Commit, 1, b"c1")).await?, (Outcome::Accepted(1), true));
    /// let next = Post { after: 1, ..post(Kind::Commit, 2, b"c2") };
    /// assert_eq!(store.post(next).await?, (Outcome::Accepted(2), true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn post(&self, post: Post) -> Result<(Outcome, bool), StoreError>;

    /// Items with `seq > after`, at most `limit` items or about `max_bytes` bytes (DS-7).
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// for i in 1..=3u8 {
    ///     store.post(post(Kind::Message, i, &[i; 10])).await?;
    /// }
    /// // Items after cursor 1, at most one.
    /// let page = store.fetch([1; 32], 1, 1, 1 << 20).await?;
    /// assert_eq!(page, Fetched::Page(vec![StoredItem { seq: 2, kind: Kind::Message, payload: vec![2; 10] }], true));
    /// // An unknown mailbox is empty.
    /// assert_eq!(store.fetch([9; 32], 0, 10, 1 << 20).await?, Fetched::Page(vec![], false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// store.post(post(Kind::Commit, 1, b"c")).await?;
    /// // A message of the next epoch.
    /// let message = Post { epoch: [9; 32], ..post(Kind::Message, 2, b"m") };
    /// assert_eq!(store.post(message).await?.0, Outcome::Accepted(2));
    /// // Messages created before the end of time go; the live commit stays.
    /// assert_eq!(store.prune(i64::MAX, 0).await?, 1);
    /// let Fetched::Page(items, _) = store.fetch([1; 32], 0, 10, 1 << 20).await? else {
    ///     panic!("a page")
    /// };
    /// assert_eq!(items.len(), 1);
    /// assert_eq!(items[0].kind, Kind::Commit);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn prune(&self, messages_before: i64, idle_before: i64) -> Result<u64, StoreError>;

    /// The live tree blob under `locator` at time `now`, if any (LG-T-4): its digest, size
    /// and where its chunks are, not its bytes (DS-15).
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// let blob = vec![5u8; 300_000];
    /// store.put_tree([7; 32], blob, 1_000, 2_000).await?;
    /// let meta = store.tree([7; 32], 1_500).await?.expect("live");
    /// assert_eq!((meta.size, meta.chunks, meta.expires), (300_000, 2, 2_000));
    /// // Expired: absent.
    /// assert_eq!(store.tree([7; 32], 2_001).await?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn tree(&self, locator: [u8; 32], now: i64) -> Result<Option<TreeMeta>, StoreError>;

    /// Chunk `index` (from 0, of `tree.chunks`) of a tree found by [`Store::tree`]; an error
    /// if it went since (pruned, or replaced after expiring).
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// use atmls_ds::store::TREE_CHUNK;
    /// store.put_tree([7; 32], vec![5u8; TREE_CHUNK + 10], 1_000, 2_000).await?;
    /// let meta = store.tree([7; 32], 1_000).await?.expect("live");
    /// assert_eq!(store.tree_chunk(&meta, 0).await?.len(), TREE_CHUNK);
    /// assert_eq!(store.tree_chunk(&meta, 1).await?, vec![5u8; 10]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn tree_chunk(&self, tree: &TreeMeta, index: u64) -> Result<Vec<u8>, StoreError>;

    /// Starts storing a tree blob: chunks are written as they arrive and nothing is visible
    /// until [`TreeUpload::finish`]; an upload dropped unfinished leaves nothing behind.
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// use atmls_ds::store::TreePut;
    /// use sha2::Digest as _;
    /// let blob = b"ratchet tree".to_vec();
    /// let mut up = store.begin_tree(1_000).await?;
    /// up.write(blob[..7].to_vec()).await?;
    /// up.write(blob[7..].to_vec()).await?;
    /// let digest = sha2::Sha256::digest(&blob).to_vec();
    /// assert_eq!(up.finish([7; 32], digest, 1_000, 2_000).await?, TreePut::Stored(2_000));
    /// assert_eq!(store.get_tree([7; 32], 1_000).await?, Some(blob));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn begin_tree(&self, now: i64) -> Result<Box<dyn TreeUpload>, StoreError>;

    /// Deletes tree blobs expired at `now`, and what uploads that never finished left behind;
    /// returns how many trees went (LG-T-4).
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// store.put_tree([7; 32], b"tree".to_vec(), 1_000, 2_000).await?;
    /// assert_eq!(store.prune_trees(1_999).await?, 0);
    /// assert_eq!(store.prune_trees(2_001).await?, 1);
    /// assert_eq!(store.get_tree([7; 32], 1_500).await?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn prune_trees(&self, now: i64) -> Result<u64, StoreError>;

    /// Stores a whole blob (tests and tools; the service streams, [`Store::begin_tree`]):
    /// under `locator` until `expires`, unless a live blob is already there, and then the
    /// same bytes answer `Stored` with the original expiry, other bytes `Conflict` (LG-T-3).
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// use atmls_ds::store::TreePut;
    /// assert_eq!(store.put_tree([7; 32], b"tree".to_vec(), 1_000, 2_000).await?, TreePut::Stored(2_000));
    /// // The same bytes again keep the original expiry.
    /// assert_eq!(store.put_tree([7; 32], b"tree".to_vec(), 1_500, 9_000).await?, TreePut::Stored(2_000));
    /// assert_eq!(store.put_tree([7; 32], b"tre3".to_vec(), 1_500, 9_000).await?, TreePut::Conflict);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// use atmls_ds::store::blobs::Reserve;
    /// // SQLite keeps attachment blobs in a file of its own.
    /// let blobs = store.blobs().expect("SQLite keeps blobs");
    /// assert_eq!(blobs.reserve([1; 32], [2; 32], 1 << 20, 1 << 30, 1_000).await?, Reserve::Reserved);
    /// assert!(dir.path().join("ds.blobs.db").exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    fn blobs(&self) -> Option<std::sync::Arc<dyn blobs::BlobStorage>> {
        None
    }

    /// The whole live blob under `locator` at time `now`, if any (tests and tools).
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// let blob = vec![3u8; 600_000];
    /// store.put_tree([7; 32], blob.clone(), 1_000, 2_000).await?;
    /// assert_eq!(store.get_tree([7; 32], 1_000).await?, Some(blob));
    /// assert_eq!(store.get_tree([8; 32], 1_000).await?, None);
    /// assert_eq!(store.get_tree([7; 32], 2_001).await?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
///
/// ```
/// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
/// # use atmls_ds_wire::Kind;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let post = |kind, idem: u8, payload: &[u8]| Post {
/// #     kind,
/// #     mailbox: [1; 32],
/// #     epoch: [0; 32],
/// #     after: 0,
/// #     idem: [idem; 16],
/// #     payload: payload.to_vec(),
/// # };
/// use sha2::Digest as _;
/// store.put_tree([7; 32], b"tree".to_vec(), 1_000, 2_000).await?;
/// let meta = store.tree([7; 32], 1_000).await?.expect("live");
/// assert_eq!(meta.locator, [7; 32]);
/// assert_eq!(meta.digest, sha2::Sha256::digest(b"tree").to_vec());
/// assert_eq!((meta.size, meta.chunks, meta.expires), (4, 1, 2_000));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// use atmls_ds::store::TreePut;
    /// use sha2::Digest as _;
    /// store.put_tree([7; 32], b"tree".to_vec(), 1_000, 2_000).await?;
    /// let meta = store.tree([7; 32], 1_000).await?.expect("live");
    /// assert_eq!(meta.answer(&sha2::Sha256::digest(b"tree")), TreePut::Stored(2_000));
    /// assert_eq!(meta.answer(&sha2::Sha256::digest(b"other")), TreePut::Conflict);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
///
/// ```
/// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
/// # use atmls_ds_wire::Kind;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir()?;
/// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
/// # let post = |kind, idem: u8, payload: &[u8]| Post {
/// #     kind,
/// #     mailbox: [1; 32],
/// #     epoch: [0; 32],
/// #     after: 0,
/// #     idem: [idem; 16],
/// #     payload: payload.to_vec(),
/// # };
/// // An upload dropped unfinished leaves nothing behind.
/// let mut up = store.begin_tree(1_000).await?;
/// up.write(b"half a tree".to_vec()).await?;
/// drop(up);
/// assert_eq!(store.get_tree([7; 32], 1_000).await?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait TreeUpload: Send {
    /// Appends the next chunk.
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// use atmls_ds::store::{TreePut, TREE_CHUNK};
    /// use sha2::Digest as _;
    /// let blob = vec![1u8; 2 * TREE_CHUNK];
    /// let mut up = store.begin_tree(1_000).await?;
    /// for chunk in blob.chunks(TREE_CHUNK) {
    ///     up.write(chunk.to_vec()).await?;
    /// }
    /// let digest = sha2::Sha256::digest(&blob).to_vec();
    /// assert_eq!(up.finish([7; 32], digest, 1_000, 2_000).await?, TreePut::Stored(2_000));
    /// assert_eq!(store.tree([7; 32], 1_000).await?.map(|t| t.chunks), Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), StoreError>;

    /// Publishes the chunks written under `locator` until `expires`, unless a live blob is
    /// there: then they are discarded and the answer is that of [`TreeMeta::answer`]. An
    /// expired blob not yet pruned counts as absent and is replaced.
    ///
    /// ```
    /// # use atmls_ds::store::{Fetched, Outcome, Post, SqliteStore, Store as _, StoredItem};
    /// # use atmls_ds_wire::Kind;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = SqliteStore::open(dir.path().join("ds.db"))?;
    /// # let post = |kind, idem: u8, payload: &[u8]| Post {
    /// #     kind,
    /// #     mailbox: [1; 32],
    /// #     epoch: [0; 32],
    /// #     after: 0,
    /// #     idem: [idem; 16],
    /// #     payload: payload.to_vec(),
    /// # };
    /// use atmls_ds::store::TreePut;
    /// use sha2::Digest as _;
    /// store.put_tree([7; 32], b"first".to_vec(), 1_000, 2_000).await?;
    /// // Another upload to the same live locator is discarded.
    /// let mut up = store.begin_tree(1_000).await?;
    /// up.write(b"second".to_vec()).await?;
    /// let digest = sha2::Sha256::digest(b"second").to_vec();
    /// assert_eq!(up.finish([7; 32], digest, 1_000, 2_000).await?, TreePut::Conflict);
    /// assert_eq!(store.get_tree([7; 32], 1_000).await?, Some(b"first".to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
