//! STORE-6 to STORE-9, encryption at rest, with the real client: no secret key and no message
//! text can be found in the database file, its WAL or its journal (and the same search finds
//! them in a plain store, so it can fail); a plain store encrypted in place keeps every
//! conversation; a wrong passphrase is refused and changes no byte on disk.
//!
//! Test code: `unwrap` only on stores and files the tests create in a temporary directory.
mod common;

use std::path::{Path, PathBuf};

use atmls::identity::DeviceIdentity;
use atmls::storage::{
    KeyProvider, KeyProviderError, KeyPurpose, PassphraseKey, StorageError, Store,
};
use atmls::Client;
use atmls::GroupId;
use common::{did, stored_texts, World};

const SENT: &str = "sent: the eagle lands at midnight 7f3c9a";
const RECEIVED: &str = "received: the falcon flies at dawn 2b8e41";

/// The weakest Argon2id cost accepted, to keep the tests quick.
fn passphrase(path: &Path, p: &str) -> PassphraseKey {
    PassphraseKey::new(p, PassphraseKey::salt_file_for(path)).cost(19 * 1024, 2)
}

/// The database and every file SQLite keeps beside it, as they are now.
fn files(db: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    ["", "-wal", "-journal", "-shm"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            PathBuf::from(p)
        })
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

