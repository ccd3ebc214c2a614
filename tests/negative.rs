//! Refused input: each case asserts a typed error AND unchanged state (same epoch, same
//! exporter secret, same stored rows). Rule ids refer to spec/credential.md, spec/keypackage.md
//! and spec/group.md.
mod common;
use atmls::credential::CredentialError;
use atmls::directory::{Directory, DirectoryError};
use atmls::group::{mailbox_for, GroupError};
use atmls::identity::{
    unix_now, DeviceIdentity, IdentityError, IdentityKeyPair, InstallationKeyPair,
};
use atmls::keypackage::{validate_record, KeyPackageError, DEFAULT_CIPHERSUITE};
use atmls::storage::Store;
use atmls::transport::*;
use atmls::trust::MemberStatus;
use atmls::{Client, Error, Event, GroupId};
use common::*;
use openmls_rust_crypto::RustCrypto;

/// Everything that must not change when input is refused.
async fn state(c: &Client, g: &GroupId) -> ((u64, Vec<u8>), Vec<(String, Vec<String>)>) {
    (
        c.epoch_fingerprint(g).await.unwrap(),
        c.store_snapshot().await.unwrap(),
    )
}

/// The directory's record for `did`, verified.
async fn verified(w: &World, did: &atmls::identity::Did) -> atmls::directory::VerifiedAccount {
    w.dir
        .account(did)
        .await
        .unwrap()
        .unwrap()
        .verify(did, unix_now())
        .unwrap()
}

/// The record-level verdict on one KeyPackage record.
fn check(
    rec: &atmls::directory::KeyPackageRecord,
    account: &atmls::directory::VerifiedAccount,
) -> Result<openmls::prelude::KeyPackage, KeyPackageError> {
    validate_record(
        rec,
        account,
        &RustCrypto::default(),
        DEFAULT_CIPHERSUITE,
        unix_now(),
    )
}

async fn alice_bob_group(w: &World) -> (Client, Client, GroupId) {
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    (alice, bob, g)
}

async fn mailbox_items(w: &World, g: &GroupId) -> Vec<Vec<u8>> {
    let page = w
        .net
        .fetch(&mailbox_for(g.as_bytes()).id, 0, 1000)
        .await
        .unwrap();
    page.items.into_iter().map(|i| i.payload).collect()
}

/// An account whose only device was certified by a key other than its declared one, with
/// `tamper` applied to the certificate.
async fn account_with_forged_device(w: &World, name: &str, tamper: impl Fn(&mut DeviceIdentity)) {
    let legit = IdentityKeyPair::generate();
    let rogue = IdentityKeyPair::generate();
    let inst = InstallationKeyPair::generate();
    let now = unix_now();
    let cert = rogue.certify(&did(name), &inst.public(), now, now + 86_400);
    let mut dev = DeviceIdentity {
        did: did(name),
        installation: inst,
        certificate: cert,
        identity_key: Some(rogue),
    };
    tamper(&mut dev);
    let _rogue_client = w.client(dev, Store::in_memory().unwrap()).await;
    // The account's real declaration, by its legit key, is what the directory shows.
    w.dir
        .publish_declaration(&legit.declare(&did(name), now))
        .await
        .unwrap();
}

