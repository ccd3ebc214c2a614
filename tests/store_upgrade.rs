//! STORE-3, STORE-4: the stores a device of the previous schema left on disk open with this
//! version, are migrated, and the device carries on. The stores in tests/fixtures/schema-12
//! were written by atmls at tag `store-schema-12` (commit fb2b2a8, schema 12) with
//! tests/fixtures/schema-12/make_fixture.rs; tests/fixtures/schema-12/created is the time they
//! were made. A store from a newer version is refused: `store_3_…` in src/storage/mod.rs.
//!
//! Test code: `unwrap` only on the repository's own files and fixtures (copied before use),
//! never on input from another party.
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use atmls::clock::Clock;
use atmls::directory::MemoryDirectory;
use atmls::storage::Store;
use atmls::transport::{EpochTag, IdempotencyKey, MemoryTransport, Transport};
use atmls::{Client, GroupId};
use common::{stored_texts, texts};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema-12")
        .join(name)
}

/// The clock of the stores' day: certificates and KeyPackages made then are valid then, so
/// the test does not age.
struct Then(u64);

impl Clock for Then {
    fn now(&self) -> u64 {
        self.0
    }
}

/// A copy of a fixture store (the fixture itself is never written).
fn copy(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(format!("{name}.db"));
    std::fs::copy(fixture(&format!("{name}.db")), &to).unwrap();
    to
}

fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

fn version(path: &Path) -> i64 {
    raw(path)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

fn account_keys(path: &Path) -> Vec<String> {
    let c = raw(path);
    let mut st = c.prepare("SELECT k FROM atmls_account ORDER BY k").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The highest cursor any of `stores` has in `group`.
fn max_cursor(stores: &[&Path], group: &GroupId) -> u64 {
    stores
        .iter()
        .filter_map(|p| {
            raw(p)
                .query_row(
                    "SELECT cursor FROM atmls_groups WHERE group_id = ?1",
                    [group.as_bytes()],
                    |r| r.get::<_, i64>(0),
                )
                .ok()
        })
        .map(|c| u64::try_from(c).unwrap())
        .max()
        .unwrap()
}

/// The fixtures' transport was in memory and is gone: a fresh one is filled with junk up to
/// the members' cursors (which they never read again, and would skip), so that what is
/// posted now lands after them, as it would have.
async fn refill(net: &MemoryTransport, owner: &Client, stores: &[&Path], group: &GroupId) {
    let mailbox = owner.mailbox_for_test(group).await.unwrap();
    for _ in 0..max_cursor(stores, group) {
        net.send_message(
            &mailbox,
            &EpochTag(rand::random()),
            0,
            b"lost with the old transport",
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_3_stores_of_schema_12_open_migrated_and_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        copy(dir.path(), "alice"),
        copy(dir.path(), "bob"),
        copy(dir.path(), "carol"),
    );
    let created: u64 = std::fs::read_to_string(fixture("created"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // What the previous version left: schema 12, per-group values in the account table.
    assert_eq!(version(&a), 12);
    assert!(
        account_keys(&a)
            .iter()
            .any(|k| k.starts_with("leaf_updated:")),
        "{:?}",
        account_keys(&a)
    );

    let directory = Arc::new(MemoryDirectory::new());
    let net = Arc::new(MemoryTransport::new());
    let clock = Arc::new(Then(created + 60));
    let open = |path: &Path| {
        Client::builder(directory.clone(), net.clone(), Store::open(path).unwrap())
            .clock(clock.clone())
            .build()
    };
    let alice = open(&a).await.unwrap();
    let bob = open(&b).await.unwrap();
    let carol = open(&c).await.unwrap();

    // Migrated: schema 16, the per-group values moved to their columns (STORE-4), consent
    // records added (spec/consent.md), the PDS directory's OAuth tables (REC-13) and the
    // saved login's table.
    assert_eq!(version(&a), 16);
    let left = account_keys(&a);
    assert!(!left.iter().any(|k| k.contains(':')), "{left:?}");

    // Everything that was there still reads.
    let groups = alice.groups().await.unwrap();
    // DMs the device had before consent existed stay shown, their peers allowed (CONSENT-1).
    for g in groups.iter().filter(|g| g.dm_peer.is_some()) {
        let peer = g.dm_peer.as_ref().unwrap();
        assert_eq!(
            alice.consent(peer).await.unwrap(),
            atmls::trust::AccountConsent::Allowed
        );
    }
    assert_eq!(groups.len(), 2, "{groups:?}");
    let dm = alice.dm(bob.did()).await.unwrap();
    let g = groups
        .iter()
        .map(|i| i.id.clone())
        .find(|id| *id != dm)
        .unwrap();
    assert_eq!(stored_texts(&alice, &dm).await, ["hello bob", "hi alice"]);
    let in_group = stored_texts(&bob, &g).await;
    assert!(
        in_group.contains(&"after the update".to_owned()),
        "{in_group:?}"
    );
    assert_eq!(
        alice.conversation(&g).metadata().await.unwrap().name,
        "fixture group"
    );
    let members = alice.conversation(&g).members().await.unwrap();
    assert!(
        !members.iter().any(|m| &m.did == carol.did()),
        "{members:?}"
    );
    let flag: i64 = raw(&a)
        .query_row(
            "SELECT leaf_updated FROM atmls_group_flags WHERE group_id = ?1",
            [g.as_bytes()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(flag > 0);

    // And the devices carry on, in both conversations.
    let stores = [a.as_path(), b.as_path(), c.as_path()];
    refill(&net, &alice, &stores, &dm).await;
    refill(&net, &alice, &stores, &g).await;
    alice
        .conversation(&dm)
        .send_text("after the upgrade")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), ["after the upgrade"]);
    bob.conversation(&g)
        .send_text("the group after the upgrade")
        .await
        .unwrap();
    assert_eq!(
        texts(&alice.sync().await.unwrap()),
        ["the group after the upgrade"]
    );
    // carol was removed before: she reads nothing of the group.
    assert!(texts(&carol.sync().await.unwrap()).is_empty());
}