fn find(haystack: &[(PathBuf, Vec<u8>)], needle: &[u8]) -> Option<PathBuf> {
    haystack
        .iter()
        .find(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
        .map(|(p, _)| p.clone())
}

/// What must not be readable on disk: alice's installation and identity secret keys as
/// stored (raw), the HPKE private keys openmls stores (KeyPackage init and encryption keys,
/// leaf and epoch encryption keys), the texts. openmls stores the HPKE keys as JSON arrays:
/// that form is what a plain store shows; the raw bytes are searched too, in case a later
/// encoding stores them raw.
#[derive(Default)]
struct Needles {
    keys: Vec<(String, Vec<u8>)>,
}

impl Needles {
    fn add(&mut self, what: &str, bytes: &[u8]) {
        if !self.keys.iter().any(|(_, b)| b == bytes) {
            self.keys.push((what.to_owned(), bytes.to_vec()));
        }
    }

    /// The HPKE private keys in openmls's tables, read through a connection of the test's
    /// own (with the key when the store is encrypted).
    fn add_hpke_private_keys(&mut self, db: &Path, key: Option<&[u8; 32]>) -> usize {
        let c = rusqlite::Connection::open(db).unwrap();
        if let Some(k) = key {
            c.execute_batch(&format!("PRAGMA key = \"x'{}'\";", hex::encode(k)))
                .unwrap();
        }
        let mut n = 0;
        for (table, column) in [
            ("openmls_key_packages", "key_package"),
            ("openmls_encryption_keys", "key_pair"),
            ("openmls_epoch_keys_pairs", "key_pairs"),
        ] {
            let mut stmt = c.prepare(&format!("SELECT {column} FROM {table}")).unwrap();
            let values: Vec<Vec<u8>> = stmt
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for v in values {
                let json: serde_json::Value = serde_json::from_slice(&v).unwrap();
                for private in private_arrays(&json, false) {
                    let raw: Vec<u8> = private
                        .iter()
                        .map(|x| u8::try_from(x.as_u64().unwrap()).unwrap())
                        .collect();
                    assert!(raw.len() >= 32, "{table}: a private key of {}", raw.len());
                    self.add(&format!("{table} private key"), &raw);
                    let text = serde_json::to_string(&private).unwrap();
                    self.add(&format!("{table} private key (as stored)"), text.as_bytes());
                    n += 1;
                }
            }
        }
        n
    }
}

/// The arrays of numbers under a field whose name says "private".
fn private_arrays(v: &serde_json::Value, under_private: bool) -> Vec<Vec<serde_json::Value>> {
    match v {
        serde_json::Value::Array(a)
            if under_private && !a.is_empty() && a.iter().all(|x| x.is_u64()) =>
        {
            vec![a.clone()]
        }
        serde_json::Value::Array(a) => a
            .iter()
            .flat_map(|x| private_arrays(x, under_private))
            .collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .flat_map(|(k, x)| private_arrays(x, under_private || k.contains("private")))
            .collect(),
        _ => Vec::new(),
    }
}

/// alice, on `store`, in a DM with bob and a group of bob's: she sends `SENT` and receives
/// `RECEIVED`. Returns her client, bob, the DM and the group, and the needles of her keys.
async fn scenario(
    w: &World,
    store: Store,
    db: &Path,
    key: Option<&[u8; 32]>,
) -> (Client, Client, GroupId, GroupId, Needles) {
    let dev = DeviceIdentity::new_account(did("alice"));
    let mut needles = Needles::default();
    needles.add(
        "installation secret key",
        &dev.installation.secret_bytes()[..],
    );
    needles.add(
        "identity secret key",
        &dev.identity_key.as_ref().unwrap().secret_bytes()[..],
    );
    let alice = w.client(dev, store).await;
    // Her KeyPackages' init keys, one of which the group's Welcome will use up.
    assert!(needles.add_hpke_private_keys(db, key) > 0);
    let (bob, _) = w.account("bob").await;
    let dm = alice.dm(bob.did()).await.unwrap();
    alice.conversation(&dm).send_text(SENT).await.unwrap();
    let g = bob.create_group(&[alice.did().clone()]).await.unwrap();
    bob.conversation(&g).send_text(RECEIVED).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(stored_texts(&alice, &g).await, vec![RECEIVED]);
    assert_eq!(common::texts(&bob.sync().await.unwrap()), vec![SENT]);
    needles.add_hpke_private_keys(db, key);
    needles.add("sent text", SENT.as_bytes());
    needles.add("received text", RECEIVED.as_bytes());
    (alice, bob, dm, g, needles)
}

/// STORE-6: in an encrypted store, none of the needles is in the database, its WAL (while
/// the client is open, and after) or a journal; nor is SQLite's header or our schema. The
/// same scenario on a plain store finds every one of them, so the search can fail.
#[tokio::test]
async fn store_6_no_secret_key_or_message_text_is_found_in_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    for encrypted in [true, false] {
        let w = World::new();
        let db = tmp.path().join(format!("alice-{encrypted}.db"));
        let keys = passphrase(&db, "correct horse battery staple");
        let (store, key) = if encrypted {
            let s = Store::open_encrypted(&db, &keys).unwrap();
            (s, Some(keys.key(KeyPurpose::Open).unwrap()))
        } else {
            (Store::open(&db).unwrap(), None)
        };
        let (alice, _bob, _, _, mut needles) = scenario(&w, store, &db, key.as_deref()).await;
        let open = files(&db);
        assert!(
            open.iter()
                .any(|(p, b)| p.to_string_lossy().ends_with("-wal") && !b.is_empty()),
            "the WAL is searched while it holds the writes"
        );
        drop(alice);
        let closed = files(&db);
        needles.add("SQLite header", b"SQLite format 3\0");
        needles.add("schema", b"atmls_account");
        for (what, needle) in &needles.keys {
            let found = find(&open, needle).or_else(|| find(&closed, needle));
            if encrypted {
                assert_eq!(found, None, "{what} found on disk");
            } else if !what.starts_with("openmls") {
                assert!(found.is_some(), "plain store: {what} not found");
            }
        }
        if !encrypted {
            // The keys of the plain store's final state are in its file: the search sees them.
            let mut last = Needles::default();
            assert!(last.add_hpke_private_keys(&db, None) > 0);
            let stored = last.keys.iter().filter(|(w, _)| w.ends_with("(as stored)"));
            for (what, needle) in stored {
                assert!(
                    find(&closed, needle).is_some(),
                    "plain store: {what} not found"
                );
            }
        }
    }
}

