//! Key succession, device linking and revocation, safety numbers and the trust negatives on
//! the real reference PDS (spec/trust.md). `tests/trust.rs` runs the same rules on the
//! in-memory directory; `tests/trust_compromise.rs` the stolen-password scenario.
#![cfg(feature = "pds")]

mod common;
mod pds_support;

use std::sync::Arc;

use atmls::directory::{Directory, DirectoryError};
use atmls::identity::{DeviceIdentity, IdentityError, IdentityKeyPair};
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::trust::{ChangeKind, PairingCode, PendingLink, TrustError};
use atmls::{Client, Error, Event, GroupId};
use common::{joined, texts};
use pds_support::*;

async fn client_in(
    a: &Account,
    net: &Arc<MemoryTransport>,
    id: DeviceIdentity,
    store: Store,
) -> Client {
    Client::builder(Arc::new(directory_for(a).await), net.clone(), store)
        .identity(id)
        .message_requests(false)
        .build()
        .await
        .unwrap()
}

async fn client(a: &Account, net: &Arc<MemoryTransport>) -> Client {
    client_in(
        a,
        net,
        DeviceIdentity::new_account(a.did.clone()),
        Store::in_memory().unwrap(),
    )
    .await
}

/// A further device of `a`, linked by a pairing code approved on `approver` (TRUST-13).
async fn link(a: &Account, net: &Arc<MemoryTransport>, approver: &Client) -> Client {
    let pending = PendingLink::start(&**net, a.did.clone()).await.unwrap();
    approver.approve_link(pending.code()).await.unwrap();
    let id = pending.finish(&**net).await.unwrap();
    client_in(a, net, id, Store::in_memory().unwrap()).await
}

fn no_warnings(ev: &[Event]) {
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::TrustWarning { .. } | Event::Refused { .. })),
        "{ev:?}"
    );
}

fn has_text(ev: &[Event], want: &str) -> bool {
    texts(ev).iter().any(|t| t == want)
}

async fn has_device(c: &Client, g: &GroupId, installation: &atmls::identity::PublicKey) -> bool {
    c.conversation(g)
        .members()
        .await
        .unwrap()
        .iter()
        .any(|m| &m.installation == installation)
}

