//! Typed content across devices (spec/content.md CONTENT-17 to CONTENT-30): replies,
//! reactions, receipts, edits, deletes, attachments, unknown types, disappearing messages,
//! search and pagination, with the negative cases (typed error, unchanged state).
mod common;
use common::*;

use std::sync::Arc;
use std::time::Duration;

use atmls::blob::{BlobStore, FsBlobStore, MemoryBlobStore};
use atmls::client::{HistoryError, HistoryItem, ModerationPolicy};
use atmls::content::{
    Content, ContentCodec, EncodedContent, GroupUpdated, GroupUpdatedCodec, MessageId, Reaction,
    ReactionAction, ReactionCodec, StreamError,
};
use atmls::identity::{unix_now, Did};
use atmls::storage::Store;
use atmls::{Client, Error, Event, GroupId};

async fn all_items(c: &Client, g: &GroupId) -> Vec<HistoryItem> {
    c.conversation(g).history(None, 500).await.unwrap().items
}

/// Whether the word appears anywhere in the device's database, as text or inside a blob
/// (the snapshot prints blobs as lists of byte values).
async fn store_contains(c: &Client, word: &str) -> bool {
    let dump = format!("{:?}", c.store_snapshot().await.unwrap());
    let bytes = format!("{:?}", word.as_bytes());
    dump.contains(word) || dump.contains(bytes.trim_matches(|ch| ch == '[' || ch == ']'))
}

