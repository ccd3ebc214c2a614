//! Trust in identity keys (spec/trust.md), on the in-memory directory: a stolen PDS password
//! (anyone can rewrite the directory records) must not let an attacker join or read chats,
//! and contacts are warned. The same rules run against the real PDS in
//! `tests/trust_compromise.rs` (stolen password) and `tests/trust_pds.rs` (succession,
//! linking, revocation, safety numbers, forgeries).
mod common;
use atmls::directory::Directory;
use atmls::identity::{DeviceIdentity, IdentityError, IdentityKeyPair};
use atmls::storage::Store;
use atmls::trust::{ChangeKind, SelfCheckFinding, TrustError};
use atmls::{Client, Error, Event, GroupId};
use common::*;

/// Everything that must not change when input is refused.
async fn state(c: &Client) -> Vec<(String, Vec<String>)> {
    c.store_snapshot().await.unwrap()
}

fn warnings(ev: &[Event]) -> Vec<(atmls::identity::Did, bool)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::TrustWarning { did, verified, .. } => Some((did.clone(), *verified)),
            _ => None,
        })
        .collect()
}

/// The attacker logs into alice's PDS account: a new declaration, a device, KeyPackages.
async fn compromise(w: &World, name: &str) -> Client {
    w.client(
        DeviceIdentity::new_account(did(name)),
        Store::in_memory().unwrap(),
    )
    .await
}

#[tokio::test]
async fn trust_3_5_10_stolen_password_cannot_join_or_read_and_is_detected() {
    let w = World::new();
    let (alice, akey) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let dm = bob.dm(alice.did()).await.unwrap();
    let g = bob
        .create_group(&[alice.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    alice.sync().await.unwrap();
    carol.sync().await.unwrap();
    bob.conversation(&g).send_text("before").await.unwrap();
    assert!(alice.self_check().await.unwrap().is_empty());

    let attacker = compromise(&w, "alice").await;
    let published = w.dir.account(alice.did()).await.unwrap().unwrap();
    assert_ne!(published.declaration.identity_key, akey.public());

    // bob cannot add "alice" any more: the new key is not endorsed by the pinned one.
    let before = state(&bob).await;
    let e = bob.create_group(&[alice.did().clone()]).await.unwrap_err();
    let Error::Trust(TrustError::UnacceptedKeyChange {
        did,
        old,
        new,
        verified,
    }) = e
    else {
        panic!("{e:?}")
    };
    assert_eq!((&did, old, verified), (alice.did(), akey.public(), false));
    assert_eq!(new, published.declaration.identity_key);
    assert!(!e_is_retryable(&bob, &did).await);
    assert_eq!(state(&bob).await, before, "a refused lookup stores nothing");
    // ... nor to an existing group; and the warning is raised once.
    assert!(matches!(
        bob.conversation(&g)
            .add_members(&[alice.did().clone()])
            .await,
        Err(Error::Trust(TrustError::UnacceptedKeyChange { .. }))
    ));
    let ev = bob.sync().await.unwrap();
    assert_eq!(warnings(&ev), vec![(alice.did().clone(), false)]);
    assert!(warnings(&bob.sync().await.unwrap()).is_empty());
    let t = bob.contact_trust(alice.did()).await.unwrap();
    assert_eq!(t.identity_key, akey.public());
    assert_eq!(t.pending, Some(new));
    // carol meets the change only when she re-checks her contacts.
    let ev = carol.check_contacts().await.unwrap();
    assert_eq!(warnings(&ev), vec![(alice.did().clone(), false)]);

    // The attacker got nothing: no Welcome, no group, nothing readable.
    bob.conversation(&dm).send_text("secret dm").await.unwrap();
    bob.conversation(&g)
        .send_text("secret group")
        .await
        .unwrap();
    let ev = attacker.sync().await.unwrap();
    assert!(joined(&ev).is_empty() && texts(&ev).is_empty(), "{ev:?}");
    assert!(attacker.groups().await.unwrap().is_empty());
    assert!(matches!(
        attacker.conversation(&g).send_text("hi").await,
        Err(Error::Group(atmls::group::GroupError::UnknownGroup))
    ));
    // alice's real device still reads everything.
    let mut got = texts(&alice.sync().await.unwrap());
    got.sort();
    assert_eq!(got, vec!["before", "secret dm", "secret group"]);

    // alice's device sees records it did not publish (TRUST-10).
    let found = alice.self_check().await.unwrap();
    assert!(found.contains(&SelfCheckFinding::ForeignDeclaration {
        published: new,
        ours: akey.public()
    }));
    assert!(found.contains(&SelfCheckFinding::ForeignDevice {
        installation: *attacker.installation()
    }));
    assert!(found.iter().any(|f| matches!(
        f,
        SelfCheckFinding::ForeignKeyPackage { installation, .. } if installation == attacker.installation()
    )));
}

async fn e_is_retryable(c: &Client, did: &atmls::identity::Did) -> bool {
    c.create_group(std::slice::from_ref(did))
        .await
        .err()
        .is_some_and(|e| e.is_retryable())
}

#[tokio::test]
async fn trust_5_accepting_a_new_key_after_starting_over() {
    let w = World::new();
    let (bob, _) = w.account("bob").await;
    let (carol_old, _) = w.account("carol").await;
    let g = bob.create_group(&[carol_old.did().clone()]).await.unwrap();
    carol_old.sync().await.unwrap();
    let old_number = bob.safety_number(carol_old.did()).await.unwrap();
    drop(carol_old);
    // carol lost her devices and starts over with a new identity.
    let carol = compromise(&w, "carol").await;
    let e = bob
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap_err();
    let Error::Trust(TrustError::UnacceptedKeyChange { new, .. }) = e else {
        panic!("{e:?}")
    };
    // Accepting another key than the one shown is refused.
    let other = IdentityKeyPair::generate().public();
    assert!(matches!(
        bob.accept_identity_change(carol.did(), &other).await,
        Err(Error::Trust(TrustError::NoPendingChange(_)))
    ));
    bob.accept_identity_change(carol.did(), &new).await.unwrap();
    let t = bob.contact_trust(carol.did()).await.unwrap();
    assert_eq!((t.identity_key, t.verified, t.pending), (new, false, None));
    assert_eq!(t.history.len(), 1);
    assert_eq!(t.history[0].kind, ChangeKind::Accepted);
    assert_ne!(bob.safety_number(carol.did()).await.unwrap(), old_number);
    // Her new device can now be added (the old identity's leaf goes in the same commit) and
    // reads what follows.
    bob.conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g.clone()]);
    let members = bob.conversation(&g).members().await.unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members
        .iter()
        .any(|m| &m.installation == carol.installation()));
    bob.conversation(&g)
        .send_text("welcome back")
        .await
        .unwrap();
    assert_eq!(texts(&carol.sync().await.unwrap()), vec!["welcome back"]);
}

