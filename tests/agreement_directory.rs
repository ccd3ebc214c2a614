//! AGREE-2 (spec/agreement.md) and TRUST-20, TRUST-23 (spec/trust.md): a commit is merged on
//! the agreement checks alone; the accounts it brings in are checked against the directory
//! afterwards, in the background, with a budget. Nothing a message names is looked up before
//! it is merged, and an account the directory cannot answer for stops no sync.

mod common;

use atmls::identity::Did;
use atmls::storage::Store;
use atmls::trust::MemberStatus;
use atmls::Event;
use common::*;
use openmls::prelude::tls_codec::Serialize as _;
use openmls_traits::OpenMlsProvider as _;

/// AGREE-2, TRUST-23: bob meets carol's account first in the commit that adds her. The
/// commit is merged in that sync before anything is looked up; carol's account is then
/// looked up in the background: the directory fails that first lookup, carol stays pending,
/// and nothing else is held up.
#[tokio::test]
async fn agree_2_added_account_merged_before_any_lookup() {
    let w = World::new();
    let flaky = FlakyDirectory::new(w.dir.clone());
    flaky.fail_once.lock().unwrap().insert(did("carol"));
    let (alice, _) = w.account("alice").await;
    let bob = w.account_on(flaky.clone(), "bob").await;
    let (carol, _) = w.account("carol").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    flaky.asked.lock().unwrap().clear();

    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::MembersAdded { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 3);
    // One background lookup, after the merge; it failed and backs off.
    assert_eq!(flaky.asked(), vec![did("carol")]);
    let trust = bob.conversation(&g).member_trust().await.unwrap();
    let carol_status = trust
        .iter()
        .find(|(m, _)| m.did == *carol.did())
        .map(|(_, s)| *s);
    assert_eq!(carol_status, Some(MemberStatus::Pending));
    carol.sync().await.unwrap();
    alice.conversation(&g).send_text("hi").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["hi".to_string()]);
    assert_eq!(texts(&carol.sync().await.unwrap()), vec!["hi".to_string()]);
    // Backing off: the next sync does not ask again at once.
    assert_eq!(flaky.asked(), vec![did("carol")]);
}

/// TRUST-23: an account bob already pinned is not looked up again; an add of a known
/// account asks the directory nothing.
#[tokio::test]
async fn trust_23_known_accounts_not_looked_up() {
    let w = World::new();
    let flaky = FlakyDirectory::new(w.dir.clone());
    let (alice, akey) = w.account("alice").await;
    let bob = w.account_on(flaky.clone(), "bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    bob.sync().await.unwrap();
    flaky.asked.lock().unwrap().clear();
    // alice's second device: an add naming alice, whom bob verified after joining.
    let alice2 = w.device("alice", &akey).await;
    alice
        .conversation(&g)
        .add_members(&[alice.did().clone()])
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::MembersAdded { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 3);
    assert!(flaky.asked().is_empty());
    assert!(bob
        .conversation(&g)
        .member_trust()
        .await
        .unwrap()
        .iter()
        .all(|(_, s)| *s == MemberStatus::Verified));
    drop(alice2);
}

/// AGREE-2: a member's commit whose outer seal names 1,000 accounts (a hint, as LG-14 once
/// read) is processed as the commit it is, and nothing it names is looked up.
#[tokio::test]
async fn agree_2_hint_naming_1000_accounts_looks_nothing_up() {
    let w = World::new();
    let flaky = FlakyDirectory::new(w.dir.clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let alice = w
        .client(
            atmls::identity::DeviceIdentity::new_account(did("alice")),
            Store::open(&path).unwrap(),
        )
        .await;
    let bob = w.account_on(flaky.clone(), "bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    bob.sync().await.unwrap();
    let epoch = bob.epoch_fingerprint(&g).await.unwrap().0;
    flaky.asked.lock().unwrap().clear();
    drop(alice);

    let (p, mut group, signer) = RawProvider::open_group(&path, &g);
    let bundle = group
        .commit_builder()
        .force_self_update(true)
        .load_psks(p.storage())
        .unwrap()
        .build(p.rand(), p.crypto(), &signer, |_| true)
        .unwrap()
        .stage_commit(&p)
        .unwrap();
    let many: Vec<Did> = (0..1000)
        .map(|i| Did::new(&format!("did:web:n{i}.example.com")).unwrap())
        .collect();
    let sealed = atmls::group::seal_for_transport_with_hint(
        &group,
        p.crypto(),
        &bundle.commit().tls_serialize_detached().unwrap(),
        &many,
    )
    .unwrap();
    use atmls::transport::{EpochTag, IdempotencyKey, Transport as _};
    w.net
        .submit_commit(
            &atmls::group::mailbox_for(g.as_bytes()),
            &EpochTag(rand::random()),
            0,
            &sealed,
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap().0, epoch + 1);
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 2);
    assert!(flaky.asked().is_empty(), "{:?}", flaky.asked().len());
}

/// AGREE-7, TRUST-23: alice adds carol, whose account record is gone by the time bob looks
/// it up (a dead account). bob merges the add like everyone, every later sync succeeds, his
/// other group keeps working, and carol stays pending.
#[tokio::test]
async fn agree_7_member_adding_a_dead_account_stops_no_sync() {
    let w = World::new();
    let flaky = FlakyDirectory::new(w.dir.clone());
    let (alice, _) = w.account("alice").await;
    let bob = w.account_on(flaky.clone(), "bob").await;
    let (carol, _) = w.account("carol").await;
    let (dave, _) = w.account("dave").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let other = dave.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    flaky.dead.lock().unwrap().insert(did("carol"));

    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    dave.conversation(&other)
        .send_text("elsewhere")
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::MembersAdded { .. })),
        "{ev:?}"
    );
    assert_eq!(texts(&ev), vec!["elsewhere".to_string()]);
    for _ in 0..3 {
        bob.sync().await.unwrap();
    }
    let status = bob
        .conversation(&g)
        .member_trust()
        .await
        .unwrap()
        .into_iter()
        .find(|(m, _)| m.did == *carol.did())
        .map(|(_, s)| s);
    assert_eq!(status, Some(MemberStatus::Pending));
    // The group carries on for everyone.
    carol.sync().await.unwrap();
    alice
        .conversation(&g)
        .send_text("welcome carol")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["welcome carol"]);
    assert_eq!(texts(&carol.sync().await.unwrap()), vec!["welcome carol"]);
    assert_eq!(
        bob.epoch_fingerprint(&g).await.unwrap(),
        carol.epoch_fingerprint(&g).await.unwrap()
    );
}