#[tokio::test]
async fn cred_3_forged_installation_certificate_is_not_added() {
    let w = World::new();
    let (alice, _bob, g) = alice_bob_group(&w).await;
    // The certificate's signature is garbage.
    account_with_forged_device(&w, "eve", |d| d.certificate.signature = vec![0u8; 64]).await;
    let before = state(&alice, &g).await;
    let err = alice
        .conversation(&g)
        .add_members(&[did("eve")])
        .await
        .unwrap_err();
    // A verdict on the published bytes: a retry refuses them again (KP-5).
    assert!(
        matches!(err, Error::KeyPackagesRefused { ref did, .. } if *did == common::did("eve")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(state(&alice, &g).await, before);

    // The record-level verdict is typed too.
    let account = verified(&w, &did("eve")).await;
    assert!(account.devices.is_empty());
    assert_eq!(account.rejected_devices.len(), 1);
    let rec = &w.dir.key_packages(&did("eve")).await.unwrap()[0];
    let e = check(rec, &account).unwrap_err();
    assert_eq!(
        e,
        KeyPackageError::Credential(CredentialError::Certificate(IdentityError::BadSignature(
            "installation certificate"
        )))
    );
}

#[tokio::test]
async fn cred_7_key_package_naming_another_key_or_did_is_refused() {
    let w = World::new();
    let (alice, _bob, g) = alice_bob_group(&w).await;
    // Another identity key than the directory declares (a PDS-password attacker's device).
    account_with_forged_device(&w, "eve", |_| {}).await;
    let before = state(&alice, &g).await;
    let err = alice
        .conversation(&g)
        .add_members(&[did("eve")])
        .await
        .unwrap_err();
    // The directory may still catch up (CRED-7): retryable.
    assert!(matches!(err, Error::NoKeyPackages(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(state(&alice, &g).await, before);
    let account = verified(&w, &did("eve")).await;
    let rec = &w.dir.key_packages(&did("eve")).await.unwrap()[0];
    let e = check(rec, &account).unwrap_err();
    assert_eq!(
        e,
        KeyPackageError::Credential(CredentialError::UnknownIdentityKey(did("eve")))
    );

    // Another DID: carol republishes her own KeyPackage under dave's DID.
    let (carol, _) = w.account("carol").await;
    let (dave, _) = w.account("dave").await;
    for r in w.dir.key_packages(&did("dave")).await.unwrap() {
        w.dir
            .delete_key_package(dave.did(), &r.key_package_ref)
            .await
            .unwrap();
    }
    let mut stolen = w.dir.key_packages(carol.did()).await.unwrap()[0].clone();
    stolen.did = dave.did().clone();
    w.dir.publish_key_package(&stolen).await.unwrap();
    let before = state(&alice, &g).await;
    let err = alice
        .conversation(&g)
        .add_members(&[dave.did().clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyPackagesRefused { ref reason, .. }
            if *reason == KeyPackageError::RecordMismatch("DID")),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(state(&alice, &g).await, before);
    let dave_acct = verified(&w, dave.did()).await;
    let e = check(&stolen, &dave_acct).unwrap_err();
    assert_eq!(e, KeyPackageError::RecordMismatch("DID"));
    // Unknown account.
    let err = alice
        .conversation(&g)
        .add_members(&[did("nobody")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Directory(DirectoryError::NoIdentity(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_and_truncated_mls_bytes_are_refused() {
    let w = World::new();
    let (alice, bob, g) = alice_bob_group(&w).await;
    alice
        .conversation(&g)
        .send_text("a real message")
        .await
        .unwrap();
    let real = mailbox_items(&w, &g).await.pop().unwrap();
    let before = state(&bob, &g).await;
    for bad in [
        vec![],
        vec![0xff; 3],
        b"not mls at all".to_vec(),
        vec![0u8; 2 << 20],
    ] {
        // Oversized bytes are refused before anything else; the rest fail the outer layer
        // (DS-2), which authenticates every group payload before MLS parses it.
        let e = bob
            .conversation(&g)
            .process_incoming(&bad)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Group(GroupError::Malformed(_) | GroupError::Undecryptable(_))
            ),
            "{e:?}"
        );
    }
    for n in (0..real.len()).step_by(7) {
        let e = bob
            .conversation(&g)
            .process_incoming(&real[..n])
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Group(_)), "prefix {n}: {e:?}");
    }
    let mut flipped = real.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        bob.conversation(&g)
            .process_incoming(&flipped)
            .await
            .unwrap_err(),
        Error::Group(GroupError::Undecryptable(_))
    ));
    assert_eq!(state(&bob, &g).await, before);

    // Through the transport: garbage is reported and skipped, the real message still arrives.
    let mb = mailbox_for(g.as_bytes());
    w.net
        .send_message(
            &mb,
            &EpochTag([7; 32]),
            0,
            b"garbage",
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    alice
        .conversation(&g)
        .send_text("after garbage")
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Refused {
                error: GroupError::Undecryptable(_),
                ..
            }
        )),
        "{ev:?}"
    );
    assert_eq!(texts(&ev), vec!["a real message", "after garbage"]);
}

#[tokio::test]
async fn replayed_application_message_is_refused() {
    let w = World::new();
    let (alice, bob, g) = alice_bob_group(&w).await;
    alice.conversation(&g).send_text("once").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["once"]);
    let msg = mailbox_items(&w, &g).await.pop().unwrap();
    let before = state(&bob, &g).await;
    let e = bob
        .conversation(&g)
        .process_incoming(&msg)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Group(GroupError::Replay)), "{e:?}");
    assert_eq!(state(&bob, &g).await, before);
    // Replayed through the transport under a new idempotency key: refused, not shown twice.
    let mb = mailbox_for(g.as_bytes());
    w.net
        .send_message(&mb, &EpochTag([9; 32]), 0, &msg, &IdempotencyKey::random())
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(texts(&ev).is_empty());
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Refused {
                error: GroupError::Replay,
                ..
            }
        )),
        "{ev:?}"
    );
    assert_eq!(bob.conversation(&g).messages().await.unwrap().len(), 1);
}