#[tokio::test]
async fn trust_7_8_safety_numbers_match_survive_restart_and_verify() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bob.db");
    let (alice, _) = w.account("alice").await;
    let bob = w
        .client(
            DeviceIdentity::new_account(did("bob")),
            Store::open(&path).unwrap(),
        )
        .await;
    let g: GroupId = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let a = alice.safety_number(bob.did()).await.unwrap();
    let b = bob.safety_number(alice.did()).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.digits().len(), 60);
    // A wrong QR is refused and verifies nothing.
    let stranger = atmls::trust::SafetyNumber::new(
        alice.did(),
        &IdentityKeyPair::generate().public(),
        bob.did(),
        &IdentityKeyPair::generate().public(),
    );
    assert!(matches!(
        bob.verify_safety_qr(alice.did(), &stranger.qr_payload())
            .await,
        Err(Error::Trust(TrustError::SafetyNumberMismatch))
    ));
    assert!(!bob.contact_trust(alice.did()).await.unwrap().verified);
    bob.verify_safety_qr(alice.did(), &a.qr_payload())
        .await
        .unwrap();
    assert!(bob.contact_trust(alice.did()).await.unwrap().verified);
    drop(bob);
    let bob = Client::builder(w.dir.clone(), w.net.clone(), Store::open(&path).unwrap())
        .build()
        .await
        .unwrap();
    assert_eq!(bob.safety_number(alice.did()).await.unwrap(), a);
    assert!(bob.contact_trust(alice.did()).await.unwrap().verified);

    // A verified contact's unendorsed change gets the strongest warning.
    let _attacker = compromise(&w, "alice").await;
    assert!(bob
        .conversation(&g)
        .add_members(&[alice.did().clone()])
        .await
        .is_err());
    assert_eq!(
        warnings(&bob.sync().await.unwrap()),
        vec![(alice.did().clone(), true)]
    );
}

