//! Sealed Welcomes (spec/group.md GROUP-12, spec/ds.md DS-1, DS-2): each Welcome is sealed
//! with HPKE to its one recipient's KeyPackage init key and padded, so what the delivery
//! service stores links no two recipients of one commit, and shows no KeyPackageRef and no
//! commit position. Through a real `atmls-ds` (its SQLite file read as it is), and on the
//! in-memory transport for the refusals and for outbox rows of an older version.
#[path = "../../../tests/common/mod.rs"]
mod common;
#[path = "../../../tests/draft_support/mod.rs"]
mod draft_support;
mod ds_support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use atmls::group::{welcome_mailbox, GroupError};
use atmls::storage::Store;
use atmls::transport::{IdempotencyKey, MemoryTransport, Transport as _};
use atmls::{Client, Event};
use common::*;
use draft_support::{account_over, items, welcome_items, Switch};

/// Every published KeyPackageRef of the clients' accounts.
async fn published_refs(dir: &dyn atmls::directory::Directory, who: &[&Client]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for c in who {
        for r in dir.key_packages(c.did()).await.unwrap() {
            out.push(r.key_package_ref);
        }
    }
    out
}

/// Whether two payloads share any 32-byte window (a common ciphertext, such as one encrypted
/// GroupInfo in both): every window of `a` in a set, each window of `b` looked up.
fn share_a_window(a: &[u8], b: &[u8]) -> bool {
    let seen: HashSet<&[u8]> = a.windows(32).collect();
    b.windows(32).any(|w| seen.contains(w))
}

/// A client's stored state without its Welcome cursor (which a refused Welcome moves).
async fn state_but_the_cursor(c: &Client) -> Vec<(String, Vec<String>)> {
    let mut s = c.store_snapshot().await.unwrap();
    for (_, rows) in &mut s {
        rows.retain(|r| !r.contains("welcome_cursor"));
    }
    s
}

fn refusals(events: &[Event]) -> Vec<GroupError> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Refused {
                group: None, error, ..
            } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