fn rejected(events: &[Event]) -> Vec<HistoryError> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ContentRejected { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

/// alice (two devices) and bob in a group; everyone synced.
async fn trio(w: &World) -> (Client, Client, Client, GroupId) {
    let (alice1, akey) = w.account("alice").await;
    let alice2 = w.device("alice", &akey).await;
    let (bob, _) = w.account("bob").await;
    let g = alice1.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice2.sync().await.unwrap();
    (alice1, alice2, bob, g)
}

#[tokio::test]
async fn content_18_message_ids_agree_and_replies_reference_them() {
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    let q = alice1
        .conversation(&g)
        .send_text("pizza tonight?")
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    let got = ev
        .iter()
        .find_map(|e| match e {
            Event::Message(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(got.id, q.id, "sender and receiver derive the same id");

    let r = bob
        .conversation(&g)
        .reply(&q.id, Content::text("yes!"))
        .await
        .unwrap();
    for c in [&alice1, &alice2] {
        c.sync().await.unwrap();
        let item = c.conversation(&g).message(&r.id).await.unwrap().unwrap();
        assert_eq!(item.in_reply_to, Some(q.id));
        assert_eq!(item.text().as_deref(), Some("yes!"));
        assert_eq!(item.sender.did, *bob.did());
    }
    // The same ids everywhere, including the group-updated item of the creating commit.
    let ids = |items: Vec<HistoryItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let a1 = ids(all_items(&alice1, &g).await);
    assert!(a1.contains(&q.id) && a1.contains(&r.id));
    let b = ids(all_items(&bob, &g).await);
    assert!(b.contains(&q.id) && b.contains(&r.id));
}

#[tokio::test]
async fn content_22_reactions_aggregate_across_devices() {
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    let m = bob.conversation(&g).send_text("we won").await.unwrap();
    alice1.sync().await.unwrap();
    alice2.sync().await.unwrap();
    alice1.conversation(&g).react(&m.id, "🎉").await.unwrap();
    alice2.conversation(&g).react(&m.id, "🎉").await.unwrap(); // same account: counted once
    alice2.conversation(&g).react(&m.id, "👍").await.unwrap();
    bob.conversation(&g).react(&m.id, "🎉").await.unwrap();
    for c in [&alice1, &alice2, &bob] {
        c.sync().await.unwrap();
        let item = c.conversation(&g).message(&m.id).await.unwrap().unwrap();
        let summary: Vec<(String, usize)> = item
            .reactions
            .iter()
            .map(|r| (r.emoji.clone(), r.count()))
            .collect();
        assert_eq!(
            summary,
            vec![("🎉".to_string(), 2), ("👍".to_string(), 1)],
            "{:?}",
            c
        );
    }
    alice1.conversation(&g).unreact(&m.id, "🎉").await.unwrap();
    bob.sync().await.unwrap();
    let item = bob.conversation(&g).message(&m.id).await.unwrap().unwrap();
    assert_eq!(item.reactions[0].by, vec![bob.did().clone()]);
    // Reactions are not timeline items.
    assert_eq!(
        all_items(&bob, &g)
            .await
            .iter()
            .filter(|i| matches!(i.decoded(), Some(Content::Reaction(_))))
            .count(),
        0
    );
}

#[tokio::test]
async fn content_29_reaction_to_unknown_message_rejected_state_unchanged() {
    let w = World::new();
    let (alice1, _alice2, bob, g) = trio(&w).await;
    let unknown = MessageId::from_bytes([9; 32]);
    let before = alice1.store_snapshot().await.unwrap();
    let err = alice1
        .conversation(&g)
        .react(&unknown, "👍")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::History(HistoryError::UnknownMessage(id)) if id == unknown));
    assert!(!err.is_retryable());
    assert_eq!(alice1.store_snapshot().await.unwrap(), before);

    // A modified client sends it anyway: every receiver refuses it and stores nothing.
    let forged = ReactionCodec::encode(&Reaction {
        target: unknown,
        action: ReactionAction::Add,
        emoji: "👍".into(),
    })
    .unwrap();
    let history_before = all_items(&bob, &g).await;
    alice1.send_unchecked(&g, &forged).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(rejected(&ev), vec![HistoryError::UnknownMessage(unknown)]);
    assert_eq!(all_items(&bob, &g).await, history_before);
}

#[tokio::test]
async fn content_23_read_receipts_across_devices() {
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    let m1 = alice1.conversation(&g).send_text("one").await.unwrap();
    let m2 = alice1.conversation(&g).send_text("two").await.unwrap();
    bob.sync().await.unwrap();
    bob.conversation(&g).mark_read(&m2.id).await.unwrap();
    bob.conversation(&g).mark_read(&m1.id).await.unwrap(); // older: does not move the position back
    for c in [&alice1, &alice2] {
        c.sync().await.unwrap();
        let pos = c.conversation(&g).read_positions().await.unwrap();
        let bobs: Vec<_> = pos.iter().filter(|p| p.did == *bob.did()).collect();
        assert_eq!(bobs.len(), 1);
        assert_eq!(bobs[0].up_to, m2.id);
    }
    // Receipts and typing indicators leave no timeline items.
    alice2.conversation(&g).typing(true).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Message(m) if matches!(m.decoded(), Content::Typing(_)))));
    let kinds: Vec<String> = all_items(&bob, &g)
        .await
        .iter()
        .map(|i| i.content.as_ref().unwrap().type_id.type_id().to_owned())
        .collect();
    assert!(
        kinds.iter().all(|k| k == "text" || k == "group-updated"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn content_26_edit_and_delete_across_devices() {
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    let m = alice1
        .conversation(&g)
        .send_text("meet at 5")
        .await
        .unwrap();
    bob.sync().await.unwrap();
    // alice's other device may edit: authorship is per account.
    alice2.sync().await.unwrap();
    alice2
        .conversation(&g)
        .edit(&m.id, Content::text("meet at 6"))
        .await
        .unwrap();
    alice1.sync().await.unwrap();
    alice1
        .conversation(&g)
        .edit(&m.id, Content::text("meet at 7"))
        .await
        .unwrap();
    for c in [&alice1, &alice2, &bob] {
        c.sync().await.unwrap();
        let item = c.conversation(&g).message(&m.id).await.unwrap().unwrap();
        assert_eq!(item.text().as_deref(), Some("meet at 7"));
        assert_eq!(item.edits, 2);
        let revs = c.conversation(&g).edit_history(&m.id).await.unwrap();
        let texts: Vec<_> = revs
            .iter()
            .map(|r| Content::decode(&r.content).summary().unwrap())
            .collect();
        assert_eq!(texts, ["meet at 6", "meet at 7"]);
    }
    // Search sees the latest text only.
    assert!(bob.search(Some(&g), "5", 10).await.unwrap().is_empty());
    assert_eq!(bob.search(Some(&g), "7", 10).await.unwrap().len(), 1);

    alice2.conversation(&g).delete(&m.id).await.unwrap();
    for c in [&alice1, &alice2, &bob] {
        c.sync().await.unwrap();
        let item = c.conversation(&g).message(&m.id).await.unwrap().unwrap();
        assert_eq!(item.content, None);
        assert_eq!(item.deleted.as_ref().unwrap().by, *alice1.did());
        assert!(c
            .conversation(&g)
            .edit_history(&m.id)
            .await
            .unwrap()
            .is_empty());
        assert!(c.search(Some(&g), "meet", 10).await.unwrap().is_empty());
        assert!(c
            .conversation(&g)
            .messages()
            .await
            .unwrap()
            .iter()
            .all(|x| x.id != m.id));
    }
    // A deleted message can no longer be edited or reacted to.
    assert!(matches!(
        alice1
            .conversation(&g)
            .edit(&m.id, Content::text("x"))
            .await,
        Err(Error::History(HistoryError::Deleted(_)))
    ));
    assert!(matches!(
        bob.conversation(&g).react(&m.id, "👍").await,
        Err(Error::History(HistoryError::Deleted(_)))
    ));
}

#[tokio::test]
async fn content_26_edit_or_delete_of_someone_elses_message_rejected() {
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    let m = alice1
        .conversation(&g)
        .send_text("alice's words")
        .await
        .unwrap();
    bob.sync().await.unwrap();
    alice2.sync().await.unwrap();

    let before = bob.store_snapshot().await.unwrap();
    let err = bob
        .conversation(&g)
        .edit(&m.id, Content::text("bob's words"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::History(HistoryError::NotAuthor(id)) if id == m.id));
    let err = bob.conversation(&g).delete(&m.id).await.unwrap_err();
    assert!(matches!(err, Error::History(HistoryError::DeleteNotAllowed(id)) if id == m.id));
    assert_eq!(
        bob.store_snapshot().await.unwrap(),
        before,
        "nothing sent or stored"
    );

    // A modified client sends them anyway: alice's devices refuse both.
    let edit = atmls::content::EditCodec::encode(&atmls::content::Edit {
        target: m.id,
        content: Content::text("bob's words"),
    })
    .unwrap();
    let del =
        atmls::content::DeleteCodec::encode(&atmls::content::Delete { target: m.id }).unwrap();
    let history_before = all_items(&alice2, &g).await;
    bob.send_unchecked(&g, &edit).await.unwrap();
    bob.send_unchecked(&g, &del).await.unwrap();
    for c in [&alice1, &alice2] {
        let ev = c.sync().await.unwrap();
        assert_eq!(
            rejected(&ev),
            vec![
                HistoryError::NotAuthor(m.id),
                HistoryError::DeleteNotAllowed(m.id)
            ]
        );
        let item = c.conversation(&g).message(&m.id).await.unwrap().unwrap();
        assert_eq!(item.text().as_deref(), Some("alice's words"));
        assert_eq!(item.edits, 0);
    }
    assert_eq!(all_items(&alice2, &g).await, history_before);
}

/// Lets one account delete anything: the moderation hook a role system will implement.
struct Moderator(Did);
impl ModerationPolicy for Moderator {
    fn may_delete(&self, _g: &GroupId, actor: &Did, _author: &Did) -> bool {
        *actor == self.0
    }
}

#[tokio::test]
async fn content_26_moderation_hook_allows_moderator_delete() {
    let w = World::new();
    let carol_did = did("carol");
    let mk = |name: &str| {
        let w = &w;
        let policy: Arc<dyn ModerationPolicy> = Arc::new(Moderator(carol_did.clone()));
        let dev = atmls::identity::DeviceIdentity::new_account(did(name));
        async move {
            Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
                .identity(dev)
                .moderation(policy)
                .build()
                .await
                .unwrap()
        }
    };
    let (alice, bob, carol) = (mk("alice").await, mk("bob").await, mk("carol").await);
    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    let m = alice.conversation(&g).send_text("spam").await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    assert!(
        bob.conversation(&g).delete(&m.id).await.is_err(),
        "bob is no moderator"
    );
    carol.conversation(&g).delete(&m.id).await.unwrap();
    for c in [&alice, &bob] {
        c.sync().await.unwrap();
        let item = c.conversation(&g).message(&m.id).await.unwrap().unwrap();
        assert_eq!(item.deleted.unwrap().by, *carol.did());
    }
    // Edits stay author-only whatever the policy.
    let m2 = alice.conversation(&g).send_text("hello").await.unwrap();
    carol.sync().await.unwrap();
    assert!(matches!(
        carol
            .conversation(&g)
            .edit(&m2.id, Content::text("bye"))
            .await,
        Err(Error::History(HistoryError::NotAuthor(_)))
    ));
}

#[tokio::test]
async fn content_25_five_megabyte_attachment_round_trips() {
    let w = World::new();
    let blobs = Arc::new(MemoryBlobStore::new());
    let mk = |name: &str| {
        let dev = atmls::identity::DeviceIdentity::new_account(did(name));
        let b: Arc<dyn BlobStore> = blobs.clone();
        let w = &w;
        async move {
            Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
                .identity(dev)
                .blob_store(b)
                .build()
                .await
                .unwrap()
        }
    };
    let (alice, bob) = (mk("alice").await, mk("bob").await);
    let dm = alice.dm(bob.did()).await.unwrap();
    let data: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i * 31 % 251) as u8)
        .collect();
    let sent = alice
        .conversation(&dm)
        .attach("video.bin", "application/octet-stream", &data)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let item = bob
        .conversation(&dm)
        .message(&sent.id)
        .await
        .unwrap()
        .unwrap();
    let Some(Content::Attachment(a)) = item.decoded() else {
        panic!("not an attachment: {item:?}")
    };
    assert_eq!(a.size, data.len() as u64);
    let atmls::content::AttachmentSource::Streamed(r) = &a.source else {
        panic!("5 MB must not be inline, and goes as a stream (CONTENT-25a)")
    };
    assert_eq!(bob.download(&a).await.unwrap(), data);
    // The blob store holds only ciphertext.
    let stored = blobs.get(&r.url).await.unwrap();
    assert!(!stored.windows(64).any(|w| w == &data[..64]));

    // A server that alters the blob is caught by the chunk's tag (CONTENT-25c), one that
    // alters only the padding by the digest (CONTENT-25d, CONTENT-25e).
    let mut tampered = stored.clone();
    tampered[1000] ^= 0x01;
    blobs.overwrite(&r.url, tampered).unwrap();
    assert!(matches!(
        bob.download(&a).await,
        Err(Error::Stream(StreamError::ChunkAuthentication { chunk: 0 }))
    ));
    let mut padding = stored.clone();
    let last = padding.len() - 1;
    padding[last] = 1;
    blobs.overwrite(&r.url, padding).unwrap();
    assert!(matches!(
        bob.download(&a).await,
        Err(Error::Stream(StreamError::TrailingData))
    ));

    // Small files travel inline.
    let small = alice
        .conversation(&dm)
        .attach("a.txt", "text/plain", b"tiny")
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let Some(Content::Attachment(a)) = bob
        .conversation(&dm)
        .message(&small.id)
        .await
        .unwrap()
        .unwrap()
        .decoded()
    else {
        panic!()
    };
    assert!(matches!(
        a.source,
        atmls::content::AttachmentSource::Inline(_)
    ));
    assert_eq!(bob.download(&a).await.unwrap(), b"tiny");
    assert_eq!(bob.search(Some(&dm), "txt", 5).await.unwrap().len(), 1);
}