#[tokio::test]
async fn trust_1_endorsed_rotation_is_followed_without_warning() {
    let w = World::new();
    let (alice, k0) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    bob.dm(alice.did()).await.unwrap();
    let d0 = w
        .dir
        .account(alice.did())
        .await
        .unwrap()
        .unwrap()
        .declaration;
    let k1 = IdentityKeyPair::generate();
    let d1 = k0.rotate(&d0, &k1, d0.created + 10).unwrap();
    w.dir.publish_declaration(&d1).await.unwrap();
    let ev = bob.check_contacts().await.unwrap();
    assert!(warnings(&ev).is_empty(), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::IdentityKeyRotated { did, old, new } if did == alice.did() && *old == k0.public() && *new == k1.public()
    )));
    let t = bob.contact_trust(alice.did()).await.unwrap();
    assert_eq!(t.identity_key, k1.public());
    assert_eq!(t.history[0].kind, ChangeKind::Endorsed);

    // TRUST-4: the old declaration replayed afterwards is refused and changes nothing.
    w.dir.publish_declaration(&d0).await.unwrap();
    let before = state(&bob).await;
    assert!(matches!(
        bob.create_group(&[alice.did().clone()]).await,
        Err(Error::Identity(IdentityError::Rollback))
    ));
    assert_eq!(state(&bob).await, before);
    assert_eq!(
        bob.contact_trust(alice.did()).await.unwrap().identity_key,
        k1.public()
    );
}

#[tokio::test]
async fn trust_2_3_forged_endorsement_and_chain_gap_change_nothing() {
    let w = World::new();
    let (alice, k0) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    bob.dm(alice.did()).await.unwrap();
    let d0 = w
        .dir
        .account(alice.did())
        .await
        .unwrap()
        .unwrap()
        .declaration;
    let (k1, k2) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    let d1 = k0.rotate(&d0, &k1, d0.created + 1).unwrap();
    let d2 = k1.rotate(&d1, &k2, d1.created + 1).unwrap();
    let before = state(&bob).await;

    // A forged link: the attacker edits the endorsement to point at their key.
    let attacker = IdentityKeyPair::generate();
    let mut forged = attacker.declare(alice.did(), d2.created + 1);
    forged.endorsements = d1.endorsements.clone();
    forged.endorsements[0].new_key = attacker.public();
    w.dir.publish_declaration(&forged).await.unwrap();
    assert!(matches!(
        bob.create_group(&[alice.did().clone()]).await,
        Err(Error::Identity(IdentityError::ForgedEndorsement))
    ));
    assert_eq!(state(&bob).await, before);

    // A gap: k0 → k1 missing, k1 → k2 present.
    let mut gap = d2.clone();
    gap.endorsements.remove(0);
    w.dir.publish_declaration(&gap).await.unwrap();
    assert!(matches!(
        bob.create_group(&[alice.did().clone()]).await,
        Err(Error::Trust(TrustError::UnacceptedKeyChange { .. }))
    ));
    assert_eq!(state(&bob).await, before);
    assert_eq!(
        bob.contact_trust(alice.did()).await.unwrap().identity_key,
        k0.public()
    );
    assert_eq!(
        warnings(&bob.sync().await.unwrap()),
        vec![(alice.did().clone(), false)]
    );
    // The full chain is followed.
    w.dir.publish_declaration(&d2).await.unwrap();
    let ev = bob.check_contacts().await.unwrap();
    assert!(warnings(&ev).is_empty());
    assert_eq!(
        bob.contact_trust(alice.did()).await.unwrap().identity_key,
        k2.public()
    );
}

