//! LG-8: the roster a client keeps beside its cached group (leaf → account and device) follows
//! every commit it makes or processes, and is exactly what a client that decodes the tree
//! from scratch (restarted from its database) sees, also after a pass that failed and was
//! rolled back. LG-9: each joiner of a commit receives a Welcome with only its own secrets.
mod common;

use atmls::group::welcome_mailbox;
use atmls::group::Member;
use atmls::storage::Store;
use atmls::transport::Transport as _;
use atmls::Client;
use common::*;

async fn reopened(w: &World, path: &std::path::Path) -> Client {
    Client::builder(w.dir.clone(), w.net.clone(), Store::open(path).unwrap())
        .build()
        .await
        .unwrap()
}

fn dids(m: &[Member]) -> Vec<String> {
    m.iter().map(|m| m.did.to_string()).collect()
}

#[tokio::test]
async fn lg_8_roster_follows_commits_and_matches_a_fresh_decode() {
    let w = World::new();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bob.sqlite");
    let (alice, _) = w.account("alice").await;
    let bob_identity = atmls::identity::DeviceIdentity::new_account(did("bob"));
    let bob = w.client(bob_identity, Store::open(&path).unwrap()).await;
    let (carol, carol_key) = w.account("carol").await;
    let carol2 = w.device("carol", &carol_key).await;
    let (dave, _) = w.account("dave").await;
    let (erin, _) = w.account("erin").await;
    let _ = (&carol2, &dave, &erin);

    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let before = bob.conversation(&g).members().await.unwrap();
    assert_eq!(before.len(), 4, "alice, bob, carol's two devices");

    // A pass that merges an add and then fails is undone, roster included.
    let db = rusqlite::Connection::open(&path).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    alice
        .conversation(&g)
        .add_members(&[dave.did().clone()])
        .await
        .unwrap();
    db.execute_batch(
        "CREATE TRIGGER fail_write BEFORE UPDATE ON atmls_groups
         BEGIN SELECT RAISE(ABORT, 'injected write failure'); END;",
    )
    .unwrap();
    assert!(bob.sync().await.is_err());
    assert_eq!(bob.conversation(&g).members().await.unwrap(), before);
    db.execute_batch("DROP TRIGGER fail_write").unwrap();
    bob.sync().await.unwrap();
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 5);

    // Removes leave holes that the next add fills; the committer and a receiver agree.
    alice
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await
        .unwrap();
    alice
        .conversation(&g)
        .add_members(&[erin.did().clone()])
        .await
        .unwrap();
    bob.conversation(&g).self_update().await.unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    let seen_by_alice = alice.conversation(&g).members().await.unwrap();
    let seen_by_bob = bob.conversation(&g).members().await.unwrap();
    assert_eq!(seen_by_alice, seen_by_bob);
    assert_eq!(
        dids(&seen_by_bob),
        ["alice", "bob", "erin", "dave"]
            .iter()
            .map(|n| did(n).to_string())
            .collect::<Vec<_>>(),
        "erin took the first leaf carol left"
    );

    // A client that decodes the tree from scratch sees the same.
    drop(bob);
    let bob = reopened(&w, &path).await;
    assert_eq!(bob.conversation(&g).members().await.unwrap(), seen_by_bob);
}

#[tokio::test]
async fn lg_9_each_joiner_gets_only_its_own_part_of_the_welcome() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let mut joiners = Vec::new();
    for n in ["bob", "carol", "dave", "erin", "frank", "gina"] {
        joiners.push(w.account(n).await.0);
    }
    let dids: Vec<_> = joiners.iter().map(|c| c.did().clone()).collect();
    let g = alice.create_group(&dids[..1]).await.unwrap();
    alice
        .conversation(&g)
        .add_members(&dids[1..])
        .await
        .unwrap();
    let mut sizes = Vec::new();
    for j in &joiners[1..] {
        let got = w
            .net
            .fetch(&welcome_mailbox(j.installation()), 0, 10)
            .await
            .unwrap();
        sizes.push(got.items.first().unwrap().payload.len());
        j.sync().await.unwrap();
        assert_eq!(j.conversation(&g).members().await.unwrap().len(), 7);
    }
    // Five joiners in one commit, each sent a Welcome the size of a one-joiner Welcome.
    let single = w
        .net
        .fetch(&welcome_mailbox(joiners[0].installation()), 0, 10)
        .await
        .unwrap()
        .items
        .first()
        .unwrap()
        .payload
        .len();
    assert!(
        sizes.iter().all(|s| s.abs_diff(single) < 64),
        "{sizes:?} vs {single}"
    );
}
