//! Invite links and join requests (spec/governance.md INV-1 … INV-7): auto-approve, manual
//! approve, decline, expired, used up, revoked, public join handle.
mod common;
use std::time::Duration;

use atmls::client::{InviteLink, InviteOptions, JoinOutcome};
use atmls::group::{Action, GovernanceChange, GovernanceError, GroupError, Preset};
use atmls::{Client, Error, Event, GroupId};
use common::*;

async fn group_of_alice(w: &World) -> (Client, Client, GroupId) {
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let g = alice
        .create_group_with(&[bob.did().clone()], Preset::AdminsOnly, Default::default())
        .await
        .unwrap();
    bob.sync().await.unwrap();
    (alice, bob, g)
}

fn is_member(c: &[atmls::group::Member], who: &Client) -> bool {
    c.iter().any(|m| &m.did == who.did())
}

#[tokio::test]
async fn inv_4_auto_approved_link_adds_the_requester_and_counts_a_use() {
    let w = World::new();
    let (alice, bob, g) = group_of_alice(&w).await;
    let (carol, _) = w.account("carol").await;
    let link = alice
        .conversation(&g)
        .create_invite(InviteOptions {
            max_uses: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let url = link.to_url();
    assert!(url.starts_with("atmls://invite/"), "{url}");
    // Any member's device sees the invite arrive (audit event) and can show the link.
    let ev = bob.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::GovernanceChanged { change: GovernanceChange::InviteCreated(id), .. } if *id == link.id())));
    assert_eq!(
        bob.conversation(&g).invite_link(&link.id()).await.unwrap(),
        Some(link.clone())
    );

    let pending = carol
        .request_join(&InviteLink::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(
        carol.join_outcome(&pending).await.unwrap(),
        JoinOutcome::Pending
    );
    alice.sync().await.unwrap();
    assert_eq!(
        carol.join_outcome(&pending).await.unwrap(),
        JoinOutcome::Approved
    );
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g.clone()]);
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::GovernanceChanged {
                change: GovernanceChange::InviteUsed { uses: 1, .. },
                ..
            }
        )),
        "{ev:?}"
    );
    assert!(is_member(
        &bob.conversation(&g).members().await.unwrap(),
        &carol
    ));
    assert_eq!(bob.conversation(&g).invites().await.unwrap()[0].uses, 1);
    carol
        .conversation(&g)
        .send_text("thanks for the link")
        .await
        .unwrap();
    assert_eq!(
        texts(&bob.sync().await.unwrap()),
        vec!["thanks for the link"]
    );
}