#[tokio::test]
async fn trust_11_restored_identity_key_keeps_the_identity() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let g = bob.create_group(&[alice.did().clone()]).await.unwrap();
    alice.sync().await.unwrap();
    let number = bob.safety_number(alice.did()).await.unwrap();
    let blob = alice
        .export_identity_key("a long passphrase")
        .await
        .unwrap();
    let did = alice.did().clone();
    drop(alice);

    // All devices lost; the restored key certifies a new device.
    assert!(IdentityKeyPair::import_encrypted(&blob, &did, "wrong passphrase").is_err());
    let key = IdentityKeyPair::import_encrypted(&blob, &did, "a long passphrase").unwrap();
    let alice = w
        .client(
            DeviceIdentity::with_identity_key(did.clone(), key),
            Store::in_memory().unwrap(),
        )
        .await;
    assert!(alice.self_check().await.unwrap().is_empty());
    // bob adds the new device with no warning; the safety number is unchanged.
    bob.conversation(&g)
        .add_members(std::slice::from_ref(&did))
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(warnings(&ev).is_empty(), "{ev:?}");
    assert!(bob.check_contacts().await.unwrap().is_empty());
    assert_eq!(bob.safety_number(&did).await.unwrap(), number);
    assert_eq!(joined(&alice.sync().await.unwrap()), vec![g.clone()]);
    bob.conversation(&g).send_text("still you").await.unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["still you"]);
}

#[tokio::test]
async fn trust_12_revoked_device_is_removed_and_refused() {
    let w = World::new();
    let (a1, akey) = w.account("alice").await;
    let a2 = w.device("alice", &akey).await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    // g: alice's key-holding device has joined it. g2: created after a1's last sync, so
    // only a2 has joined it when a1 revokes a2.
    let g = bob
        .create_group(&[a1.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    for c in [&a1, &a2, &carol] {
        c.sync().await.unwrap();
    }
    let g2 = carol
        .create_group(&[bob.did().clone(), a1.did().clone()])
        .await
        .unwrap();
    for c in [&a2, &bob] {
        c.sync().await.unwrap();
    }
    assert_eq!(bob.conversation(&g2).members().await.unwrap().len(), 4);
    // A device cannot revoke itself, and only the identity key revokes.
    assert!(matches!(
        a1.revoke_device(a1.installation()).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        a2.revoke_device(a1.installation()).await,
        Err(Error::InvalidArgument(_))
    ));

    a1.revoke_device(a2.installation()).await.unwrap();
    // In g, alice's own device removed it at once.
    bob.sync().await.unwrap();
    assert!(!bob
        .conversation(&g)
        .members()
        .await
        .unwrap()
        .iter()
        .any(|m| &m.installation == a2.installation()));
    // The record shows it revoked: nobody adds it again.
    let rec = w.dir.account(a1.did()).await.unwrap().unwrap();
    assert!(rec.declaration.revoked().contains(a2.installation()));

    // In g2 the others learn of the revocation from the record and refuse the device from
    // then on; bob's next commit removes it.
    bob.check_contacts().await.unwrap();
    let has_a2 =
        |ms: Vec<atmls::group::Member>| ms.iter().any(|m| &m.installation == a2.installation());
    assert!(has_a2(bob.conversation(&g2).members().await.unwrap()));
    a2.conversation(&g2)
        .send_text("from a revoked phone")
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(texts(&ev).is_empty(), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Refused {
            error: atmls::group::GroupError::NotAllowed(_),
            ..
        }
    )));
    bob.conversation(&g2).self_update().await.unwrap();
    assert!(!has_a2(bob.conversation(&g2).members().await.unwrap()));
    carol.sync().await.unwrap();
    assert!(!has_a2(carol.conversation(&g2).members().await.unwrap()));
    // A later add of alice brings only her remaining device.
    carol.sync().await.unwrap();
    let g3 = carol.create_group(&[a1.did().clone()]).await.unwrap();
    let m3 = carol.conversation(&g3).members().await.unwrap();
    assert!(m3.iter().any(|m| &m.installation == a1.installation()));
    assert!(!m3.iter().any(|m| &m.installation == a2.installation()));
}

