//! Tree blobs on SQLite (spec/ds.md DS-11, DS-15): a database file of their own beside the
//! mailboxes' (`NAME.trees.EXT` for `NAME.EXT`), with its own writer thread, so that storing a
//! 64 MiB tree never holds the mailboxes' writer, and its write-ahead log, which that writer
//! checkpoints and truncates every [`CHECKPOINT_BYTES`], never grows the mailboxes' log.
//!
//! A blob is stored as rows of [`TREE_CHUNK`] bytes under an upload id, one short transaction
//! per chunk as the body arrives, and becomes visible under its locator only when the upload
//! finishes (one transaction: the check of a live blob under the locator and the insert). An
//! upload dropped unfinished is deleted at once; one cut short by a crash is deleted when the
//! store next opens. Reads are one short transaction per chunk, so no reader holds a snapshot
//! for a whole download (which would keep the log from being checkpointed).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::{unix_now, StoreError, TreeMeta, TreePut, TreeUpload, STALE_UPLOAD_SECS, TREE_CHUNK};

/// Versioned migrations of the trees file, applied in order, each once (DS-11).
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE uploads (id INTEGER PRIMARY KEY, started INTEGER NOT NULL);
    CREATE TABLE chunks (
        upload INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (upload, idx)
    );
    CREATE TABLE trees (
        locator BLOB PRIMARY KEY,
        digest BLOB NOT NULL,
        size INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        upload INTEGER NOT NULL,
        expires INTEGER NOT NULL
    );
    CREATE INDEX trees_expires ON trees (expires);
    CREATE INDEX trees_upload ON trees (upload);",
)];

/// Bytes written after which the writer checkpoints the log into the database and truncates
/// it; it also does when idle for [`IDLE`].
const CHECKPOINT_BYTES: u64 = 4 << 20;
const IDLE: Duration = Duration::from_millis(500);

/// The file of the trees beside the mailboxes' database `main`.
pub(super) fn trees_path(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "atmls-ds".into());
    let name = match main.extension() {
        Some(ext) => format!("{stem}.trees.{}", ext.to_string_lossy()),
        None => format!("{stem}.trees"),
    };
    main.with_file_name(name)
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

fn closed<E>(_: E) -> StoreError {
    StoreError::Closed
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let c = Connection::open(path).map_err(db)?;
    // A small page cache (64 pages): chunks are read and written once, in order; caching
    // them would only cost memory, on every pooled connection (DS-15).
    c.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = 64;",
    )
    .map_err(db)?;
    Ok(c)
}

fn migrate(c: &mut Connection) -> Result<(), StoreError> {
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
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > have) {
        t.execute_batch(sql).map_err(db)?;
        t.execute(
            "INSERT INTO schema_migrations (version, applied) VALUES (?1, ?2)",
            params![v, unix_now()],
        )
        .map_err(db)?;
    }
    t.commit().map_err(db)
}

enum Job {
    Begin(i64, oneshot::Sender<Result<i64, StoreError>>),
    Chunk {
        upload: i64,
        idx: u64,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Finish {
        upload: i64,
        chunks: u64,
        size: u64,
        locator: [u8; 32],
        digest: Vec<u8>,
        now: i64,
        expires: i64,
        reply: oneshot::Sender<Result<TreePut, StoreError>>,
    },
    Abort(i64),
    Prune(i64, oneshot::Sender<Result<u64, StoreError>>),
}

fn delete_upload(c: &Connection, upload: i64) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM chunks WHERE upload = ?1")
        .map_err(db)?
        .execute([upload])
        .map_err(db)?;
    c.prepare_cached("DELETE FROM uploads WHERE id = ?1")
        .map_err(db)?
        .execute([upload])
        .map_err(db)?;
    Ok(())
}