#[tokio::test]
async fn content_25_tampered_attachment_file_rejected() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FsBlobStore::new(dir.path()).unwrap());
    let mk = |name: &str| {
        let dev = atmls::identity::DeviceIdentity::new_account(did(name));
        let b: Arc<dyn BlobStore> = fs.clone();
        let w = &w;
        async move {
            Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
                .identity(dev)
                .blob_store(b)
                .build()
                .await
                .unwrap()
        }
    };
    let (alice, bob) = (mk("alice").await, mk("bob").await);
    let dm = alice.dm(bob.did()).await.unwrap();
    let data = vec![0x5au8; 400_000];
    let sent = alice
        .conversation(&dm)
        .attach("scan.pdf", "application/pdf", &data)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let Some(Content::Attachment(a)) = bob
        .conversation(&dm)
        .message(&sent.id)
        .await
        .unwrap()
        .unwrap()
        .decoded()
    else {
        panic!()
    };
    assert_eq!(bob.download(&a).await.unwrap(), data);
    let atmls::content::AttachmentSource::Streamed(r) = &a.source else {
        panic!()
    };
    let path = fs.path_of(&r.url).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();
    let before = bob.store_snapshot().await.unwrap();
    assert!(matches!(
        bob.download(&a).await,
        Err(Error::Stream(StreamError::ChunkAuthentication { chunk: 0 }))
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        bob.download(&a).await,
        Err(Error::Blob(atmls::blob::BlobError::NotFound(_)))
    ));
    assert_eq!(bob.store_snapshot().await.unwrap(), before);
}

