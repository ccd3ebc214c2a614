//! Client state: openmls's group state and ours, in one SQLite database (a file by default,
//! `:memory:` for tests). Every state change is one SQLite transaction, so after a crash the
//! client sees the old epoch or the new one, never a mix (spec/storage.md STORE-1). With the
//! `encrypted-store` feature the file can be encrypted as a whole (STORE-6 to STORE-9).

pub(crate) mod blob_erasure;
pub(crate) mod consent;
mod encryption;
pub(crate) mod group_state;
pub(crate) mod history;
mod keys;
// Used by the PDS directory (feature `pds`); its tables exist in every build.
mod login;
#[cfg_attr(not(feature = "pds"), allow(dead_code))]
pub(crate) mod oauth;
pub(crate) mod outbox;
mod passphrase;
mod provider;
pub(crate) mod tables;
pub(crate) mod trust;

pub use keys::{KeyProvider, KeyProviderError, KeyPurpose};
pub use login::SavedLogin;
pub use passphrase::PassphraseKey;
pub(crate) use provider::Provider;
#[doc(hidden)]
pub use provider::{CodecError, StorageCodec};

use std::path::Path;

use rusqlite::Connection;

/// Errors of the storage layer.
///
/// ```
/// use atmls::storage::{StorageError, Store};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("atmls.db");
/// // A database written by a later version of atmls (schema version 999).
/// rusqlite::Connection::open(&path)?.pragma_update(None, "user_version", 999)?;
/// match Store::open(&path) {
///     Err(e @ StorageError::NewerSchema { found: 999, .. }) => assert!(!e.is_retryable()),
///     other => panic!("expected NewerSchema, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Schema migration failed.
    #[error("migration: {0}")]
    Migration(String),
    /// A stored value could not be decoded (corrupt or foreign database).
    #[error("corrupt stored value: {0}")]
    Corrupt(&'static str),
    /// The database was written by a newer atmls (its schema version is past the last this
    /// version knows): opening it could lose what the newer version stores, so it is left
    /// untouched. Upgrade atmls.
    #[error(
        "the database has schema version {found}; this atmls knows up to {known}: upgrade atmls"
    )]
    NewerSchema {
        /// The database's schema version.
        found: i64,
        /// The last version this atmls knows.
        known: usize,
    },
    /// The store cannot be read with this key: a wrong key or passphrase, an encrypted store
    /// opened without its key (`Store::open`), or a file that is not a store. Nothing was
    /// written (STORE-9).
    #[error(
        "the store cannot be read with this key: a wrong key or passphrase, an encrypted \
         store opened without its key, or not an atmls store"
    )]
    WrongKey,
    /// The key provider gave no key (STORE-7).
    #[error("key: {0}")]
    Key(#[from] KeyProviderError),
    /// A file operation of the store failed (encrypting a plain store in place, STORE-8).
    #[error("store file: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// Whether retrying can help (a busy or locked database).
    ///
    /// ```
    /// use atmls::storage::StorageError;
    /// use rusqlite::ffi;
    /// // Another connection holds the database.
    /// let busy = rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_BUSY), None);
    /// assert!(StorageError::Sqlite(busy).is_retryable());
    /// assert!(!StorageError::Corrupt("group state").is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            // Another connection holds the database for a moment.
            StorageError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            StorageError::Key(e) => e.is_retryable(),
            StorageError::Sqlite(_)
            | StorageError::Migration(_)
            | StorageError::Corrupt(_)
            | StorageError::NewerSchema { .. }
            | StorageError::WrongKey
            | StorageError::Io(_) => false,
        }
    }
}

/// Our schema, by version (`PRAGMA user_version`). Append only.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE atmls_account (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE atmls_groups (
    group_id BLOB PRIMARY KEY,
    mailbox BLOB NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0,
    kind INTEGER NOT NULL,
    dm_peer TEXT,
    status INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE INDEX atmls_groups_dm ON atmls_groups(dm_peer);
