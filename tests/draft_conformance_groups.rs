//! Conformance with the AT Messaging Proto draft
//! (reference/atmessaging-proto-SPECIFICATION.md), part 3: KeyPackages, creating groups,
//! Welcomes, sending and receiving, application content. Each test is named after its clause
//! in spec/draft-conformance.md and quotes it; a deviation is asserted as the behaviour atmls
//! chose. Parts 1 and 2: tests/draft_conformance.rs, tests/draft_conformance_identity.rs.
mod common;
mod draft_support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use atmls::directory::Directory as _;
use atmls::group::{mailbox_for, welcome_mailbox, GroupKind};
use atmls::identity::{unix_now, DeviceIdentity};
use atmls::keypackage::{KeyPackagePolicy, DEFAULT_CIPHERSUITE};
use atmls::storage::Store;
use atmls::transport::{Kind, MemoryTransport, Transport as _};
use atmls::{Client, Event};
use common::*;
use draft_support::*;

/// A policy of `n` single-use packages, topped up below `n`.
fn policy(n: usize) -> KeyPackagePolicy {
    KeyPackagePolicy {
        single_use: n,
        replenish_below: n,
        ..KeyPackagePolicy::default()
    }
}

/// A new account's device on the shared transport with `policy`.
async fn with_policy(w: &World, name: &str, p: KeyPackagePolicy) -> Client {
    account_over(w, w.net.clone(), name, Store::in_memory().unwrap(), p).await
}

// ---- KeyPackages ---------------------------------------------------------------------------

/// D-KP-1: "Each user that wishes to be reachable via MLS-based messaging MUST first publish
/// at least one KeyPackage." A device publishes 5 single-use packages and a last-resort one
/// when it starts (KP-7); an account with none cannot be added (`NoKeyPackages`).
#[tokio::test]
async fn d_kp_1_a_device_publishes_key_packages_before_it_can_be_added() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let refs = kp_refs(&w, alice.did()).await;
    assert_eq!(refs.iter().filter(|(_, lr)| !lr).count(), 5);
    assert_eq!(refs.iter().filter(|(_, lr)| *lr).count(), 1);
    // An account whose device publishes its records but no KeyPackage.
    let key = atmls::identity::IdentityKeyPair::generate();
    let inst = atmls::identity::InstallationKeyPair::generate();
    let now = unix_now();
    let silent = did("silent");
    w.dir
        .publish_declaration(&key.declare(&silent, now))
        .await
        .unwrap();
    let certificate = key.certify(&silent, &inst.public(), now, now + 86_400);
    let record = atmls::directory::DeviceRecord {
        certificate,
        display_name: None,
    };
    w.dir.publish_device(&record).await.unwrap();
    let e = alice
        .create_group(std::slice::from_ref(&silent))
        .await
        .unwrap_err();
    assert!(
        matches!(e, atmls::Error::NoKeyPackages(ref d) if *d == silent),
        "{e:?}"
    );
    assert!(alice.groups().await.unwrap().is_empty());
}

/// D-KP-2: "The KeyPackage is used to authenticate users and create the necessary Credential
/// to add members to groups in an asynchronous way." bob, who never synced, is added from his
/// published package and reads what was sent meanwhile.
#[tokio::test]
async fn d_kp_2_an_offline_account_is_added_from_its_key_package() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    alice
        .conversation(&g)
        .send_text("while you were away")
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(joined(&ev), vec![g]);
    assert_eq!(texts(&ev), vec!["while you were away"]);
}

/// D-KP-3: "Users can publish multiple KeyPackages with different parameters (supporting
/// different ciphersuites or MLS extensions, for example)." Deviates in part: atmls has one
/// ciphersuite (0x0001, CRED-9); its packages differ only by the last_resort extension.
#[tokio::test]
async fn d_kp_3_packages_differ_by_last_resort_only() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let records = w.dir.key_packages(alice.did()).await.unwrap();
    assert!(records
        .iter()
        .all(|r| r.ciphersuite == u16::from(DEFAULT_CIPHERSUITE)));
    let kinds: HashSet<bool> = records.iter().map(|r| r.last_resort).collect();
    assert_eq!(kinds, HashSet::from([true, false]));
}

