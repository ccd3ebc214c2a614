//! Group scenarios: 3 users / 5 devices, add, remove, leave, update, concurrent commits,
//! restart from SQLite.
mod common;
use std::sync::Arc;

use atmls::directory::Directory as _;
use atmls::identity::DeviceIdentity;
use atmls::storage::Store;
use atmls::transport::*;
use atmls::{Event, GroupStatus};
use common::*;

#[tokio::test]
async fn group_of_three_users_five_devices_add_remove_leave_update() {
    let w = World::new();
    let (alice1, akey) = w.account("alice").await;
    let alice2 = w.device("alice", &akey).await;
    let (bob1, bkey) = w.account("bob").await;
    let bob2 = w.device("bob", &bkey).await;
    let (carol, _) = w.account("carol").await;

    let g = alice1
        .create_group(&[bob1.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    for c in [&alice2, &bob1, &bob2, &carol] {
        assert_eq!(joined(&c.sync().await.unwrap()), vec![g.clone()]);
    }
    assert_eq!(alice1.conversation(&g).members().await.unwrap().len(), 5);

    alice1
        .conversation(&g)
        .send_text("hello all")
        .await
        .unwrap();
    for c in [&alice2, &bob1, &bob2, &carol] {
        assert_eq!(texts(&c.sync().await.unwrap()), vec!["hello all"]);
    }

    // Update: bob2 rotates its leaf keys; everyone follows.
    let before = bob2.epoch_fingerprint(&g).await.unwrap();
    bob2.conversation(&g).self_update().await.unwrap();
    assert_eq!(bob2.epoch_fingerprint(&g).await.unwrap().0, before.0 + 1);
    bob1.conversation(&g)
        .send_text("after update")
        .await
        .unwrap();
    for c in [&alice1, &alice2, &bob2, &carol] {
        assert_eq!(texts(&c.sync().await.unwrap()), vec!["after update"]);
    }

    // Remove carol: she can no longer read.
    alice2
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await
        .unwrap();
    let ev = carol.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::Removed { .. })));
    alice1
        .conversation(&g)
        .send_text("carol is gone")
        .await
        .unwrap();
    assert!(texts(&carol.sync().await.unwrap()).is_empty());
    assert!(carol.conversation(&g).send_text("let me in").await.is_err());
    for c in [&bob1, &bob2, &alice2] {
        assert_eq!(texts(&c.sync().await.unwrap()), vec!["carol is gone"]);
    }

    // Add carol back.
    alice1
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    assert_eq!(alice1.conversation(&g).members().await.unwrap().len(), 5);

    // Bob leaves with both devices: the next member to sync commits it.
    bob1.conversation(&g).leave().await.unwrap();
    let ev = alice1.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::LeaveRequested { .. })),
        "{ev:?}"
    );
    let members = alice1.conversation(&g).members().await.unwrap();
    assert!(members.iter().all(|m| &m.did != bob1.did()), "{members:?}");
    for b in [&bob1, &bob2] {
        let ev = b.sync().await.unwrap();
        assert!(
            ev.iter().any(|e| matches!(e, Event::Removed { .. })),
            "{ev:?}"
        );
        let info = b.groups().await.unwrap();
        assert_eq!(info[0].status, GroupStatus::Left);
    }
    alice2.sync().await.unwrap();
    alice2.conversation(&g).send_text("bye bob").await.unwrap();
    assert_eq!(texts(&alice1.sync().await.unwrap()), vec!["bye bob"]);
    assert!(texts(&bob1.sync().await.unwrap()).is_empty());
}

#[tokio::test]
async fn concurrent_commits_one_wins_both_converge_loser_retries() {
    let net = Arc::new(TestTransport::racing(Arc::new(MemoryTransport::new())));
    let dir = Arc::new(atmls::directory::MemoryDirectory::new());
    let mk = |name: &str| {
        let (dir, net) = (dir.clone(), net.clone());
        let id = DeviceIdentity::new_account(did(name));
        async move {
            atmls::Client::builder(dir, net, Store::in_memory().unwrap())
                .identity(id)
                .message_requests(false)
                .build()
                .await
                .unwrap()
        }
    };
    let (alice, bob, carol, dave) = (
        mk("alice").await,
        mk("bob").await,
        mk("carol").await,
        mk("dave").await,
    );
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();

    // Both commit in the same epoch: the transport holds each commit until the other is built.
    net.hold_next_commits(2);
    let (cd, dd) = ([carol.did().clone()], [dave.did().clone()]);
    let (ra, rb) = tokio::join!(
        alice.conversation(&g).add_members(&cd),
        bob.conversation(&g).add_members(&dd)
    );
    ra.unwrap();
    rb.unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    let (ea, eb) = (
        alice.epoch_fingerprint(&g).await.unwrap(),
        bob.epoch_fingerprint(&g).await.unwrap(),
    );
    assert_eq!(ea, eb, "both converge on the same epoch and secrets");
    assert_eq!(
        ea.0, 3,
        "two commits after creation: the winner's and the loser's retry"
    );
    let dids: Vec<_> = alice
        .conversation(&g)
        .members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.did)
        .collect();
    assert!(dids.contains(carol.did()) && dids.contains(dave.did()));
    for c in [&carol, &dave] {
        assert_eq!(joined(&c.sync().await.unwrap()), vec![g.clone()]);
    }
    dave.conversation(&g)
        .send_text("joined late")
        .await
        .unwrap();
    assert_eq!(texts(&carol.sync().await.unwrap()), vec!["joined late"]);
}