CREATE TABLE atmls_own_posts (group_id BLOB NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (group_id, seq));
CREATE TABLE atmls_outbox (
    group_id BLOB PRIMARY KEY,
    epoch_tag BLOB NOT NULL,
    idem BLOB NOT NULL,
    commit_msg BLOB NOT NULL,
    welcome BLOB,
    recipients BLOB NOT NULL
);
CREATE TABLE atmls_welcome_outbox (id INTEGER PRIMARY KEY, mailbox BLOB NOT NULL, idem BLOB NOT NULL, payload BLOB NOT NULL);
CREATE TABLE atmls_key_packages (
    kp_ref BLOB PRIMARY KEY,
    last_resort INTEGER NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE TABLE atmls_kp_deletions (kp_ref BLOB PRIMARY KEY);
CREATE TABLE atmls_pins (did TEXT PRIMARY KEY, identity_key BLOB NOT NULL, first_seen INTEGER NOT NULL);
CREATE TABLE atmls_messages (
    id INTEGER PRIMARY KEY,
    group_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    sender_did TEXT NOT NULL,
    sender_installation BLOB NOT NULL,
    content BLOB NOT NULL,
    received INTEGER NOT NULL,
    outgoing INTEGER NOT NULL
);
CREATE INDEX atmls_messages_group ON atmls_messages(group_id, id);
"#,
    r#"
CREATE TABLE atmls_kp_grace (kp_ref BLOB PRIMARY KEY, until INTEGER NOT NULL);
"#,
    history::MIGRATION_3,
    // v4: trust (spec/trust.md): verification, the followed declaration, the history of key
    // changes, revoked devices.
    r#"
ALTER TABLE atmls_pins ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE atmls_pins ADD COLUMN declared_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE atmls_pin_history (
    id INTEGER PRIMARY KEY,
    did TEXT NOT NULL,
    old_key BLOB NOT NULL,
    new_key BLOB NOT NULL,
    kind TEXT NOT NULL,
    was_verified INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX atmls_pin_history_did ON atmls_pin_history(did, id);
CREATE TABLE atmls_revoked (installation BLOB PRIMARY KEY, did TEXT NOT NULL, seen INTEGER NOT NULL);
"#,
    // v5: the endorsed predecessors of each pinned key (TRUST-14): leaves they certified stay
    // valid until their devices re-certify.
    r#"
CREATE TABLE atmls_pin_predecessors (did TEXT NOT NULL, key BLOB NOT NULL, PRIMARY KEY (did, key));
"#,
    // v6: the ratchet tree out of band (spec/large-groups.md LG-T-*): the seed of an outgoing
    // commit's tree reference, and trees waiting for upload before their Welcomes go out.
    r#"
ALTER TABLE atmls_outbox ADD COLUMN tree_seed BLOB;
CREATE TABLE atmls_tree_outbox (locator BLOB PRIMARY KEY, blob BLOB NOT NULL);
"#,
    // v7: the KeyPackage refs of an outgoing commit's joiners, in recipient order, so that
    // each is sent a Welcome holding only its own secrets (spec/large-groups.md LG-9). NULL
    // in rows written before: their joiners get the whole Welcome.
    r#"
ALTER TABLE atmls_outbox ADD COLUMN recipient_refs BLOB;
"#,
    // v8: accounts met in a group whose identity key is not pinned yet, checked against the
    // directory in the background, with a budget and back-off (spec/trust.md TRUST-20).
    r#"
CREATE TABLE atmls_verify_queue (
    did TEXT PRIMARY KEY,
    next_try INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX atmls_verify_queue_next ON atmls_verify_queue(next_try);
"#,
    // v9: application messages and leave proposals until the transport accepted them, with
    // the idempotency key of their current ciphertext (spec/group.md GROUP-11).
    outbox::MIGRATION_9,
    // v10: the HPKE init key of each recipient's KeyPackage, in recipient order, to which its
    // Welcome is sealed (spec/group.md GROUP-12). NULL in rows written before: their
    // Welcomes go out in clear (version 1), as before.
    r#"
ALTER TABLE atmls_outbox ADD COLUMN recipient_keys BLOB;
"#,
    // v11: blobs of deleted and expired attachments, until their store erased them
    // (spec/content.md CONTENT-25k).
    blob_erasure::MIGRATION_11,
    // v12: the group's mailbox moves at every removal (spec/group.md GROUP-4a): its current
    // capability (NULL: the one derived from the group id), the capabilities it had before
    // (to erase blobs stored under them, CONTENT-25k), and the mailbox each sealed outbox
    // item was sealed for (GROUP-11).
    tables::MIGRATION_12,
    // v13: per-group flags and records as columns and tables instead of account values under
    // keys spelled from the group id (STORE-4); the data step moves existing values.
    group_state::MIGRATION_13,
    // v14: consent (spec/consent.md): decisions on accounts, and conversations held back as
    // message requests or being left.
    consent::MIGRATION_14,
    // v15: the PDS directory's OAuth sessions and authorization requests under way
    // (spec/records.md REC-13 … REC-16).
    oauth::MIGRATION_15,
    // v16: the account login an app keeps between runs (session tokens, its PDS).
    login::MIGRATION_16,
];

/// Rust steps run right after the SQL migration of the same version, in its transaction
/// (for data SQL alone cannot convert).
type MigrationStep = fn(&Connection) -> Result<(), StorageError>;
const MIGRATION_STEPS: &[(usize, MigrationStep)] = &[
    (3, history::backfill_3),
    (13, group_state::move_account_values_13),
];

// The example's `unwrap`s are on an in-memory store it creates itself.
/// A client's database.
///
/// ```
/// // unwrap: an in-memory store the example opens itself; no untrusted input.
/// let store = atmls::storage::Store::in_memory().unwrap();
/// # drop(store);
/// ```
pub struct Store {
    pub(crate) conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use atmls::{directory::MemoryDirectory, storage::Store, transport::MemoryTransport, Client};
    /// use atmls::identity::DeviceIdentity;
    /// let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// let tmp = tempfile::tempdir()?;
    /// let path = tmp.path().join("atmls.db");
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::open(&path)?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .build().await?;
    /// let did = alice.did().clone();
    /// drop(alice);
    /// // Reopened, the database holds the device's identity: no need to give it again.
    /// let again = Client::builder(dir, net, Store::open(&path)?).build().await?;
    /// assert_eq!(again.did(), &did);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        // An encrypted store (or another file) has no SQLite header: "not a database".
        Self::open_file(Connection::open(path)?).map_err(|e| match e {
            StorageError::Sqlite(s) if encryption::is_not_a_database(&s) => StorageError::WrongKey,
            e => e,
        })
    }

    /// Opens (creating if needed) the encrypted database at `path` with the key from `keys`
    /// (spec/storage.md STORE-6 to STORE-9), in WAL mode, and migrates it. A plain store at
    /// `path` is first encrypted in place. A key that does not open the store is
    /// [`StorageError::WrongKey`], with nothing written.
    ///
    /// ```
    /// use atmls::storage::{PassphraseKey, StorageError, Store};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("atmls.db");
    /// let salt = PassphraseKey::salt_file_for(&path);
    /// // The weakest Argon2id cost accepted, to keep the example quick.
    /// let keys = PassphraseKey::new("correct horse battery staple", &salt).cost(19 * 1024, 2);
    /// drop(Store::open_encrypted(&path, &keys)?);
    /// let wrong = PassphraseKey::new("tr0ub4dor&3", &salt);
    /// assert!(matches!(Store::open_encrypted(&path, &wrong), Err(StorageError::WrongKey)));
    /// // Without its key, it is not a database.
    /// assert!(matches!(Store::open(&path), Err(StorageError::WrongKey)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "encrypted-store")]
    pub fn open_encrypted(
        path: impl AsRef<Path>,
        keys: &dyn KeyProvider,
    ) -> Result<Self, StorageError> {
        use encryption::FileState;
        let path = path.as_ref();
        encryption::remove_leftovers(path)?;
        let state = encryption::file_state(path)?;
        let key = keys.key(match state {
            FileState::Encrypted => KeyPurpose::Open,
            FileState::New | FileState::Plain => KeyPurpose::Create,
        })?;
        if state == FileState::Plain {
            encryption::encrypt_in_place(path, &key, MIGRATIONS.len())?;
        }
        let conn = encryption::open_keyed(path, &key)?;
        drop(key);
        Self::open_file(conn)
    }

    /// A file's connection: WAL, full sync (STORE-2), then migrated.
    fn open_file(conn: Connection) -> Result<Self, StorageError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Self::init(conn)
    }

    /// A database that lives in memory (tests).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use atmls::{directory::MemoryDirectory, storage::Store, transport::MemoryTransport, Client};
    /// let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// // A new store holds no identity: the builder needs one.
    /// let built = Client::builder(dir, net, Store::in_memory()?).build().await;
    /// assert!(matches!(built, Err(atmls::Error::NoIdentity)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn in_memory() -> Result<Self, StorageError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StorageError> {
        // Before anything writes: a newer version's database is not touched (STORE-3).
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if usize::try_from(version).map_or(true, |v| v > MIGRATIONS.len()) {
            return Err(StorageError::NewerSchema {
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement on a hot path is prepared once per connection (LG-10).
        conn.set_prepared_statement_cache_capacity(128);
        openmls_sqlite_storage::SqliteStorageProvider::<StorageCodec, &mut Connection>::new(
            &mut conn,
        )
        .run_migrations()
        .map_err(|e| StorageError::Migration(e.to_string()))?;
        let tx = conn.transaction()?;
        for (i, m) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            tx.execute_batch(m)?;
            for (_, step) in MIGRATION_STEPS.iter().filter(|(v, _)| *v == i + 1) {
                step(&tx)?;
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        tx.commit()?;
        Ok(Store { conn })
    }

    /// Bytes the database uses (its pages minus free ones): for benchmarks of state size.
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub fn used_bytes(&self) -> Result<u64, StorageError> {
        let q = |p: &str| -> Result<u64, StorageError> {
            // SQLCipher answers `page_size` on an encrypted store with its cipher page size, as
            // text.
            let v: rusqlite::types::Value = self.conn.pragma_query_value(None, p, |r| r.get(0))?;
            Ok(match v {
                rusqlite::types::Value::Integer(i) => u64::try_from(i).unwrap_or(0),
                rusqlite::types::Value::Text(t) => t.parse().unwrap_or(0),
                _ => 0,
            })
        };
        Ok(q("page_count")?.saturating_sub(q("freelist_count")?) * q("page_size")?)
    }

    /// Every row of every table, in a stable order: for tests asserting that a refused input
    /// changed nothing.
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub fn snapshot(&self) -> Result<Vec<(String, Vec<String>)>, StorageError> {
        let mut tables: Vec<String> = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tables.retain(|t| !t.starts_with("sqlite_"));
        let mut out = Vec::new();
        for t in tables {
            let mut stmt = self.conn.prepare(&format!("SELECT * FROM \"{t}\""))?;
            let n = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    let mut s = String::new();
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        s.push_str(&format!("{v:?}|"));
                    }
                    Ok(s)
                })?
                .collect::<Result<_, _>>()?;
            rows.sort();
            out.push((t, rows));
        }
        Ok(out)
    }
}

