//! Encryption at rest (spec/storage.md STORE-6 to STORE-9): the database is SQLCipher's, every
//! page encrypted and authenticated under a raw 32-byte key from a
//! [`KeyProvider`](super::KeyProvider); a plain store is encrypted in place by exporting it
//! to a file beside it, then renaming that file over it.

use std::path::Path;
#[cfg(feature = "encrypted-store")]
use std::path::PathBuf;

#[cfg(feature = "encrypted-store")]
use rusqlite::Connection;
#[cfg(feature = "encrypted-store")]
use zeroize::Zeroizing;

#[cfg(feature = "encrypted-store")]
use super::StorageError;

/// Syncs the directory holding `file`, so that a rename in it survives a crash. Windows
/// cannot open a directory; its renames are left to the filesystem.
pub(crate) fn sync_dir(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(d) = file.parent() {
        let d = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        std::fs::File::open(d)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// What is at a store's path, by its first 16 bytes: SQLite's magic string, or (SQLCipher)
/// the file's random salt.
#[cfg(feature = "encrypted-store")]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// Nothing, or an empty file: a new store.
    New,
    /// A plain SQLite database.
    Plain,
    /// Anything else: an encrypted store (or not a database, which no key opens).
    Encrypted,
}

#[cfg(feature = "encrypted-store")]
pub(crate) fn file_state(path: &Path) -> std::io::Result<FileState> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::New),
        Err(e) => return Err(e),
    };
    let mut head = Vec::with_capacity(16);
    f.take(16).read_to_end(&mut head)?;
    Ok(match head.as_slice() {
        [] => FileState::New,
        b"SQLite format 3\0" => FileState::Plain,
        _ => FileState::Encrypted,
    })
}

/// Where a plain store is exported to while it is encrypted: `<store>.encrypting`.
#[cfg(feature = "encrypted-store")]
fn temp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".encrypting");
    PathBuf::from(s)
}

/// The files SQLite may keep for the database at `db`.
#[cfg(feature = "encrypted-store")]
fn with_sidecars(db: &Path) -> [PathBuf; 4] {
    let side = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [
        side("-journal"),
        side("-wal"),
        side("-shm"),
        db.to_path_buf(),
    ]
}

/// Removes what an interrupted encryption left (STORE-8): the export is never trusted, the
/// store at `path` is whole without it.
#[cfg(feature = "encrypted-store")]
pub(crate) fn remove_leftovers(path: &Path) -> std::io::Result<()> {
    for f in with_sidecars(&temp_path(path)) {
        match std::fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// `x'<64 hex digits>'`: SQLCipher's raw-key form, which skips its own PBKDF2 (STORE-6).
#[cfg(feature = "encrypted-store")]
fn raw_key(key: &[u8; 32]) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Sized up front: never reallocated, so no unzeroized copy is left behind.
    let mut s = Zeroizing::new(String::with_capacity(2 + 64 + 1));
    s.push_str("x'");
    for b in key {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s.push('\'');
    s
}

/// Whether SQLite said the file is not a database: what SQLCipher says when the key's HMAC
/// check of page 1 fails.
pub(crate) fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase)
}

/// A connection to the encrypted store at `path`, its key checked: a wrong key is
/// [`StorageError::WrongKey`], before anything is written (STORE-9).
#[cfg(feature = "encrypted-store")]
pub(crate) fn open_keyed(path: &Path, key: &[u8; 32]) -> Result<Connection, StorageError> {
    let conn = Connection::open(path)?;
    // The key must come before anything reads the database. SQLCipher's own log (to stderr by
    // default) is off: a wrong key is our typed error, not a line on the app's stderr.
    let mut sql = Zeroizing::new(String::with_capacity(40 + 16 + 67 + 2));
    sql.push_str("PRAGMA cipher_log_level = NONE; PRAGMA key = \"");
    sql.push_str(&raw_key(key));
    sql.push_str("\";");
    conn.execute_batch(&sql)?;
    // SQLCipher derives nothing until a page is read: reading the schema checks page 1's HMAC.
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => {}
        Err(e) if is_not_a_database(&e) => return Err(StorageError::WrongKey),
        Err(e) => return Err(e.into()),
    }
    // Sorts and temporary tables never go to a (plain) temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// Encrypts the plain store at `path` in place under `key` (STORE-8): exported to