#[tokio::test]
async fn restart_from_sqlite_carries_on() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let (alice_ident_client, akey) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let alice2 = w
        .device_in("alice", &akey, Store::open(&path).unwrap())
        .await;
    let dm = alice_ident_client.dm(bob.did()).await.unwrap();
    let g = bob
        .create_group(&[alice_ident_client.did().clone()])
        .await
        .unwrap();
    alice2.sync().await.unwrap();
    bob.sync().await.unwrap();
    bob.conversation(&dm)
        .send_text("before restart")
        .await
        .unwrap();
    assert_eq!(texts(&alice2.sync().await.unwrap()), vec!["before restart"]);
    let installation = *alice2.installation();
    drop(alice2);

    // Reopen from the file: no identity needed, the store has it.
    let alice2 = atmls::Client::builder(w.dir.clone(), w.net.clone(), Store::open(&path).unwrap())
        .message_requests(false)
        .build()
        .await
        .unwrap();
    assert_eq!(alice2.installation(), &installation);
    assert_eq!(alice2.groups().await.unwrap().len(), 2);
    assert_eq!(alice2.conversation(&dm).messages().await.unwrap().len(), 1);
    bob.conversation(&dm)
        .send_text("after restart")
        .await
        .unwrap();
    bob.conversation(&g)
        .send_text("group after restart")
        .await
        .unwrap();
    let t = texts(&alice2.sync().await.unwrap());
    assert!(
        t.contains(&"after restart".to_owned()) && t.contains(&"group after restart".to_owned()),
        "{t:?}"
    );
    alice2
        .conversation(&dm)
        .send_text("still here")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["still here"]);
}

#[tokio::test]
async fn key_packages_deleted_after_use_and_replenished() {
    use atmls::directory::Directory;
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let count = |recs: &[atmls::directory::KeyPackageRecord]| {
        (
            recs.iter().filter(|r| !r.last_resort).count(),
            recs.iter().filter(|r| r.last_resort).count(),
        )
    };
    let before = w.dir.key_packages(bob.did()).await.unwrap();
    assert_eq!(count(&before), (5, 1));
    let mut groups = Vec::new();
    for _ in 0..3 {
        groups.push(alice.create_group(&[bob.did().clone()]).await.unwrap());
    }
    // Welcomes not processed yet: nothing is deleted (the directory cannot consume).
    assert_eq!(w.dir.key_packages(bob.did()).await.unwrap(), before);
    let ev = bob.sync().await.unwrap();
    assert_eq!(joined(&ev).len(), 3, "{ev:?}");
    let after = w.dir.key_packages(bob.did()).await.unwrap();
    let used: Vec<_> = before.iter().filter(|r| !after.contains(r)).collect();
    assert_eq!(used.len(), 3, "the three used KeyPackages are deleted");
    assert!(used.iter().all(|r| !r.last_resort));
    assert_eq!(
        count(&after),
        (5, 1),
        "2 left is below the threshold of 3: replenished to 5"
    );
    assert_eq!(
        after.iter().filter(|r| before.contains(r)).count(),
        3,
        "2 old single-use + last resort kept"
    );
}

/// KP-6: two inviters who picked the same single-use KeyPackage before the joiner synced are
/// both joined: the used package's keys are kept for the grace period.
#[tokio::test]
async fn kp_6_two_inviters_racing_for_one_key_package_both_join() {
    use atmls::directory::Directory;
    use atmls::keypackage::KeyPackagePolicy;
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let carol = atmls::Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("carol")))
        .key_package_policy(KeyPackagePolicy {
            single_use: 1,
            replenish_below: 0,
            ..KeyPackagePolicy::default()
        })
        .message_requests(false)
        .build()
        .await
        .unwrap();
    let single: Vec<_> = w
        .dir
        .key_packages(carol.did())
        .await
        .unwrap()
        .into_iter()
        .filter(|k| !k.last_resort)
        .collect();
    assert_eq!(single.len(), 1, "carol publishes one single-use package");
    let g1 = alice.create_group(&[carol.did().clone()]).await.unwrap();
    let g2 = bob.create_group(&[carol.did().clone()]).await.unwrap();
    let ev = carol.sync().await.unwrap();
    let mut got = joined(&ev);
    got.sort();
    let mut want = vec![g1.clone(), g2.clone()];
    want.sort();
    assert_eq!(got, want, "{ev:?}");
    alice.conversation(&g1).send_text("one").await.unwrap();
    bob.conversation(&g2).send_text("two").await.unwrap();
    let mut t = texts(&carol.sync().await.unwrap());
    t.sort();
    assert_eq!(t, vec!["one", "two"]);
}