#[tokio::test]
async fn content_15_unknown_type_shows_fallback_and_is_kept_raw() {
    let w = World::new();
    let (alice1, _alice2, bob, g) = trio(&w).await;
    let mut poll =
        EncodedContent::new("example.org/poll:3.1".parse().unwrap(), vec![0, 1, 2, 0xff]);
    poll.fallback = Some("[a poll: lunch? update your app to vote]".into());
    poll.parameters.insert("x".into(), "y".into());
    let sent = alice1.conversation(&g).send_content(&poll).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(texts(&ev), vec!["[a poll: lunch? update your app to vote]"]);
    let item = bob
        .conversation(&g)
        .message(&sent.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        item.content.as_ref(),
        Some(&poll),
        "kept exactly, for a later version"
    );
    assert!(matches!(item.decoded(), Some(Content::Unknown { .. })));
    assert_eq!(
        bob.search(Some(&g), "poll lunch", 5).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn content_27_group_updates_are_derived_from_commits_and_cannot_be_forged() {
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    let (carol, _) = w.account("carol").await;
    alice1
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    let updates = |items: Vec<HistoryItem>| -> Vec<(MessageId, GroupUpdated)> {
        items
            .into_iter()
            .filter_map(|i| match i.decoded() {
                Some(Content::GroupUpdated(u)) => Some((i.id, u)),
                _ => None,
            })
            .collect()
    };
    let mine = updates(all_items(&alice1, &g).await);
    let last = mine.last().unwrap().clone();
    assert_eq!(last.1.by, *alice1.did());
    assert!(last.1.added.iter().all(|m| m.did == *carol.did()));
    for c in [&alice2, &bob] {
        c.sync().await.unwrap();
        let theirs = updates(all_items(c, &g).await);
        assert_eq!(
            theirs.last(),
            Some(&last),
            "same id and content on every device"
        );
    }
    // Claiming a group update in a message is refused.
    let forged = GroupUpdatedCodec::encode(&GroupUpdated {
        by: bob.did().clone(),
        added: vec![],
        removed: vec![],
        disappearing_secs: Some(1),
        changes: vec![],
    })
    .unwrap();
    assert!(matches!(
        bob.conversation(&g).send_content(&forged).await,
        Err(Error::History(HistoryError::Forged))
    ));
    // Group updates cannot be deleted, not even by their committer.
    assert!(matches!(
        alice1.conversation(&g).delete(&last.0).await,
        Err(Error::History(HistoryError::DeleteNotAllowed(_)))
    ));
    let before = all_items(&alice2, &g).await;
    bob.send_unchecked(&g, &forged).await.unwrap();
    let ev = alice2.sync().await.unwrap();
    assert_eq!(rejected(&ev), vec![HistoryError::Forged]);
    assert_eq!(all_items(&alice2, &g).await, before);
}

#[tokio::test]
async fn content_28_disappearing_messages_vanish_on_all_devices() {
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    let keep = alice1
        .conversation(&g)
        .send_text("before the timer")
        .await
        .unwrap();
    alice1
        .conversation(&g)
        .set_disappearing(Some(Duration::from_secs(60)))
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::DisappearingChanged { secs: Some(60), .. })));
    alice2.sync().await.unwrap();
    let gone = bob
        .conversation(&g)
        .send_text("zanzibar plans")
        .await
        .unwrap();
    for c in [&alice1, &alice2, &bob] {
        c.sync().await.unwrap();
        assert_eq!(
            c.conversation(&g).disappearing().await.unwrap(),
            Some(Duration::from_secs(60))
        );
        let item = c.conversation(&g).message(&gone.id).await.unwrap().unwrap();
        assert!(item.expires_at.unwrap() >= item.received + 60);
        assert_eq!(c.search(Some(&g), "zanzibar", 5).await.unwrap().len(), 1);
        assert!(store_contains(c, "zanzibar").await, "the check can see it");
    }
    // A minute later (each device's clock), every device deletes it.
    for c in [&alice1, &alice2, &bob] {
        assert!(c.purge_expired_at(unix_now() + 120).await.unwrap() >= 1);
        assert_eq!(c.conversation(&g).message(&gone.id).await.unwrap(), None);
        assert!(c.search(Some(&g), "zanzibar", 5).await.unwrap().is_empty());
        assert!(
            c.conversation(&g)
                .message(&keep.id)
                .await
                .unwrap()
                .is_some(),
            "older messages stay"
        );
        let dump = format!("{:?}", c.store_snapshot().await.unwrap());
        assert!(!dump.contains("zanzibar"), "no trace left in the store");
    }
    alice2
        .conversation(&g)
        .set_disappearing(None)
        .await
        .unwrap();
    bob.sync().await.unwrap();
    assert_eq!(bob.conversation(&g).disappearing().await.unwrap(), None);
    let stays = bob.conversation(&g).send_text("permanent").await.unwrap();
    assert_eq!(
        bob.conversation(&g)
            .message(&stays.id)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        None
    );
}