/// D-KP-5: "This signing key MUST not be the same as the user's DID verificationMethod
/// signing key or the app_id_pubkey." Every published package has its own leaf key, neither
/// the installation nor the identity key (the DID document's key: on the PDS,
/// `draft_kp_signing_key_differs_from_identity_installation_and_did_keys`).
#[tokio::test]
async fn d_kp_5_each_package_has_its_own_leaf_key() {
    let w = World::new();
    let (alice, key) = w.account("alice").await;
    let mut seen = HashSet::new();
    for r in w.dir.key_packages(alice.did()).await.unwrap() {
        let kp = parse(&r.key_package);
        let leaf = kp.leaf_node().signature_key().as_slice().to_vec();
        assert_ne!(leaf, alice.installation().as_bytes().to_vec());
        assert_ne!(leaf, key.public().as_bytes().to_vec());
        assert!(seen.insert(leaf), "never reused");
    }
    assert_eq!(seen.len(), 6);
}

/// An MLS KeyPackage from its bytes, verified.
fn parse(bytes: &[u8]) -> openmls::prelude::KeyPackage {
    use openmls::prelude::tls_codec::Deserialize as _;
    openmls::prelude::KeyPackageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .validate(
            &openmls_rust_crypto::RustCrypto::default(),
            openmls::prelude::ProtocolVersion::Mls10,
        )
        .unwrap()
}

/// D-KP-6: "KeyPackage reuse SHOULD be minimized." Two groups adding bob use two different
/// single-use packages (KP-5), and the last-resort one stays unused.
#[tokio::test]
async fn d_kp_6_two_invitations_use_two_single_use_packages() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let before = kp_refs(&w, bob.did()).await;
    alice.create_group(&[bob.did().clone()]).await.unwrap();
    alice.create_group(&[bob.did().clone()]).await.unwrap();
    let welcomes = welcome_items(w.net.as_ref(), bob.installation()).await;
    let mut named: HashSet<Vec<u8>> = HashSet::new();
    for i in &welcomes {
        named.insert(
            welcome_of(&bob, &i.payload).await.secrets()[0]
                .new_member()
                .as_slice()
                .to_vec(),
        );
    }
    assert_eq!(named.len(), 2);
    for r in &named {
        assert!(before.iter().any(|(b, lr)| b == r && !lr));
    }
    assert_eq!(joined(&bob.sync().await.unwrap()).len(), 2);
}

/// D-KP-7: "clients SHOULD use 'Last resort' KeyPackages. This requires the inclusion of the
/// last_resort extension". Each device keeps exactly one package carrying it, and the
/// record's flag agrees with the package (KP-3); on the PDS:
/// `draft_kp_last_resort_extension_present`.
#[tokio::test]
async fn d_kp_7_each_device_keeps_one_last_resort_package() {
    let w = World::new();
    let (alice, key) = w.account("alice").await;
    let _laptop = w.device("alice", &key).await;
    let records = w.dir.key_packages(alice.did()).await.unwrap();
    let mut per_device = std::collections::HashMap::new();
    for r in &records {
        assert_eq!(parse(&r.key_package).last_resort(), r.last_resort);
        *per_device.entry(r.installation_key).or_insert(0) += usize::from(r.last_resort);
    }
    assert_eq!(per_device.len(), 2);
    assert!(per_device.values().all(|n| *n == 1));
}

/// bob with only a last-resort package, added by alice; returns bob's store path, the group
/// and the package's ref and leaf key.
async fn last_resort_join(w: &World, dir: &std::path::Path) -> LastResortJoin {
    let path = dir.join("bob.sqlite");
    let bob = account_over(
        w,
        w.net.clone(),
        "bob",
        Store::open(&path).unwrap(),
        policy(0),
    )
    .await;
    let records = w.dir.key_packages(bob.did()).await.unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].last_resort);
    let kp_key = parse(&records[0].key_package)
        .leaf_node()
        .signature_key()
        .as_slice()
        .to_vec();
    let (alice, _) = w.account("alice").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(joined(&ev), vec![g.clone()]);
    LastResortJoin {
        alice,
        bob,
        path,
        g,
        kp_ref: records[0].key_package_ref.clone(),
        kp_key,
    }
}

struct LastResortJoin {
    alice: Client,
    bob: Client,
    path: std::path::PathBuf,
    g: atmls::GroupId,
    kp_ref: Vec<u8>,
    kp_key: Vec<u8>,
}

