//! The scenario on the real reference PDS: alice and bob have accounts; alice
//! publishes her identity, device and KeyPackages; bob resolves her by handle, fetches and
//! verifies them, and adds her to a group; alice joins; the used KeyPackage record is gone
//! from her repository and a fresh one replaces it. Also the last-resort rotation (KP-8) and
//! that every record atmls writes passes the official lexicon validator (REC-1).
#![cfg(feature = "pds")]

mod common;
mod pds_support;

use std::collections::HashSet;
use std::sync::Arc;

use atmls::directory::pds::records;
use atmls::directory::Directory;
use atmls::identity::DeviceIdentity;
use atmls::keypackage::KeyPackagePolicy;
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::{Client, Event};
use common::texts;
use pds_support::*;

fn policy(single_use: usize) -> KeyPackagePolicy {
    KeyPackagePolicy {
        single_use,
        replenish_below: single_use,
        ..KeyPackagePolicy::default()
    }
}

async fn client(a: &Account, net: &Arc<MemoryTransport>, p: KeyPackagePolicy) -> Client {
    Client::builder(
        Arc::new(directory_for(a).await),
        net.clone(),
        Store::in_memory().unwrap(),
    )
    .identity(DeviceIdentity::new_account(a.did.clone()))
    .key_package_policy(p)
    .message_requests(false)
    .build()
    .await
    .unwrap()
}

fn kp_refs(a: &Account) -> (HashSet<Vec<u8>>, HashSet<Vec<u8>>) {
    let mut single = HashSet::new();
    let mut last = HashSet::new();
    for (_, v) in list_raw(&a.did, records::KEY_PACKAGE) {
        let r = records::decode_key_package(&a.did, &v).unwrap();
        if r.last_resort {
            last.insert(r.key_package_ref);
        } else {
            single.insert(r.key_package_ref);
        }
    }
    (single, last)
}

#[tokio::test]
async fn rec_1_alice_publishes_bob_resolves_verifies_adds_and_used_key_package_is_replaced() {
    let (alice_acct, bob_acct) = (create_account("alice"), create_account("bob"));
    let net = Arc::new(MemoryTransport::new());
    let alice = client(&alice_acct, &net, policy(2)).await;

    // Alice's repository holds her declaration, her device and 2 + 1 KeyPackages, and every
    // record passes the official lexicon validator.
    let decl = list_raw(&alice_acct.did, records::DECLARATION);
    let devices = list_raw(&alice_acct.did, records::DEVICE);
    let kps = list_raw(&alice_acct.did, records::KEY_PACKAGE);
    assert_eq!((decl.len(), devices.len(), kps.len()), (1, 1, 3));
    assert_eq!(decl[0].0, "self");
    assert_eq!(devices[0].0, records::installation_id(alice.installation()));
    let all: Vec<(&str, serde_json::Value)> = decl
        .iter()
        .map(|(_, v)| (records::DECLARATION, v.clone()))
        .chain(devices.iter().map(|(_, v)| (records::DEVICE, v.clone())))
        .chain(kps.iter().map(|(_, v)| (records::KEY_PACKAGE, v.clone())))
        .collect();
    assert!(
        validate(&all).iter().all(Result::is_ok),
        "{:?}",
        validate(&all)
    );

    // Bob, logged in on his own account, resolves alice by handle and checks everything.
    let bob_dir = Arc::new(directory_for(&bob_acct).await);
    assert_eq!(
        bob_dir.resolve(&alice_acct.handle).await.unwrap(),
        alice_acct.did
    );
    let found = bob_dir.lookup(&alice_acct.did).await.unwrap();
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    assert_eq!(found.account.devices, vec![*alice.installation()]);
    assert_eq!(found.key_packages.len(), 3);
    assert_eq!(found.declaration.profile.ciphersuites, vec![1]);

    let bob = Client::builder(bob_dir.clone(), net.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(bob_acct.did.clone()))
        .message_requests(false)
        .build()
        .await
        .unwrap();
    let (single_before, last_before) = kp_refs(&alice_acct);
    let group = bob
        .create_group(std::slice::from_ref(&alice_acct.did))
        .await
        .unwrap();
    // Not processed yet: nothing deleted.
    assert_eq!(
        kp_refs(&alice_acct),
        (single_before.clone(), last_before.clone())
    );

    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Joined { group: g, .. } if *g == group)),
        "{ev:?}"
    );
    let (single_after, last_after) = kp_refs(&alice_acct);
    let used: Vec<_> = single_before.difference(&single_after).collect();
    let fresh: Vec<_> = single_after.difference(&single_before).collect();
    assert_eq!(
        used.len(),
        1,
        "the used record is gone from alice's repository"
    );
    assert_eq!(
        fresh.len(),
        1,
        "1 left is below the threshold of 2: one fresh record"
    );
    assert_eq!(
        last_after, last_before,
        "the last-resort package was not used"
    );

    bob.conversation(&group)
        .send_text("hello alice")
        .await
        .unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["hello alice"]);
    alice
        .conversation(&group)
        .send_text("hi bob")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["hi bob"]);
}