// Test code: `unwrap` only on a database the test writes itself, never on another party's
// input.
#[cfg(test)]
mod tests {
    // Test code: `unwrap` only on databases and files the tests create themselves in a
    // temporary directory, never on input from another party.
    use super::*;

    /// STORE-3: a database from a newer atmls (a schema version past ours) is refused with
    /// a clear error, and left as it was; a negative version (not ours) too.
    #[test]
    fn store_3_a_store_from_a_newer_version_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.db");
        drop(Store::open(&path).unwrap());
        let newer = MIGRATIONS.len() as i64 + 1;
        for version in [newer, -1] {
            {
                let c = Connection::open(&path).unwrap();
                c.pragma_update(None, "user_version", version).unwrap();
                c.execute_batch("CREATE TABLE from_the_future (x)").unwrap();
            }
            let before = std::fs::read(&path).unwrap();
            match Store::open(&path) {
                Err(e @ StorageError::NewerSchema { found, known }) => {
                    assert_eq!((found, known), (version, MIGRATIONS.len()));
                    assert!(!e.is_retryable());
                    assert!(e.to_string().contains("upgrade atmls"), "{e}");
                }
                other => panic!("opened a newer store: {other:?}"),
            }
            assert_eq!(std::fs::read(&path).unwrap(), before);
            let c = Connection::open(&path).unwrap();
            c.execute_batch("DROP TABLE from_the_future").unwrap();
        }
    }

    /// GROUP-4a, STORE-1: a database written before mailboxes moved (schema 11) opens, and
    /// its groups and sealed outbox items read as being in their first mailbox.
    #[test]
    fn group_4a_a_store_of_schema_11_reads_its_groups_in_their_first_mailbox() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let gid = vec![4u8; 32];
        let first = crate::group::mailbox_for(&gid);
        {
            let c = Connection::open(&path).unwrap();
            let tx = c.unchecked_transaction().unwrap();
            for m in &MIGRATIONS[..11] {
                tx.execute_batch(m).unwrap();
            }
            tx.pragma_update(None, "user_version", 11).unwrap();
            tx.execute(
                "INSERT INTO atmls_groups (group_id, mailbox, cursor, kind, status, created)
                 VALUES (?1, ?2, 7, 1, 1, 1)",
                rusqlite::params![gid, first.id.0.to_vec()],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO atmls_message_outbox
                 (group_id, content, checked, idem, epoch_tag, after, payload, inner, created)
                 VALUES (?1, x'01', 1, ?2, ?3, 7, x'02', x'03', 1)",
                rusqlite::params![gid, vec![5u8; 16], vec![6u8; 32]],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let row = tables::group_get(&store.conn, &gid).unwrap().unwrap();
        assert_eq!((row.capability, row.cursor), (None, 7));
        assert_eq!(row.current_mailbox(), first);
        let queued = outbox::first(&store.conn, &gid).unwrap().unwrap();
        let outbox::QueueState::Sealed(sealed) = queued.state else {
            panic!("the queued item lost its ciphertext: {queued:?}")
        };
        assert_eq!(sealed.capability, None);
        assert_eq!(
            tables::group_capabilities(&store.conn, &gid).unwrap(),
            vec![first.post_secret.unwrap()]
        );
    }
}