/// D-KP-8: "It's important that Clients immediately rotate a user's signing key after joining
/// a group via a last resort key package". The joining sync commits a self-update (KP-8): the
/// leaf no longer signs with the package's key, and alice sees the new key.
#[tokio::test]
async fn d_kp_8_a_last_resort_join_rotates_the_leaf_at_once() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let j = last_resort_join(&w, dir.path()).await;
    let group = raw_group(&j.path, &j.g);
    let key = group
        .own_leaf_node()
        .unwrap()
        .signature_key()
        .as_slice()
        .to_vec();
    assert_ne!(key, j.kp_key);
    assert_eq!(group.epoch().as_u64(), 2, "the add, then bob's update");
    j.alice.sync().await.unwrap();
    assert_eq!(
        j.alice.epoch_fingerprint(&j.g).await.unwrap(),
        j.bob.epoch_fingerprint(&j.g).await.unwrap()
    );
}

/// D-KP-9: "clients implementing this proposal MUST ensure that they retain access to the
/// private key material of the signing key for each group they are a member of." The leaf
/// signer is stored with the group (STORE-1): after a restart from its file, bob signs in
/// both of his groups, including after a rotation.
#[tokio::test]
async fn d_kp_9_leaf_signers_survive_a_restart() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (bob, path) = file_account(&w, "bob", dir.path()).await;
    let (alice, _) = w.account("alice").await;
    let g1 = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let g2 = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    bob.conversation(&g1).self_update().await.unwrap();
    drop(bob);
    let bob = Client::builder(w.dir.clone(), w.net.clone(), Store::open(&path).unwrap())
        .message_requests(false)
        .build()
        .await
        .unwrap();
    bob.conversation(&g1).send_text("still me").await.unwrap();
    bob.conversation(&g2).send_text("me too").await.unwrap();
    let mut got = texts(&alice.sync().await.unwrap());
    got.sort(); // groups are synced in no set order
    assert_eq!(got, vec!["me too", "still me"]);
}

/// D-KP-10: "it's assumed that Clients implementing this proposal will manage the creation
/// and rotation of KeyPackages." A used package is replaced at the end of the joining sync
/// (KP-7): the count is back to the policy's, with a fresh package.
#[tokio::test]
async fn d_kp_10_used_packages_are_replaced() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let bob = with_policy(&w, "bob", policy(2)).await;
    let before: HashSet<_> = kp_refs(&w, bob.did()).await.into_iter().collect();
    alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let after: HashSet<_> = kp_refs(&w, bob.did()).await.into_iter().collect();
    assert_eq!(after.iter().filter(|(_, lr)| !lr).count(), 2);
    assert_eq!(after.difference(&before).count(), 1, "one new package");
}

/// D-KP-11: "KeyPackages are published via the Delivery Service." Deviates: they are
/// published in the directory, the account's own PDS repository (REC-5, REC-9); the delivery
/// service holds none.
#[tokio::test]
async fn d_kp_11_packages_are_in_the_directory_not_the_delivery_service() {
    let w = World::new();
    let net = Switch::new(w.net.clone());
    let bob = account_over(
        &w,
        net.clone(),
        "bob",
        Store::in_memory().unwrap(),
        policy(3),
    )
    .await;
    assert_eq!(kp_refs(&w, bob.did()).await.len(), 4);
    assert!(
        net.seen().is_empty(),
        "nothing posted to the delivery service"
    );
}

/// D-KP-12: "Clients SHOULD delete the KeyPackage on all the listed Delivery Service networks
/// any time they successfully process a group request event for a given KeyPackages." The
/// package a joined Welcome used is deleted from the directory (KP-6); on the PDS:
/// `draft_kp_deleted_after_successful_processing_and_kept_on_failure`.
#[tokio::test]
async fn d_kp_12_the_used_package_is_deleted_after_the_join() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    alice.create_group(&[bob.did().clone()]).await.unwrap();
    let item = welcome_items(w.net.as_ref(), bob.installation()).await;
    let used = welcome_of(&bob, &item[0].payload).await.secrets()[0]
        .new_member()
        .as_slice()
        .to_vec();
    assert!(kp_refs(&w, bob.did()).await.iter().any(|(r, _)| *r == used));
    bob.sync().await.unwrap();
    assert!(!kp_refs(&w, bob.did()).await.iter().any(|(r, _)| *r == used));
}

