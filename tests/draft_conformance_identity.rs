//! Conformance with the AT Messaging Proto draft
//! (reference/atmessaging-proto-SPECIFICATION.md), part 2: the delivery-service network and
//! MLS credentials. Each test is named after its clause in spec/draft-conformance.md and
//! quotes it; a deviation is asserted as the behaviour atmls chose. Parts 1 and 3:
//! tests/draft_conformance.rs, tests/draft_conformance_groups.rs.
mod common;
mod draft_support;

use std::collections::HashSet;

use atmls::credential::AtmlsIdentity;
use atmls::group::welcome_mailbox;
use atmls::storage::Store;
use atmls::Error;
use common::*;
use draft_support::*;
use openmls::prelude::CredentialType;
use sha2::Digest as _;

// ---- Delivery Service Network ------------------------------------------------------------

/// D-DSN-3: "Application on a device creates a new Mailbox ID via a Delivery Service network
/// of their choosing." Deviates: mailbox ids are derived, not created. A device's Welcome
/// mailbox is H("atmls/v1/welcome-mailbox", installation key) (GROUP-5) and a group's is
/// derived from its id (GROUP-4); a mailbox exists from its first post, with no registration.
#[tokio::test]
async fn d_dsn_3_mailboxes_are_derived_and_need_no_creation() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, _) = w.account("bob").await;
    let mut label = (b"atmls/v1/welcome-mailbox".len() as u32)
        .to_be_bytes()
        .to_vec();
    label.extend_from_slice(b"atmls/v1/welcome-mailbox");
    label.extend_from_slice(bob.installation().as_bytes());
    let expected: [u8; 32] = sha2::Sha256::digest(&label).into();
    assert_eq!(welcome_mailbox(bob.installation()).0, expected);
    assert!(items(w.net.as_ref(), &welcome_mailbox(bob.installation()))
        .await
        .is_empty());
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    assert_eq!(
        welcome_items(w.net.as_ref(), bob.installation())
            .await
            .len(),
        1
    );
    assert!(!group_items(&w, &g).await.is_empty());
}

// ---- MLS Credentials ---------------------------------------------------------------------

/// D-CRED-1: "The identity of AT Messaging Proto users within the Delivery Service Network is
/// the Mailbox ID. This Mailbox ID serves as a delegate for the user's AT Protocol DID."
/// Deviates: there is no per-user mailbox; each device has its own Welcome mailbox, and the
/// leaf identity is the DID with the device's certificate (CRED-1).
#[tokio::test]
async fn d_cred_1_no_per_account_mailbox_each_device_has_its_own() {
    let w = World::new();
    let (phone, key) = w.account("alice").await;
    let laptop = w.device("alice", &key).await;
    assert_ne!(
        welcome_mailbox(phone.installation()),
        welcome_mailbox(laptop.installation())
    );
}

/// D-CRED-2: "Each Client has its own Application ID / Installation ID public key which acts
/// as a delegate of the user's Mailbox ID". Each device has its own installation key,
/// certified by the account's identity key (ID-4), and its leaves carry that certificate.
#[tokio::test]
async fn d_cred_2_each_device_has_its_own_certified_installation_key() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path) = file_account(&w, "alice", dir.path()).await;
    let (bob, key) = w.account("bob").await;
    let bob2 = w.device("bob", &key).await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let now = atmls::identity::unix_now();
    let certs: Vec<_> = raw_group(&path, &g)
        .members()
        .map(|m| {
            AtmlsIdentity::from_credential(&m.credential)
                .unwrap()
                .certificate
        })
        .filter(|c| c.did == *bob.did())
        .collect();
    assert_eq!(certs.len(), 2);
    for c in &certs {
        assert_eq!(c.identity_key, key.public());
        c.verify(now).unwrap();
    }
    let keys: HashSet<_> = certs.iter().map(|c| c.installation_key).collect();
    assert_eq!(
        keys,
        HashSet::from([*bob.installation(), *bob2.installation()])
    );
}