/// STORE-8: a plain store with conversations is encrypted in place by `open_encrypted`: the
/// device keeps its identity, conversations, history and search index, and carries on; no
/// text or key of it is left readable in the store's files.
#[tokio::test]
async fn store_8_a_plain_store_encrypted_in_place_keeps_every_conversation() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("alice.db");
    let w = World::new();
    let (alice, bob, dm, g, needles) = scenario(&w, Store::open(&db).unwrap(), &db, None).await;
    let did = alice.did().clone();
    let before = (
        stored_texts(&alice, &dm).await,
        stored_texts(&alice, &g).await,
    );
    drop(alice);

    let keys = passphrase(&db, "correct horse battery staple");
    let store = Store::open_encrypted(&db, &keys).unwrap();
    let on_disk = files(&db);
    for (what, needle) in &needles.keys {
        assert_eq!(find(&on_disk, needle), None, "{what} left readable");
    }
    let alice = Client::builder(w.dir.clone(), w.net.clone(), store)
        .build()
        .await
        .unwrap();
    assert_eq!(alice.did(), &did);
    let ids: Vec<GroupId> = common::group_ids(&alice).await;
    assert!(ids.contains(&dm) && ids.contains(&g), "{ids:?}");
    let after = (
        stored_texts(&alice, &dm).await,
        stored_texts(&alice, &g).await,
    );
    assert_eq!(after, before);
    assert_eq!(alice.search(None, "falcon", 10).await.unwrap().len(), 1);
    // And carries on in the group, both ways.
    alice
        .conversation(&g)
        .send_text("after encryption")
        .await
        .unwrap();
    assert_eq!(
        common::texts(&bob.sync().await.unwrap()),
        vec!["after encryption"]
    );
    bob.conversation(&g).send_text("seen").await.unwrap();
    assert_eq!(common::texts(&alice.sync().await.unwrap()), vec!["seen"]);
}

/// STORE-9: a wrong passphrase is `WrongKey` (not retryable) and changes no byte of the
/// database, its WAL or its salt file; without the salt file there is no key; the right
/// passphrase still opens the store.
#[tokio::test]
async fn store_9_a_wrong_passphrase_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("alice.db");
    let w = World::new();
    let right = passphrase(&db, "correct horse battery staple");
    let store = Store::open_encrypted(&db, &right).unwrap();
    let (alice, _bob, dm, _, _) =
        scenario(&w, store, &db, Some(&right.key(KeyPurpose::Open).unwrap())).await;
    let texts = stored_texts(&alice, &dm).await;
    drop(alice);
    let salt = PassphraseKey::salt_file_for(&db);
    let state = || (files(&db), std::fs::read(&salt).unwrap());
    let before = state();

    let e =
        Store::open_encrypted(&db, &passphrase(&db, "correct horse battery stapler")).unwrap_err();
    assert!(
        matches!(e, StorageError::WrongKey) && !e.is_retryable(),
        "{e}"
    );
    assert!(e.to_string().contains("wrong key or passphrase"), "{e}");
    assert!(state() == before, "a wrong passphrase changed the files");

    let moved = tmp.path().join("salt-elsewhere");
    std::fs::rename(&salt, &moved).unwrap();
    match Store::open_encrypted(&db, &right) {
        Err(StorageError::Key(KeyProviderError::Missing(m))) => assert!(m.contains("salt")),
        other => panic!("opened without the salt file: {other:?}"),
    }
    assert!(!salt.exists(), "no new salt was made up");
    std::fs::rename(&moved, &salt).unwrap();
    assert!(state() == before);

    let alice = Client::builder(
        w.dir.clone(),
        w.net.clone(),
        Store::open_encrypted(&db, &right).unwrap(),
    )
    .build()
    .await
    .unwrap();
    assert_eq!(stored_texts(&alice, &dm).await, texts);
}