/// TRUST-14, TRUST-13, TRUST-12 on the real PDS: alice rotates her identity key and her
/// groups carry on with no warning to anyone; her laptop follows; a phone linked under the
/// new key joins all her groups; revoking it removes it and refuses what it sends later.
#[tokio::test]
async fn trust_14_13_12_rotation_linking_and_revocation_on_the_real_pds() {
    let (a, b, c) = (
        create_account("alice"),
        create_account("bob"),
        create_account("carol"),
    );
    let net = Arc::new(MemoryTransport::new());
    let alice = client(&a, &net).await;
    let laptop = link(&a, &net, &alice).await;
    let bob = client(&b, &net).await;
    let carol = client(&c, &net).await;
    let g = bob
        .create_group(&[a.did.clone(), c.did.clone()])
        .await
        .unwrap();
    let dm = alice.dm(&b.did).await.unwrap();
    for x in [&alice, &laptop, &carol, &bob] {
        x.sync().await.unwrap();
    }
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 4);
    let k0 = bob.contact_trust(&a.did).await.unwrap().identity_key;

    // Succession: bob and carol follow the endorsement; nobody is warned.
    let k1 = alice.rotate_identity_key().await.unwrap();
    let ev = bob.sync().await.unwrap();
    no_warnings(&ev);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::IdentityKeyRotated { did, old, new } if did == &a.did && *old == k0 && *new == k1
    )));
    let t = bob.contact_trust(&a.did).await.unwrap();
    assert_eq!(
        (t.identity_key, t.history[0].kind),
        (k1, ChangeKind::Endorsed)
    );
    assert!(bob.check_contacts().await.unwrap().is_empty());
    alice.conversation(&g).send_text("rotated").await.unwrap();
    alice
        .conversation(&dm)
        .send_text("rotated, privately")
        .await
        .unwrap();
    assert!(has_text(&bob.sync().await.unwrap(), "rotated, privately"));
    let ev = carol.sync().await.unwrap();
    no_warnings(&ev);
    assert!(has_text(&ev, "rotated"));
    // The laptop finds nothing foreign in the account, takes its new certificate and
    // re-credentials its leaves; everyone still reads it.
    assert!(laptop.self_check().await.unwrap().is_empty());
    assert!(alice.self_check().await.unwrap().is_empty());
    laptop.sync().await.unwrap();
    laptop
        .conversation(&g)
        .send_text("laptop after rotation")
        .await
        .unwrap();
    for x in [&bob, &carol, &alice] {
        let ev = x.sync().await.unwrap();
        no_warnings(&ev);
        assert!(has_text(&ev, "laptop after rotation"), "{ev:?}");
    }
    // The published devices are all certified by the new key.
    let record = directory_for(&b)
        .await
        .account(&a.did)
        .await
        .unwrap()
        .unwrap();
    let verified = record.verify(&a.did, atmls::identity::unix_now()).unwrap();
    assert_eq!(verified.identity_key, k1);
    assert_eq!(verified.devices.len(), 2);

    // Linking under the new key: the phone joins every group of alice's.
    let phone = link(&a, &net, &alice).await;
    alice.add_own_devices().await.unwrap();
    let mut got = joined(&phone.sync().await.unwrap());
    got.sort();
    let mut want = vec![g.clone(), dm.clone()];
    want.sort();
    assert_eq!(got, want);
    for x in [&bob, &carol, &laptop] {
        no_warnings(&x.sync().await.unwrap());
    }
    carol
        .conversation(&g)
        .send_text("welcome, phone")
        .await
        .unwrap();
    assert!(has_text(&phone.sync().await.unwrap(), "welcome, phone"));
    phone
        .conversation(&g)
        .send_text("phone here")
        .await
        .unwrap();
    assert!(has_text(&bob.sync().await.unwrap(), "phone here"));

    // Revocation: alice's commit removes the phone; what it sends afterwards is refused.
    let p = *phone.installation();
    alice.revoke_device(&p).await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    assert!(!has_device(&bob, &g, &p).await);
    assert!(!has_device(&carol, &g, &p).await);
    bob.check_contacts().await.unwrap();
    phone
        .conversation(&g)
        .send_text("from a revoked phone")
        .await
        .ok();
    let ev = bob.sync().await.unwrap();
    assert!(!has_text(&ev, "from a revoked phone"), "{ev:?}");
    let record = directory_for(&b)
        .await
        .account(&a.did)
        .await
        .unwrap()
        .unwrap();
    assert!(record.declaration.revoked().contains(&p));
    // Adding alice again brings back neither the phone nor anything else.
    let before = bob.conversation(&g).members().await.unwrap().len();
    bob.conversation(&g)
        .add_members(std::slice::from_ref(&a.did))
        .await
        .unwrap();
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), before);
    assert!(!has_device(&bob, &g, &p).await);
}

