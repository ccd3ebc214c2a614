//! PostgreSQL storage: several atmls-ds processes may share one database. Each post runs the
//! `atmls_ds_post` function, which locks the mailbox row, so ordering holds across processes;
//! the one-commit-per-epoch and idempotency rules are also unique constraints (DS-4, DS-6).
//! Posts are applied in batches, one transaction per batch, answered after the commit.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::Row;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{
    kind_from_i16, kind_to_i16, tree_digest, unix_now, Fetched, Outcome, Post, Store, StoreError,
    StoredItem, TreePut,
};
use crate::transport::Kind;

/// Versioned migrations, applied in order, each once, under an advisory lock so that processes
/// starting together do not race (DS-11).
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE mailboxes (
        id BYTEA PRIMARY KEY,
        kind SMALLINT NOT NULL,
        last_seq BIGINT NOT NULL,
        touched BIGINT NOT NULL
    );
    CREATE TABLE items (
        mailbox BYTEA NOT NULL,
        seq BIGINT NOT NULL,
        kind SMALLINT NOT NULL,
        epoch BYTEA NOT NULL,
        idem BYTEA NOT NULL,
        payload BYTEA NOT NULL,
        created BIGINT NOT NULL,
        PRIMARY KEY (mailbox, seq),
        UNIQUE (mailbox, idem)
    );
    CREATE UNIQUE INDEX items_one_commit_per_epoch ON items (mailbox, epoch) WHERE kind = 1;
    CREATE INDEX items_created ON items (created) WHERE kind <> 1;
    -- Outcomes: 0 accepted before (same key), 1 accepted now, 2 epoch taken (winner),
    -- 3 stale epoch, 4 unknown mailbox, 5 wrong mailbox kind, 6 idempotency conflict.
    CREATE FUNCTION atmls_ds_post(p_kind SMALLINT, p_mailbox BYTEA, p_epoch BYTEA, p_idem BYTEA,
        p_payload BYTEA, p_now BIGINT, OUT outcome SMALLINT, OUT seq BIGINT, OUT winner BYTEA)
    AS $$
    #variable_conflict use_column
    DECLARE
        want SMALLINT := CASE WHEN p_kind = 3 THEN 2 ELSE 1 END;
        mk SMALLINT;
        s_seq BIGINT;
        s_new BIGINT;
        s_kind SMALLINT;
        s_epoch BYTEA;
        s_payload BYTEA;
    BEGIN
        winner := NULL;
        seq := 0;
        IF p_kind <> 2 THEN
            INSERT INTO mailboxes (id, kind, last_seq, touched) VALUES (p_mailbox, want, 0, p_now)
            ON CONFLICT (id) DO NOTHING;
        END IF;
        -- Bump the position first: the UPDATE locks the mailbox row until commit, so the
        -- checks below cannot race; a refusal gives the position back under the same lock.
        UPDATE mailboxes m SET last_seq = m.last_seq + 1, touched = p_now WHERE m.id = p_mailbox
            RETURNING m.kind, m.last_seq INTO mk, s_new;
        IF NOT FOUND THEN outcome := 4; RETURN; END IF;
        IF mk <> want THEN
            UPDATE mailboxes m SET last_seq = m.last_seq - 1 WHERE m.id = p_mailbox;
            outcome := 5; RETURN;
        END IF;
        SELECT i.seq, i.kind, i.epoch, i.payload INTO s_seq, s_kind, s_epoch, s_payload
            FROM items i WHERE i.mailbox = p_mailbox AND i.idem = p_idem;
        IF FOUND THEN
            UPDATE mailboxes m SET last_seq = m.last_seq - 1 WHERE m.id = p_mailbox;
            IF s_kind = p_kind AND s_epoch = p_epoch AND s_payload = p_payload THEN
                outcome := 0; seq := s_seq;
            ELSE
                outcome := 6;
            END IF;
            RETURN;
        END IF;
        IF p_kind <> 3 THEN
            SELECT i.seq, i.payload INTO s_seq, s_payload FROM items i
                WHERE i.mailbox = p_mailbox AND i.epoch = p_epoch AND i.kind = 1;
            IF FOUND THEN
                UPDATE mailboxes m SET last_seq = m.last_seq - 1 WHERE m.id = p_mailbox;
                IF p_kind = 1 THEN
                    outcome := 2; seq := s_seq; winner := s_payload;
                ELSE
                    outcome := 3;
                END IF;
                RETURN;
            END IF;
        END IF;
        s_seq := s_new;
        INSERT INTO items (mailbox, seq, kind, epoch, idem, payload, created)
            VALUES (p_mailbox, s_seq, p_kind, p_epoch, p_idem, p_payload, p_now);
        outcome := 1; seq := s_seq;
    END
    $$ LANGUAGE plpgsql;
    "#,
    ),
    (
        2,
        r#"
    -- A whole batch in one round trip: the posts in the given order, each through
    -- atmls_ds_post, so the rules are exactly those of single posts.
    CREATE FUNCTION atmls_ds_post_many(p_kind SMALLINT[], p_mailbox BYTEA[], p_epoch BYTEA[],
        p_idem BYTEA[], p_payload BYTEA[], p_now BIGINT)
    RETURNS TABLE (ord INT, outcome SMALLINT, seq BIGINT, winner BYTEA)
    AS $$
    DECLARE
        i INT;
        r RECORD;
    BEGIN
        FOR i IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
            SELECT * INTO r FROM atmls_ds_post(p_kind[i], p_mailbox[i], p_epoch[i], p_idem[i],
                p_payload[i], p_now);
            ord := i; outcome := r.outcome; seq := r.seq; winner := r.winner;
            RETURN NEXT;
        END LOOP;
    END
    $$ LANGUAGE plpgsql;
    "#,
    ),
    (
        3,
        r#"
    -- Ratchet-tree blobs of Welcomes (LG-T-3): opaque, under a random locator, until expiry.
    CREATE TABLE trees (
        locator BYTEA PRIMARY KEY,
        digest BYTEA NOT NULL,
        blob BYTEA NOT NULL,
        expires BIGINT NOT NULL
    );
    CREATE INDEX trees_expires ON trees (expires);
    "#,
    ),
];