/// `<store>.encrypting`, synced, renamed over the store. A crash before the rename leaves the
/// plain store whole (the export is removed by the next opening), after it the encrypted one.
/// `known` is the last schema version this atmls knows: a newer store is not touched.
#[cfg(feature = "encrypted-store")]
pub(crate) fn encrypt_in_place(
    path: &Path,
    key: &[u8; 32],
    known: usize,
) -> Result<(), StorageError> {
    let tmp = temp_path(path);
    if let Err(e) = export(path, &tmp, key, known) {
        // Best effort: the next opening removes it too.
        let _ = remove_leftovers(path);
        return Err(e);
    }
    std::fs::File::open(&tmp)?.sync_all()?;
    // The plain file, to overwrite once it is unlinked (Unix: an open file can be renamed
    // over; elsewhere the rename would fail).
    #[cfg(unix)]
    let old = std::fs::OpenOptions::new().write(true).open(path).ok();
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    #[cfg(unix)]
    if let Some(f) = old {
        scrub(f);
    }
    Ok(())
}

/// Copies the plain store into a new encrypted database at `tmp`, schema version included.
#[cfg(feature = "encrypted-store")]
fn export(path: &Path, tmp: &Path, key: &[u8; 32], known: usize) -> Result<(), StorageError> {
    let tmp = tmp
        .to_str()
        .ok_or_else(|| StorageError::Migration("the store's path is not UTF-8".into()))?;
    let plain = Connection::open(path)?;
    let version: i64 = plain.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if usize::try_from(version).map_or(true, |v| v > known) {
        return Err(StorageError::NewerSchema {
            found: version,
            known,
        });
    }
    // Folds the WAL into the file and removes it, so that no WAL of the plain store is left
    // beside the encrypted one. SQLite keeps WAL mode, without an error, while another
    // connection has the store open: busy, retryable.
    let mode: String =
        plain.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(StorageError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("the store is open elsewhere".into()),
        )));
    }
    plain.execute(
        "ATTACH DATABASE ?1 AS encrypted KEY ?2",
        (tmp, raw_key(key).as_str()),
    )?;
    // Exclusive: nobody writes the plain store while it is copied.
    plain.execute_batch("BEGIN EXCLUSIVE")?;
    plain.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
    plain.pragma_update(Some("encrypted"), "user_version", version)?;
    plain.execute_batch("COMMIT; DETACH DATABASE encrypted")?;
    Ok(())
}