#[tokio::test]
async fn wrong_epoch_commit_is_refused() {
    let w = World::new();
    let (alice, bob, g) = alice_bob_group(&w).await;
    let (carol, _) = w.account("carol").await;
    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    // The first commit (epoch 0 → 1) again: bob is at epoch 2.
    let old_commit = mailbox_items(&w, &g).await.remove(0);
    let before = state(&bob, &g).await;
    assert_eq!(before.0 .0, 2);
    // Sealed under epoch 0's outer key (DS-2), it no longer opens in epoch 2.
    let e = bob
        .conversation(&g)
        .process_incoming(&old_commit)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Group(GroupError::Undecryptable(_))),
        "{e:?}"
    );
    assert_eq!(state(&bob, &g).await, before);
    // Submitted to the transport under a fresh epoch tag, it is stored, and refused by members.
    let mb = mailbox_for(g.as_bytes());
    w.net
        .submit_commit(
            &mb,
            &EpochTag([1; 32]),
            0,
            &old_commit,
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Refused {
                error: GroupError::Undecryptable(_),
                ..
            }
        )),
        "{ev:?}"
    );
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), before.0);
}

#[tokio::test]
async fn message_from_removed_member_is_refused() {
    let w = World::new();
    let (alice, bob, g) = alice_bob_group(&w).await;
    let carol = Client::builder(
        w.dir.clone(),
        std::sync::Arc::new(TestTransport::careless(w.net.clone())),
        Store::in_memory().unwrap(),
    )
    .identity(DeviceIdentity::new_account(did("carol")))
    .build()
    .await
    .unwrap();
    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    carol.sync().await.unwrap();
    bob.sync().await.unwrap();
    alice
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    let before = state(&bob, &g).await;
    // Carol has not seen her removal; her message in her last epoch lands after it.
    carol.conversation(&g).send_text("still in?").await.unwrap();
    let carol_msg = mailbox_items(&w, &g).await.pop().unwrap();
    // Sealed under her last epoch's outer key (DS-2): it does not open in the current one.
    let e = bob
        .conversation(&g)
        .process_incoming(&carol_msg)
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Group(GroupError::Undecryptable(_))),
        "{e:?}"
    );
    assert_eq!(state(&bob, &g).await, before);
    // It went to the mailbox the group left at her removal (GROUP-4a): bob does not read it.
    let ev = bob.sync().await.unwrap();
    assert!(texts(&ev).is_empty());
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), before.0);
    // Once carol syncs she knows, and refuses to send.
    carol.sync().await.unwrap();
    let e = carol
        .conversation(&g)
        .send_text("let me in")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Group(GroupError::NotMember)), "{e:?}");
}

/// CRED-8: alice's first device commits an update whose new leaf carries her second
/// device's identity (validly certified and proven, so only the identity change is wrong).
/// bob refuses it with `IdentityChanged` and his state does not move.
/// Which identity the forged update of alice1's leaf carries.
enum Forged {
    /// alice's second device (validly certified and proven): another installation.
    OtherDevice,
    /// alice1's own installation, certified by a key alice never declared or endorsed.
    UnendorsedKey,
    /// The same, with that key also published as alice's declaration by someone holding her
    /// PDS password: the lookup bob makes raises a warning, and still refuses.
    RogueDeclared,
}