const BATCH: usize = 128;
/// Concurrent writer tasks per process (each owns a share of the mailboxes).
const WRITERS: usize = 4;

type Job = (Post, oneshot::Sender<Result<(Outcome, bool), StoreError>>);

/// The PostgreSQL store.
pub struct PgStore {
    pool: PgPool,
    writers: Vec<mpsc::Sender<Job>>,
}

/// Database errors without values (a constraint violation's detail would name the key, and
/// logs must not hold mailbox ids, DS-12).
fn db(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(d) => StoreError::Db(format!(
            "database error {}",
            d.code().map(|c| c.into_owned()).unwrap_or_default()
        )),
        other => StoreError::Db(other.to_string()),
    }
}

async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock(7262917)")
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let have: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
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
        sqlx::query("INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)")
            .bind(v)
            .bind(unix_now())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

async fn run_batch(pool: &PgPool, jobs: &[Job]) -> Result<Vec<(Outcome, bool)>, StoreError> {
    // Lock mailboxes in one global order so that batches of different processes cannot
    // deadlock; posts to one mailbox keep their arrival order (stable sort).
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| jobs.get(i).map(|(p, _)| p.mailbox));
    let now = unix_now();
    let posts: Vec<&Post> = order
        .iter()
        .filter_map(|&i| jobs.get(i).map(|(p, _)| p))
        .collect();
    let mut tx = pool.begin().await.map_err(db)?;
    let rows = sqlx::query(
        "SELECT ord, outcome, seq, winner FROM atmls_ds_post_many($1, $2, $3, $4, $5, $6)",
    )
    .bind(
        posts
            .iter()
            .map(|p| kind_to_i16(p.kind))
            .collect::<Vec<i16>>(),
    )
    .bind(
        posts
            .iter()
            .map(|p| p.mailbox.to_vec())
            .collect::<Vec<Vec<u8>>>(),
    )
    .bind(
        posts
            .iter()
            .map(|p| p.epoch.to_vec())
            .collect::<Vec<Vec<u8>>>(),
    )
    .bind(
        posts
            .iter()
            .map(|p| p.idem.to_vec())
            .collect::<Vec<Vec<u8>>>(),
    )
    .bind(
        posts
            .iter()
            .map(|p| p.payload.clone())
            .collect::<Vec<Vec<u8>>>(),
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let mut outs: Vec<Option<(Outcome, bool)>> = vec![None; jobs.len()];
    for row in rows {
        let ord: i32 = row.try_get(0).map_err(db)?;
        let outcome: i16 = row.try_get(1).map_err(db)?;
        let seq: i64 = row.try_get(2).map_err(db)?;
        let winner: Option<Vec<u8>> = row.try_get(3).map_err(db)?;
        let out = match outcome {
            0 => (Outcome::Accepted(seq as u64), false),
            1 => (Outcome::Accepted(seq as u64), true),
            2 => (
                Outcome::Rejected(StoredItem {
                    seq: seq as u64,
                    kind: Kind::Commit,
                    payload: winner.unwrap_or_default(),
                }),
                false,
            ),
            3 => (Outcome::Stale, false),
            4 => (Outcome::UnknownMailbox, false),
            5 => (Outcome::WrongKind, false),
            6 => (Outcome::IdempotencyConflict, false),
            o => return Err(StoreError::Db(format!("unknown outcome {o}"))),
        };
        // `ord` is 1-based in the sorted order; map it back to the job.
        let job = usize::try_from(ord - 1)
            .ok()
            .and_then(|k| order.get(k))
            .copied()
            .ok_or_else(|| StoreError::Db("bad ord".into()))?;
        if let Some(slot) = outs.get_mut(job) {
            *slot = Some(out);
        }
    }
    tx.commit().await.map_err(db)?;
    outs.into_iter()
        .map(|o| o.ok_or_else(|| StoreError::Db("missing outcome".into())))
        .collect()
}