/// KP-7: packages near their expiry are replaced, and their private keys are deleted once
/// they have expired, so old init keys do not pile up in the store (forward secrecy).
#[tokio::test]
async fn kp_7_expired_key_packages_lose_their_private_keys() {
    let w = World::new();
    let policy = atmls::keypackage::KeyPackagePolicy {
        single_use: 1,
        replenish_below: 1,
        lifetime_secs: 2,
    };
    let alice = atmls::Client::builder(
        w.dir.clone(),
        w.net.clone(),
        atmls::storage::Store::in_memory().unwrap(),
    )
    .identity(atmls::identity::DeviceIdentity::new_account(did("alice")))
    .key_package_policy(policy)
    .message_requests(false)
    .build()
    .await
    .unwrap();
    let private_keys = |snap: Vec<(String, Vec<String>)>| {
        snap.into_iter()
            .find(|(t, _)| t == "openmls_key_packages")
            .map(|(_, rows)| rows.len())
            .unwrap_or(0)
    };
    // Each round replaces the (already expiring) packages: one single-use, one last-resort.
    let mut seen = Vec::new();
    for _ in 0..3 {
        alice.sync().await.unwrap();
        seen.push(private_keys(alice.store_snapshot().await.unwrap()));
        tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    }
    // The published pair plus, at most, the pair replaced in this round.
    assert!(seen.iter().all(|&n| n <= 4), "{seen:?}");
    alice.sync().await.unwrap();
    assert_eq!(
        w.dir
            .key_packages(&did("alice"))
            .await
            .unwrap()
            .iter()
            .filter(|r| r.expires > atmls::identity::unix_now())
            .count(),
        2
    );
}

/// alice's group with bob and carol, one device each; they have not synced yet.
async fn alice_bob_carol(
    w: &World,
) -> (atmls::Client, atmls::Client, atmls::Client, atmls::GroupId) {
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    (alice, bob, carol, g)
}

/// Waits (liveness bound only) for the event `want` picks out of a watch stream.
async fn wait_for(
    rx: &mut tokio::sync::mpsc::Receiver<Result<Event, atmls::Error>>,
    what: &str,
    want: impl Fn(&Event) -> bool,
) {
    let found = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(ev) = rx.recv().await {
            if ev.as_ref().is_ok_and(&want) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(found, Ok(true)), "no {what} in the watch stream");
}

/// GROUP-4a: a watching client follows its group to the new mailbox at a removal: a message
/// posted there wakes it at once, not at the next poll (an hour away here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_4a_a_watching_client_follows_the_move() {
    let w = World::new();
    let (alice, bob, carol, g) = alice_bob_carol(&w).await;
    carol.sync().await.unwrap();
    let bob = Arc::new(bob);
    let mut rx = bob.watch(std::time::Duration::from_secs(3600));
    wait_for(&mut rx, "join", |e| matches!(e, Event::Joined { .. })).await;
    alice
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await
        .unwrap();
    wait_for(&mut rx, "removal", |e| {
        matches!(e, Event::MembersRemoved { .. })
    })
    .await;
    alice
        .conversation(&g)
        .send_text("after the move")
        .await
        .unwrap();
    wait_for(&mut rx, "message", |e| {
        texts(std::slice::from_ref(e)) == ["after the move"]
    })
    .await;
}

/// GROUP-4a: a leave is a removal too: once another member commits it, the group moves, and
/// the capability the leaver kept is refused at the new mailbox.
#[tokio::test]
async fn group_4a_a_leave_moves_the_group() {
    let w = World::new();
    let (alice, bob, carol, g) = alice_bob_carol(&w).await;
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    let kept = bob.mailbox_for_test(&g).await.unwrap();
    bob.conversation(&g).leave().await.unwrap();
    // alice's sync reads the request and commits it (GROUP-9).
    alice.sync().await.unwrap();
    let moved = alice.mailbox_for_test(&g).await.unwrap();
    assert_ne!(moved.id, kept.id);
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Removed { .. })),
        "{ev:?}"
    );
    let forged = Mailbox {
        id: moved.id,
        post_secret: kept.post_secret,
    };
    let tag = EpochTag(rand::random());
    assert_eq!(
        w.net
            .send_message(&forged, &tag, 0, b"junk", &IdempotencyKey::random())
            .await,
        Err(TransportError::Forbidden)
    );
    carol.conversation(&g).send_text("bob left").await.unwrap();
    assert_eq!(carol.mailbox_for_test(&g).await.unwrap(), moved);
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["bob left"]);
}