/// alice1 and alice2 in a group with bob; alice1's own MLS state is driven with raw
/// openmls to build an update commit signed by her current leaf key whose new leaf carries
/// the `forged` identity. bob must refuse it with `want`, his state unchanged.
async fn forged_update_is_refused(forged: Forged, want: CredentialError) {
    use openmls::prelude::{tls_codec::Serialize as _, LeafNodeParameters, NewSignerBundle};
    use openmls_traits::OpenMlsProvider as _;

    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice1.sqlite");
    let a1 = DeviceIdentity::new_account(did("alice"));
    let key =
        IdentityKeyPair::from_secret_bytes(&a1.identity_key.as_ref().unwrap().secret_bytes()[..])
            .unwrap();
    let a1_installation = a1.installation.secret_bytes();
    let alice1_installation = &a1.installation.public();
    let alice1 = w.client(a1, Store::open(&path).unwrap()).await;
    // alice's second device: keep a copy of its keys to forge with.
    let inst = InstallationKeyPair::generate();
    let now = unix_now();
    let cert = key.certify(&did("alice"), &inst.public(), now, now + 86_400);
    let mut rogue_declaration = None;
    let leaf_identity = match forged {
        Forged::OtherDevice => DeviceIdentity::linked(
            InstallationKeyPair::from_secret_bytes(&inst.secret_bytes()[..]).unwrap(),
            cert.clone(),
        )
        .unwrap(),
        Forged::UnendorsedKey | Forged::RogueDeclared => {
            let rogue = IdentityKeyPair::generate();
            if matches!(forged, Forged::RogueDeclared) {
                rogue_declaration = Some(rogue.declare(&did("alice"), now + 5));
            }
            let own = InstallationKeyPair::from_secret_bytes(&a1_installation[..]).unwrap();
            let c = rogue.certify(&did("alice"), &own.public(), now, now + 86_400);
            DeviceIdentity::linked(own, c).unwrap()
        }
    };
    let alice2 = w
        .client(
            DeviceIdentity::linked(inst, cert).unwrap(),
            Store::in_memory().unwrap(),
        )
        .await;
    let (bob, _) = w.account("bob").await;
    let g = alice1.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice2.sync().await.unwrap();
    assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 3);
    if let Some(d) = &rogue_declaration {
        use atmls::directory::Directory as _;
        w.dir.publish_declaration(d).await.unwrap();
    }
    let before = state(&bob, &g).await;

    let (p, mut group, signer) = RawProvider::open_group(&path, &g);
    let (new_signer, cwk, ext) =
        atmls::keypackage::new_leaf_key(&p, &leaf_identity, group.ciphersuite()).unwrap();
    assert_ne!(cwk.signature_key.as_slice(), signer.public());
    let bundle = group
        .commit_builder()
        .leaf_node_parameters(
            LeafNodeParameters::builder()
                .with_credential_with_key(cwk.clone())
                .with_extensions(ext)
                .build(),
        )
        .force_self_update(true)
        .load_psks(p.storage())
        .unwrap()
        .build_with_new_signer(
            p.rand(),
            p.crypto(),
            &signer,
            NewSignerBundle {
                signer: &new_signer,
                credential_with_key: cwk,
            },
            |_| true,
        )
        .unwrap()
        .stage_commit(&p)
        .unwrap();
    // Sealed for the mailbox like any commit (DS-2), so only the identity is wrong.
    let forged_commit = atmls::group::seal_for_transport(
        &group,
        p.crypto(),
        &bundle.commit().tls_serialize_detached().unwrap(),
    )
    .unwrap();

    if matches!(forged, Forged::OtherDevice) {
        // CRED-8 is an agreement check: refused by every member, state unchanged.
        let e = bob
            .conversation(&g)
            .process_incoming(&forged_commit)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Group(GroupError::Credential(c)) if *c == want),
            "{e:?}"
        );
        assert_eq!(state(&bob, &g).await, before);
        assert_eq!(bob.conversation(&g).members().await.unwrap().len(), 3);
    }

    // Through the transport, under the epoch's own tag (the junk-commit case of AGREE-1).
    let tag = atmls::group::epoch_tag(&group, p.crypto()).unwrap();
    w.net
        .submit_commit(
            &mailbox_for(g.as_bytes()),
            &tag,
            0,
            &forged_commit,
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    if matches!(forged, Forged::OtherDevice) {
        assert!(
            ev.iter().any(|e| matches!(
                e,
                Event::Refused { error: GroupError::Credential(c), .. } if *c == want
            )),
            "{ev:?}"
        );
        assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), before.0);
        // The group is not frozen behind the refused commit: a commit and a message go on.
        alice2.conversation(&g).self_update().await.unwrap();
        alice2
            .conversation(&g)
            .send_text("still going")
            .await
            .unwrap();
        assert_eq!(texts(&bob.sync().await.unwrap()), vec!["still going"]);
        return;
    }
    // TRUST-20: which identity key vouches for alice is a trust check. The commit is merged,
    // as by every member (its certificate and proofs verify); bob marks the leaf as a
    // mismatch after looking alice up (TRUST-23) and holds what it sends.
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap().0, before.0 .0 + 1);
    let installation = *alice1_installation;
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::MemberTrust { member, status: MemberStatus::Mismatch, .. }
                if member.installation == installation
        )),
        "{ev:?}"
    );
    if matches!(forged, Forged::RogueDeclared) {
        assert!(
            ev.iter().any(|e| matches!(e, Event::TrustWarning { .. })),
            "{ev:?}"
        );
    }
    let statuses = bob.conversation(&g).member_trust().await.unwrap();
    assert!(statuses
        .iter()
        .any(|(m, s)| m.installation == installation && *s == MemberStatus::Mismatch));
    // The rogue leaf's message is held (refused on this device alone: no group state).
    group.merge_pending_commit(&p).unwrap();
    let msg = group
        .create_message(&p, &new_signer, b"from the rogue key")
        .unwrap();
    let sealed = atmls::group::seal_for_transport(
        &group,
        p.crypto(),
        &msg.tls_serialize_detached().unwrap(),
    )
    .unwrap();
    let held = bob
        .conversation(&g)
        .process_incoming(&sealed)
        .await
        .unwrap_err();
    assert!(
        matches!(&held, Error::Group(GroupError::Credential(c)) if *c == want),
        "{held:?}"
    );
    // alice's other device is verified and the group carries on.
    alice2.sync().await.unwrap();
    alice2
        .conversation(&g)
        .send_text("still going")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["still going"]);
}

