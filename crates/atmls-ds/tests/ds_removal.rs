//! A removed member loses the right to post (spec/ds.md DS-3a, spec/group.md GROUP-4a), on the
//! real atmls-ds over SQLite and PostgreSQL: the group moves to a mailbox whose capability only
//! members of the new epoch can derive, so the removed member's posts there are refused, and
//! its junk in the old mailbox reaches no member.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use atmls::transport::*;
use atmls::{Client, Event, GroupId};
use common::{joined, texts};
use ds_support::*;

async fn sync_texts(c: &Client) -> Vec<String> {
    let ev = c.sync().await.unwrap();
    // Nothing the removed member posted reaches a member, not even as a refusal.
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    texts(&ev)
}

/// Posts what a removed member can: with the capability it kept, to the mailbox the members
/// moved to (refused), and junk to the mailbox it knows (stored, read by no one).
async fn attack(t: &HttpTransport, old: &Mailbox, new: &Mailbox) {
    let forged = Mailbox {
        id: new.id,
        post_secret: old.post_secret,
    };
    let tag = EpochTag(rand::random());
    let key = IdempotencyKey::random();
    assert_eq!(
        t.send_message(&forged, &tag, 0, b"junk", &key).await,
        Err(TransportError::Forbidden)
    );
    assert_eq!(
        t.submit_commit(&forged, &tag, 0, b"junk", &key).await,
        Err(TransportError::Forbidden)
    );
    for i in 0..10u64 {
        let tag = EpochTag(rand::random());
        let key = IdempotencyKey::random();
        let junk = vec![i as u8; 64];
        let stored = match i % 2 {
            0 => matches!(
                t.submit_commit(old, &tag, 1_000_000, &junk, &key).await,
                Ok(CommitOutcome::Accepted { .. })
            ),
            _ => matches!(
                t.send_message(old, &tag, 1_000_000, &junk, &key).await,
                Ok(SendOutcome::Accepted { .. })
            ),
        };
        assert!(stored, "the old mailbox still takes its posts");
    }
}

async fn scenario(ds: &Ds) {
    let url = ds.url.as_str();
    let w = DsWorld::new();
    let (alice, _) = w.account(url, "alice").await;
    let (bob, _) = w.account(url, "bob").await;
    let (carol, _) = w.account(url, "carol").await;
    let (dave, _) = w.account(url, "dave").await;
    let (erin, _) = w.account(url, "erin").await;
    let g: GroupId = alice
        .create_group(&[bob.did().clone(), carol.did().clone(), dave.did().clone()])
        .await
        .unwrap();
    for c in [&bob, &carol, &dave] {
        assert_eq!(joined(&c.sync().await.unwrap()), vec![g.clone()]);
    }
    alice.conversation(&g).send_text("before").await.unwrap();
    for c in [&bob, &carol, &dave] {
        assert_eq!(sync_texts(c).await, vec!["before"]);
    }
    let old = carol.mailbox_for_test(&g).await.unwrap();
    assert_eq!(old, atmls::group::mailbox_for(g.as_bytes()));

    alice
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await
        .unwrap();
    let new = alice.mailbox_for_test(&g).await.unwrap();
    assert_ne!(new.id, old.id, "the removal moved the group");
    let ev = carol.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::Removed { .. })));

    // Bob has not synced since the removal: his message is sealed for the old mailbox,
    // refused there as stale (the removal follows his cursor), sealed again after he moved.
    bob.conversation(&g).send_text("bob after").await.unwrap();
    assert_eq!(bob.mailbox_for_test(&g).await.unwrap(), new);
    attack(&ds.transport(), &old, &new).await;
    alice
        .conversation(&g)
        .send_text("alice after")
        .await
        .unwrap();
    assert_eq!(sync_texts(&alice).await, vec!["bob after"]);
    assert_eq!(sync_texts(&bob).await, vec!["alice after"]);
    // Dave was offline through all of it: he reads the old mailbox up to the removal, then the
    // new one, and none of the junk.
    assert_eq!(sync_texts(&dave).await, vec!["bob after", "alice after"]);
    assert_eq!(dave.mailbox_for_test(&g).await.unwrap(), new);
    assert!(
        carol.sync().await.unwrap().is_empty(),
        "carol reads nothing"
    );

    // A joiner after the move learns the new mailbox in its sealed Welcome.
    alice
        .conversation(&g)
        .add_members(&[erin.did().clone()])
        .await
        .unwrap();
    assert_eq!(joined(&erin.sync().await.unwrap()), vec![g.clone()]);
    assert_eq!(erin.mailbox_for_test(&g).await.unwrap(), new);
    dave.conversation(&g).send_text("hello erin").await.unwrap();
    for c in [&alice, &bob, &erin] {
        assert_eq!(sync_texts(c).await, vec!["hello erin"]);
    }
    let fp = alice.epoch_fingerprint(&g).await.unwrap();
    for c in [&bob, &dave, &erin] {
        assert_eq!(c.epoch_fingerprint(&g).await.unwrap(), fp);
    }

    // A second removal moves the group again; erin, who had not synced, moves when her
    // message is refused as stale.
    alice
        .conversation(&g)
        .remove_members(&[dave.did().clone()])
        .await
        .unwrap();
    let third = alice.mailbox_for_test(&g).await.unwrap();
    assert!(third != new && third != old);
    attack(&ds.transport(), &new, &third).await;
    erin.conversation(&g)
        .send_text("dave is gone")
        .await
        .unwrap();
    for c in [&alice, &bob] {
        assert_eq!(sync_texts(c).await, vec!["dave is gone"]);
    }
    assert!(dave
        .sync()
        .await
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Removed { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_3a_a_removed_member_cannot_post_to_the_group_it_left() {
    let dir = tempfile::tempdir().unwrap();
    let ds = Ds::start(
        &sqlite_in(&dir),
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        NO_LIMITS,
    );
    scenario(&ds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_3a_a_removed_member_cannot_post_to_the_group_it_left_pg() {
    let Some(backend) = pg_fresh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ds = Ds::start(
        &backend,
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        NO_LIMITS,
    );
    scenario(&ds).await;
}