/// GROUP-12 through a real atmls-ds: one commit adds three devices (carol's two and dave's);
/// the three Welcomes as the service stores them (read from its SQLite file) are sealed: no
/// KeyPackageRef of any recipient is in them (nor anywhere in the service's database), the
/// commit's position is not in clear, no two share a 32-byte window, all have one size; and
/// each device joins and chats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_12_sealed_welcomes_through_atmls_ds_link_no_recipients() {
    use ds_support::*;
    let tmp = tempfile::tempdir().unwrap();
    let backend = sqlite_in(&tmp);
    let ds = Ds::start(
        &backend,
        "127.0.0.1:0",
        tmp.path().join("ds.log"),
        NO_LIMITS,
    );
    let w = DsWorld::new();
    let (alice, _) = w.account(&ds.url, "alice").await;
    let (bob, _) = w.account(&ds.url, "bob").await;
    let (carol1, ckey) = w.account(&ds.url, "carol").await;
    let carol2 = w.device(&ds.url, "carol", &ckey).await;
    let (dave, _) = w.account(&ds.url, "dave").await;

    // A group with some history, so that the adding commit is not at position 1.
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let got = ds
        .transport()
        .fetch(&welcome_mailbox(bob.installation()), 0, 10)
        .await;
    eprintln!("DEBUG {got:?}");
    let ev = bob.sync().await.unwrap();
    assert_eq!(joined(&ev), vec![g.clone()], "{ev:?}");
    alice.conversation(&g).send_text("before").await.unwrap();
    bob.conversation(&g).send_text("before too").await.unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["before too"]);
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["before"]);
    let refs = published_refs(&*w.dir, &[&carol1, &dave]).await;
    assert_eq!(refs.len(), 18, "six packages per device (KP-7)");
    alice
        .conversation(&g)
        .add_members(&[carol1.did().clone(), dave.did().clone()])
        .await
        .unwrap();

    // What the service holds.
    let db = rusqlite::Connection::open(backend.database_arg()).unwrap();
    let group_mailbox = atmls::group::mailbox_for(g.as_bytes()).id.0;
    let commit_seq: u64 = db
        .query_row(
            "SELECT max(seq) FROM items WHERE mailbox = ?1 AND kind = 1",
            [group_mailbox.as_slice()],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        .try_into()
        .unwrap();
    assert!(commit_seq > 1);
    let joiners = [&carol1, &carol2, &dave];
    let mut stored = Vec::new();
    for j in joiners {
        let mailbox = welcome_mailbox(j.installation()).0;
        let payloads: Vec<Vec<u8>> = db
            .prepare("SELECT payload FROM items WHERE mailbox = ?1 ORDER BY seq")
            .unwrap()
            .query_map([mailbox.as_slice()], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(payloads.len(), 1, "one Welcome per device");
        stored.push(payloads.into_iter().next().unwrap());
    }
    drop(db);
    let seq_bytes = commit_seq.to_be_bytes();
    for (i, p) in stored.iter().enumerate() {
        assert_eq!(p[0], 2, "version 2, sealed");
        for r in &refs {
            assert!(!contains(p, r), "a KeyPackageRef in Welcome {i}");
        }
        assert!(
            !contains(p, &seq_bytes),
            "commit_seq in clear in Welcome {i}"
        );
        // Each recipient opens its own to the same commit position; no other opens it.
        let (seq, _) = joiners[i].open_welcome_envelope(p).await.unwrap();
        assert_eq!(seq, commit_seq);
        for (k, other) in joiners.iter().enumerate().filter(|(k, _)| *k != i) {
            assert!(
                other.open_welcome_envelope(p).await.is_err(),
                "{k} opens {i}"
            );
        }
    }
    for a in 0..stored.len() {
        for b in a + 1..stored.len() {
            assert!(!share_a_window(&stored[a], &stored[b]), "{a} and {b}");
        }
    }
    let sizes: Vec<usize> = stored.iter().map(Vec::len).collect();
    assert!(sizes.iter().all(|s| *s == sizes[0]), "{sizes:?}");
    assert!(sizes[0].is_power_of_two() && sizes[0] >= 1024, "{sizes:?}");
    // No KeyPackageRef anywhere in the service's database.
    let dump = backend.dump();
    for r in &refs {
        assert!(!contains(&dump, r) && !contains(&dump, hex::encode(r).as_bytes()));
    }

    // Each device joins and chats.
    for j in joiners {
        assert_eq!(joined(&j.sync().await.unwrap()), vec![g.clone()]);
    }
    dave.conversation(&g)
        .send_text("hello from dave")
        .await
        .unwrap();
    for c in [&alice, &bob, &carol1, &carol2] {
        assert_eq!(texts(&c.sync().await.unwrap()), vec!["hello from dave"]);
    }
    carol2
        .conversation(&g)
        .send_text("and carol")
        .await
        .unwrap();
    for c in [&alice, &bob, &carol1, &dave] {
        assert_eq!(texts(&c.sync().await.unwrap()), vec!["and carol"]);
    }
}

/// GROUP-12: a Welcome sealed to another device's KeyPackage (carol's, posted into bob's
/// mailbox) is refused as undecryptable by bob without failing the sync, and changes nothing
/// but his Welcome cursor: no package consumed, none withdrawn. His next Welcome joins.
#[tokio::test]
async fn group_12_a_welcome_sealed_to_another_device_is_skipped_and_consumes_nothing() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let g = alice.create_group(&[carol.did().clone()]).await.unwrap();
    let carols = welcome_items(w.net.as_ref(), carol.installation()).await[0]
        .payload
        .clone();
    w.net
        .send_welcome(
            &welcome_mailbox(bob.installation()),
            &carols,
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    let before = state_but_the_cursor(&bob).await;
    let published = published_refs(&*w.dir, &[&bob]).await;
    let events = bob.sync().await.unwrap();
    assert!(joined(&events).is_empty());
    assert!(
        matches!(refusals(&events).as_slice(), [GroupError::Undecryptable(_)]),
        "{events:?}"
    );
    assert_eq!(state_but_the_cursor(&bob).await, before);
    assert_eq!(published_refs(&*w.dir, &[&bob]).await, published);
    // Carol joins from it; bob from his own, later.
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g.clone()]);
    alice
        .conversation(&g)
        .add_members(&[bob.did().clone()])
        .await
        .unwrap();
    assert_eq!(joined(&bob.sync().await.unwrap()), vec![g.clone()]);
    alice.conversation(&g).send_text("all three").await.unwrap();
    for c in [&bob, &carol] {
        assert_eq!(texts(&c.sync().await.unwrap()), vec!["all three"]);
    }
}