#[tokio::test]
async fn cred_8_update_changing_a_leaf_identity_is_refused() {
    forged_update_is_refused(Forged::OtherDevice, CredentialError::IdentityChanged).await;
}

/// TRUST-14, TRUST-20: a leaf re-certified by a key that is not the account's current
/// (declared, endorsed) one is merged like any commit that passes the agreement checks; this
/// device marks it as a mismatch and holds its messages.
#[tokio::test]
async fn trust_14_recertification_by_an_unendorsed_key_is_marked_and_held() {
    forged_update_is_refused(
        Forged::UnendorsedKey,
        CredentialError::UnknownIdentityKey(did("alice")),
    )
    .await;
}

/// TRUST-5, TRUST-14: the same when someone holding alice's PDS password also published the
/// rogue key as her declaration: bob's lookup raises a warning, and the leaf stays marked.
#[tokio::test]
async fn trust_5_recertification_by_a_rogue_declared_key_is_marked_and_held() {
    forged_update_is_refused(
        Forged::RogueDeclared,
        CredentialError::UnknownIdentityKey(did("alice")),
    )
    .await;
}

/// LG-13 / TRANSPORT-4: commits may take up to 16 MiB (update paths grow with the group),
/// application messages stay at 1 MiB. A member's modified client seals a 1.5 MiB
/// application message for the group: bob refuses it as oversized, his state unchanged,
/// and over 16 MiB anything is refused before it is opened.
#[tokio::test]
async fn lg_13_application_messages_keep_their_1_mib_limit() {
    use openmls_traits::OpenMlsProvider as _;

    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.sqlite");
    let alice = w
        .client(
            DeviceIdentity::new_account(did("alice")),
            Store::open(&path).unwrap(),
        )
        .await;
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let before = state(&bob, &g).await;

    let (p, mut group, signer) = RawProvider::open_group(&path, &g);
    let big = vec![b'x'; 3 << 19];
    let msg = group.create_message(&p, &signer, &big).unwrap();
    use openmls::prelude::tls_codec::Serialize as _;
    let sealed = atmls::group::seal_for_transport(
        &group,
        p.crypto(),
        &msg.tls_serialize_detached().unwrap(),
    )
    .unwrap();
    assert!(sealed.len() > atmls::transport::MAX_PAYLOAD);
    let e = bob
        .conversation(&g)
        .process_incoming(&sealed)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Group(GroupError::Malformed(m)) if m.contains("oversized")),
        "{e:?}"
    );
    assert_eq!(state(&bob, &g).await, before);
    let huge = vec![0u8; atmls::transport::MAX_COMMIT_PAYLOAD + 1];
    assert!(matches!(
        bob.conversation(&g)
            .process_incoming(&huge)
            .await
            .unwrap_err(),
        Error::Group(GroupError::Malformed(_))
    ));
    assert_eq!(state(&bob, &g).await, before);
}
