//! The CLI's store is encrypted at rest under a passphrase (spec/storage.md STORE-6 to
//! STORE-9): a plain store is encrypted in place; a wrong or missing passphrase is refused
//! with an error that says what to do, before any network call, and the store is unchanged.
//! No PDS is needed: the store is opened before the login, which then fails (nothing listens
//! at the handle resolver's address).
//!
//! Test code: `unwrap` only on stores the test creates in a temporary directory.
#![cfg(feature = "pds")]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use atmls::storage::{PassphraseKey, StorageError, Store};

const PASS: &str = "cli store passphrase";

fn publish(store: &Path, passphrase: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atmls"));
    c.args(["pds", "--handle-resolver", "http://127.0.0.1:9", "--store"])
        .arg(store)
        .args(["publish", "--handle", "alice.test"])
        .env_remove("ATMLS_PASSPHRASE")
        .env("ATMLS_APP_PASSWORD", "not used")
        .stdin(Stdio::null());
    if let Some(p) = passphrase {
        c.env("ATMLS_PASSPHRASE", p);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn head(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()[..16].to_vec()
}

#[test]
fn store_8_the_cli_encrypts_a_plain_store_and_refuses_a_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("atmls.db");
    drop(Store::open(&db).unwrap());
    assert_eq!(head(&db), b"SQLite format 3\0");

    // No passphrase: refused, the store left plain.
    let o = publish(&db, None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("ATMLS_PASSPHRASE"), "{}", stderr(&o));
    assert_eq!(head(&db), b"SQLite format 3\0");

    // With one: encrypted in place, then the login fails (nothing to log in to).
    let o = publish(&db, Some(PASS));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("encrypting the plain store"),
        "{}",
        stderr(&o)
    );
    assert_ne!(head(&db), b"SQLite format 3\0");
    let keys = PassphraseKey::new(PASS, PassphraseKey::salt_file_for(&db));
    drop(Store::open_encrypted(&db, &keys).unwrap());

    // A wrong passphrase: a clear error, before any login, and not a byte changed.
    let before = std::fs::read(&db).unwrap();
    let o = publish(&db, Some("not the passphrase"));
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("wrong passphrase") && e.contains("ATMLS_PASSPHRASE"),
        "{e}"
    );
    assert!(!e.contains("encrypting"), "{e}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let wrong = PassphraseKey::new("not the passphrase", PassphraseKey::salt_file_for(&db));
    assert!(matches!(
        Store::open_encrypted(&db, &wrong),
        Err(StorageError::WrongKey)
    ));
}
