//! Tree blobs on PostgreSQL (spec/ds.md DS-11, DS-15): rows of [`TREE_CHUNK`] bytes in
//! `tree_chunks`, written as the body arrives inside one transaction per upload, which also
//! inserts the `trees` row: an upload that does not finish is rolled back and leaves nothing,
//! whichever process it ran on and however it ended, and PostgreSQL's row locks keep it off the
//! mailboxes' rows. Reads are one short query per chunk. Tree traffic has its own small pool of
//! connections, so that uploads and downloads never take the connections posts need.
//!
//! Chunk rows rather than large objects: rows go with their tree (a delete is a delete, no
//! `lo_unlink` to forget), are dumped and replicated like every other row, and are read the same
//! way as on SQLite. Rows of an earlier version that hold a whole blob in `trees.blob` are still
//! served, a chunk at a time (`substring`).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

use super::{unix_now, StoreError, TreeMeta, TreePut, TreeUpload, TREE_CHUNK};

/// Migrations of the tree tables, recorded in `tree_migrations` (separate from the mailboxes'
/// `schema_migrations`, as the trees have a file of their own on SQLite).
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
    CREATE SEQUENCE tree_uploads;
    CREATE TABLE tree_chunks (
        upload BIGINT NOT NULL,
        idx BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (upload, idx)
    );
    -- Opaque, encrypted bytes: not worth an attempt at compression.
    ALTER TABLE tree_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
    -- New rows name their chunks; rows of the previous version keep their whole blob (and
    -- processes of that version can still insert them during a rolling upgrade).
    ALTER TABLE trees ALTER COLUMN blob DROP NOT NULL,
        ADD COLUMN size BIGINT, ADD COLUMN chunks BIGINT, ADD COLUMN upload BIGINT;
    "#,
)];

/// Connections of the tree pool: more uploads and downloads at once than this wait for one
/// (at most `--max-tree-transfers` run at once, default 4).
const CONNECTIONS: u32 = 16;

/// Database errors without values, as in the mailboxes' store (DS-12).
fn db(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(d) => StoreError::Db(format!(
            "database error {}",
            d.code().map(|c| c.into_owned()).unwrap_or_default()
        )),
        other => StoreError::Db(other.to_string()),
    }
}

/// The tree tables of a [`super::PgStore`].
pub(super) struct PgTrees {
    pool: PgPool,
}

impl PgTrees {
    /// Migrates the tree tables (under the same advisory lock as the mailboxes') and opens a
    /// pool of its own on the database of `main`.
    pub(super) async fn open(main: &PgPool) -> Result<Self, StoreError> {
        let mut tx = main.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock(7262917)")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS tree_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let have: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM tree_migrations")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > have) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query("INSERT INTO tree_migrations (version, applied) VALUES ($1, $2)")
                .bind(v)
                .bind(unix_now())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with((*main.connect_options()).clone());
        Ok(PgTrees { pool })
    }

    pub(super) async fn tree(
        &self,
        locator: [u8; 32],
        now: i64,
    ) -> Result<Option<TreeMeta>, StoreError> {
        let Some(r) = sqlx::query(
            "SELECT digest, expires, upload, COALESCE(size, octet_length(blob)::BIGINT), chunks
             FROM trees WHERE locator = $1 AND expires > $2",
        )
        .bind(locator.as_slice())
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        else {
            return Ok(None);
        };
        let size = r.try_get::<i64, _>(3).map_err(db)?.max(0) as u64;
        let upload: Option<i64> = r.try_get(2).map_err(db)?;
        let chunks = match upload {
            Some(_) => r
                .try_get::<Option<i64>, _>(4)
                .map_err(db)?
                .unwrap_or(0)
                .max(0) as u64,
            None => size.div_ceil(TREE_CHUNK as u64),
        };
        Ok(Some(TreeMeta {
            locator,
            digest: r.try_get(0).map_err(db)?,
            size,
            chunks,
            expires: r.try_get(1).map_err(db)?,
            upload,
        }))
    }

    pub(super) async fn chunk(&self, tree: &TreeMeta, index: u64) -> Result<Vec<u8>, StoreError> {
        let idx = i64::try_from(index).map_err(|_| StoreError::Db("chunk index".into()))?;
        let row = match tree.upload {
            Some(upload) => {
                sqlx::query("SELECT data FROM tree_chunks WHERE upload = $1 AND idx = $2")
                    .bind(upload)
                    .bind(idx)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
            }
            // A whole blob of the previous version, read a chunk at a time.
            None => sqlx::query(
                "SELECT substring(blob FROM $2::INT FOR $3::INT) FROM trees
                 WHERE locator = $1 AND upload IS NULL AND blob IS NOT NULL",
            )
            .bind(tree.locator.as_slice())
            .bind(idx * TREE_CHUNK as i64 + 1)
            .bind(TREE_CHUNK as i64)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?,
        };
        row.ok_or_else(|| StoreError::Db("tree chunk gone".into()))?
            .try_get(0)
            .map_err(db)
    }

    pub(super) async fn begin(&self, _now: i64) -> Result<Box<dyn TreeUpload>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let id: i64 = sqlx::query("SELECT nextval('tree_uploads')")
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        Ok(Box::new(PgUpload {
            tx,
            id,
            chunks: 0,
            size: 0,
        }))
    }

    pub(super) async fn prune(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let gone: Vec<Option<i64>> =
            sqlx::query("DELETE FROM trees WHERE expires <= $1 RETURNING upload")
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(db)?;
        let uploads: Vec<i64> = gone.iter().flatten().copied().collect();
        sqlx::query("DELETE FROM tree_chunks WHERE upload = ANY($1)")
            .bind(&uploads)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(gone.len() as u64)
    }
}

