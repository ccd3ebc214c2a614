//! Attachment blobs on PostgreSQL (CONTENT-25h): a `blobs` row per blob and a `blob_chunks` row
//! per chunk of [`BLOB_CHUNK`](super::blobs::BLOB_CHUNK) bytes, each written and read in its
//! own short statement, on a small pool of their own (like the trees') so that transfers never
//! take the connections posts need. Rows rather than large objects, for the reasons given in
//! `pg_trees.rs`.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use super::blobs::{BlobMeta, BlobStorage, Reserve};
use super::{unix_now, StoreError};

/// Migrations of the blob tables, recorded in `blob_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
    CREATE TABLE blobs (
        id BYTEA PRIMARY KEY,
        mailbox BYTEA NOT NULL,
        size BIGINT NOT NULL,
        complete BOOLEAN NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE INDEX blobs_mailbox ON blobs (mailbox);
    CREATE INDEX blobs_created ON blobs (created);
    CREATE TABLE blob_chunks (
        blob BYTEA NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
        idx BIGINT NOT NULL,
        data BYTEA NOT NULL,
        PRIMARY KEY (blob, idx)
    );
    -- Encrypted bytes: not worth an attempt at compression.
    ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
    "#,
)];

/// Connections of the blob pool.
const CONNECTIONS: u32 = 8;

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

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The blob tables of a [`super::PgStore`].
#[derive(Clone)]
pub(super) struct PgBlobs {
    pool: PgPool,
}

impl PgBlobs {
    /// Migrates the blob tables (under the mailboxes' advisory lock) and opens a pool of its
    /// own on the database of `main`.
    pub(super) async fn open(main: &PgPool) -> Result<Self, StoreError> {
        let mut tx = main.begin().await.map_err(db)?;
        sqlx::query("SELECT pg_advisory_xact_lock(7262917)")
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS blob_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let have: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM blob_migrations")
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
            sqlx::query("INSERT INTO blob_migrations (version, applied) VALUES ($1, $2)")
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
        Ok(PgBlobs { pool })
    }
}

#[async_trait]
impl BlobStorage for PgBlobs {
    async fn reserve(
        &self,
        mailbox: [u8; 32],
        id: [u8; 32],
        size: u64,
        budget: u64,
        now: i64,
    ) -> Result<Reserve, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        // One reservation of a mailbox at a time, in whichever process: the sum and the
        // insert must not interleave with another's.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(encode($1, 'hex'), 7262918))")
            .bind(mailbox.as_slice())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let used: i64 =
            sqlx::query("SELECT COALESCE(SUM(size), 0)::BIGINT FROM blobs WHERE mailbox = $1")
                .bind(mailbox.as_slice())
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
        let used = u64::try_from(used).unwrap_or(0);
        if used.saturating_add(size) > budget {
            return Ok(Reserve::OverBudget { used });
        }
        sqlx::query(
            "INSERT INTO blobs (id, mailbox, size, complete, created) VALUES ($1, $2, $3, FALSE, $4)",
        )
        .bind(id.as_slice())
        .bind(mailbox.as_slice())
        .bind(i64_of(size))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Reserve::Reserved)
    }

    async fn meta(&self, id: [u8; 32]) -> Result<Option<BlobMeta>, StoreError> {
        let Some(r) =
            sqlx::query("SELECT mailbox, size, complete, created FROM blobs WHERE id = $1")
                .bind(id.as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?
        else {
            return Ok(None);
        };
        let mailbox: Vec<u8> = r.try_get(0).map_err(db)?;
        Ok(Some(BlobMeta {
            id,
            mailbox: mailbox
                .try_into()
                .map_err(|_| StoreError::Db("bad mailbox id".into()))?,
            size: r.try_get::<i64, _>(1).map_err(db)?.max(0) as u64,
            complete: r.try_get(2).map_err(db)?,
            created: r.try_get(3).map_err(db)?,
        }))
    }

    async fn write_chunk(
        &self,
        id: [u8; 32],
        index: u64,
        data: Vec<u8>,
    ) -> Result<bool, StoreError> {
        // Only into an incomplete blob: the SELECT finds no row otherwise, and nothing is
        // inserted.
        let n = sqlx::query(
            "INSERT INTO blob_chunks (blob, idx, data)
             SELECT id, $2, $3 FROM blobs WHERE id = $1 AND NOT complete
             ON CONFLICT (blob, idx) DO UPDATE SET data = EXCLUDED.data",
        )
        .bind(id.as_slice())
        .bind(i64_of(index))
        .bind(data)
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn have(&self, id: [u8; 32]) -> Result<Vec<u64>, StoreError> {
        let rows = sqlx::query("SELECT idx FROM blob_chunks WHERE blob = $1 ORDER BY idx")
            .bind(id.as_slice())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>(0).map_err(db)?.max(0) as u64))
            .collect()
    }

    async fn complete(&self, id: [u8; 32], chunks: u64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE blobs SET complete = TRUE WHERE id = $1
             AND (SELECT COUNT(*) FROM blob_chunks WHERE blob = $1) = $2",
        )
        .bind(id.as_slice())
        .bind(i64_of(chunks))
        .execute(&self.pool)
        .await
        .map_err(db)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn chunk(&self, id: [u8; 32], index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let r = sqlx::query("SELECT data FROM blob_chunks WHERE blob = $1 AND idx = $2")
            .bind(id.as_slice())
            .bind(i64_of(index))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        r.map(|r| r.try_get(0).map_err(db)).transpose()
    }

    async fn delete(&self, id: [u8; 32]) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM blobs WHERE id = $1")
            .bind(id.as_slice())
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected();
        Ok(n == 1)
    }

    async fn prune(&self, created_before: i64, stale_before: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM blobs WHERE created < $1 OR (NOT complete AND created < $2)")
                .bind(created_before)
                .bind(stale_before)
                .execute(&self.pool)
                .await
                .map_err(db)?
                .rows_affected(),
        )
    }
}
