//! Attachment blobs on SQLite (CONTENT-25h): a database file of their own beside the
//! mailboxes' (`NAME.blobs.EXT` for `NAME.EXT`), so that a 100 MiB upload never holds the
//! mailboxes' writer or grows their write-ahead log. Each chunk is one row, written and read
//! in its own short transaction.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::blobs::{BlobMeta, BlobStorage, Reserve};
use super::StoreError;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS blobs (
        id BLOB PRIMARY KEY,
        mailbox BLOB NOT NULL,
        size INTEGER NOT NULL,
        complete INTEGER NOT NULL,
        created INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS blobs_mailbox ON blobs (mailbox);
    CREATE INDEX IF NOT EXISTS blobs_created ON blobs (created);
    CREATE TABLE IF NOT EXISTS blob_chunks (
        blob BLOB NOT NULL,
        idx INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (blob, idx)
    );";

/// The file of the blobs beside the mailboxes' database `main`.
pub(super) fn blobs_path(main: &Path) -> PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "atmls-ds".into());
    let name = match main.extension() {
        Some(ext) => format!("{stem}.blobs.{}", ext.to_string_lossy()),
        None => format!("{stem}.blobs"),
    };
    main.with_file_name(name)
}

fn db(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The blob file: one connection, used on the blocking pool one short statement at a time.
#[derive(Clone)]
pub(super) struct SqliteBlobs {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteBlobs {
    /// Opens (creating) the blob file beside the mailboxes' database `main`.
    pub(super) fn open(main: &Path) -> Result<Self, StoreError> {
        let c = Connection::open(blobs_path(main)).map_err(db)?;
        // A small page cache: chunks are written and read once, in order (DS-15).
        c.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = 64;",
        )
        .map_err(db)?;
        c.execute_batch(SCHEMA).map_err(db)?;
        Ok(SqliteBlobs {
            conn: Arc::new(Mutex::new(c)),
        })
    }

    async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut c = conn.lock().map_err(|_| StoreError::Closed)?;
            f(&mut c)
        })
        .await
        .map_err(db)?
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl BlobStorage for SqliteBlobs {
    async fn reserve(
        &self,
        mailbox: [u8; 32],
        id: [u8; 32],
        size: u64,
        budget: u64,
        now: i64,
    ) -> Result<Reserve, StoreError> {
        self.with(move |c| {
            let t = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let used: i64 = t
                .query_row(
                    "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE mailbox = ?1",
                    [&mailbox[..]],
                    |r| r.get(0),
                )
                .map_err(db)?;
            let used = u64::try_from(used).unwrap_or(0);
            if used.saturating_add(size) > budget {
                return Ok(Reserve::OverBudget { used });
            }
            t.execute(
                "INSERT INTO blobs (id, mailbox, size, complete, created) VALUES (?1, ?2, ?3, 0, ?4)",
                params![&id[..], &mailbox[..], i64_of(size), now],
            )
            .map_err(db)?;
            t.commit().map_err(db)?;
            Ok(Reserve::Reserved)
        })
        .await
    }

    async fn meta(&self, id: [u8; 32]) -> Result<Option<BlobMeta>, StoreError> {
        self.with(move |c| {
            c.query_row(
                "SELECT mailbox, size, complete, created FROM blobs WHERE id = ?1",
                [&id[..]],
                |r| {
                    let mb: Vec<u8> = r.get(0)?;
                    Ok((mb, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get(3)?))
                },
            )
            .optional()
            .map_err(db)?
            .map(|(mb, size, complete, created)| {
                Ok(BlobMeta {
                    id,
                    mailbox: mb.try_into().map_err(|_| db("bad mailbox id"))?,
                    size: u64::try_from(size).map_err(db)?,
                    complete: complete != 0,
                    created,
                })
            })
            .transpose()
        })
        .await
    }

    async fn write_chunk(
        &self,
        id: [u8; 32],
        index: u64,
        data: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.with(move |c| {
            let t = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let open: Option<i64> = t
                .query_row("SELECT complete FROM blobs WHERE id = ?1", [&id[..]], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db)?;
            if open != Some(0) {
                return Ok(false);
            }
            t.execute(
                "INSERT OR REPLACE INTO blob_chunks (blob, idx, data) VALUES (?1, ?2, ?3)",
                params![&id[..], i64_of(index), data],
            )
            .map_err(db)?;
            t.commit().map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn have(&self, id: [u8; 32]) -> Result<Vec<u64>, StoreError> {
        self.with(move |c| {
            let mut s = c
                .prepare_cached("SELECT idx FROM blob_chunks WHERE blob = ?1 ORDER BY idx")
                .map_err(db)?;
            let rows = s.query_map([&id[..]], |r| r.get::<_, i64>(0)).map_err(db)?;
            rows.map(|r| r.map_err(db).and_then(|v| u64::try_from(v).map_err(db)))
                .collect()
        })
        .await
    }

    async fn complete(&self, id: [u8; 32], chunks: u64) -> Result<bool, StoreError> {
        self.with(move |c| {
            let t = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let n: i64 = t
                .query_row(
                    "SELECT COUNT(*) FROM blob_chunks WHERE blob = ?1",
                    [&id[..]],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if u64::try_from(n).ok() != Some(chunks) {
                return Ok(false);
            }
            let done = t
                .execute("UPDATE blobs SET complete = 1 WHERE id = ?1", [&id[..]])
                .map_err(db)?;
            t.commit().map_err(db)?;
            Ok(done == 1)
        })
        .await
    }

    async fn chunk(&self, id: [u8; 32], index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(move |c| {
            c.prepare_cached("SELECT data FROM blob_chunks WHERE blob = ?1 AND idx = ?2")
                .map_err(db)?
                .query_row(params![&id[..], i64_of(index)], |r| r.get(0))
                .optional()
                .map_err(db)
        })
        .await
    }

    async fn delete(&self, id: [u8; 32]) -> Result<bool, StoreError> {
        self.with(move |c| {
            let t = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            t.execute("DELETE FROM blob_chunks WHERE blob = ?1", [&id[..]])
                .map_err(db)?;
            let n = t
                .execute("DELETE FROM blobs WHERE id = ?1", [&id[..]])
                .map_err(db)?;
            t.commit().map_err(db)?;
            Ok(n == 1)
        })
        .await
    }

    async fn prune(&self, created_before: i64, stale_before: i64) -> Result<u64, StoreError> {
        self.with(move |c| {
            let t = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            const GONE: &str = "created < ?1 OR (complete = 0 AND created < ?2)";
            t.execute(
                &format!(
                    "DELETE FROM blob_chunks WHERE blob IN (SELECT id FROM blobs WHERE {GONE})"
                ),
                [created_before, stale_before],
            )
            .map_err(db)?;
            let n = t
                .execute(
                    &format!("DELETE FROM blobs WHERE {GONE}"),
                    [created_before, stale_before],
                )
                .map_err(db)?;
            t.commit().map_err(db)?;
            Ok(n as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::blobs::BLOB_CHUNK;

    #[tokio::test]
    async fn content_25h_25j_sqlite_blobs_budget_chunks_prune() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("ds.db");
        let s = SqliteBlobs::open(&main).unwrap();
        assert!(blobs_path(&main).ends_with("ds.blobs.db"));
        let (mb, id) = ([1u8; 32], [2u8; 32]);
        let size = BLOB_CHUNK as u64 + 5;
        assert_eq!(
            s.reserve(mb, id, size, size, 100).await.unwrap(),
            Reserve::Reserved
        );
        assert_eq!(
            s.reserve(mb, [3; 32], 1, size, 100).await.unwrap(),
            Reserve::OverBudget { used: size }
        );
        assert!(s.write_chunk(id, 1, vec![9; 5]).await.unwrap());
        assert!(!s.complete(id, 2).await.unwrap(), "chunk 0 missing");
        assert_eq!(s.have(id).await.unwrap(), vec![1]);
        assert!(s.write_chunk(id, 0, vec![8; BLOB_CHUNK]).await.unwrap());
        assert!(s.complete(id, 2).await.unwrap());
        assert!(
            !s.write_chunk(id, 0, vec![0]).await.unwrap(),
            "complete: read-only"
        );
        assert_eq!(s.chunk(id, 1).await.unwrap(), Some(vec![9; 5]));
        assert!(s.meta(id).await.unwrap().unwrap().complete);
        // An upload never completed goes once stale; a complete blob with the retention.
        assert_eq!(
            s.reserve(mb, [4; 32], 1, u64::MAX, 100).await.unwrap(),
            Reserve::Reserved
        );
        assert_eq!(s.prune(100, 100).await.unwrap(), 0);
        assert_eq!(s.prune(100, 101).await.unwrap(), 1);
        assert!(
            s.meta(id).await.unwrap().is_some(),
            "complete: kept until the retention"
        );
        assert_eq!(s.meta([4; 32]).await.unwrap(), None);
        assert_eq!(s.prune(101, 0).await.unwrap(), 1);
        assert_eq!(s.meta(id).await.unwrap(), None);
        assert_eq!(s.chunk(id, 1).await.unwrap(), None);
        assert!(!s.delete(id).await.unwrap());
    }
}