#[tokio::test]
async fn trust_13_linking_a_device_by_code_adds_it_everywhere() {
    use atmls::trust::{PairingCode, PendingLink};
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let dm = alice.dm(bob.did()).await.unwrap();
    let g = carol
        .create_group(&[alice.did().clone(), bob.did().clone()])
        .await
        .unwrap();
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();

    // The new device shows a code; a wrong code on alice's phone finds nothing and changes
    // nothing.
    let pending = PendingLink::start(&*w.net, alice.did().clone())
        .await
        .unwrap();
    let before = state(&alice).await;
    let wrong = PairingCode::parse("AAAA-BBBB-CCCC-DDDD").unwrap();
    assert!(matches!(
        alice.approve_link(&wrong).await,
        Err(Error::Trust(TrustError::LinkRequestNotFound))
    ));
    assert_eq!(state(&alice).await, before);
    // Not approved yet: pending (retryable).
    let code = pending.code().clone();
    let installation = pending.installation();
    // A device without the identity key cannot approve.
    let (_, other_key) = w.account("dave").await;
    let dave2 = w.device("dave", &other_key).await;
    assert!(matches!(
        dave2.approve_link(&code).await,
        Err(Error::InvalidArgument(_))
    ));
    // bob (another account) cannot certify it for alice: the request names alice's DID.
    assert!(matches!(
        bob.approve_link(&code).await,
        Err(Error::Trust(TrustError::LinkRequestNotFound))
    ));

    // Entered (or scanned) on alice's phone: certified and sent back.
    let (qr_did, scanned) = PairingCode::from_qr(&code.qr_payload(alice.did())).unwrap();
    assert_eq!(&qr_did, alice.did());
    assert_eq!(alice.approve_link(&scanned).await.unwrap(), installation);
    let identity = pending.finish(&*w.net).await.unwrap();
    assert_eq!(identity.installation.public(), installation);
    let a3 = w.client(identity, Store::in_memory().unwrap()).await;

    // alice's phone adds it to every group and DM; it reads what follows.
    alice.add_own_devices().await.unwrap();
    let mut got = joined(&a3.sync().await.unwrap());
    got.sort();
    let mut want = vec![dm.clone(), g.clone()];
    want.sort();
    assert_eq!(got, want);
    bob.conversation(&dm)
        .send_text("hi all of alice")
        .await
        .unwrap();
    carol
        .conversation(&g)
        .send_text("group hello")
        .await
        .unwrap();
    let mut t = texts(&a3.sync().await.unwrap());
    t.sort();
    assert_eq!(t, vec!["group hello", "hi all of alice"]);
    // Nothing to add a second time.
    alice.sync().await.unwrap();
    let before = state(&alice).await;
    alice.add_own_devices().await.unwrap();
    assert_eq!(state(&alice).await, before);
}

#[tokio::test]
async fn trust_10_watch_runs_the_self_check_and_reports_each_finding_once() {
    use std::time::Duration;
    let w = World::new();
    let alice = std::sync::Arc::new(
        Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
            .identity(DeviceIdentity::new_account(did("alice")))
            .trust_check_interval(Duration::from_millis(20))
            .build()
            .await
            .unwrap(),
    );
    let mut rx = alice.watch(Duration::from_millis(10));
    let attacker = compromise(&w, "alice").await;
    let mut alerts = Vec::new();
    // Liveness bound only: the first rounds after the compromise must report it.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = rx.recv().await {
            if let Ok(Event::SelfCheckAlert(f)) = ev {
                alerts.push(f);
                if alerts.len() >= 3 {
                    // Let a few more rounds run: nothing may be reported twice.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    while let Ok(ev) = rx.try_recv() {
                        if let Ok(Event::SelfCheckAlert(f)) = ev {
                            alerts.push(f);
                        }
                    }
                    break;
                }
            }
        }
    })
    .await;
    assert!(alerts
        .iter()
        .any(|f| matches!(f, SelfCheckFinding::ForeignDeclaration { .. })));
    assert!(alerts.contains(&SelfCheckFinding::ForeignDevice {
        installation: *attacker.installation()
    }));
    for (i, f) in alerts.iter().enumerate() {
        assert!(!alerts[i + 1..].contains(f), "reported twice: {f:?}");
    }
}