/// Overwrites the unlinked plain store with zeros: best effort, where the filesystem writes
/// in place (not on copy-on-write filesystems, nor under an SSD's wear levelling).
#[cfg(all(unix, feature = "encrypted-store"))]
fn scrub(mut f: std::fs::File) {
    use std::io::Write;
    let Ok(len) = f.metadata().map(|m| m.len()) else {
        return;
    };
    let zeros = [0u8; 64 << 10];
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(zeros.len() as u64)).unwrap_or(zeros.len());
        if f.write_all(&zeros[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
    let _ = f.sync_all();
}

// Test code: `unwrap` only on stores and files the tests create themselves in a temporary
// directory.
#[cfg(all(test, feature = "encrypted-store"))]
mod tests {
    use super::super::{KeyProvider, KeyProviderError, KeyPurpose, Store, MIGRATIONS};
    use super::*;

    /// A key given outright, and what it was asked for.
    struct Fixed([u8; 32], std::cell::Cell<Option<KeyPurpose>>);

    impl KeyProvider for Fixed {
        fn key(&self, purpose: KeyPurpose) -> Result<Zeroizing<[u8; 32]>, KeyProviderError> {
            self.1.set(Some(purpose));
            Ok(Zeroizing::new(self.0))
        }
    }

    fn key(b: u8) -> Fixed {
        Fixed([b; 32], Default::default())
    }

    /// Every file at or beside `db`, with its bytes.
    fn files(db: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut all = with_sidecars(db).to_vec();
        all.extend(with_sidecars(&temp_path(db)));
        all.into_iter()
            .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
            .collect()
    }

    fn plain_store(path: &Path) {
        let s = Store::open(path).unwrap();
        s.conn
            .execute(
                "INSERT INTO atmls_account (k, v) VALUES ('probe', x'0102')",
                [],
            )
            .unwrap();
    }

    fn probe(s: &Store) -> Vec<u8> {
        s.conn
            .query_row("SELECT v FROM atmls_account WHERE k = 'probe'", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    /// STORE-6: SQLite is SQLCipher in this build, and the key is given raw.
    #[test]
    fn store_6_sqlite_is_sqlcipher_and_the_key_is_raw() {
        let c = Connection::open_in_memory().unwrap();
        let v: String = c
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))
            .unwrap();
        assert!(v.starts_with('4'), "{v}");
        let k = raw_key(&[0xab; 32]);
        assert_eq!(k.len(), 67);
        assert_eq!(&k[..4], "x'ab");
        assert!(k.ends_with("ab'"));
    }

    /// STORE-6, STORE-9: a new encrypted store has no SQLite header; it is asked for with
    /// `Create`, reopened with `Open`; a wrong key and no key are `WrongKey`, and change no
    /// byte of any file.
    #[test]
    fn store_9_a_wrong_key_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let right = key(1);
        drop(Store::open_encrypted(&path, &right).unwrap());
        assert_eq!(right.1.get(), Some(KeyPurpose::Create));
        assert_eq!(file_state(&path).unwrap(), FileState::Encrypted);
        let before = files(&path);
        assert_eq!(
            before.len(),
            1,
            "only the database is left after a clean close"
        );
        let wrong = key(2);
        let e = Store::open_encrypted(&path, &wrong).unwrap_err();
        assert!(
            matches!(e, StorageError::WrongKey) && !e.is_retryable(),
            "{e}"
        );
        assert_eq!(wrong.1.get(), Some(KeyPurpose::Open));
        assert_eq!(files(&path), before);
        assert!(matches!(Store::open(&path), Err(StorageError::WrongKey)));
        assert_eq!(files(&path), before);
        drop(Store::open_encrypted(&path, &right).unwrap());
    }

    /// STORE-8: a plain store is encrypted in place, keeps its rows and schema version, and
    /// what an interrupted encryption left beside it is removed first.
    #[test]
    fn store_8_a_plain_store_is_encrypted_in_place_and_leftovers_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        plain_store(&path);
        // A crash in the middle of an earlier export left these.
        let tmp = temp_path(&path);
        std::fs::write(&tmp, b"half an export").unwrap();
        std::fs::write(with_sidecars(&tmp)[0].clone(), b"its journal").unwrap();
        let k = key(7);
        let s = Store::open_encrypted(&path, &k).unwrap();
        assert_eq!(k.1.get(), Some(KeyPurpose::Create));
        assert_eq!(probe(&s), vec![1, 2]);
        let v: i64 = s
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        drop(s);
        assert_eq!(file_state(&path).unwrap(), FileState::Encrypted);
        let left: Vec<_> = files(&path).into_iter().map(|(p, _)| p).collect();
        assert_eq!(left, vec![path.clone()]);
        assert_eq!(
            probe(&Store::open_encrypted(&path, &k).unwrap()),
            vec![1, 2]
        );
    }

    /// STORE-3, STORE-8: a plain store of a newer atmls is not encrypted (nor touched); a
    /// plain store open elsewhere is not either, and the error is retryable.
    #[test]
    fn store_8_a_newer_or_busy_plain_store_is_left_plain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        plain_store(&path);
        let other = Connection::open(&path).unwrap();
        other
            .query_row("SELECT count(*) FROM atmls_account", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
        let e = Store::open_encrypted(&path, &key(3)).unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert_eq!(file_state(&path).unwrap(), FileState::Plain);
        assert!(!temp_path(&path).exists());
        drop(other);
        assert_eq!(probe(&Store::open(&path).unwrap()), vec![1, 2]);

        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 999)
            .unwrap();
        let before_newer = std::fs::read(&path).unwrap();
        let e = Store::open_encrypted(&path, &key(3)).unwrap_err();
        assert!(
            matches!(e, StorageError::NewerSchema { found: 999, .. }),
            "{e}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before_newer);
        assert!(!temp_path(&path).exists());
    }
}