/// GROUP-12: a sealed Welcome with one byte flipped (the version, the encapsulation, the
/// ciphertext, the tag) or cut short is refused without failing the sync and changes nothing
/// but the Welcome cursor; in a sync where such Welcomes come before a good one, the sync
/// goes on to it and joins.
#[tokio::test]
async fn group_12_a_tampered_sealed_welcome_is_refused_and_the_sync_goes_on() {
    let w = World::new();
    let (bob, _) = w.account("bob").await;
    // alice's Welcome for bob, made on another service (its tree is there, not here).
    let elsewhere = Arc::new(MemoryTransport::new());
    let alice = account_over(
        &w,
        elsewhere.clone(),
        "alice",
        Store::in_memory().unwrap(),
        Default::default(),
    )
    .await;
    alice.create_group(&[bob.did().clone()]).await.unwrap();
    let good = welcome_items(elsewhere.as_ref(), bob.installation()).await[0]
        .payload
        .clone();
    assert_eq!(good[0], 2);
    let mailbox = welcome_mailbox(bob.installation());
    let mut tampered = Vec::new();
    for i in [0, 1, 32, 33, 500, good.len() - 1] {
        let mut t = good.clone();
        t[i] ^= 0x01;
        tampered.push(t);
    }
    tampered.push(good[..good.len() - 1].to_vec());
    tampered.push(good[..40].to_vec());
    let post_all = || async {
        for t in &tampered {
            w.net
                .send_welcome(&mailbox, t, &IdempotencyKey::random())
                .await
                .unwrap();
        }
    };
    post_all().await;
    let before = state_but_the_cursor(&bob).await;
    let events = bob.sync().await.unwrap();
    let refused = refusals(&events);
    assert_eq!(refused.len(), tampered.len(), "{events:?}");
    assert!(
        matches!(refused[0], GroupError::Malformed(_)),
        "{refused:?}"
    );
    for e in &refused[1..] {
        assert!(
            matches!(e, GroupError::Undecryptable(_) | GroupError::Malformed(_)),
            "{e:?}"
        );
    }
    assert!(joined(&events).is_empty());
    assert_eq!(state_but_the_cursor(&bob).await, before);
    // The untampered copy still opens for bob: his package was not consumed.
    assert!(bob.open_welcome_envelope(&good).await.is_ok());

    // Tampered ones, then a good Welcome: one sync refuses them all and joins.
    post_all().await;
    let (carol, _) = w.account("carol").await;
    let g = carol.create_group(&[bob.did().clone()]).await.unwrap();
    let events = bob.sync().await.unwrap();
    assert_eq!(refusals(&events).len(), tampered.len(), "{events:?}");
    assert_eq!(joined(&events), vec![g.clone()]);
    carol.conversation(&g).send_text("made it").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["made it"]);
}

/// GROUP-12: an outbox row written before the init keys were kept (migration 10, column
/// NULL) sends its Welcomes in clear, version 1, as that version did; receivers still accept
/// version 1 (compatibility with older senders), so the joiner joins.
#[tokio::test]
async fn group_12_an_outbox_row_of_an_older_version_sends_version_1_and_joins() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let net = Switch::new(w.net.clone());
    let alice = account_over(
        &w,
        net.clone(),
        "alice",
        Store::open(&path).unwrap(),
        Default::default(),
    )
    .await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    assert_eq!(joined(&bob.sync().await.unwrap()), vec![g.clone()]);
    // The commit adding carol is staged and in the outbox, but not accepted.
    net.down.store(true, Ordering::SeqCst);
    assert!(alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .is_err());
    // As an older version would have written it: no init keys.
    let db = rusqlite::Connection::open(&path).unwrap();
    let changed = db
        .execute(
            "UPDATE atmls_outbox SET recipient_keys = NULL WHERE recipient_keys IS NOT NULL",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    net.down.store(false, Ordering::SeqCst);
    alice.sync().await.unwrap();
    let sent = welcome_items(w.net.as_ref(), carol.installation()).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].payload[0], 1, "version 1, in clear");
    let commit = items(w.net.as_ref(), &atmls::group::mailbox_for(g.as_bytes()).id)
        .await
        .into_iter()
        .rfind(|i| i.kind == atmls::transport::Kind::Commit)
        .unwrap();
    assert_eq!(sent[0].payload[1..9], commit.seq.to_be_bytes());
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g.clone()]);
    alice
        .conversation(&g)
        .send_text("welcome carol")
        .await
        .unwrap();
    assert_eq!(texts(&carol.sync().await.unwrap()), vec!["welcome carol"]);
}