/// D-CRED-3: "When constructing Credentials for MLS, clients MUST use the BasicCredential
/// type". Every leaf's credential is Basic.
#[tokio::test]
async fn d_cred_3_every_leaf_credential_is_basic() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (_alice, path, _bob, g) = pair(&w, dir.path()).await;
    let group = raw_group(&path, &g);
    assert!(group
        .members()
        .all(|m| m.credential.credential_type() == CredentialType::Basic));
}

/// D-CRED-4: "... and set the identity value as the Mailbox ID (format and encoding need to
/// be added)." Deviates: the identity is the AtmlsIdentity encoding (CRED-1: DID, identity
/// key, installation key and its certificate), not a mailbox id.
#[tokio::test]
async fn d_cred_4_the_identity_value_is_the_atmls_identity() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path, _bob, g) = pair(&w, dir.path()).await;
    let group = raw_group(&path, &g);
    let own = group.own_leaf_node().unwrap().credential();
    let id = AtmlsIdentity::from_credential(own).unwrap();
    assert_eq!(id.certificate.did, *alice.did());
    assert_eq!(id.certificate.installation_key, *alice.installation());
    assert_eq!(own.serialized_content(), id.to_bytes().as_slice());
    assert!(!contains(
        own.serialized_content(),
        &welcome_mailbox(alice.installation()).0
    ));
}

/// D-CRED-5: "Clients MUST not allow users to change the identity field". The API has no way
/// to; a self-update keeps the credential byte for byte (CRED-8).
#[tokio::test]
async fn d_cred_5_a_self_update_keeps_the_identity() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path, bob, g) = pair(&w, dir.path()).await;
    let cred = |p: &std::path::Path| {
        raw_group(p, &g)
            .own_leaf_node()
            .unwrap()
            .credential()
            .clone()
    };
    let before = cred(&path);
    alice.conversation(&g).self_update().await.unwrap();
    bob.sync().await.unwrap();
    assert_eq!(cred(&path), before);
}

/// D-CRED-6: "[Clients] MUST validate that all Proposal messages do not attempt to change the
/// identity field on any credential in the group." A member's Update proposal whose new leaf
/// carries another account's identity is refused, and nothing changes: a proposal sent alone
/// may only be a leave (GROUP-9), and an update inside a commit must keep the DID and
/// installation (CRED-8, checked by `cred_8_update_changing_a_leaf_identity_is_refused`).
#[tokio::test]
async fn d_cred_6_a_proposal_changing_an_identity_is_refused() {
    use openmls::prelude::{tls_codec::Serialize as _, LeafNodeParameters, NewSignerBundle};
    use openmls_traits::OpenMlsProvider as _;
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (_alice, path, bob, g) = pair(&w, dir.path()).await;
    let mallory = atmls::identity::DeviceIdentity::new_account(did("mallory"));
    let (p, mut group, signer) = RawProvider::open_group(&path, &g);
    let (new_signer, cwk, ext) =
        atmls::keypackage::new_leaf_key(&p, &mallory, group.ciphersuite()).unwrap();
    let params = LeafNodeParameters::builder()
        .with_credential_with_key(cwk.clone())
        .with_extensions(ext)
        .build();
    let bundle = NewSignerBundle {
        signer: &new_signer,
        credential_with_key: cwk,
    };
    let (msg, _) = group
        .propose_self_update_with_new_signer(&p, &signer, bundle, params)
        .unwrap();
    let sealed = atmls::group::seal_for_transport(
        &group,
        p.crypto(),
        &msg.tls_serialize_detached().unwrap(),
    )
    .unwrap();
    let before = (
        bob.epoch_fingerprint(&g).await.unwrap(),
        bob.store_snapshot().await.unwrap(),
    );
    let e = bob
        .conversation(&g)
        .process_incoming(&sealed)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Group(atmls::group::GroupError::NotAllowed(_))
                | Error::Group(atmls::group::GroupError::Credential(_))
        ),
        "{e:?}"
    );
    let after = (
        bob.epoch_fingerprint(&g).await.unwrap(),
        bob.store_snapshot().await.unwrap(),
    );
    assert_eq!(after, before);
}

