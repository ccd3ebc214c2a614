//! PostgreSQL storage: several atmls-ds processes may share one database. Each post runs the
//! `atmls_ds_post` function, which locks the mailbox row, so ordering holds across processes
//! (DS-4, DS-14); the idempotency rule is also a unique constraint (DS-6).
//! Posts are applied in batches, one transaction per batch, answered after the commit.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use sqlx::Row;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::pg_trees::PgTrees;
use super::{
    cursor_i64, kind_from_i16, kind_to_i16, unix_now, Fetched, Note, Outcome, Post, Store,
    StoreError, StoredItem, TreeMeta, TreeUpload,
};
use atmls_ds_wire::Kind;

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
    (
        4,
        r#"
    -- Several commits per epoch tag (DS-4): a post is refused only by a commit for its tag
    -- after the poster's cursor, the first such being the winner; commits for its tag at or
    -- before the cursor are marked superseded and expire like messages (DS-14).
    DROP INDEX items_one_commit_per_epoch;
    ALTER TABLE items ADD COLUMN superseded BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE INDEX items_commits_by_epoch ON items (mailbox, epoch, seq) WHERE kind = 1;
    CREATE INDEX items_superseded ON items (created) WHERE kind = 1 AND superseded;
    -- The six-argument functions above stay for processes of the previous version during a
    -- rolling upgrade: they refuse every commit for a tag that has one (cursor 0), which is
    -- still safe. These take the cursor.
    CREATE FUNCTION atmls_ds_post(p_kind SMALLINT, p_mailbox BYTEA, p_epoch BYTEA,
        p_after BIGINT, p_idem BYTEA, p_payload BYTEA, p_now BIGINT,
        OUT outcome SMALLINT, OUT seq BIGINT, OUT winner BYTEA)
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
                WHERE i.mailbox = p_mailbox AND i.epoch = p_epoch AND i.kind = 1
                    AND i.seq > p_after
                ORDER BY i.seq LIMIT 1;
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
        IF p_kind <> 3 AND p_after > 0 THEN
            UPDATE items i SET superseded = TRUE
                WHERE i.mailbox = p_mailbox AND i.epoch = p_epoch AND i.kind = 1
                    AND i.seq <= p_after AND NOT i.superseded;
        END IF;
        outcome := 1; seq := s_seq;
    END
    $$ LANGUAGE plpgsql;
    CREATE FUNCTION atmls_ds_post_many(p_kind SMALLINT[], p_mailbox BYTEA[], p_epoch BYTEA[],
        p_after BIGINT[], p_idem BYTEA[], p_payload BYTEA[], p_now BIGINT)
    RETURNS TABLE (ord INT, outcome SMALLINT, seq BIGINT, winner BYTEA)
    AS $$
    DECLARE
        i INT;
        r RECORD;
    BEGIN
        FOR i IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
            SELECT * INTO r FROM atmls_ds_post(p_kind[i], p_mailbox[i], p_epoch[i], p_after[i],
                p_idem[i], p_payload[i], p_now);
            ord := i; outcome := r.outcome; seq := r.seq; winner := r.winner;
            RETURN NEXT;
        END LOOP;
    END
    $$ LANGUAGE plpgsql;
    "#,
    ),
    (
        5,
        r#"
    -- A message may start a group mailbox, as a commit does (spec/group.md GROUP-4a: a group
    -- that moved after a removal may go on with a message). Created here, in the batch's
    -- mailbox order, so concurrent batches still cannot deadlock; the post function is as
    -- before.
    CREATE OR REPLACE FUNCTION atmls_ds_post_many(p_kind SMALLINT[], p_mailbox BYTEA[],
        p_epoch BYTEA[], p_after BIGINT[], p_idem BYTEA[], p_payload BYTEA[], p_now BIGINT)
    RETURNS TABLE (ord INT, outcome SMALLINT, seq BIGINT, winner BYTEA)
    AS $$
    DECLARE
        i INT;
        r RECORD;
    BEGIN
        FOR i IN 1 .. coalesce(array_length(p_kind, 1), 0) LOOP
            IF p_kind[i] = 2 THEN
                INSERT INTO mailboxes (id, kind, last_seq, touched)
                    VALUES (p_mailbox[i], 1, 0, p_now) ON CONFLICT (id) DO NOTHING;
            END IF;
            SELECT * INTO r FROM atmls_ds_post(p_kind[i], p_mailbox[i], p_epoch[i], p_after[i],
                p_idem[i], p_payload[i], p_now);
            ord := i; outcome := r.outcome; seq := r.seq; winner := r.winner;
            RETURN NEXT;
        END LOOP;
    END
    $$ LANGUAGE plpgsql;
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
    /// Tree blobs, on a pool of their own (DS-15).
    trees: PgTrees,
    /// Attachment blobs, on a pool of their own (CONTENT-25h).
    blobs: super::pg_blobs::PgBlobs,
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
    migrate_to(pool, i64::MAX).await
}

