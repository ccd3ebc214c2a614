//! SQLite storage (WAL): one writer thread applies posts in batches, one transaction per batch,
//! and answers only after the commit; reads use their own connections.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::sqlite_trees::TreeDb;
use super::{
    cursor_i64, kind_from_i16, kind_to_i16, mailbox_kind_of, unix_now, Fetched, Outcome, Post,
    Store, StoreError, StoredItem, TreeMeta, TreeUpload,
};
use atmls_ds_wire::Kind;

/// Versioned migrations, applied in order, each once (DS-11).
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE mailboxes (
        id BLOB PRIMARY KEY,
        kind INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        touched INTEGER NOT NULL
    );
    CREATE TABLE items (
        mailbox BLOB NOT NULL,
        seq INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        epoch BLOB NOT NULL,
        idem BLOB NOT NULL,
        payload BLOB NOT NULL,
        created INTEGER NOT NULL,
        PRIMARY KEY (mailbox, seq),
        UNIQUE (mailbox, idem)
    );
    CREATE UNIQUE INDEX items_one_commit_per_epoch ON items (mailbox, epoch) WHERE kind = 1;
    CREATE INDEX items_created ON items (created) WHERE kind <> 1;",
    ),
    // Ratchet-tree blobs of Welcomes (LG-T-3): opaque, under a random locator, until expiry.
    (
        2,
        "CREATE TABLE trees (
        locator BLOB PRIMARY KEY,
        digest BLOB NOT NULL,
        blob BLOB NOT NULL,
        expires INTEGER NOT NULL
    );
    CREATE INDEX trees_expires ON trees (expires);",
    ),
    // Several commits per epoch tag (DS-4): the first one after the poster's cursor refuses a
    // post, so the lookup is by (mailbox, epoch, seq); commits found invalid by a later
    // poster are marked superseded and expire like messages (DS-14).
    (
        3,
        "DROP INDEX items_one_commit_per_epoch;
    ALTER TABLE items ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX items_commits_by_epoch ON items (mailbox, epoch, seq) WHERE kind = 1;
    CREATE INDEX items_superseded ON items (created) WHERE kind = 1 AND superseded = 1;",
    ),
];

/// Most posts applied in one transaction.
const BATCH: usize = 256;

/// Frames (pages) of write-ahead log above which the checkpointer truncates it: about 64 MiB.
/// A TRUNCATE holds the writer for its syncs (tens of ms on a virtual disk): at 16 MiB it came
/// every few hundred ms under load and made the p99 of posts 40–60 ms; at 64 MiB it is about
/// 10 ms (bench ds_load).
const WAL_TRUNCATE_FRAMES: i64 = 16_384;

type Job = (Post, oneshot::Sender<Result<(Outcome, bool), StoreError>>);

/// The SQLite store.
pub struct SqliteStore {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Tree blobs, in a file of their own (DS-15).
    trees: TreeDb,
    blobs: super::sqlite_blobs::SqliteBlobs,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let c = Connection::open(path).map_err(db)?;
    // WAL: readers never block the writer. synchronous=NORMAL: a committed transaction
    // survives a crash of the process (SIGKILL); FULL would also survive power loss (DS-5).
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
         PRAGMA foreign_keys = ON;",
    )
    .map_err(db)?;
    Ok(c)
}

fn migrate(c: &mut Connection) -> Result<(), StoreError> {
    migrate_to(c, i64::MAX)
}

/// Applies the migrations up to version `upto` (tests start from an older schema).
fn migrate_to(c: &mut Connection, upto: i64) -> Result<(), StoreError> {
    let t = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    t.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)",
    )
    .map_err(db)?;
    let have: i64 = t
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > have && *v <= upto) {
        t.execute_batch(sql).map_err(db)?;
        t.execute(
            "INSERT INTO schema_migrations (version, applied) VALUES (?1, ?2)",
            params![v, unix_now()],
        )
        .map_err(db)?;
    }
    t.commit().map_err(db)
}