/// D-KP-13: "Clients MAY also create a new KeyPackages at the same time." After a join
/// through the last-resort package, that package is withdrawn and a new last-resort one
/// published in the same sync (KP-8).
#[tokio::test]
async fn d_kp_13_a_used_last_resort_package_is_replaced_at_once() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let j = last_resort_join(&w, dir.path()).await;
    let now = kp_refs(&w, j.bob.did()).await;
    assert_eq!(now.len(), 1);
    assert!(now[0].1, "a last-resort package");
    assert_ne!(now[0].0, j.kp_ref);
}

/// alice's Welcome for bob, made on another delivery service and with its last byte changed,
/// posted to bob's Welcome mailbox: a Welcome bob cannot process. Returns bob's events.
async fn undecryptable_welcome(w: &World, bob: &Client) -> Vec<Event> {
    let elsewhere = Arc::new(MemoryTransport::new());
    let alice = account_over(
        w,
        elsewhere.clone(),
        "alice",
        Store::in_memory().unwrap(),
        policy(1),
    )
    .await;
    alice.create_group(&[bob.did().clone()]).await.unwrap();
    let mut bytes = welcome_items(elsewhere.as_ref(), bob.installation()).await[0]
        .payload
        .clone();
    *bytes.last_mut().unwrap() ^= 0x55;
    let mailbox = welcome_mailbox(bob.installation());
    w.net
        .send_welcome(
            &mailbox,
            &bytes,
            &atmls::transport::IdempotencyKey::random(),
        )
        .await
        .unwrap();
    bob.sync().await.unwrap()
}

/// D-KP-14: "If clients cannot process a Welcome message ..., clients MUST not delete the
/// KeyPackage". A refused Welcome leaves every package published (KP-6), and a later valid
/// Welcome still joins.
#[tokio::test]
async fn d_kp_14_a_refused_welcome_deletes_no_package() {
    let w = World::new();
    let (bob, _) = w.account("bob").await;
    let before: HashSet<_> = kp_refs(&w, bob.did()).await.into_iter().collect();
    let ev = undecryptable_welcome(&w, &bob).await;
    assert!(joined(&ev).is_empty());
    let after: HashSet<_> = kp_refs(&w, bob.did()).await.into_iter().collect();
    assert_eq!(after, before);
    let (carol, _) = w.account("carol").await;
    carol.create_group(&[bob.did().clone()]).await.unwrap();
    assert_eq!(joined(&bob.sync().await.unwrap()).len(), 1);
}

/// D-KP-15: "... and SHOULD show a human-understandable error to the user." The refusal is
/// reported as `Event::Refused` at the Welcome's position with a typed error whose message
/// says what failed; showing it is the app's part.
#[tokio::test]
async fn d_kp_15_a_refused_welcome_is_reported_with_its_reason() {
    let w = World::new();
    let (bob, _) = w.account("bob").await;
    let ev = undecryptable_welcome(&w, &bob).await;
    let refused: Vec<_> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Refused {
                group: None,
                seq,
                error,
            } => Some((*seq, error.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(refused.len(), 1, "{ev:?}");
    assert_eq!(refused[0].0, 1);
    assert!(refused[0].1.len() > 10, "{}", refused[0].1);
}

/// D-KP-16: "Clients MUST regularly rotate the user's signing key in each group that they
/// are a part of." With a one-day schedule (GROUP-10), a device rotates its leaf in each of
/// its groups once due.
#[tokio::test]
async fn d_kp_16_the_leaf_is_rotated_in_each_group() {
    let w = World::new();
    let clock = TestClock::new();
    let bob = Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("bob")))
        .clock(clock.clone())
        .leaf_rotation(Some(Duration::from_secs(86_400)))
        .message_requests(false)
        .build()
        .await
        .unwrap();
    let (alice, _) = w.account("alice").await;
    let groups = [
        alice.create_group(&[bob.did().clone()]).await.unwrap(),
        alice.dm(bob.did()).await.unwrap(),
    ];
    bob.sync().await.unwrap();
    let mut start = Vec::new();
    for g in &groups {
        start.push(bob.epoch_fingerprint(g).await.unwrap().0);
    }
    clock.advance(Duration::from_secs(2 * 86_400));
    bob.sync().await.unwrap();
    for (g, e) in groups.iter().zip(start) {
        assert_eq!(bob.epoch_fingerprint(g).await.unwrap().0, e + 1);
    }
}