/// Publishes `upload` under `locator` unless a live blob is there (then the upload goes).
#[allow(clippy::too_many_arguments)]
fn finish(
    c: &mut Connection,
    upload: i64,
    chunks: u64,
    size: u64,
    locator: [u8; 32],
    digest: &[u8],
    now: i64,
    expires: i64,
) -> Result<TreePut, StoreError> {
    let t = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    // Every chunk must be there: a blob with a hole would fail its readers half-way.
    let (rows, upload_row): (i64, i64) = t
        .query_row(
            "SELECT (SELECT COUNT(*) FROM chunks WHERE upload = ?1),
                    (SELECT COUNT(*) FROM uploads WHERE id = ?1)",
            [upload],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db)?;
    if u64::try_from(rows).ok() != Some(chunks) || upload_row != 1 {
        return Err(StoreError::Db("tree upload incomplete".into()));
    }
    let have: Option<(Vec<u8>, i64, i64)> = t
        .prepare_cached("SELECT digest, expires, upload FROM trees WHERE locator = ?1")
        .map_err(db)?
        .query_row([locator.as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(db)?;
    let out = match have {
        Some((d, e, _)) if e > now => {
            delete_upload(&t, upload)?;
            if d == digest {
                TreePut::Stored(e)
            } else {
                TreePut::Conflict
            }
        }
        old => {
            if let Some((_, _, old)) = old {
                delete_upload(&t, old)?;
            }
            t.prepare_cached(
                "INSERT OR REPLACE INTO trees (locator, digest, size, chunks, upload, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db)?
            .execute(params![
                locator.as_slice(),
                digest,
                i64::try_from(size).unwrap_or(i64::MAX),
                i64::try_from(chunks).unwrap_or(i64::MAX),
                upload,
                expires
            ])
            .map_err(db)?;
            TreePut::Stored(expires)
        }
    };
    t.commit().map_err(db)?;
    Ok(out)
}

fn prune(c: &mut Connection, now: i64) -> Result<u64, StoreError> {
    let expired: Vec<(Vec<u8>, i64)> = c
        .prepare("SELECT locator, upload FROM trees WHERE expires <= ?1")
        .map_err(db)?
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    // One transaction per tree: uploads in between wait for one tree's deletion at most.
    for (locator, upload) in &expired {
        let t = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let gone = t
            .execute(
                "DELETE FROM trees WHERE locator = ?1 AND expires <= ?2",
                params![locator, now],
            )
            .map_err(db)?;
        if gone > 0 {
            delete_upload(&t, *upload)?;
        }
        t.commit().map_err(db)?;
    }
    // Uploads left unfinished and never aborted (the abort is sent when an upload is dropped;
    // this only catches what slipped through).
    let stale: Vec<i64> = c
        .prepare(
            "SELECT id FROM uploads WHERE started < ?1
             AND id NOT IN (SELECT upload FROM trees)",
        )
        .map_err(db)?
        .query_map([now.saturating_sub(STALE_UPLOAD_SECS)], |r| r.get(0))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for upload in stale {
        delete_upload(c, upload)?;
    }
    Ok(expired.len() as u64)
}

/// Copies the log into the database and truncates it. TRUNCATE waits (busy timeout) for
/// readers, whose transactions are one chunk long.
fn checkpoint(c: &Connection) {
    if let Err(e) = c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        tracing::warn!(error = %e, "trees checkpoint failed");
    }
}

fn writer(mut c: Connection, rx: mpsc::Receiver<Job>) {
    let mut unchecked: u64 = 0;
    loop {
        let job = match rx.recv_timeout(IDLE) {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => {
                if unchecked > 0 {
                    checkpoint(&c);
                    unchecked = 0;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match job {
            Job::Begin(now, reply) => {
                let r = c
                    .prepare_cached("INSERT INTO uploads (started) VALUES (?1)")
                    .and_then(|mut s| s.insert([now]))
                    .map_err(db);
                let _ = reply.send(r);
            }
            Job::Chunk {
                upload,
                idx,
                data,
                reply,
            } => {
                unchecked += data.len() as u64;
                let r = c
                    .prepare_cached("INSERT INTO chunks (upload, idx, data) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| {
                        s.execute(params![
                            upload,
                            i64::try_from(idx).unwrap_or(i64::MAX),
                            data
                        ])
                    })
                    .map(|_| ())
                    .map_err(db);
                let _ = reply.send(r);
            }
            Job::Finish {
                upload,
                chunks,
                size,
                locator,
                digest,
                now,
                expires,
                reply,
            } => {
                let r = finish(&mut c, upload, chunks, size, locator, &digest, now, expires);
                if r.is_err() {
                    let _ = delete_upload(&c, upload);
                }
                let _ = reply.send(r);
            }
            Job::Abort(upload) => {
                if let Err(e) = delete_upload(&c, upload) {
                    tracing::warn!(error = %e, "discarding an unfinished tree upload failed");
                }
            }
            Job::Prune(now, reply) => {
                let _ = reply.send(prune(&mut c, now));
            }
        }
        if unchecked >= CHECKPOINT_BYTES {
            checkpoint(&c);
            unchecked = 0;
        }
    }
    checkpoint(&c);
}

/// Moves the blobs an earlier version kept in the mailboxes' database (table `trees`, whole
/// blobs) into the trees file, a chunk at a time, and deletes them there.
fn adopt_legacy(main: &Connection, c: &mut Connection) -> Result<(), StoreError> {
    let now = unix_now();
    let rows: Vec<(Vec<u8>, Vec<u8>, i64, i64)> = main
        .prepare("SELECT locator, digest, expires, length(blob) FROM trees")
        .map_err(db)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    for (locator, digest, expires, len) in rows {
        let len = u64::try_from(len).unwrap_or(0);
        let chunk = TREE_CHUNK as u64;
        let chunks = len.div_ceil(chunk);
        let t = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let present: bool = t
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM trees WHERE locator = ?1)",
                [&locator],
                |r| r.get(0),
            )
            .map_err(db)?;
        if expires > now && !present {
            t.execute("INSERT INTO uploads (started) VALUES (?1)", [now])
                .map_err(db)?;
            let upload = t.last_insert_rowid();
            for i in 0..chunks {
                let data: Vec<u8> = main
                    .query_row(
                        "SELECT substr(blob, ?1, ?2) FROM trees WHERE locator = ?3",
                        params![(i * chunk + 1) as i64, chunk as i64, &locator],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                t.execute(
                    "INSERT INTO chunks (upload, idx, data) VALUES (?1, ?2, ?3)",
                    params![upload, i as i64, data],
                )
                .map_err(db)?;
            }
            t.execute(
                "INSERT INTO trees (locator, digest, size, chunks, upload, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![locator, digest, len as i64, chunks as i64, upload, expires],
            )
            .map_err(db)?;
        }
        t.commit().map_err(db)?;
        main.execute("DELETE FROM trees WHERE locator = ?1", [&locator])
            .map_err(db)?;
    }
    Ok(())
}

/// The trees file of a [`super::SqliteStore`].
pub(super) struct TreeDb {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl TreeDb {
    /// Opens (creating and migrating) the trees file beside `main_path`, moves the blobs of
    /// an earlier version out of `main`, deletes what unfinished uploads of an earlier run
    /// left (one process per SQLite database, DS-11), and starts the writer.
    pub(super) fn open(main_path: &Path, main: &Connection) -> Result<Self, StoreError> {
        let path = trees_path(main_path);
        let mut c = open_conn(&path)?;
        migrate(&mut c)?;
        adopt_legacy(main, &mut c)?;
        c.execute_batch(
            "DELETE FROM chunks WHERE upload NOT IN (SELECT upload FROM trees);
             DELETE FROM uploads WHERE id NOT IN (SELECT upload FROM trees);",
        )
        .map_err(db)?;
        // The writer checkpoints by itself, between its transactions.
        c.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 0;")
            .map_err(db)?;
        checkpoint(&c);
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("ds-sqlite-trees".into())
            .spawn(move || writer(c, rx))
            .map_err(|e| StoreError::Db(e.to_string()))?;
        Ok(TreeDb {
            tx,
            path,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    async fn ask<R: Send + 'static>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<R, StoreError>>) -> Job,
    ) -> Result<R, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(job(reply)).map_err(closed)?;
        rx.await.map_err(closed)?
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

    pub(super) async fn tree(
        &self,
        locator: [u8; 32],
        now: i64,
    ) -> Result<Option<TreeMeta>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(
                "SELECT digest, size, chunks, expires, upload FROM trees
                 WHERE locator = ?1 AND expires > ?2",
            )
            .map_err(db)?
            .query_row(params![locator.as_slice(), now], |r| {
                Ok(TreeMeta {
                    locator,
                    digest: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    chunks: r.get::<_, i64>(2)? as u64,
                    expires: r.get(3)?,
                    upload: Some(r.get(4)?),
                })
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    pub(super) async fn chunk(&self, tree: &TreeMeta, index: u64) -> Result<Vec<u8>, StoreError> {
        let upload = tree
            .upload
            .ok_or_else(|| StoreError::Db("tree without chunks".into()))?;
        let idx = i64::try_from(index).map_err(|_| StoreError::Db("chunk index".into()))?;
        self.read(move |c| {
            c.prepare_cached("SELECT data FROM chunks WHERE upload = ?1 AND idx = ?2")
                .map_err(db)?
                .query_row(params![upload, idx], |r| r.get(0))
                .optional()
                .map_err(db)?
                .ok_or_else(|| StoreError::Db("tree chunk gone".into()))
        })
        .await
    }

    pub(super) async fn begin(&self, now: i64) -> Result<Box<dyn TreeUpload>, StoreError> {
        let id = self.ask(|r| Job::Begin(now, r)).await?;
        Ok(Box::new(SqliteUpload {
            tx: self.tx.clone(),
            id,
            chunks: 0,
            size: 0,
            done: false,
        }))
    }

    pub(super) async fn prune(&self, now: i64) -> Result<u64, StoreError> {
        self.ask(|r| Job::Prune(now, r)).await
    }
}

struct SqliteUpload {
    tx: mpsc::Sender<Job>,
    id: i64,
    chunks: u64,
    size: u64,
    done: bool,
}

#[async_trait]
impl TreeUpload for SqliteUpload {
    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), StoreError> {
        let len = chunk.len() as u64;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Chunk {
                upload: self.id,
                idx: self.chunks,
                data: chunk,
                reply,
            })
            .map_err(closed)?;
        self.chunks += 1;
        rx.await.map_err(closed)??;
        self.size += len;
        Ok(())
    }

    async fn finish(
        mut self: Box<Self>,
        locator: [u8; 32],
        digest: Vec<u8>,
        now: i64,
        expires: i64,
    ) -> Result<TreePut, StoreError> {
        // From here the writer owns the upload: it publishes it or deletes it.
        self.done = true;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job::Finish {
                upload: self.id,
                chunks: self.chunks,
                size: self.size,
                locator,
                digest,
                now,
                expires,
                reply,
            })
            .map_err(closed)?;
        rx.await.map_err(closed)?
    }
}

impl Drop for SqliteUpload {
    fn drop(&mut self) {
        if !self.done {
            // After any chunk still queued: the writer handles jobs in order.
            let _ = self.tx.send(Job::Abort(self.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_11_trees_file_is_named_after_the_database() {
        assert_eq!(
            trees_path(Path::new("/var/lib/atmls-ds.db")),
            PathBuf::from("/var/lib/atmls-ds.trees.db")
        );
        assert_eq!(trees_path(Path::new("ds")), PathBuf::from("ds.trees"));
    }
}