/// Applies the migrations up to version `upto` (tests start from an older schema).
async fn migrate_to(pool: &PgPool, upto: i64) -> Result<(), StoreError> {
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
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > have && *v <= upto) {
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
        "SELECT ord, outcome, seq, winner FROM atmls_ds_post_many($1, $2, $3, $4, $5, $6, $7)",
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
            .map(|p| cursor_i64(p.after))
            .collect::<Vec<i64>>(),
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
async fn notify_others(pool: &PgPool, notes: &[Note]) {
    for chunk in notes.chunks(100) {
        // A Welcome mailbox's id is prefixed `w` (DS-W-2).
        let payload = chunk
            .iter()
            .map(|n| {
                format!(
                    "{}{}",
                    if n.welcome { "w" } else { "" },
                    hex::encode(n.mailbox)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
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
                let mut fresh: Vec<Note> = jobs
                    .iter()
                    .zip(&outs)
                    .filter(|(_, (_, new))| *new)
                    .map(|((p, _), _)| Note {
                        mailbox: p.mailbox,
                        welcome: p.kind == Kind::Welcome,
                    })
                    .collect();
                fresh.sort_unstable_by_key(|n| (n.mailbox, n.welcome));
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
    pub async fn connect(url: &str, notify: broadcast::Sender<Note>) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections((WRITERS + 8) as u32)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(db)?;
        migrate(&pool).await?;
        let trees = PgTrees::open(&pool).await?;
        let blobs = super::pg_blobs::PgBlobs::open(&pool).await?;
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
                            let (welcome, id) = match id.strip_prefix('w') {
                                Some(rest) => (true, rest),
                                None => (false, id),
                            };
                            if let Some(mailbox) = atmls_ds_wire::api::parse_hex::<32>(id) {
                                let _ = notify.send(Note { mailbox, welcome });
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
        Ok(PgStore {
            pool,
            writers,
            trees,
            blobs,
        })
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
        // Attachment blobs go with the messages of their time (CONTENT-25j).
        use super::blobs::BlobStorage as _;
        let stale = unix_now().saturating_sub(super::STALE_UPLOAD_SECS);
        let blobs = self.blobs.prune(messages_before, stale).await?;
        let mut tx = self.pool.begin().await.map_err(db)?;
        let a = sqlx::query("DELETE FROM items WHERE kind <> 1 AND created < $1")
            .bind(messages_before)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        // Superseded commits expire like messages (DS-14); the others stay (DS-10).
        let a = a + sqlx::query("DELETE FROM items WHERE kind = 1 AND superseded AND created < $1")
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
        Ok(a + b + blobs)
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

    fn blobs(&self) -> Option<std::sync::Arc<dyn super::blobs::BlobStorage>> {
        Some(std::sync::Arc::new(self.blobs.clone()))
    }
}

/// Unit tests against the PostgreSQL of the test command (`ATMLS_TEST_DATABASE_URL`, started by
/// scripts/postgres.sh); skipped without it, except under CI.
#[cfg(test)]
mod tests {
    use super::*;

    const PG_ENV: &str = "ATMLS_TEST_DATABASE_URL";

    /// A pool on a fresh database, and its URL.
    async fn fresh() -> Option<(PgPool, String)> {
        let base = match std::env::var(PG_ENV) {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{PG_ENV} is not set under CI"
                );
                eprintln!("{PG_ENV} not set: skipping");
                return None;
            }
        };
        let name = format!("atmls_u_{}", hex::encode(rand::random::<[u8; 6]>()));
        let admin = PgPool::connect(&base).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let (prefix, _) = base.rsplit_once('/').unwrap();
        let url = format!("{prefix}/{name}");
        Some((PgPool::connect(&url).await.unwrap(), url))
    }

    /// Calls the post function of the current schema at a chosen time: (outcome, seq).
    async fn post_at(
        pool: &PgPool,
        kind: Kind,
        epoch: u8,
        after: i64,
        idem: u8,
        payload: &[u8],
        now: i64,
    ) -> (i16, i64) {
        let r = sqlx::query("SELECT outcome, seq FROM atmls_ds_post($1, $2, $3, $4, $5, $6, $7)")
            .bind(kind_to_i16(kind))
            .bind(vec![1u8; 32])
            .bind(vec![epoch; 32])
            .bind(after)
            .bind(vec![idem; 16])
            .bind(payload.to_vec())
            .bind(now)
            .fetch_one(pool)
            .await
            .unwrap();
        (r.try_get(0).unwrap(), r.try_get(1).unwrap())
    }

    async fn superseded(pool: &PgPool) -> Vec<i64> {
        sqlx::query("SELECT seq FROM items WHERE superseded ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get(0).unwrap())
            .collect()
    }

    async fn seqs(s: &PgStore) -> Vec<u64> {
        match s.fetch([1; 32], 0, 100, 1 << 20).await.unwrap() {
            Fetched::Page(items, _) => items.iter().map(|i| i.seq).collect(),
            Fetched::CursorAhead => panic!("cursor ahead"),
        }
    }

    #[tokio::test]
    async fn ds_14_superseded_commits_pruned_after_retention_pg() {
        let Some((pool, url)) = fresh().await else {
            return;
        };
        let s = PgStore::connect(&url, broadcast::channel(16).0)
            .await
            .unwrap();
        let c = Kind::Commit;
        // At 100: junk under tag 5 (1), the real commit of tag 5 (2), the commit of tag 6 (3).
        assert_eq!(post_at(&pool, c, 5, 0, 1, b"junk", 100).await, (1, 1));
        assert_eq!(post_at(&pool, c, 5, 1, 2, b"c5", 100).await, (1, 2));
        assert_eq!(post_at(&pool, c, 6, 2, 3, b"c6", 100).await, (1, 3));
        // Refusals mark nothing: the junk wins against cursor 0, the commit at 2 against 1.
        assert_eq!(post_at(&pool, c, 5, 0, 9, b"x", 100).await, (2, 1));
        assert_eq!(post_at(&pool, c, 5, 1, 9, b"x", 100).await, (2, 2));
        assert_eq!(post_at(&pool, Kind::Message, 5, 1, 9, b"x", 100).await.0, 3);
        // At 200: junk under tag 7 (4), superseded by a message of tag 7 (5).
        assert_eq!(post_at(&pool, c, 7, 3, 4, b"junk", 200).await, (1, 4));
        assert_eq!(
            post_at(&pool, Kind::Message, 7, 4, 5, b"m", 200).await,
            (1, 5)
        );
        assert_eq!(superseded(&pool).await, vec![1, 4]);
        assert_eq!(s.prune(150, 0).await.unwrap(), 1);
        assert_eq!(seqs(&s).await, vec![2, 3, 4, 5]);
        assert_eq!(s.prune(250, 0).await.unwrap(), 2);
        assert_eq!(seqs(&s).await, vec![2, 3]);
        assert_eq!(s.prune(10_000, 0).await.unwrap(), 0);
        assert_eq!(
            post_at(&pool, Kind::Message, 8, 3, 6, b"m", 300).await,
            (1, 6)
        );
    }

    #[tokio::test]
    async fn ds_11_old_unique_index_migrates_and_keeps_data_pg() {
        let Some((pool, url)) = fresh().await else {
            return;
        };
        // A database as version 3 left it, filled through its own function.
        migrate_to(&pool, 3).await.unwrap();
        let old = |kind: Kind, epoch: u8, idem: u8, payload: &'static [u8]| {
            sqlx::query("SELECT outcome, seq FROM atmls_ds_post($1, $2, $3, $4, $5, 100)")
                .bind(kind_to_i16(kind))
                .bind(vec![1u8; 32])
                .bind(vec![epoch; 32])
                .bind(vec![idem; 16])
                .bind(payload.to_vec())
        };
        let r = old(Kind::Commit, 5, 1, b"c1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(r.try_get::<i64, _>(1).unwrap(), 1);
        old(Kind::Message, 6, 2, b"m1")
            .execute(&pool)
            .await
            .unwrap();
        let dup = sqlx::query(
            "INSERT INTO items (mailbox, seq, kind, epoch, idem, payload, created)
             VALUES ($1, 3, 1, $2, $3, 'c2', 100)",
        )
        .bind(vec![1u8; 32])
        .bind(vec![5u8; 32])
        .bind(vec![3u8; 16])
        .execute(&pool)
        .await;
        assert!(dup.is_err(), "the old unique index");

        let s = PgStore::connect(&url, broadcast::channel(16).0)
            .await
            .unwrap();
        let indexes: Vec<String> =
            sqlx::query("SELECT indexname::text FROM pg_indexes WHERE tablename = 'items'")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get(0).unwrap())
                .collect();
        assert!(
            !indexes.iter().any(|i| i == "items_one_commit_per_epoch"),
            "{indexes:?}"
        );
        assert!(
            indexes.iter().any(|i| i == "items_commits_by_epoch"),
            "{indexes:?}"
        );
        let Fetched::Page(items, false) = s.fetch([1; 32], 0, 10, 1 << 20).await.unwrap() else {
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
        assert!(superseded(&pool).await.is_empty());
        let p = |after| Post {
            kind: Kind::Commit,
            mailbox: [1; 32],
            epoch: [5; 32],
            after,
            idem: [9; 16],
            payload: b"c2".to_vec(),
        };
        let (out, _) = s.post(p(0)).await.unwrap();
        assert!(matches!(out, Outcome::Rejected(w) if w.seq == 1 && w.payload == b"c1"));
        assert_eq!(s.post(p(2)).await.unwrap(), (Outcome::Accepted(3), true));
        assert_eq!(superseded(&pool).await, vec![1]);
        // The previous version's function still works, with the old rule.
        let r = old(Kind::Commit, 5, 4, b"c3")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(r.try_get::<i16, _>(0).unwrap(), 2);
        let r = old(Kind::Message, 7, 5, b"m2")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            (
                r.try_get::<i16, _>(0).unwrap(),
                r.try_get::<i64, _>(1).unwrap()
            ),
            (1, 4)
        );
    }
}