/// D-KP-17: "This rotation is done via Proposal and Commit events and broadcast to the group
/// via a Group Message." Deviates: one self-update commit (an UpdatePath, GROUP-6), not an
/// Update proposal then a commit; Update proposals sent alone are refused (GROUP-9).
#[tokio::test]
async fn d_kp_17_a_rotation_is_one_commit() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, _, bob, g) = pair(&w, dir.path()).await;
    let before = group_items(&w, &g).await.len();
    bob.conversation(&g).self_update().await.unwrap();
    let new: Vec<Kind> = group_items(&w, &g).await[before..]
        .iter()
        .map(|i| i.kind)
        .collect();
    assert_eq!(new, vec![Kind::Commit]);
    let ev = alice.sync().await.unwrap();
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(
        alice.epoch_fingerprint(&g).await.unwrap(),
        bob.epoch_fingerprint(&g).await.unwrap()
    );
}

/// D-KP-18: "The Delivery Service MUST provide a way to fetch all KeyPackages for a given
/// did." Deviates: the directory provides it (`Directory::key_packages`), all devices' at
/// once; on the PDS, through every page: `draft_kp_all_key_packages_of_a_did_are_fetchable`.
#[tokio::test]
async fn d_kp_18_all_packages_of_a_did_are_fetched_at_once() {
    let w = World::new();
    let (alice, key) = w.account("alice").await;
    let laptop = w.device("alice", &key).await;
    let all = w.dir.key_packages(alice.did()).await.unwrap();
    assert_eq!(all.len(), 12);
    let devices: HashSet<_> = all.iter().map(|r| r.installation_key).collect();
    assert_eq!(
        devices,
        HashSet::from([*alice.installation(), *laptop.installation()])
    );
}

// ---- Creating groups -------------------------------------------------------------------------

/// D-GRP-1: "MLS Groups are created with a random 32-byte ID value". Ids are 32 bytes, the
/// MLS group's own id, and differ between groups.
#[tokio::test]
async fn d_grp_1_group_ids_are_32_random_bytes() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path, bob, g) = pair(&w, dir.path()).await;
    let g2 = alice.create_group(&[bob.did().clone()]).await.unwrap();
    assert_eq!(g.as_bytes().len(), 32);
    assert_ne!(g, g2);
    assert_eq!(raw_group(&path, &g).group_id().as_slice(), g.as_bytes());
}

/// D-GRP-2: "... that is effectively permanent." Commits of every kind leave the id as it
/// was, on every member.
#[tokio::test]
async fn d_grp_2_the_group_id_never_changes() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path, bob, g) = pair(&w, dir.path()).await;
    let (carol, _) = w.account("carol").await;
    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    bob.conversation(&g).self_update().await.unwrap();
    alice.sync().await.unwrap();
    alice
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    assert_eq!(raw_group(&path, &g).group_id().as_slice(), g.as_bytes());
    let ids: Vec<_> = bob
        .groups()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![g]);
}

/// D-GRP-3: "This ID should be treated as private to the group and MUST not be published
/// outside the members of the group in any form." Nothing posted to the transport or the
/// directory carries it, raw or hex; the mailbox id is a one-way function of it (GROUP-4).
#[tokio::test]
async fn d_grp_3_the_group_id_reaches_neither_transport_nor_directory() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, _, bob, g) = pair(&w, dir.path()).await;
    alice.conversation(&g).send_text("hi").await.unwrap();
    alice.conversation(&g).self_update().await.unwrap();
    let needles = [
        g.as_bytes().to_vec(),
        hex::encode(g.as_bytes()).into_bytes(),
    ];
    let mut hay: Vec<Vec<u8>> = group_items(&w, &g)
        .await
        .into_iter()
        .map(|i| i.payload)
        .collect();
    hay.extend(
        welcome_items(w.net.as_ref(), bob.installation())
            .await
            .into_iter()
            .map(|i| i.payload),
    );
    for who in [alice.did(), bob.did()] {
        let account = w.dir.account(who).await.unwrap().unwrap();
        hay.push(serde_json::to_vec(&account).unwrap());
        for r in w.dir.key_packages(who).await.unwrap() {
            hay.push(r.key_package);
        }
    }
    for n in &needles {
        assert!(!hay.iter().any(|h| contains(h, n)));
    }
    assert_ne!(
        mailbox_for(g.as_bytes()).id.0.to_vec(),
        g.as_bytes().to_vec()
    );
}

