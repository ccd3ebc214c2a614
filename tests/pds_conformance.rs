//! Conformance with the AT Messaging Proto draft's clauses on KeyPackages
//! (reference/atmessaging-proto-SPECIFICATION.md, "KeyPackage Signing Keys",
//! "Deleting KeyPackage Events", "Fetch KeyPackages"), on the real PDS; and the lexicon
//! files against the official validator.
#![cfg(feature = "pds")]

mod pds_support;

use std::collections::HashSet;
use std::sync::Arc;

use atmls::directory::pds::records;
use atmls::directory::Directory;
use atmls::identity::DeviceIdentity;
use atmls::keypackage::KeyPackagePolicy;
use atmls::storage::Store;
use atmls::transport::{IdempotencyKey, MemoryTransport, Transport as _};
use atmls::{Client, Event};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{ExtensionType, KeyPackage, KeyPackageIn, ProtocolVersion};
use openmls_rust_crypto::RustCrypto;
use pds_support::*;
use serde_json::json;

fn policy(n: usize) -> KeyPackagePolicy {
    KeyPackagePolicy {
        single_use: n,
        replenish_below: n,
        ..KeyPackagePolicy::default()
    }
}

async fn client(a: &Account, net: &Arc<MemoryTransport>, n: usize) -> Client {
    Client::builder(
        Arc::new(directory_for(a).await),
        net.clone(),
        Store::in_memory().unwrap(),
    )
    .identity(DeviceIdentity::new_account(a.did.clone()))
    .key_package_policy(policy(n))
    .message_requests(false)
    .build()
    .await
    .unwrap()
}

fn parse(bytes: &[u8]) -> KeyPackage {
    KeyPackageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .validate(&RustCrypto::default(), ProtocolVersion::Mls10)
        .unwrap()
}

/// "This signing key MUST not be the same as the user's DID verificationMethod signing key
/// or the app_id_pubkey": every KeyPackage has its own fresh leaf signature key, distinct
/// from the identity key, the installation key and the DID document's `#atproto` key.
#[tokio::test]
async fn draft_kp_signing_key_differs_from_identity_installation_and_did_keys() {
    let a = create_account("sigkeys");
    let c = client(&a, &Arc::new(MemoryTransport::new()), 3).await;
    let found = PdsDirectory::new(config()).lookup(&a.did).await.unwrap();
    let identity = found.account.identity_key;
    let (st, doc) = http("GET", &format!("{}/{}", pds().plc_url, a.did), None, None);
    assert_eq!(st, 200);
    let multibase = doc["verificationMethod"][0]["publicKeyMultibase"]
        .as_str()
        .unwrap();
    let did_key = base58btc(multibase.strip_prefix('z').expect("base58btc multibase"));
    // Multikey (0xe7 0x01 + 33-byte point) or the legacy uncompressed secp256k1 point.
    assert!(
        (did_key.len() == 35 && did_key[..2] == [0xe7, 0x01])
            || (did_key.len() == 65 && did_key[0] == 0x04),
        "{multibase}"
    );
    let mut seen = HashSet::new();
    assert_eq!(found.key_packages.len(), 4);
    for r in &found.key_packages {
        let kp = parse(&r.key_package);
        let leaf_key = kp.leaf_node().signature_key().as_slice().to_vec();
        assert_ne!(leaf_key, identity.as_bytes().to_vec());
        assert_ne!(leaf_key, c.installation().as_bytes().to_vec());
        // Not the DID's #atproto (secp256k1) key, nor any 32 bytes of it.
        assert_eq!(leaf_key.len(), 32);
        assert!(!did_key.windows(32).any(|w| w == leaf_key.as_slice()));
        assert!(seen.insert(leaf_key), "a leaf key is never reused");
    }
}

use atmls::directory::pds::PdsDirectory;