/// D-CRED-7: "Clients MUST ensure that the Mailbox ID is still a valid delegate E2EE public
/// key for the user's DID." The adder checks each KeyPackage's certificate against the
/// account's declared identity key (CRED-7, KP-2) and adds no device it does not vouch for.
/// Deviates on the receiving side: there it is a trust check after the merge, which marks and
/// holds (TRUST-20, spec/agreement.md), tested by
/// `trust_14_recertification_by_an_unendorsed_key_is_marked_and_held`.
#[tokio::test]
async fn d_cred_7_the_adder_adds_only_devices_the_declared_key_certified() {
    use atmls::directory::Directory as _;
    use atmls::identity::{unix_now, DeviceIdentity, IdentityKeyPair, InstallationKeyPair};
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, _, _bob, g) = pair(&w, dir.path()).await;
    let (legit, rogue) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    let inst = InstallationKeyPair::generate();
    let now = unix_now();
    let certificate = rogue.certify(&did("eve"), &inst.public(), now, now + 86_400);
    let dev = DeviceIdentity {
        did: did("eve"),
        installation: inst,
        certificate,
        identity_key: Some(rogue),
    };
    let _eve = w.client(dev, Store::in_memory().unwrap()).await;
    w.dir
        .publish_declaration(&legit.declare(&did("eve"), now))
        .await
        .unwrap();
    let before = alice.epoch_fingerprint(&g).await.unwrap();
    let e = alice
        .conversation(&g)
        .add_members(&[did("eve")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::KeyPackagesRefused { .. } | Error::NoKeyPackages(_)
        ),
        "{e:?}"
    );
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap(), before);
    assert_eq!(alice.conversation(&g).members().await.unwrap().len(), 2);
}

/// D-CRED-8: "A Credential also has an associated signing key. The initial signing key for a
/// user is included in the KeyPackage." bob's leaf signs with the key of the (single-use)
/// KeyPackage he published.
#[tokio::test]
async fn d_cred_8_the_first_leaf_key_is_the_key_packages() {
    use atmls::directory::Directory as _;
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (bob, path) = file_account(&w, "bob", dir.path()).await;
    let published = w.dir.key_packages(bob.did()).await.unwrap();
    let (alice, _) = w.account("alice").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let group = raw_group(&path, &g);
    let key = group
        .own_leaf_node()
        .unwrap()
        .signature_key()
        .as_slice()
        .to_vec();
    let from: Vec<_> = published
        .iter()
        .filter(|r| contains(&r.key_package, &key))
        .collect();
    assert_eq!(from.len(), 1);
    assert!(!from[0].last_resort);
}

/// D-CRED-9: "The signing key MUST be different from the user's Application ID's public key
/// and AT Protocol DID public key." No leaf signs with its installation or identity key
/// (CRED-6); the DID document's key is checked on the PDS by
/// `draft_kp_signing_key_differs_from_identity_installation_and_did_keys`.
#[tokio::test]
async fn d_cred_9_no_leaf_signs_with_its_installation_or_identity_key() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path, bob, g) = pair(&w, dir.path()).await;
    bob.conversation(&g).self_update().await.unwrap();
    alice.sync().await.unwrap();
    let group = raw_group(&path, &g);
    for m in group.members() {
        let cert = AtmlsIdentity::from_credential(&m.credential)
            .unwrap()
            .certificate;
        assert_eq!(m.signature_key.len(), 32);
        assert_ne!(m.signature_key, cert.installation_key.as_bytes().to_vec());
        assert_ne!(m.signature_key, cert.identity_key.as_bytes().to_vec());
    }
}

/// D-CRED-10: "This signing key SHOULD be rotated over time to provide improved
/// post-compromise security." A self-update gives the leaf a fresh signature key with a new
/// leaf proof (CRED-5): the others accept what it signs.
#[tokio::test]
async fn d_cred_10_a_self_update_gives_a_fresh_signing_key() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let (alice, path, bob, g) = pair(&w, dir.path()).await;
    let key = |p: &std::path::Path| {
        raw_group(p, &g)
            .own_leaf_node()
            .unwrap()
            .signature_key()
            .as_slice()
            .to_vec()
    };
    let before = key(&path);
    alice.conversation(&g).self_update().await.unwrap();
    assert_ne!(key(&path), before);
    alice
        .conversation(&g)
        .send_text("signed anew")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["signed anew"]);
}