/// Tells every process's subscribers (LISTEN atmls_ds) which mailboxes have new items: after
/// the commit and outside it, because PostgreSQL serializes the commits of notifying
/// transactions; one notification carries up to 100 ids. Best effort: a lost notification
/// costs latency only (TRANSPORT-6).
async fn notify_others(pool: &PgPool, mailboxes: &[[u8; 32]]) {
    for chunk in mailboxes.chunks(100) {
        let payload = chunk.iter().map(hex::encode).collect::<Vec<_>>().join(",");
        if let Err(e) = sqlx::query("SELECT pg_notify('atmls_ds', $1)")
            .bind(payload)
            .execute(pool)
            .await
        {
            tracing::warn!(error = %db(e), "notify failed");
        }
    }
}

async fn writer(pool: PgPool, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        jobs.push(first);
        while jobs.len() < BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        // A deadlock or serialization failure aborts the whole batch: nothing was stored, so
        // it is retried as is.
        let mut result = run_batch(&pool, &jobs).await;
        for _ in 0..3 {
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            result = run_batch(&pool, &jobs).await;
        }
        match result {
            Ok(outs) => {
                let mut fresh: Vec<[u8; 32]> = jobs
                    .iter()
                    .zip(&outs)
                    .filter(|(_, (_, new))| *new)
                    .map(|((p, _), _)| p.mailbox)
                    .collect();
                fresh.sort_unstable();
                fresh.dedup();
                for ((_, reply), out) in jobs.drain(..).zip(outs) {
                    let _ = reply.send(Ok(out));
                }
                notify_others(&pool, &fresh).await;
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

impl PgStore {
    /// Connects, migrates, and forwards every process's new-item notifications (`LISTEN
    /// atmls_ds`) to `notify`, so subscribers of any process hear of posts made through another.
    pub async fn connect(
        url: &str,
        notify: broadcast::Sender<[u8; 32]>,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections((WRITERS + 8) as u32)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(db)?;
        migrate(&pool).await?;
        let mut writers = Vec::new();
        for _ in 0..WRITERS {
            let (tx, rx) = mpsc::channel(4 * BATCH);
            tokio::spawn(writer(pool.clone(), rx));
            writers.push(tx);
        }
        let mut listener = PgListener::connect_with(&pool).await.map_err(db)?;
        listener.listen("atmls_ds").await.map_err(db)?;
        tokio::spawn(async move {
            loop {
                // PgListener reconnects by itself; on a lost connection a notification may be
                // missed, which costs only latency (TRANSPORT-6).
                match listener.recv().await {
                    Ok(n) => {
                        for id in n.payload().split(',') {
                            if let Some(id) = crate::ds::api::parse_hex::<32>(id) {
                                let _ = notify.send(id);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "notification listener");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Ok(PgStore { pool, writers })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn post(&self, post: Post) -> Result<(Outcome, bool), StoreError> {
        let n = self.writers.len().max(1);
        let w = self
            .writers
            .get(post.mailbox[0] as usize % n)
            .ok_or(StoreError::Closed)?;
        let (tx, rx) = oneshot::channel();
        w.send((post, tx)).await.map_err(|_| StoreError::Closed)?;
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
        let last: Option<i64> = sqlx::query("SELECT last_seq FROM mailboxes WHERE id = $1")
            .bind(mailbox.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db)?;
        if after > last.unwrap_or(0) {
            return Ok(Fetched::CursorAhead);
        }
        let rows = sqlx::query(
            "SELECT seq, kind, payload FROM items WHERE mailbox = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(mailbox.as_slice())
        .bind(after)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        let mut items = Vec::new();
        let mut bytes = 0usize;
        let mut more = false;
        for r in rows {
            if items.len() as u32 >= limit || (bytes >= max_bytes && !items.is_empty()) {
                more = true;
                break;
            }
            let payload: Vec<u8> = r.try_get(2).map_err(db)?;
            bytes += payload.len();
            items.push(StoredItem {
                seq: r.try_get::<i64, _>(0).map_err(db)? as u64,
                kind: kind_from_i16(r.try_get(1).map_err(db)?)?,
                payload,
            });
        }
        Ok(Fetched::Page(items, more))
    }

    async fn prune(&self, messages_before: i64, idle_before: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let a = sqlx::query("DELETE FROM items WHERE kind <> 1 AND created < $1")
            .bind(messages_before)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        let b = sqlx::query(
            "DELETE FROM items WHERE mailbox IN (SELECT id FROM mailboxes WHERE touched < $1)",
        )
        .bind(idle_before)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
        sqlx::query("DELETE FROM mailboxes WHERE touched < $1")
            .bind(idle_before)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(a + b)
    }

    async fn put_tree(
        &self,
        locator: [u8; 32],
        blob: Vec<u8>,
        now: i64,
        expires: i64,
    ) -> Result<TreePut, StoreError> {
        let digest = tree_digest(&blob);
        // One statement: insert, or replace an expired blob; a live one is left alone and
        // read back to tell a repeat from a conflict. The row lock of the conflicting row
        // orders concurrent uploads across processes.
        let stored: Option<i64> = sqlx::query(
            "INSERT INTO trees (locator, digest, blob, expires) VALUES ($1, $2, $3, $4)
             ON CONFLICT (locator) DO UPDATE
                SET digest = EXCLUDED.digest, blob = EXCLUDED.blob, expires = EXCLUDED.expires
                WHERE trees.expires <= $5
             RETURNING expires",
        )
        .bind(locator.as_slice())
        .bind(&digest)
        .bind(&blob)
        .bind(expires)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(db)?;
        if let Some(e) = stored {
            return Ok(TreePut::Stored(e));
        }
        let have = sqlx::query("SELECT digest, expires FROM trees WHERE locator = $1")
            .bind(locator.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        let Some(row) = have else {
            return Err(StoreError::Db("tree vanished during upload".into()));
        };
        let d: Vec<u8> = row.try_get(0).map_err(db)?;
        let e: i64 = row.try_get(1).map_err(db)?;
        Ok(if d == digest {
            TreePut::Stored(e)
        } else {
            TreePut::Conflict
        })
    }

    async fn get_tree(&self, locator: [u8; 32], now: i64) -> Result<Option<Vec<u8>>, StoreError> {
        sqlx::query("SELECT blob FROM trees WHERE locator = $1 AND expires > $2")
            .bind(locator.as_slice())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db)
    }

    async fn prune_trees(&self, now: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM trees WHERE expires <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db)?
            .rows_affected())
    }
}