/// D-GRP-4: "Clients must also ensure that the ciphersuite, capabilities, and extensions they
/// use when creating the group are compatible with those advertised by the users they'd like
/// to invite". The adder refuses a package of another ciphersuite than the group's (KP-5);
/// capabilities: `cred_9_key_package_lacking_a_required_capability_is_refused`.
#[tokio::test]
async fn d_grp_4_a_package_of_another_ciphersuite_is_refused() {
    use openmls::prelude::Ciphersuite;
    let w = World::new();
    let (bob, _) = w.account("bob").await;
    let account = w
        .dir
        .account(bob.did())
        .await
        .unwrap()
        .unwrap()
        .verify(bob.did(), unix_now())
        .unwrap();
    let rec = &w.dir.key_packages(bob.did()).await.unwrap()[0];
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let check = |cs| atmls::keypackage::validate_record(rec, &account, &crypto, cs, unix_now());
    assert!(check(DEFAULT_CIPHERSUITE).is_ok());
    let other = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
    let e = check(other).unwrap_err();
    assert!(
        matches!(e, atmls::keypackage::KeyPackageError::WrongCiphersuite(_)),
        "{e:?}"
    );
}

/// D-GRP-5: "When creating a new group, the following MLS extensions MUST be used:
/// required_capabilities". The group context requires the atmls extensions 0xF0A0 … 0xF0A6
/// (GROUP-1).
#[tokio::test]
async fn d_grp_5_the_group_requires_the_atmls_capabilities() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (_alice, path, _bob, g) = pair(&w, dir.path()).await;
    let group = raw_group(&path, &g);
    let required: HashSet<u16> = group
        .extensions()
        .required_capabilities()
        .expect("required_capabilities")
        .extension_types()
        .iter()
        .map(|t| u16::from(*t))
        .collect();
    assert_eq!(required, (0xF0A0..=0xF0A6).collect());
}

/// D-GRP-6: "... ratchet_tree" MUST be used. Deviates: Welcomes carry no ratchet_tree
/// extension; the tree travels once per commit, encrypted, as a blob at the delivery service
/// (GROUP-2, LG-T-1 … LG-T-5). So a Welcome into a six-device group is 1 KiB once sealed and
/// padded (GROUP-12), less than two leaves would take.
#[tokio::test]
async fn d_grp_6_welcomes_carry_no_ratchet_tree() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let mut invited = Vec::new();
    for name in ["bob", "carol", "dave", "erin", "frank"] {
        invited.push(w.account(name).await.0);
    }
    let dids: Vec<_> = invited.iter().map(|c| c.did().clone()).collect();
    alice.create_group(&dids).await.unwrap();
    let item = &welcome_items(w.net.as_ref(), invited[0].installation()).await[0];
    // Sealed and padded to its bucket (GROUP-12): 1 KiB, the smallest.
    assert_eq!(item.payload.len(), 1024);
    let ev = invited[4].sync().await.unwrap();
    assert_eq!(joined(&ev).len(), 1, "the joiner fetched the tree");
}

/// D-GRP-7: "... atproto_group_data (TBD)" MUST be used. The atmls group data extension
/// 0xF0A0 (GROUP-3): version 1, kind group (1) or DM (2).
#[tokio::test]
async fn d_grp_7_the_group_carries_atmls_group_data() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path, bob, g) = pair(&w, dir.path()).await;
    let dm = alice.dm(bob.did()).await.unwrap();
    for (id, kind) in [(&g, 1u8), (&dm, 2u8)] {
        let group = raw_group(&path, id);
        let data = group
            .extensions()
            .unknown(atmls::group::GROUP_DATA_EXTENSION)
            .expect("group data")
            .0
            .clone();
        assert_eq!(&data[..2], &[1, kind]);
    }
    let info = bob.groups().await.unwrap();
    assert!(info.iter().any(|i| i.id == g && i.kind == GroupKind::Group));
}