#[tokio::test]
async fn content_30_search_and_pagination() {
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    for i in 0..25 {
        let sender = if i % 2 == 0 { &alice1 } else { &bob };
        sender.sync().await.unwrap();
        let word = if i == 7 { " rhubarb" } else { "" };
        sender
            .conversation(&g)
            .send_text(&format!("message {i}{word}"))
            .await
            .unwrap();
    }
    alice2.sync().await.unwrap();
    // Search finds the word on a device that only received it.
    let found = alice2.search(Some(&g), "Rhubarb", 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].text().as_deref(), Some("message 7 rhubarb"));
    assert_eq!(alice2.search(None, "rhubarb", 10).await.unwrap().len(), 1);
    assert!(
        alice2
            .search(Some(&g), "rhubar", 10)
            .await
            .unwrap()
            .is_empty(),
        "whole words"
    );
    assert!(
        alice2
            .search(Some(&g), "\" OR *", 10)
            .await
            .unwrap()
            .is_empty(),
        "no FTS syntax"
    );

    // Pages of 10, newest first, each oldest-first inside.
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = alice2.conversation(&g).history(cursor, 10).await.unwrap();
        pages.push(
            page.items
                .iter()
                .filter_map(|i| i.text())
                .collect::<Vec<_>>(),
        );
        match page.older {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let all: Vec<String> = pages.iter().rev().flatten().cloned().collect();
    let msgs: Vec<&String> = all.iter().filter(|t| t.starts_with("message ")).collect();
    assert_eq!(msgs.len(), 25);
    assert_eq!(msgs[0], "message 0");
    assert_eq!(msgs[24], "message 24");
    assert_eq!(pages[0].len(), 10);
    assert_eq!(pages[0].last().unwrap(), "message 24");
}

