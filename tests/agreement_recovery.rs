//! AGREE-8 (spec/agreement.md): a device that fell out of a group gets back in without user
//! action. Here bob's device is restored from an old copy of its database, made before it
//! rotated its own leaf: it can read nothing the group posts any more, notices, asks to be
//! re-added, and a member's client answers with an ordinary commit.

mod common;

use std::path::Path;

use atmls::identity::DeviceIdentity;
use atmls::storage::Store;
use atmls::{Client, Event};
use common::*;

async fn open(w: &World, path: &Path) -> Client {
    Client::builder(w.dir.clone(), w.net.clone(), Store::open(path).unwrap())
        .build()
        .await
        .unwrap()
}

/// Copies a closed SQLite database (its WAL checkpointed on close).
fn copy_db(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    for ext in ["-wal", "-shm"] {
        let side = |p: &Path| {
            p.with_file_name(format!("{}{ext}", p.file_name().unwrap().to_str().unwrap()))
        };
        let _ = std::fs::remove_file(side(to));
        if side(from).exists() {
            std::fs::copy(side(from), side(to)).unwrap();
        }
    }
}

#[tokio::test]
async fn agree_8_device_restored_from_an_old_database_is_re_added() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (db, backup) = (
        dir.path().join("bob.sqlite"),
        dir.path().join("backup.sqlite"),
    );
    let (alice, _) = w.account("alice").await;
    let (carol, _) = w.account("carol").await;
    let bob = w
        .client(
            DeviceIdentity::new_account(did("bob")),
            Store::open(&db).unwrap(),
        )
        .await;
    let other = carol.create_group(&[bob.did().clone()]).await.unwrap();
    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    alice
        .conversation(&g)
        .send_text("before the backup")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["before the backup"]);

    // The backup, then a week of life: bob rotates his leaf, the group moves on.
    drop(bob);
    copy_db(&db, &backup);
    let bob = open(&w, &db).await;
    bob.conversation(&g).self_update().await.unwrap();
    alice.sync().await.unwrap();
    alice
        .conversation(&g)
        .send_text("lost to the old copy")
        .await
        .unwrap();
    alice.conversation(&g).self_update().await.unwrap();
    carol.sync().await.unwrap();
    carol.conversation(&g).send_text("also lost").await.unwrap();
    assert_eq!(
        texts(&bob.sync().await.unwrap()),
        vec!["lost to the old copy", "also lost"]
    );

    // The restore.
    drop(bob);
    copy_db(&backup, &db);
    let bob = open(&w, &db).await;
    let before = bob.epoch_fingerprint(&g).await.unwrap();
    let ev = bob.sync().await.unwrap();
    // Everything refused: its leaf key is gone; nothing else is held up.
    assert!(texts(&ev).is_empty(), "{ev:?}");
    assert!(
        ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), before);
    carol
        .conversation(&other)
        .send_text("other group")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["other group"]);

    // alice's client answers the request; carol's finds it answered.
    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::ResyncRequested { member, .. } if member.did == *bob.did()
        )),
        "{ev:?}"
    );
    let ev = carol.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::MembersAdded { .. })),
        "{ev:?}"
    );
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Resynced { group, by, .. } if *group == g && by == alice.did()
        )),
        "{ev:?}"
    );
    // Back in: the same epoch as everyone, in both directions.
    alice
        .conversation(&g)
        .send_text("welcome back")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["welcome back"]);
    bob.conversation(&g).send_text("thanks").await.unwrap();
    assert_eq!(
        texts(&carol.sync().await.unwrap()),
        vec!["welcome back", "thanks"]
    );
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["thanks"]);
    let fp = alice.epoch_fingerprint(&g).await.unwrap();
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), fp);
    assert_eq!(carol.epoch_fingerprint(&g).await.unwrap(), fp);
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 3);
}

/// AGREE-8: a device that holds its leaf is not re-added, whoever posts a request in its name
/// (here the device itself, wrongly believing it fell out): members refuse the request.
#[tokio::test]
async fn agree_8_request_from_a_device_that_holds_its_leaf_is_refused() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    bob.request_resync_for_test(&g).await.unwrap();
    let before = alice.epoch_fingerprint(&g).await.unwrap();
    let ev = alice.sync().await.unwrap();
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::ResyncRequested { .. })),
        "{ev:?}"
    );
    assert!(
        ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap(), before);
}

/// AGREE-7: bob is removed and re-added while offline. His sync reads the Welcome before the
/// group's mailbox, where his removal waits: the Welcome is left for a second pass after the
/// groups were read, and bob ends in the group's current epoch (found by tests/sim.rs,
/// seed 28).
#[tokio::test]
async fn agree_7_re_added_while_the_removal_is_unread() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    alice
        .conversation(&g)
        .remove_members(&[bob.did().clone()])
        .await
        .unwrap();
    alice
        .conversation(&g)
        .add_members(&[bob.did().clone()])
        .await
        .unwrap();
    alice
        .conversation(&g)
        .send_text("welcome back")
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Joined { group, .. } if *group == g)),
        "{ev:?}"
    );
    assert_eq!(texts(&ev), vec!["welcome back"]);
    assert_eq!(
        bob.epoch_fingerprint(&g).await.unwrap(),
        alice.epoch_fingerprint(&g).await.unwrap()
    );
    bob.conversation(&g).send_text("back").await.unwrap();
    assert_eq!(
        texts(&carol.sync().await.unwrap()),
        vec!["welcome back", "back"]
    );
}