#[tokio::test]
async fn trust_9_own_account_replaced_adds_no_rogue_device_and_does_not_block_us() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let attacker = compromise(&w, "alice").await;
    // alice's own client treats the unendorsed declaration for her DID like a contact's:
    // the attacker's "device of alice" is not added, and alice can still start a group.
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let members = alice.conversation(&g).members().await.unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(!members
        .iter()
        .any(|m| &m.installation == attacker.installation()));
    assert!(joined(&attacker.sync().await.unwrap()).is_empty());
    let ev = alice.sync().await.unwrap();
    assert!(
        warnings(&ev).contains(&(alice.did().clone(), false)),
        "{ev:?}"
    );
}

/// TRUST-14: alice rotates her identity key on her phone. Contacts follow the endorsement
/// without a warning, the groups carry on (her leaves are re-credentialed by ordinary
/// updates), her other device follows at its next self-check, and a device linked under the
/// new key is accepted everywhere. Her older leaves are not treated as a replaced identity.
#[tokio::test]
async fn trust_14_rotation_keeps_groups_going_and_accepts_new_devices() {
    use atmls::trust::PendingLink;
    let w = World::new();
    let (alice, k0) = w.account("alice").await;
    let alice2 = w.device("alice", &k0).await;
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let g = bob
        .create_group(&[alice.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    let dm = alice.dm(bob.did()).await.unwrap();
    for c in [&alice, &alice2, &carol, &bob] {
        c.sync().await.unwrap();
    }
    let number_before = bob.safety_number(alice.did()).await.unwrap();

    let k1 = alice.rotate_identity_key().await.unwrap();
    assert_ne!(k1, k0.public());
    let ev = bob.sync().await.unwrap();
    assert!(warnings(&ev).is_empty(), "{ev:?}");
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::IdentityKeyRotated { did, new, .. } if did == alice.did() && *new == k1
    )));
    let t = bob.contact_trust(alice.did()).await.unwrap();
    assert_eq!(t.identity_key, k1);
    assert_eq!(t.history[0].kind, ChangeKind::Endorsed);
    assert_ne!(bob.safety_number(alice.did()).await.unwrap(), number_before);
    assert_eq!(
        bob.safety_number(alice.did()).await.unwrap(),
        alice.safety_number(bob.did()).await.unwrap()
    );

    // The groups carry on, in both directions.
    alice
        .conversation(&g)
        .send_text("new key, same me")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["new key, same me"]);
    let ev = carol.sync().await.unwrap();
    assert!(warnings(&ev).is_empty(), "{ev:?}");
    assert_eq!(texts(&ev), vec!["new key, same me"]);
    bob.conversation(&dm)
        .send_text("still private")
        .await
        .unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["still private"]);

    // alice's other device: its self-check finds nothing foreign, it takes its new
    // certificate and re-credentials its leaves.
    assert_eq!(alice2.self_check().await.unwrap(), vec![]);
    let ev = alice2.sync().await.unwrap();
    assert!(
        texts(&ev).contains(&"new key, same me".to_string()),
        "{ev:?}"
    );
    alice2
        .conversation(&g)
        .send_text("from the laptop")
        .await
        .unwrap();
    for c in [&bob, &carol, &alice] {
        let ev = c.sync().await.unwrap();
        assert!(
            texts(&ev).contains(&"from the laptop".to_string()),
            "{ev:?}"
        );
    }

    // A device linked under the new key joins every group of alice's.
    let pending = PendingLink::start(&*w.net, alice.did().clone())
        .await
        .unwrap();
    alice.approve_link(pending.code()).await.unwrap();
    let a3 = w
        .client(
            pending.finish(&*w.net).await.unwrap(),
            Store::in_memory().unwrap(),
        )
        .await;
    alice.add_own_devices().await.unwrap();
    let mut got = joined(&a3.sync().await.unwrap());
    got.sort();
    let mut want = vec![dm.clone(), g.clone()];
    want.sort();
    assert_eq!(got, want);
    carol
        .conversation(&g)
        .send_text("hello third device")
        .await
        .unwrap();
    assert_eq!(texts(&a3.sync().await.unwrap()), vec!["hello third device"]);
    bob.sync().await.unwrap();
    // Adding alice again adds nothing and removes none of her (re-certified) devices.
    let members = bob.conversation(&g).members().await.unwrap().len();
    assert_eq!(members, 5);
    bob.conversation(&g)
        .add_members(&[alice.did().clone()])
        .await
        .unwrap();
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 5);
}