#[tokio::test]
async fn content_15_malformed_known_type_is_kept_as_its_fallback() {
    let w = World::new();
    let (alice1, _alice2, bob, g) = trio(&w).await;
    let m = alice1.conversation(&g).send_text("target").await.unwrap();
    bob.sync().await.unwrap();
    // A reaction whose payload has a trailing byte: not a reaction, so not applied.
    let mut bad = ReactionCodec::encode(&Reaction {
        target: m.id,
        action: ReactionAction::Add,
        emoji: "👍".into(),
    })
    .unwrap();
    bad.content.push(0);
    let sent = alice1.conversation(&g).send_content(&bad).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(texts(&ev), vec!["Reacted 👍 to a message"]);
    assert!(bob
        .conversation(&g)
        .message(&m.id)
        .await
        .unwrap()
        .unwrap()
        .reactions
        .is_empty());
    let kept = bob
        .conversation(&g)
        .message(&sent.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.content.as_ref(), Some(&bad));
    assert!(matches!(kept.decoded(), Some(Content::Unknown { .. })));
}

#[tokio::test]
async fn content_28_forged_group_context_change_is_refused_epoch_unchanged() {
    use atmls::group::{DISAPPEARING_EXTENSION, GROUP_DATA_EXTENSION};
    let w = World::new();
    let (alice1, alice2, bob, g) = trio(&w).await;
    // A malformed timer, then a rewrite of the group data (group → DM): every other member
    // refuses the commit and stays in its epoch.
    for (ty, bytes) in [
        (DISAPPEARING_EXTENSION, vec![1, 0xff, 0xff, 0xff, 0xff]),
        (GROUP_DATA_EXTENSION, vec![1, 2, 0]),
    ] {
        let before1 = alice1.epoch_fingerprint(&g).await.unwrap();
        let before2 = alice2.epoch_fingerprint(&g).await.unwrap();
        bob.set_context_extension_unchecked(&g, ty, bytes)
            .await
            .unwrap();
        for (c, before) in [(&alice1, before1), (&alice2, before2)] {
            let ev = c.sync().await.unwrap();
            assert!(
                ev.iter().any(|e| matches!(e, Event::Refused { .. })),
                "{ev:?}"
            );
            assert_eq!(c.epoch_fingerprint(&g).await.unwrap(), before);
            assert_eq!(c.conversation(&g).disappearing().await.unwrap(), None);
        }
    }
}

