//! The conversation handle end to end: every group-scoped call goes through
//! `client.conversation(&id)`, a copyable handle whose futures borrow only the client and
//! the id (so they can be stored and joined).
mod common;
use atmls::client::{InviteOptions, JoinOutcome};
use atmls::content::Content;
use atmls::group::{GroupId, Role};
use common::*;

#[tokio::test]
async fn conversation_handle_end_to_end() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;

    // A DM: one handle per side, used for several calls (it is Copy).
    let dm = alice.dm(bob.did()).await.unwrap();
    let a_dm = alice.conversation(&dm);
    assert_eq!(a_dm.id(), &dm);
    let hi = a_dm.send_text("hi bob").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["hi bob"]);
    let b_dm = bob.conversation(&dm);
    b_dm.react(&hi.id, "👋").await.unwrap();
    b_dm.reply(&hi.id, Content::text("hi alice")).await.unwrap();
    alice.sync().await.unwrap();
    let item = a_dm.message(&hi.id).await.unwrap().unwrap();
    assert_eq!(item.reactions[0].by, vec![bob.did().clone()]);
    let page = a_dm.history(None, 10).await.unwrap();
    let texts_seen: Vec<_> = page.items.iter().filter_map(|i| i.text()).collect();
    // After the DM's creation (a group update, with its fallback text).
    assert_eq!(texts_seen[texts_seen.len() - 2..], ["hi bob", "hi alice"]);
    assert!(a_dm.queued_messages().await.unwrap().is_empty());

    // A group: membership, governance and invites through the handle.
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let a_g = alice.conversation(&g);
    a_g.set_name("lunch").await.unwrap();
    a_g.set_role(bob.did(), Role::Admin).await.unwrap();
    bob.sync().await.unwrap();
    let b_g = bob.conversation(&g);
    assert_eq!(b_g.metadata().await.unwrap().name, "lunch");
    assert_eq!(b_g.role(bob.did()).await.unwrap(), Role::Admin);
    let link = b_g
        .create_invite(InviteOptions {
            approval: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let pending = carol.request_join(&link).await.unwrap();
    alice.sync().await.unwrap();
    let request = a_g.join_requests().await.unwrap()[0].id;
    assert_eq!(
        a_g.approve_join(&request).await.unwrap(),
        JoinOutcome::Approved
    );
    assert_eq!(
        carol.join_outcome(&pending).await.unwrap(),
        JoinOutcome::Approved
    );
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g.clone()]);
    assert_eq!(carol.conversation(&g).members().await.unwrap().len(), 3);

    // Futures of two handles made as temporaries, stored, then awaited together: each
    // call takes the client's lock in turn.
    let in_dm = alice.conversation(&dm).send_text("to bob");
    let in_group = alice.conversation(&g).send_text("to everyone");
    let (a, b) = tokio::join!(in_dm, in_group);
    a.unwrap();
    b.unwrap();
    assert_eq!(
        texts(&carol.sync().await.unwrap()),
        vec!["to everyone"],
        "carol is not in the DM"
    );
    assert_eq!(
        stored_texts(&bob, &g).await,
        Vec::<String>::new(),
        "bob has not synced"
    );
    bob.sync().await.unwrap();
    assert_eq!(stored_texts(&bob, &g).await, vec!["to everyone"]);

    // Leaving through the handle; another member's sync commits it.
    carol.conversation(&g).leave().await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(a_g.members().await.unwrap().len(), 2);
}

#[tokio::test]
async fn conversation_of_an_unknown_group_fails_and_changes_nothing() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let unknown = GroupId::from_hex(&"07".repeat(32)).unwrap();
    let chat = alice.conversation(&unknown);
    assert!(chat.send_text("anyone?").await.is_err());
    assert!(chat.members().await.is_err());
    assert!(alice.groups().await.unwrap().is_empty());
}