#[tokio::test]
async fn inv_4_manual_approve_and_decline() {
    let w = World::new();
    let (alice, _bob, g) = group_of_alice(&w).await;
    let (carol, _) = w.account("carol").await;
    let (dave, _) = w.account("dave").await;
    let link = alice
        .conversation(&g)
        .create_invite(InviteOptions {
            approval: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let pc = carol.request_join(&link).await.unwrap();
    let pd = dave.request_join(&link).await.unwrap();
    let ev = alice.sync().await.unwrap();
    let asked: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::JoinRequested { request, .. } => Some(request.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 2, "{ev:?}");
    assert_eq!(alice.conversation(&g).join_requests().await.unwrap(), asked);
    // Nothing happens without a decision; a second sync does not report them again.
    assert!(alice
        .sync()
        .await
        .unwrap()
        .iter()
        .all(|e| !matches!(e, Event::JoinRequested { .. })));
    assert_eq!(carol.join_outcome(&pc).await.unwrap(), JoinOutcome::Pending);
    let rc = asked.iter().find(|r| r.did == *carol.did()).unwrap();
    let rd = asked.iter().find(|r| r.did == *dave.did()).unwrap();
    assert_eq!(rc.installation, *carol.installation());
    assert_eq!(
        alice.conversation(&g).approve_join(&rc.id).await.unwrap(),
        JoinOutcome::Approved
    );
    alice.conversation(&g).decline_join(&rd.id).await.unwrap();
    assert_eq!(
        carol.join_outcome(&pc).await.unwrap(),
        JoinOutcome::Approved
    );
    assert_eq!(dave.join_outcome(&pd).await.unwrap(), JoinOutcome::Declined);
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g.clone()]);
    assert!(joined(&dave.sync().await.unwrap()).is_empty());
    assert!(alice
        .conversation(&g)
        .join_requests()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn inv_5_expired_used_up_and_revoked_links_fail_with_a_typed_outcome() {
    let w = World::new();
    let (alice, bob, g) = group_of_alice(&w).await;
    let (carol, _) = w.account("carol").await;
    let (dave, _) = w.account("dave").await;
    let (erin, _) = w.account("erin").await;

    // Used up: one use.
    let once = alice
        .conversation(&g)
        .create_invite(InviteOptions {
            max_uses: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let pc = carol.request_join(&once).await.unwrap();
    alice.sync().await.unwrap();
    let pd = dave.request_join(&once).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        carol.join_outcome(&pc).await.unwrap(),
        JoinOutcome::Approved
    );
    assert_eq!(dave.join_outcome(&pd).await.unwrap(), JoinOutcome::UsedUp);

    // Revoked.
    let revoked = alice
        .conversation(&g)
        .create_invite(InviteOptions::default())
        .await
        .unwrap();
    alice
        .conversation(&g)
        .revoke_invite(&revoked.id())
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(ev.iter().any(|e| matches!(e, Event::GovernanceChanged { change: GovernanceChange::InviteRevoked(id), .. } if *id == revoked.id())));
    let pd = dave.request_join(&revoked).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(dave.join_outcome(&pd).await.unwrap(), JoinOutcome::Revoked);

    // Expired.
    let short = alice
        .conversation(&g)
        .create_invite(InviteOptions {
            expires_in: Some(Duration::from_secs(1)),
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let pe = erin.request_join(&short).await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(erin.join_outcome(&pe).await.unwrap(), JoinOutcome::Expired);

    let members = bob.conversation(&g).members().await.unwrap();
    assert!(is_member(&members, &carol));
    assert!(!is_member(&members, &dave) && !is_member(&members, &erin));
    for c in [&dave, &erin] {
        assert!(joined(&c.sync().await.unwrap()).is_empty());
    }
}

#[tokio::test]
async fn inv_1_only_members_with_invite_permission_create_links() {
    let w = World::new();
    let (alice, bob, g) = group_of_alice(&w).await;
    let before = bob.epoch_fingerprint(&g).await.unwrap();
    let e = bob
        .conversation(&g)
        .create_invite(InviteOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::Forbidden {
                action: Action::Invite,
                ..
            }))
        ),
        "{e:?}"
    );
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), before);
    // Nor revoke alice's.
    let link = alice
        .conversation(&g)
        .create_invite(InviteOptions::default())
        .await
        .unwrap();
    bob.sync().await.unwrap();
    assert!(bob
        .conversation(&g)
        .revoke_invite(&link.id())
        .await
        .is_err());
    // A tampered link is not a link.
    let mut url = link.to_url();
    url.push('A');
    assert!(InviteLink::parse(&url).is_err());
}

#[tokio::test]
async fn inv_6_join_request_through_the_public_handle_approved() {
    let w = World::new();
    let (alice, bob, g) = group_of_alice(&w).await;
    let (carol, _) = w.account("carol").await;
    let handle = alice.conversation(&g).create_join_handle().await.unwrap();
    let text = handle.to_url();
    assert!(text.starts_with("atmls://join/"), "{text}");
    // carol knows only the handle.
    let pending = carol
        .request_join(&InviteLink::parse(&text).unwrap())
        .await
        .unwrap();
    let ev = alice.sync().await.unwrap();
    let req = ev
        .iter()
        .find_map(|e| match e {
            Event::JoinRequested { request, .. } => Some(request.clone()),
            _ => None,
        })
        .expect("alice sees the request");
    assert!(req.via_handle);
    assert_eq!(req.did, *carol.did());
    alice.conversation(&g).approve_join(&req.id).await.unwrap();
    assert_eq!(
        carol.join_outcome(&pending).await.unwrap(),
        JoinOutcome::Approved
    );
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g.clone()]);
    bob.sync().await.unwrap();
    assert!(is_member(
        &bob.conversation(&g).members().await.unwrap(),
        &carol
    ));
}

#[tokio::test]
async fn inv_4_a_watching_admin_admits_when_the_request_arrives() {
    let w = World::new();
    let (alice, _bob, g) = group_of_alice(&w).await;
    let alice = std::sync::Arc::new(alice);
    let (carol, _) = w.account("carol").await;
    let link = alice
        .conversation(&g)
        .create_invite(InviteOptions::default())
        .await
        .unwrap();
    // A long poll interval: once the first round is done, only the subscription to the
    // invite mailbox can wake alice.
    let _events = alice.watch(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = carol.request_join(&link).await.unwrap();
    let admitted = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if carol.join_outcome(&pending).await.unwrap() == JoinOutcome::Approved {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or(false);
    assert!(admitted);
    assert_eq!(
        carol.join_outcome(&pending).await.unwrap(),
        JoinOutcome::Approved
    );
}