#[tokio::test]
async fn content_25k_deleted_and_expired_attachments_erased_from_a_local_store() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(FsBlobStore::new(dir.path()).unwrap());
    let mk = |name: &str| {
        let dev = atmls::identity::DeviceIdentity::new_account(did(name));
        let b: Arc<dyn BlobStore> = fs.clone();
        let w = &w;
        async move {
            Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
                .identity(dev)
                .blob_store(b)
                .build()
                .await
                .unwrap()
        }
    };
    let (alice, bob) = (mk("alice").await, mk("bob").await);
    let dm = alice.dm(bob.did()).await.unwrap();
    let path_of = |a: &atmls::content::Attachment| {
        let atmls::content::AttachmentSource::Streamed(r) = &a.source else {
            panic!("streamed")
        };
        fs.path_of(&r.url).unwrap()
    };
    // Deleted by its author: the file goes when the delete is applied.
    let sent = alice
        .conversation(&dm)
        .attach("a.bin", "application/octet-stream", &[1u8; 300_000])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let Some(Content::Attachment(a)) = bob
        .conversation(&dm)
        .message(&sent.id)
        .await
        .unwrap()
        .unwrap()
        .decoded()
    else {
        panic!()
    };
    assert!(path_of(&a).exists());
    alice.conversation(&dm).delete(&sent.id).await.unwrap();
    alice.sync().await.unwrap();
    assert!(!path_of(&a).exists(), "erased by the author's device");
    bob.sync().await.unwrap();
    assert_eq!(bob.erase_deleted_blobs().await.unwrap(), 0, "queue drained");
    // Expired: the file goes when the timer runs out on a device.
    alice
        .conversation(&dm)
        .set_disappearing(Some(Duration::from_secs(60)))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let sent = alice
        .conversation(&dm)
        .attach("b.bin", "application/octet-stream", &[2u8; 300_000])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let Some(Content::Attachment(a)) = bob
        .conversation(&dm)
        .message(&sent.id)
        .await
        .unwrap()
        .unwrap()
        .decoded()
    else {
        panic!()
    };
    assert!(path_of(&a).exists());
    assert!(bob.purge_expired_at(unix_now() + 120).await.unwrap() >= 1);
    assert!(!path_of(&a).exists(), "erased on expiry");
}
