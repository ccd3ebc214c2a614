//! DMs between accounts with several devices.
mod common;
use common::*;

#[tokio::test]
async fn dm_multi_device_seen_on_all_devices() {
    let w = World::new();
    let (alice1, akey) = w.account("alice").await;
    let alice2 = w.device("alice", &akey).await;
    let (bob, _) = w.account("bob").await;

    let dm = alice1.dm(bob.did()).await.unwrap();
    assert_eq!(
        alice1.dm(bob.did()).await.unwrap(),
        dm,
        "asking again returns the same DM"
    );
    alice1.conversation(&dm).send_text("hi bob").await.unwrap();

    let ev = bob.sync().await.unwrap();
    assert_eq!(joined(&ev), vec![dm.clone()]);
    assert_eq!(texts(&ev), vec!["hi bob"]);
    let ev = alice2.sync().await.unwrap();
    assert_eq!(joined(&ev), vec![dm.clone()]);
    assert_eq!(texts(&ev), vec!["hi bob"]);
    assert_eq!(
        bob.dm(alice1.did()).await.unwrap(),
        dm,
        "bob's DM with alice is the same group"
    );

    bob.conversation(&dm).send_text("hi alice").await.unwrap();
    assert_eq!(texts(&alice1.sync().await.unwrap()), vec!["hi alice"]);
    assert_eq!(texts(&alice2.sync().await.unwrap()), vec!["hi alice"]);
    assert_eq!(alice1.conversation(&dm).members().await.unwrap().len(), 3);
}

/// Messages read on the way while committing are not lost to the app: the next sync reports
/// them.
#[tokio::test]
async fn messages_read_while_committing_are_reported_by_the_next_sync() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let dm = alice.dm(bob.did()).await.unwrap();
    bob.sync().await.unwrap();
    alice.conversation(&dm).send_text("first").await.unwrap();
    // bob updates without syncing first: committing catches up on "first".
    bob.conversation(&dm).self_update().await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["first"]);
    assert_eq!(texts(&bob.sync().await.unwrap()), Vec::<String>::new());
}
