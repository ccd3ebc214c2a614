//! LG-4: a sync pass processes a page of messages in one transaction. A failure in the middle
//! of a pass (a write that fails, or a commit that fails) undoes the whole pass, in SQLite and
//! in the client's cached group (LG-3); a crash after it loses nothing; nothing is processed
//! twice.
mod common;

use atmls::storage::Store;
use atmls::{Client, Event};
use common::*;

fn message_rows(db: &rusqlite::Connection) -> i64 {
    db.query_row("SELECT count(*) FROM atmls_messages", [], |r| r.get(0))
        .unwrap()
}

fn received(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.decoded().display_text().map(str::to_owned),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn lg_4_failures_mid_pass_lose_nothing_and_process_nothing_twice() {
    let w = World::new();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bob.sqlite");
    let (alice, _) = w.account("alice").await;
    let bob_identity = atmls::identity::DeviceIdentity::new_account(did("bob"));
    let bob = w.client(bob_identity, Store::open(&path).unwrap()).await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let sent: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    for t in &sent {
        alice.conversation(&g).send_text(t).await.unwrap();
    }
    // A second connection to bob's database injects the failures.
    let db = rusqlite::Connection::open(&path).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let base = message_rows(&db);
    let epoch = bob.epoch_fingerprint(&g).await.unwrap();

    // 1. A write fails at the 51st message of the first page (100 messages): the whole pass is
    //    undone, including what the first 50 did to the group's secret tree.
    db.execute_batch(&format!(
        "CREATE TRIGGER fail_write BEFORE INSERT ON atmls_messages
         WHEN (SELECT count(*) FROM atmls_messages) >= {}
         BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;",
        base + 50
    ))
    .unwrap();
    assert!(bob.sync().await.is_err());
    assert_eq!(message_rows(&db), base);
    assert!(bob.conversation(&g).messages().await.unwrap().is_empty());
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), epoch);

    // 2. The commit of the second page fails (a deferred constraint, checked at COMMIT): the
    //    first page stays, the second is undone. The same client goes on, so its cached group
    //    must have been dropped with the failed transaction.
    db.execute_batch(&format!(
        "DROP TRIGGER fail_write;
         CREATE TABLE fail_parent (id INTEGER PRIMARY KEY);
         CREATE TABLE fail_child (p INTEGER REFERENCES fail_parent(id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TRIGGER fail_commit AFTER INSERT ON atmls_messages
         WHEN (SELECT count(*) FROM atmls_messages) > {}
         BEGIN INSERT INTO fail_child VALUES (1); END;",
        base + 130
    ))
    .unwrap();
    let first = bob.sync().await;
    assert!(first.is_err(), "{first:?}");
    assert_eq!(message_rows(&db), base + 100);
    let texts = stored_texts(&bob, &g).await;
    assert_eq!(texts, sent[..100]);

    // 3. bob crashes (dropped) and restarts from the file; the commit fails once more, then
    //    the fault is gone and the same client goes on: its cached group must be the one of
    //    the last committed pass, and the rest arrives exactly once.
    drop(bob);
    let bob = Client::builder(w.dir.clone(), w.net.clone(), Store::open(&path).unwrap())
        .build()
        .await
        .unwrap();
    assert!(bob.sync().await.is_err());
    assert_eq!(message_rows(&db), base + 100);
    db.execute_batch("DROP TRIGGER fail_commit; DROP TABLE fail_child; DROP TABLE fail_parent;")
        .unwrap();
    let events = bob.sync().await.unwrap();
    assert_eq!(received(&events), sent[100..]);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{events:?}"
    );
    let texts = stored_texts(&bob, &g).await;
    assert_eq!(texts, sent);
    assert!(received(&bob.sync().await.unwrap()).is_empty());
    // The group still works both ways.
    bob.conversation(&g).send_text("back").await.unwrap();
    assert_eq!(
        received(&alice.sync().await.unwrap()),
        vec!["back".to_owned()]
    );
}

/// Refused items inside a pass are undone alone: the items around them are kept.
#[tokio::test]
async fn lg_4_refused_items_in_a_pass_are_undone_alone() {
    use atmls::transport::{EpochTag, IdempotencyKey, Transport as _};
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice.conversation(&g).send_text("one").await.unwrap();
    let mb = atmls::group::mailbox_for(g.as_bytes());
    let page = w.net.fetch(&mb.id, 0, 100).await.unwrap();
    let one = page.items.last().unwrap().payload.clone();
    // A replay of "one" and garbage between "one" and "two", all in one page.
    for p in [one, b"garbage".to_vec()] {
        w.net
            .send_message(&mb, &EpochTag([7; 32]), 0, &p, &IdempotencyKey::random())
            .await
            .unwrap();
    }
    alice.conversation(&g).send_text("two").await.unwrap();
    let events = bob.sync().await.unwrap();
    assert_eq!(received(&events), vec!["one".to_owned(), "two".to_owned()]);
    let refused = events
        .iter()
        .filter(|e| matches!(e, Event::Refused { .. }))
        .count();
    assert_eq!(refused, 2, "{events:?}");
    bob.conversation(&g).send_text("three").await.unwrap();
    assert_eq!(
        received(&alice.sync().await.unwrap()),
        vec!["three".to_owned()]
    );
}