/// Decodes base58 (bitcoin alphabet), as multibase `z` uses.
fn base58btc(s: &str) -> Vec<u8> {
    const ALPHABET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out: Vec<u8> = Vec::new();
    for c in s.chars() {
        let mut carry = ALPHABET.find(c).expect("base58 character") as u32;
        for b in out.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.chars().take_while(|&c| c == '1').count();
    [vec![0; zeros], out].concat()
}

/// "clients SHOULD use 'Last resort' KeyPackages. This requires the inclusion of the
/// last_resort extension": each device publishes one KeyPackage carrying it, every leaf
/// advertises it in its capabilities, and the record's lastResort flag agrees.
#[tokio::test]
async fn draft_kp_last_resort_extension_present() {
    let a = create_account("lastres");
    let _c = client(&a, &Arc::new(MemoryTransport::new()), 2).await;
    let kps = list_raw(&a.did, records::KEY_PACKAGE);
    let mut last_resort = 0;
    for (_, v) in &kps {
        let r = records::decode_key_package(&a.did, v).unwrap();
        let kp = parse(&r.key_package);
        assert_eq!(kp.last_resort(), r.last_resort);
        assert!(kp
            .leaf_node()
            .capabilities()
            .extensions()
            .contains(&ExtensionType::LastResort));
        last_resort += usize::from(r.last_resort);
    }
    assert_eq!((kps.len(), last_resort), (3, 1));
}

/// "Clients SHOULD delete the KeyPackage ... any time they successfully process a group
/// request" and "If clients cannot process a Welcome message ... clients MUST not delete the
/// KeyPackage".
#[tokio::test]
async fn draft_kp_deleted_after_successful_processing_and_kept_on_failure() {
    let (alice_a, bob_a) = (create_account("keepa"), create_account("keepb"));
    let net = Arc::new(MemoryTransport::new());
    let alice = client(&alice_a, &net, 1).await;
    // bob's delivery service is another one (see the failure below).
    let elsewhere = Arc::new(MemoryTransport::new());
    let bob = client(&bob_a, &elsewhere, 1).await;
    let refs = || -> HashSet<Vec<u8>> {
        list_raw(&alice_a.did, records::KEY_PACKAGE)
            .iter()
            .map(|(_, v)| records::decode_key_package(&alice_a.did, v).unwrap())
            .filter(|r| !r.last_resort)
            .map(|r| r.key_package_ref)
            .collect()
    };
    let before = refs();
    assert_eq!(before.len(), 1);

    // Failure: bob's Welcome reaches alice, but the ratchet tree it points to was stored on
    // another delivery service, so alice cannot process it (LG-T-5). (Which identity key bob's
    // repository declares no longer decides a join: spec/agreement.md AGREE-6.)
    bob.create_group(std::slice::from_ref(&alice_a.did))
        .await
        .unwrap();
    let mailbox = atmls::group::welcome_mailbox(alice.installation());
    for item in elsewhere.fetch(&mailbox, 0, 10).await.unwrap().items {
        net.send_welcome(&mailbox, &item.payload, &IdempotencyKey::random())
            .await
            .unwrap();
    }
    let ev = alice.sync().await.unwrap();
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Joined { .. })),
        "{ev:?}"
    );
    assert_eq!(refs(), before, "kept after a failed Welcome");

    // Success: carol (a fresh account) invites alice with the same package.
    let carol_a = create_account("keepc");
    let carol = client(&carol_a, &net, 1).await;
    carol
        .create_group(std::slice::from_ref(&alice_a.did))
        .await
        .unwrap();
    let ev = alice.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Joined { .. })),
        "{ev:?}"
    );
    let after = refs();
    assert!(
        after.is_disjoint(&before),
        "deleted after the successful Welcome"
    );
    assert_eq!(after.len(), 1, "and replaced");
}

/// "The Delivery Service MUST provide a way to fetch all KeyPackages for a given did": more
/// than one page of records (listRecords returns at most 100) are all read, through cursors.
#[tokio::test]
async fn draft_kp_all_key_packages_of_a_did_are_fetchable() {
    let a = create_account("manykps");
    let _c = client(&a, &Arc::new(MemoryTransport::new()), 120).await;
    let dir = PdsDirectory::new(config());
    let all = dir.key_packages(&a.did).await.unwrap();
    assert_eq!(all.len(), 121);
    let refs: HashSet<_> = all.iter().map(|r| r.key_package_ref.clone()).collect();
    assert_eq!(refs.len(), 121);
    assert!(dir.take_rejected(&a.did).is_empty());
}

/// REC-1: every lexicon file passes the official `@atproto/lexicon` parser, ids match paths,
/// refs resolve; and the validator does refuse a broken lexicon and a broken record.
#[test]
fn rec_1_lexicons_are_valid_and_the_validator_refuses_broken_ones() {
    let ok = validate(&[]);
    assert!(ok.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("dev/atmls");
    std::fs::create_dir_all(&sub).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lexicons/dev/atmls");
    for f in ["declaration.json", "device.json", "keyPackage.json"] {
        std::fs::copy(src.join(f), sub.join(f)).unwrap();
    }
    assert!(validate_in(dir.path(), &[]).is_ok());
    // An unknown field type.
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("device.json")).unwrap()).unwrap();
    doc["defs"]["main"]["record"]["properties"]["certificate"]["type"] = json!("blobby");
    std::fs::write(sub.join("device.json"), doc.to_string()).unwrap();
    assert!(validate_in(dir.path(), &[]).is_err());
    // A dangling ref.
    doc["defs"]["main"]["record"]["properties"]["certificate"] =
        json!({"type": "ref", "ref": "dev.atmls.nothing#here"});
    std::fs::write(sub.join("device.json"), doc.to_string()).unwrap();
    let e = validate_in(dir.path(), &[]).unwrap_err();
    assert!(e.contains("unresolved ref"), "{e}");
    // A record of the wrong shape.
    let bad = json!({"$type": records::DEVICE, "certificate": "not bytes"});
    assert!(validate(&[(records::DEVICE, bad)])[0].is_err());
}