/// Applies one post inside the writer's open transaction.
fn apply(t: &rusqlite::Transaction<'_>, p: &Post, now: i64) -> Result<(Outcome, bool), StoreError> {
    let mb = p.mailbox.as_slice();
    let after = cursor_i64(p.after);
    let row: Option<(i16, i64)> = t
        .prepare_cached("SELECT kind, last_seq FROM mailboxes WHERE id = ?1")
        .map_err(db)?
        .query_row([mb], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db)?;
    let want = mailbox_kind_of(p.kind);
    match row {
        Some((k, _)) if k != want => return Ok((Outcome::WrongKind, false)),
        _ => {}
    }
    if row.is_some() {
        let seen: Option<(i64, i16, Vec<u8>, Vec<u8>)> = t
            .prepare_cached(
                "SELECT seq, kind, epoch, payload FROM items WHERE mailbox = ?1 AND idem = ?2",
            )
            .map_err(db)?
            .query_row(params![mb, p.idem.as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(db)?;
        if let Some((seq, kind, epoch, payload)) = seen {
            let same = kind == kind_to_i16(p.kind) && epoch == p.epoch && payload == p.payload;
            return Ok((
                if same {
                    Outcome::Accepted(seq as u64)
                } else {
                    Outcome::IdempotencyConflict
                },
                false,
            ));
        }
        if p.kind != Kind::Welcome {
            // The first commit for this epoch after the poster's cursor holds the epoch; those
            // at or before it the poster has seen and found invalid (DS-4).
            let winner: Option<(i64, Vec<u8>)> = t
                .prepare_cached(
                    "SELECT seq, payload FROM items
                     WHERE mailbox = ?1 AND epoch = ?2 AND kind = 1 AND seq > ?3
                     ORDER BY seq LIMIT 1",
                )
                .map_err(db)?
                .query_row(params![mb, p.epoch.as_slice(), after], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(db)?;
            if let Some((seq, payload)) = winner {
                return Ok((
                    if p.kind == Kind::Commit {
                        Outcome::Rejected(StoredItem {
                            seq: seq as u64,
                            kind: Kind::Commit,
                            payload,
                        })
                    } else {
                        Outcome::Stale
                    },
                    false,
                ));
            }
        }
    }
    let seq: i64 = t
        .prepare_cached(
            "INSERT INTO mailboxes (id, kind, last_seq, touched) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (id) DO UPDATE SET last_seq = last_seq + 1, touched = ?3
             RETURNING last_seq",
        )
        .map_err(db)?
        .query_row(params![mb, want, now], |r| r.get(0))
        .map_err(db)?;
    t.prepare_cached(
        "INSERT INTO items (mailbox, seq, kind, epoch, idem, payload, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(db)?
    .execute(params![
        mb,
        seq,
        kind_to_i16(p.kind),
        p.epoch.as_slice(),
        p.idem.as_slice(),
        p.payload.as_slice(),
        now
    ])
    .map_err(db)?;
    // The commits for this epoch up to the poster's cursor were found invalid: they expire
    // like messages (DS-14).
    if p.kind != Kind::Welcome && after > 0 {
        t.prepare_cached(
            "UPDATE items SET superseded = 1
             WHERE mailbox = ?1 AND epoch = ?2 AND kind = 1 AND seq <= ?3 AND superseded = 0",
        )
        .map_err(db)?
        .execute(params![mb, p.epoch.as_slice(), after])
        .map_err(db)?;
    }
    Ok((Outcome::Accepted(seq as u64), true))
}

fn writer(mut c: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let now = unix_now();
        let result = (|| {
            let t = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let mut outs = Vec::with_capacity(jobs.len());
            for (p, _) in &jobs {
                outs.push(apply(&t, p, now)?);
            }
            t.commit().map_err(db)?;
            Ok::<_, StoreError>(outs)
        })();
        match result {
            // Answer only after the commit: an acknowledged post is durable (DS-5).
            Ok(outs) => {
                for ((_, reply), out) in jobs.drain(..).zip(outs) {
                    let _ = reply.send(Ok(out));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "batch failed; nothing stored");
                for (_, reply) in jobs.drain(..) {
                    let _ = reply.send(Err(StoreError::Db(e.to_string())));
                }
            }
        }
    }
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut c = open_conn(&path)?;
        migrate(&mut c)?;
        let trees = TreeDb::open(&path, &c)?;
        let blobs = super::sqlite_blobs::SqliteBlobs::open(&path)?;
        // Checkpoints run on their own thread, not in the writer's commits.
        c.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(db)?;
        let checkpointer = open_conn(&path)?;
        let (tx, rx) = mpsc::channel(4 * BATCH);
        std::thread::Builder::new()
            .name("ds-sqlite-writer".into())
            .spawn(move || writer(c, rx))
            .map_err(|e| StoreError::Db(e.to_string()))?;
        let alive = tx.downgrade();
        std::thread::Builder::new()
            .name("ds-sqlite-checkpoint".into())
            .spawn(move || {
                // PASSIVE: never blocks the writer or readers; stops with the store. But while
                // posts keep coming, the log never gets fully copied at a moment the writer
                // starts a transaction (commits land during the checkpoint's syncs), which is
                // what lets the writer start the log over: the file grew without end (DS-15).
                // So once it holds more than WAL_TRUNCATE_FRAMES, TRUNCATE: it holds the writer
                // for what PASSIVE left (little) and the syncs, and empties the file.
                while alive.upgrade().is_some() {
                    std::thread::sleep(std::time::Duration::from_millis(250));
                    let frames =
                        checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                            r.get::<_, i64>(1)
                        });
                    let r = match frames {
                        Ok(n) if n > WAL_TRUNCATE_FRAMES => {
                            checkpointer.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                        }
                        other => other.map(|_| ()),
                    };
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Db(e.to_string()))?;
        Ok(SqliteStore {
            tx,
            path,
            readers: Arc::new(Mutex::new(Vec::new())),
            trees,
            blobs,
        })
    }

    /// Runs `f` on a pooled reader connection.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().ok().and_then(|mut v| v.pop());
            let c = match pooled {
                Some(c) => c,
                None => open_conn(&path)?,
            };
            let r = f(&c);
            if let Ok(mut v) = readers.lock() {
                v.push(c);
            }
            r
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn post(&self, post: Post) -> Result<(Outcome, bool), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((post, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn fetch(
        &self,
        mailbox: [u8; 32],
        after: u64,
        limit: u32,
        max_bytes: usize,
    ) -> Result<Fetched, StoreError> {
        let after = i64::try_from(after).map_err(|_| StoreError::Db("cursor".into()))?;
        self.read(move |c| {
            let last: Option<i64> = c
                .prepare_cached("SELECT last_seq FROM mailboxes WHERE id = ?1")
                .map_err(db)?
                .query_row([mailbox.as_slice()], |r| r.get(0))
                .optional()
                .map_err(db)?;
            if after > last.unwrap_or(0) {
                return Ok(Fetched::CursorAhead);
            }
            let mut st = c
                .prepare_cached(
                    "SELECT seq, kind, payload FROM items WHERE mailbox = ?1 AND seq > ?2
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(db)?;
            let mut rows = st
                .query(params![mailbox.as_slice(), after, i64::from(limit) + 1])
                .map_err(db)?;
            let mut items = Vec::new();
            let mut bytes = 0usize;
            let mut more = false;
            while let Some(r) = rows.next().map_err(db)? {
                if items.len() as u32 >= limit || (bytes >= max_bytes && !items.is_empty()) {
                    more = true;
                    break;
                }
                let payload: Vec<u8> = r.get(2).map_err(db)?;
                bytes += payload.len();
                items.push(StoredItem {
                    seq: r.get::<_, i64>(0).map_err(db)? as u64,
                    kind: kind_from_i16(r.get(1).map_err(db)?)?,
                    payload,
                });
            }
            Ok(Fetched::Page(items, more))
        })
        .await
    }

    async fn prune(&self, messages_before: i64, idle_before: i64) -> Result<u64, StoreError> {
        // Attachment blobs go with the messages of their time (CONTENT-25j).
        use super::blobs::BlobStorage as _;
        let stale = unix_now().saturating_sub(super::STALE_UPLOAD_SECS);
        let blobs = self.blobs.prune(messages_before, stale).await?;
        let path = self.path.clone();
        let items = tokio::task::spawn_blocking(move || {
            let mut c = open_conn(&path)?;
            let t = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let mut n = t
                .execute(
                    "DELETE FROM items WHERE kind <> 1 AND created < ?1",
                    [messages_before],
                )
                .map_err(db)?;
            // Superseded commits expire like messages (DS-14); the others stay (DS-10).
            n += t
                .execute(
                    "DELETE FROM items WHERE kind = 1 AND superseded = 1 AND created < ?1",
                    [messages_before],
                )
                .map_err(db)?;
            n += t
                .execute(
                    "DELETE FROM items WHERE mailbox IN (SELECT id FROM mailboxes WHERE touched < ?1)",
                    [idle_before],
                )
                .map_err(db)?;
            t.execute("DELETE FROM mailboxes WHERE touched < ?1", [idle_before])
                .map_err(db)?;
            t.commit().map_err(db)?;
            Ok::<_, StoreError>(n as u64)
        })
        .await
        .map_err(|e| StoreError::Db(e.to_string()))??;
        Ok(items + blobs)
    }

    async fn tree(&self, locator: [u8; 32], now: i64) -> Result<Option<TreeMeta>, StoreError> {
        self.trees.tree(locator, now).await
    }

    async fn tree_chunk(&self, tree: &TreeMeta, index: u64) -> Result<Vec<u8>, StoreError> {
        self.trees.chunk(tree, index).await
    }

    async fn begin_tree(&self, now: i64) -> Result<Box<dyn TreeUpload>, StoreError> {
        self.trees.begin(now).await
    }

    async fn prune_trees(&self, now: i64) -> Result<u64, StoreError> {
        self.trees.prune(now).await
    }

    fn blobs(&self) -> Option<Arc<dyn super::blobs::BlobStorage>> {
        Some(Arc::new(self.blobs.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TreePut;

    fn post(kind: Kind, mailbox: u8, epoch: u8, idem: u8, payload: &[u8]) -> Post {
        post_after(kind, mailbox, epoch, 0, idem, payload)
    }

    fn post_after(
        kind: Kind,
        mailbox: u8,
        epoch: u8,
        after: u64,
        idem: u8,
        payload: &[u8],
    ) -> Post {
        Post {
            kind,
            mailbox: [mailbox; 32],
            epoch: [epoch; 32],
            after,
            idem: [idem; 16],
            payload: payload.to_vec(),
        }
    }

    /// Applies one post as the writer does, at a chosen time.
    fn apply_at(path: &Path, p: Post, now: i64) -> Outcome {
        let mut c = open_conn(path).unwrap();
        let t = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let (out, _) = apply(&t, &p, now).unwrap();
        t.commit().unwrap();
        out
    }

    async fn seqs(s: &SqliteStore, mailbox: u8) -> Vec<u64> {
        match s.fetch([mailbox; 32], 0, 100, 1 << 20).await.unwrap() {
            Fetched::Page(items, _) => items.iter().map(|i| i.seq).collect(),
            Fetched::CursorAhead => panic!("cursor ahead"),
        }
    }

    fn superseded(path: &Path) -> Vec<i64> {
        let c = Connection::open(path).unwrap();
        let mut st = c
            .prepare("SELECT seq FROM items WHERE superseded = 1 ORDER BY seq")
            .unwrap();
        let v = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<Vec<i64>, _>>()
            .unwrap();
        v
    }

    #[tokio::test]
    async fn ds_4_ds_6_store_orders_and_deduplicates() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("s.db")).unwrap();
        // A message may start a group mailbox (GROUP-4a), as a commit does.
        assert_eq!(
            s.post(post(Kind::Message, 9, 0, 1, b"m")).await.unwrap(),
            (Outcome::Accepted(1), true)
        );
        assert_eq!(
            s.post(post(Kind::Commit, 1, 0, 1, b"c")).await.unwrap(),
            (Outcome::Accepted(1), true)
        );
        assert_eq!(
            s.post(post(Kind::Commit, 1, 0, 1, b"c")).await.unwrap(),
            (Outcome::Accepted(1), false)
        );
        assert_eq!(
            s.post(post(Kind::Commit, 1, 0, 1, b"other"))
                .await
                .unwrap()
                .0,
            Outcome::IdempotencyConflict
        );
        let (out, _) = s.post(post(Kind::Commit, 1, 0, 2, b"c2")).await.unwrap();
        assert!(matches!(out, Outcome::Rejected(w) if w.seq == 1 && w.payload == b"c"));
        assert_eq!(
            s.post(post(Kind::Message, 1, 0, 3, b"m")).await.unwrap().0,
            Outcome::Stale
        );
        assert_eq!(
            s.post(post(Kind::Welcome, 1, 0, 4, b"w")).await.unwrap().0,
            Outcome::WrongKind
        );
        assert_eq!(
            s.post(post(Kind::Message, 1, 9, 5, b"m")).await.unwrap().0,
            Outcome::Accepted(2)
        );
        assert_eq!(
            s.fetch([1; 32], 0, 10, 1 << 20).await.unwrap(),
            Fetched::Page(
                vec![
                    StoredItem {
                        seq: 1,
                        kind: Kind::Commit,
                        payload: b"c".to_vec()
                    },
                    StoredItem {
                        seq: 2,
                        kind: Kind::Message,
                        payload: b"m".to_vec()
                    },
                ],
                false
            )
        );
        assert_eq!(
            s.fetch([1; 32], 3, 10, 1 << 20).await.unwrap(),
            Fetched::CursorAhead
        );
        assert_eq!(
            s.fetch([7; 32], 0, 10, 1 << 20).await.unwrap(),
            Fetched::Page(vec![], false)
        );
    }

    #[tokio::test]
    async fn lg_t_3_lg_t_4_store_trees_idempotent_conflicting_and_expiring() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("s.db")).unwrap();
        let l = [3u8; 32];
        assert_eq!(s.get_tree(l, 100).await.unwrap(), None);
        assert_eq!(
            s.put_tree(l, b"t".to_vec(), 100, 200).await.unwrap(),
            TreePut::Stored(200)
        );
        // Same bytes later: the original expiry; other bytes: a conflict, nothing changed.
        assert_eq!(
            s.put_tree(l, b"t".to_vec(), 150, 250).await.unwrap(),
            TreePut::Stored(200)
        );
        assert_eq!(
            s.put_tree(l, b"x".to_vec(), 150, 250).await.unwrap(),
            TreePut::Conflict
        );
        assert_eq!(s.get_tree(l, 199).await.unwrap(), Some(b"t".to_vec()));
        // Expired: invisible before pruning, replaceable, and pruned.
        assert_eq!(s.get_tree(l, 200).await.unwrap(), None);
        assert_eq!(s.prune_trees(199).await.unwrap(), 0);
        assert_eq!(s.prune_trees(200).await.unwrap(), 1);
        assert_eq!(
            s.put_tree(l, b"x".to_vec(), 300, 400).await.unwrap(),
            TreePut::Stored(400)
        );
        assert_eq!(s.get_tree(l, 300).await.unwrap(), Some(b"x".to_vec()));
    }

    #[tokio::test]
    async fn ds_11_migrations_apply_once_and_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.post(post(Kind::Commit, 1, 0, 1, b"c")).await.unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let c = Connection::open(&path).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64);
        assert_eq!(
            s.post(post(Kind::Message, 1, 1, 2, b"m")).await.unwrap().0,
            Outcome::Accepted(2)
        );
    }

    #[tokio::test]
    async fn ds_4_store_junk_commit_does_not_hold_the_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = SqliteStore::open(&path).unwrap();
        // Junk at 1 under tag 5; a poster that has seen it (cursor 1) commits at 2.
        let junk = post_after(Kind::Commit, 1, 5, 0, 1, b"junk");
        assert_eq!(s.post(junk).await.unwrap().0, Outcome::Accepted(1));
        assert_eq!(
            s.post(post_after(Kind::Commit, 1, 5, 1, 2, b"c"))
                .await
                .unwrap(),
            (Outcome::Accepted(2), true)
        );
        // A poster that has not seen the junk (cursor 0) loses to it; one that saw the junk
        // but not the commit at 2 loses to that.
        let (out, _) = s
            .post(post_after(Kind::Commit, 1, 5, 0, 3, b"x"))
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Rejected(w) if w.seq == 1 && w.payload == b"junk"));
        let (out, _) = s
            .post(post_after(Kind::Commit, 1, 5, 1, 4, b"y"))
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Rejected(w) if w.seq == 2 && w.payload == b"c"));
        // Messages: stale while a commit follows the cursor.
        for after in [0, 1] {
            assert_eq!(
                s.post(post_after(Kind::Message, 1, 5, after, 5, b"m"))
                    .await
                    .unwrap()
                    .0,
                Outcome::Stale
            );
        }
        assert_eq!(
            s.post(post_after(Kind::Message, 1, 5, 2, 5, b"m"))
                .await
                .unwrap(),
            (Outcome::Accepted(3), true)
        );
        // Idempotency first: a retry answers as before, whatever its cursor.
        assert_eq!(
            s.post(post_after(Kind::Commit, 1, 5, 0, 2, b"c"))
                .await
                .unwrap(),
            (Outcome::Accepted(2), false)
        );
        assert_eq!(seqs(&s, 1).await, vec![1, 2, 3]);
        // The posts stored at 2 and 3 superseded the commits their cursors (1 and 2) passed:
        // their posters found them invalid (DS-14).
        assert_eq!(superseded(&path), vec![1, 2]);
    }

    #[tokio::test]
    async fn ds_14_superseded_commits_pruned_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let s = SqliteStore::open(&path).unwrap();
        // At 100: junk under tag 5 (1), the real commit of tag 5 (2), the commit of tag 6 (3).
        let c = |epoch, after, idem, payload: &[u8]| {
            post_after(Kind::Commit, 1, epoch, after, idem, payload)
        };
        assert_eq!(
            apply_at(&path, c(5, 0, 1, b"junk"), 100),
            Outcome::Accepted(1)
        );
        assert_eq!(
            apply_at(&path, c(5, 1, 2, b"c5"), 100),
            Outcome::Accepted(2)
        );
        assert_eq!(
            apply_at(&path, c(6, 2, 3, b"c6"), 100),
            Outcome::Accepted(3)
        );
        // At 200: junk under tag 7 (4), superseded by a message of tag 7 (5).
        assert_eq!(
            apply_at(&path, c(7, 3, 4, b"junk"), 200),
            Outcome::Accepted(4)
        );
        assert_eq!(
            apply_at(&path, post_after(Kind::Message, 1, 7, 4, 5, b"m"), 200),
            Outcome::Accepted(5)
        );
        assert_eq!(superseded(&path), vec![1, 4]);
        // Retention cut at 150: the superseded commit of 100 goes, the one of 200 stays.
        assert_eq!(s.prune(150, 0).await.unwrap(), 1);
        assert_eq!(seqs(&s, 1).await, vec![2, 3, 4, 5]);
        // At 250: the message and the second superseded commit go; commits never superseded
        // stay, however old (DS-10).
        assert_eq!(s.prune(250, 0).await.unwrap(), 2);
        assert_eq!(seqs(&s, 1).await, vec![2, 3]);
        assert_eq!(s.prune(10_000, 0).await.unwrap(), 0);
        // Positions are never reused.
        assert_eq!(
            apply_at(&path, post_after(Kind::Message, 1, 8, 3, 6, b"m"), 300),
            Outcome::Accepted(6)
        );
    }

    #[tokio::test]
    async fn ds_11_old_unique_index_migrates_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (mb, e5, e6) = ([1u8; 32], [5u8; 32], [6u8; 32]);
        // A database as version 2 left it: one commit per epoch under a unique index.
        {
            let mut c = open_conn(&path).unwrap();
            migrate_to(&mut c, 2).unwrap();
            c.execute(
                "INSERT INTO mailboxes (id, kind, last_seq, touched) VALUES (?1, 1, 2, 100)",
                [mb.as_slice()],
            )
            .unwrap();
            let insert = |seq: i64, kind: i16, epoch: &[u8; 32], idem: u8, payload: &[u8]| {
                c.execute(
                    "INSERT INTO items (mailbox, seq, kind, epoch, idem, payload, created)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 100)",
                    params![
                        mb.as_slice(),
                        seq,
                        kind,
                        epoch.as_slice(),
                        [idem; 16].as_slice(),
                        payload
                    ],
                )
            };
            insert(1, 1, &e5, 1, b"c1").unwrap();
            insert(2, 2, &e6, 2, b"m1").unwrap();
            assert!(insert(3, 1, &e5, 3, b"c2").is_err(), "the old unique index");
        }
        let s = SqliteStore::open(&path).unwrap();
        let c = Connection::open(&path).unwrap();
        let indexes: Vec<String> = c
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            !indexes.iter().any(|i| i == "items_one_commit_per_epoch"),
            "{indexes:?}"
        );
        assert!(
            indexes.iter().any(|i| i == "items_commits_by_epoch"),
            "{indexes:?}"
        );
        // The winner lookup and the marking use the new index.
        for sql in [
            "EXPLAIN QUERY PLAN SELECT seq, payload FROM items
             WHERE mailbox = ?1 AND epoch = ?2 AND kind = 1 AND seq > ?3 ORDER BY seq LIMIT 1",
            "EXPLAIN QUERY PLAN UPDATE items SET superseded = 1
             WHERE mailbox = ?1 AND epoch = ?2 AND kind = 1 AND seq <= ?3 AND superseded = 0",
        ] {
            let plan: Vec<String> = c
                .prepare(sql)
                .unwrap()
                .query_map(params![mb.as_slice(), e5.as_slice(), 0], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                plan.iter().any(|p| p.contains("items_commits_by_epoch")),
                "{plan:?}"
            );
        }
        // The old items are all there, unmarked, and old clients (cursor 0) see the old rule.
        let Fetched::Page(items, false) = s.fetch(mb, 0, 10, 1 << 20).await.unwrap() else {
            panic!("page");
        };
        assert_eq!(
            items,
            vec![
                StoredItem {
                    seq: 1,
                    kind: Kind::Commit,
                    payload: b"c1".to_vec()
                },
                StoredItem {
                    seq: 2,
                    kind: Kind::Message,
                    payload: b"m1".to_vec()
                },
            ]
        );
        assert!(superseded(&path).is_empty());
        let p = |after, idem: u8, payload: &[u8]| Post {
            kind: Kind::Commit,
            mailbox: mb,
            epoch: e5,
            after,
            idem: [idem; 16],
            payload: payload.to_vec(),
        };
        let (out, _) = s.post(p(0, 9, b"c2")).await.unwrap();
        assert!(matches!(out, Outcome::Rejected(w) if w.seq == 1 && w.payload == b"c1"));
        // A second commit under the tag is now possible.
        assert_eq!(
            s.post(p(2, 9, b"c2")).await.unwrap(),
            (Outcome::Accepted(3), true)
        );
        assert_eq!(superseded(&path), vec![1]);
    }
}