/// TRUST-7, TRUST-8 on the real PDS: the same number on both sides, across restarts, and a
/// new one (still the same on both sides) after an endorsed rotation.
#[tokio::test]
async fn trust_7_8_safety_numbers_on_the_real_pds() {
    let (a, b) = (create_account("alice"), create_account("bob"));
    let net = Arc::new(MemoryTransport::new());
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join("alice.db"), dir.path().join("bob.db"));
    let alice = client_in(
        &a,
        &net,
        DeviceIdentity::new_account(a.did.clone()),
        Store::open(&pa).unwrap(),
    )
    .await;
    let bob = client_in(
        &b,
        &net,
        DeviceIdentity::new_account(b.did.clone()),
        Store::open(&pb).unwrap(),
    )
    .await;
    let dm = alice.dm(&b.did).await.unwrap();
    bob.sync().await.unwrap();
    let n = alice.safety_number(&b.did).await.unwrap();
    assert_eq!(n, bob.safety_number(&a.did).await.unwrap());
    bob.verify_safety_qr(&a.did, &n.qr_payload()).await.unwrap();
    drop((alice, bob));

    let reopen = |acc: &Account, path: &std::path::Path| {
        let store = Store::open(path).unwrap();
        let acc = acc.clone();
        let net = net.clone();
        async move {
            Client::builder(Arc::new(directory_for(&acc).await), net, store)
                .message_requests(false)
                .build()
                .await
                .unwrap()
        }
    };
    let alice = reopen(&a, &pa).await;
    let bob = reopen(&b, &pb).await;
    assert_eq!(alice.safety_number(&b.did).await.unwrap(), n);
    assert_eq!(bob.safety_number(&a.did).await.unwrap(), n);
    assert!(bob.contact_trust(&a.did).await.unwrap().verified);

    // An endorsed rotation changes the number on both sides; the verified key vouched for
    // its successor, so bob's contact stays verified.
    alice.rotate_identity_key().await.unwrap();
    no_warnings(&bob.sync().await.unwrap());
    let n2 = bob.safety_number(&a.did).await.unwrap();
    assert_ne!(n2, n);
    assert_eq!(alice.safety_number(&b.did).await.unwrap(), n2);
    assert!(bob.contact_trust(&a.did).await.unwrap().verified);
    alice.conversation(&dm).send_text("same me").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["same me"]);
}

/// TRUST-2, TRUST-3, TRUST-4, TRUST-13 negatives on the real PDS: a forged endorsement, a
/// chain with a gap and a replayed old declaration written into alice's repository, and a
/// pairing attempt with the wrong code: each a typed error and bob's state unchanged.
#[tokio::test]
async fn trust_2_3_4_13_forgeries_replays_and_wrong_codes_on_the_real_pds() {
    let (a, b) = (create_account("alice"), create_account("bob"));
    let net = Arc::new(MemoryTransport::new());
    let alice = client(&a, &net).await;
    let bob = client(&b, &net).await;
    bob.dm(&a.did).await.unwrap();
    let repo = directory_for(&a).await; // what a PDS-password holder can write
    let d0 = repo.account(&a.did).await.unwrap().unwrap().declaration;
    let blob = alice
        .export_identity_key("passphrase for the test")
        .await
        .unwrap();
    let k0 = IdentityKeyPair::import_encrypted(&blob, &a.did, "passphrase for the test").unwrap();
    let (k1, k2) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    let d1 = k0.rotate(&d0, &k1, d0.created + 1).unwrap();
    let d2 = k1.rotate(&d1, &k2, d1.created + 1).unwrap();
    let before = bob.store_snapshot().await.unwrap();

    // A forged link: the endorsement edited to name the attacker's key.
    let attacker = IdentityKeyPair::generate();
    let mut forged = attacker.declare(&a.did, d2.created + 1);
    forged.endorsements = d1.endorsements.clone();
    forged.endorsements[0].new_key = attacker.public();
    repo.publish_declaration(&forged).await.unwrap();
    // The PDS directory checks the chain as it decodes the record (REC-*), and refuses it.
    let r = bob.create_group(std::slice::from_ref(&a.did)).await;
    assert!(
        matches!(&r, Err(Error::Directory(DirectoryError::Refused(m))) if m.contains("endorsement")),
        "{r:?}"
    );
    assert_eq!(bob.store_snapshot().await.unwrap(), before);

    // A gap in the chain (k0 → k1 missing): unendorsed, a warning, nothing pinned.
    let mut gap = d2.clone();
    gap.endorsements.remove(0);
    repo.publish_declaration(&gap).await.unwrap();
    assert!(matches!(
        bob.create_group(std::slice::from_ref(&a.did)).await,
        Err(Error::Trust(TrustError::UnacceptedKeyChange { .. }))
    ));
    assert_eq!(bob.store_snapshot().await.unwrap(), before);
    assert!(bob
        .sync()
        .await
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::TrustWarning { did, .. } if did == &a.did)));

    // The whole chain is followed; the old declaration replayed afterwards is refused.
    repo.publish_declaration(&d2).await.unwrap();
    no_warnings(&bob.check_contacts().await.unwrap());
    assert_eq!(
        bob.contact_trust(&a.did).await.unwrap().identity_key,
        k2.public()
    );
    repo.publish_declaration(&d0).await.unwrap();
    let before = bob.store_snapshot().await.unwrap();
    assert!(matches!(
        bob.create_group(std::slice::from_ref(&a.did)).await,
        Err(Error::Identity(IdentityError::Rollback))
    ));
    assert_eq!(bob.store_snapshot().await.unwrap(), before);
    assert_eq!(
        bob.contact_trust(&a.did).await.unwrap().identity_key,
        k2.public()
    );

    // A pairing attempt with the wrong code finds nothing and changes nothing.
    let pending = PendingLink::start(&*net, a.did.clone()).await.unwrap();
    let before = alice.store_snapshot().await.unwrap();
    let wrong = PairingCode::parse("AAAA-BBBB-CCCC-DDDD").unwrap();
    assert_ne!(&wrong, pending.code());
    assert!(matches!(
        alice.approve_link(&wrong).await,
        Err(Error::Trust(TrustError::LinkRequestNotFound))
    ));
    assert_eq!(alice.store_snapshot().await.unwrap(), before);
}