#[tokio::test]
async fn kp_8_last_resort_join_rotates_the_package_and_the_leaf() {
    let (alice_acct, bob_acct) = (create_account("alicelr"), create_account("boblr"));
    let net = Arc::new(MemoryTransport::new());
    // No single-use packages: only the last-resort one can be used.
    let alice = client(&alice_acct, &net, policy(0)).await;
    let bob = client(&bob_acct, &net, policy(1)).await;
    let (single, last_before) = kp_refs(&alice_acct);
    assert!(single.is_empty());
    assert_eq!(last_before.len(), 1);

    let group = bob
        .create_group(std::slice::from_ref(&alice_acct.did))
        .await
        .unwrap();
    let epoch_at_join = bob.groups().await.unwrap()[0].epoch;
    alice.sync().await.unwrap();
    let (_, last_after) = kp_refs(&alice_acct);
    assert_eq!(last_after.len(), 1, "a new last-resort package replaces it");
    assert!(
        last_after.is_disjoint(&last_before),
        "the used one is deleted"
    );

    // Alice committed a self-update in the group: bob sees the next epoch.
    bob.sync().await.unwrap();
    let info = bob.groups().await.unwrap();
    assert_eq!(info[0].id, group);
    assert_eq!(info[0].epoch, epoch_at_join + 1);
    bob.conversation(&group)
        .send_text("after rotation")
        .await
        .unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["after rotation"]);
}

#[tokio::test]
async fn kp_7_expired_records_are_pruned_even_untracked_ones() {
    use atmls::identity::unix_now;
    let a = create_account("prune");
    let dir = directory_for(&a).await;
    let net = Arc::new(MemoryTransport::new());
    let c = Client::builder(
        Arc::new(directory_for(&a).await),
        net,
        Store::in_memory().unwrap(),
    )
    .identity(DeviceIdentity::new_account(a.did.clone()))
    .key_package_policy(policy(1))
    .message_requests(false)
    .build()
    .await
    .unwrap();
    // A record no device tracks (e.g. from a lost installation), long expired.
    let (_, v) = list_raw(&a.did, records::KEY_PACKAGE).remove(0);
    let mut stale = records::decode_key_package(&a.did, &v).unwrap();
    stale.key_package_ref = vec![9; 32];
    stale.expires = unix_now() - 10;
    dir.publish_key_package(&stale).await.unwrap();
    assert_eq!(list_raw(&a.did, records::KEY_PACKAGE).len(), 3);
    assert_eq!(dir.prune_key_packages(&a.did, unix_now()).await.unwrap(), 1);
    assert_eq!(list_raw(&a.did, records::KEY_PACKAGE).len(), 2);
    drop(c);
}