/// An upload: its transaction, rolled back if it is dropped unfinished.
struct PgUpload {
    tx: Transaction<'static, Postgres>,
    id: i64,
    chunks: u64,
    size: u64,
}

#[async_trait]
impl TreeUpload for PgUpload {
    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), StoreError> {
        let len = chunk.len() as u64;
        sqlx::query("INSERT INTO tree_chunks (upload, idx, data) VALUES ($1, $2, $3)")
            .bind(self.id)
            .bind(i64::try_from(self.chunks).unwrap_or(i64::MAX))
            .bind(chunk)
            .execute(&mut *self.tx)
            .await
            .map_err(db)?;
        self.chunks += 1;
        self.size += len;
        Ok(())
    }

    async fn finish(
        self: Box<Self>,
        locator: [u8; 32],
        digest: Vec<u8>,
        now: i64,
        expires: i64,
    ) -> Result<TreePut, StoreError> {
        let PgUpload {
            mut tx,
            id,
            chunks,
            size,
        } = *self;
        let l = locator.as_slice();
        // An expired blob under the locator goes with its chunks; a live one stays, and the
        // chunks of this upload are rolled back.
        let old: Vec<Option<i64>> =
            sqlx::query("DELETE FROM trees WHERE locator = $1 AND expires <= $2 RETURNING upload")
                .bind(l)
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(db)?;
        let old: Vec<i64> = old.into_iter().flatten().collect();
        if !old.is_empty() {
            sqlx::query("DELETE FROM tree_chunks WHERE upload = ANY($1)")
                .bind(&old)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        // A concurrent upload of the same locator (any process) waits here for the first to
        // commit, then finds its row.
        let stored: Option<i64> = sqlx::query(
            "INSERT INTO trees (locator, digest, size, chunks, upload, expires)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (locator) DO NOTHING RETURNING expires",
        )
        .bind(l)
        .bind(&digest)
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(i64::try_from(chunks).unwrap_or(i64::MAX))
        .bind(id)
        .bind(expires)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(db)?;
        if let Some(e) = stored {
            tx.commit().await.map_err(db)?;
            return Ok(TreePut::Stored(e));
        }
        let have = sqlx::query("SELECT digest, expires FROM trees WHERE locator = $1")
            .bind(l)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let Some(row) = have else {
            return Err(StoreError::Db("tree vanished during upload".into()));
        };
        let d: Vec<u8> = row.try_get(0).map_err(db)?;
        let e: i64 = row.try_get(1).map_err(db)?;
        tx.rollback().await.map_err(db)?;
        Ok(if d == digest {
            TreePut::Stored(e)
        } else {
            TreePut::Conflict
        })
    }
}