/// TRUST-11 on the real PDS: alice loses every device but kept her passphrase export; a new
/// device built from the restored key keeps her identity (no warning, same safety number)
/// and is added to her group. Starting over without it is a new identity: bob is warned.
#[tokio::test]
async fn trust_11_restoring_the_identity_key_on_the_real_pds() {
    let (a, b) = (create_account("alice"), create_account("bob"));
    let net = Arc::new(MemoryTransport::new());
    let alice = client(&a, &net).await;
    let bob = client(&b, &net).await;
    let g = bob
        .create_group(std::slice::from_ref(&a.did))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    let n = bob.safety_number(&a.did).await.unwrap();
    let blob = alice
        .export_identity_key("correct horse battery")
        .await
        .unwrap();
    drop(alice);

    assert!(IdentityKeyPair::import_encrypted(&blob, &a.did, "wrong").is_err());
    let key = IdentityKeyPair::import_encrypted(&blob, &a.did, "correct horse battery").unwrap();
    let restored = client_in(
        &a,
        &net,
        DeviceIdentity::with_identity_key(a.did.clone(), key),
        Store::in_memory().unwrap(),
    )
    .await;
    assert!(restored.self_check().await.unwrap().is_empty());
    bob.conversation(&g)
        .add_members(std::slice::from_ref(&a.did))
        .await
        .unwrap();
    no_warnings(&bob.sync().await.unwrap());
    assert_eq!(bob.safety_number(&a.did).await.unwrap(), n);
    assert_eq!(joined(&restored.sync().await.unwrap()), vec![g.clone()]);
    bob.conversation(&g)
        .send_text("welcome back")
        .await
        .unwrap();
    assert_eq!(texts(&restored.sync().await.unwrap()), vec!["welcome back"]);

    // Starting over with a fresh identity key: bob is warned and adds nothing.
    let _fresh = client(&a, &net).await;
    assert!(matches!(
        bob.conversation(&g)
            .add_members(std::slice::from_ref(&a.did))
            .await,
        Err(Error::Trust(TrustError::UnacceptedKeyChange { .. }))
    ));
    assert!(bob
        .sync()
        .await
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::TrustWarning { did, .. } if did == &a.did)));
}