/// D-GRP-8: "And the following MLS extension is highly recommended: last_resort". Deviates
/// in where: last_resort is a KeyPackage extension every atmls device publishes (KP-7), and
/// the group does not require it of its leaves.
#[tokio::test]
async fn d_grp_8_last_resort_is_published_not_required_by_the_group() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (_alice, path, bob, g) = pair(&w, dir.path()).await;
    let group = raw_group(&path, &g);
    let required = group.extensions().required_capabilities().unwrap();
    assert!(!required
        .extension_types()
        .contains(&openmls::prelude::ExtensionType::LastResort));
    assert!(kp_refs(&w, bob.did()).await.iter().any(|(_, lr)| *lr));
}

/// D-GRP-9: "for the group state to properly evolve the Commit messages ... must be published
/// to Delivery Service for the other group members to see." A commit is merged only once the
/// transport stored it (GROUP-6): with the service unreachable the add fails, retryably, and
/// nothing moves; once reachable it goes through.
#[tokio::test]
async fn d_grp_9_no_commit_is_merged_before_the_service_stored_it() {
    let w = World::new();
    let net = Switch::new(w.net.clone());
    let alice = account_over(
        &w,
        net.clone(),
        "alice",
        Store::in_memory().unwrap(),
        policy(3),
    )
    .await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let before = alice.epoch_fingerprint(&g).await.unwrap();
    net.down.store(true, Ordering::SeqCst);
    let e = alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap(), before);
    assert_eq!(alice.conversation(&g).members().await.unwrap().len(), 2);
    net.down.store(false, Ordering::SeqCst);
    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    assert_eq!(alice.conversation(&g).members().await.unwrap().len(), 3);
}

/// D-GRP-10: "Delivery Services Networks conforming to this specification must provide an
/// ordering mechanism to ensure proper group state." Two members commit on the same epoch at
/// once: the transport stores one first (TRANSPORT-1), the other rebuilds after it, and both
/// end in the same epoch with the same secrets.
#[tokio::test]
async fn d_grp_10_concurrent_commits_are_ordered_and_converge() {
    let w = World::new();
    let racing = Arc::new(TestTransport::racing(w.net.clone()));
    let store = || Store::in_memory().unwrap();
    let alice = account_over(&w, racing.clone(), "alice", store(), policy(3)).await;
    let bob = account_over(&w, racing.clone(), "bob", store(), policy(3)).await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let start = alice.epoch_fingerprint(&g).await.unwrap().0;
    racing.hold_next_commits(2);
    let (a, b) = tokio::join!(
        alice.conversation(&g).self_update(),
        bob.conversation(&g).self_update()
    );
    a.unwrap();
    b.unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    let (fa, fb) = (
        alice.epoch_fingerprint(&g).await.unwrap(),
        bob.epoch_fingerprint(&g).await.unwrap(),
    );
    assert_eq!(fa, fb);
    assert_eq!(fa.0, start + 2, "both intents applied, one after the other");
}

/// D-GRP-11: "it is possible for a client to receive 2 or more Commit messages all attempting
/// to update to a new epoch at the same time." The first that passes the agreement checks
/// wins (AGREE-1): a junk commit under the current epoch's tag is skipped by every member and
/// holds nothing.
#[tokio::test]
async fn d_grp_11_of_two_commits_for_an_epoch_the_first_valid_one_wins() {
    use atmls::transport::{CommitOutcome, IdempotencyKey};
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path, bob, g) = pair(&w, dir.path()).await;
    let (p, group, _) = RawProvider::open_group(&path, &g);
    let tag = atmls::group::epoch_tag(&group, crypto_of(&p)).unwrap();
    let mailbox = mailbox_for(g.as_bytes());
    let junk = w
        .net
        .submit_commit(
            &mailbox,
            &tag,
            1,
            b"not a commit",
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    assert!(matches!(junk, CommitOutcome::Accepted { .. }));
    bob.conversation(&g).self_update().await.unwrap();
    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(
        alice.epoch_fingerprint(&g).await.unwrap(),
        bob.epoch_fingerprint(&g).await.unwrap()
    );
}
