//! Unit tests of the out-of-band ratchet tree (spec/large-groups.md LG-T-*), on raw openmls
//! groups so that openmls's own tree-hash check is what is tested.
//!
//! Test code: `unwrap`/`expect` only on values the tests build themselves, never on input
//! from another party.

use openmls::prelude::{
    tls_codec::{DeserializeBytes as _, Serialize as _},
    BasicCredential, Ciphersuite, CredentialWithKey, KeyPackage, MlsGroup, MlsGroupCreateConfig,
    MlsMessageBodyIn, MlsMessageIn, ProcessedWelcome,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;

use super::*;

const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

struct Party {
    p: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    cwk: CredentialWithKey,
}

fn party(name: &str) -> Party {
    let p = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    signer.store(p.storage()).unwrap();
    let cwk = CredentialWithKey {
        credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    };
    Party { p, signer, cwk }
}

/// Last resort, so that openmls keeps it after reading a Welcome and a test can try the same
/// Welcome several times.
fn key_package(b: &Party) -> KeyPackage {
    KeyPackage::builder()
        .mark_as_last_resort()
        .build(CS, &b.p, &b.signer, b.cwk.clone())
        .unwrap()
        .key_package()
        .clone()
}

fn config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CS)
        .use_ratchet_tree_extension(false)
        .build()
}

/// `a` creates a group and adds `joiners` in one commit whose GroupInfo carries `r`; returns
/// the group (merged) and the Welcome bytes.
fn group_with_welcome(a: &Party, joiners: &[&Party], r: &TreeRef) -> (MlsGroup, Vec<u8>) {
    let mut g = MlsGroup::new(&a.p, &a.signer, &config(), a.cwk.clone()).unwrap();
    let bundle = g
        .commit_builder()
        .propose_adds(joiners.iter().map(|j| key_package(j)))
        .load_psks(a.p.storage())
        .unwrap()
        .create_group_info_with_extensions([r.extension()])
        .unwrap()
        .build(a.p.rand(), a.p.crypto(), &a.signer, |_| true)
        .unwrap()
        .stage_commit(&a.p)
        .unwrap();
    let welcome = bundle
        .to_welcome_msg()
        .unwrap()
        .tls_serialize_detached()
        .unwrap();
    g.merge_pending_commit(&a.p).unwrap();
    (g, welcome)
}

fn processed(b: &Party, welcome: &[u8]) -> ProcessedWelcome {
    let MlsMessageBodyIn::Welcome(w) = MlsMessageIn::tls_deserialize_exact_bytes(welcome)
        .unwrap()
        .extract()
    else {
        panic!("not a Welcome")
    };
    ProcessedWelcome::new_from_welcome(&b.p, &Default::default(), w).unwrap()
}

#[test]
fn lg_t_2_reference_rides_in_the_group_info_and_decodes_strictly() {
    let (a, b) = (party("alice"), party("bob"));
    let r = TreeRef::from_seed(&[7; 32]);
    let (_, welcome) = group_with_welcome(&a, &[&b], &r);
    let pw = processed(&b, &welcome);
    let ext = pw.unverified_group_info().extensions();
    assert!(
        ext.ratchet_tree().is_none(),
        "LG-T-1: no tree in the Welcome"
    );
    assert_eq!(TreeRef::from_group_info(ext).unwrap(), Some(r.clone()));
    // The Welcome stays small: a header, one joiner's secrets, a signed GroupInfo.
    assert!(welcome.len() < 1024, "Welcome of {} bytes", welcome.len());

    // Another seed, another locator and key.
    assert_ne!(TreeRef::from_seed(&[8; 32]), r);
    // Strict decoding: wrong version, wrong length.
    let Extension::Unknown(_, UnknownExtension(good)) = r.extension() else {
        panic!()
    };
    for bad in [
        vec![],
        [&[2u8][..], &good[1..]].concat(),
        good[..64].to_vec(),
        [&good[..], &[0u8][..]].concat(),
    ] {
        let ext = Extensions::<GroupInfo>::from_vec(vec![Extension::Unknown(
            WELCOME_TREE_EXTENSION,
            UnknownExtension(bad),
        )])
        .unwrap();
        assert_eq!(TreeRef::from_group_info(&ext), Err(TreeError::BadReference));
    }
    assert_eq!(TreeRef::from_group_info(&Extensions::empty()), Ok(None));
}

#[test]
fn lg_t_3_sealed_tree_opens_only_intact_under_its_reference() {
    let (a, b) = (party("alice"), party("bob"));
    let r = TreeRef::from_seed(&[1; 32]);
    let (g, _) = group_with_welcome(&a, &[&b], &r);
    let tree = g.export_ratchet_tree();
    let blob = r.seal(&tree).unwrap();
    // Padded: the size says little beyond the number of members.
    assert_eq!((blob.len() - 1 - NONCE_LEN - TAG_LEN) % PAD, 0);
    let opened = r.open(&blob).unwrap();
    assert_eq!(
        opened.tls_serialize_detached().unwrap(),
        tree.tls_serialize_detached().unwrap()
    );
    // Two seals of one tree differ (fresh nonce) and both open.
    let again = r.seal(&tree).unwrap();
    assert_ne!(again, blob);
    assert!(r.open(&again).is_ok());

    // Truncated anywhere: refused.
    for n in (0..blob.len()).step_by(7) {
        assert_eq!(
            r.open(&blob[..n]).unwrap_err(),
            TreeError::Undecryptable,
            "{n}"
        );
    }
    // Any flipped byte (version, nonce, ciphertext, tag): refused.
    for i in [0, 1, 12, 13, blob.len() / 2, blob.len() - 1] {
        let mut t = blob.clone();
        t[i] ^= 1;
        assert_eq!(r.open(&t).unwrap_err(), TreeError::Undecryptable, "{i}");
    }
    // Another reference's key or locator: refused (a blob moved to another locator too).
    let other = TreeRef::from_seed(&[2; 32]);
    assert_eq!(other.open(&blob).unwrap_err(), TreeError::Undecryptable);
    let moved = TreeRef {
        locator: other.locator,
        key: r.key,
    };
    assert_eq!(moved.open(&blob).unwrap_err(), TreeError::Undecryptable);
    // Sealed correctly but not a tree: malformed.
    let junk = {
        let plain = [&4u32.to_be_bytes()[..], b"junk", &[0u8; 248]].concat();
        let nonce = [0u8; NONCE_LEN];
        let ct = ChaCha20Poly1305::new((&r.key).into())
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: &plain,
                    aad: &r.aad(),
                },
            )
            .unwrap();
        [&[BLOB_VERSION][..], &nonce, &ct].concat()
    };
    assert_eq!(r.open(&junk).unwrap_err(), TreeError::Malformed);
    // Oversized: refused before any work.
    let big = vec![0u8; MAX_TREE_BLOB + 1];
    assert!(matches!(r.open(&big), Err(TreeError::TooLarge { .. })));
}

#[test]
fn lg_t_5_openmls_checks_the_tree_against_the_group_info_tree_hash() {
    let (a, b) = (party("alice"), party("bob"));
    let r = TreeRef::from_seed(&[3; 32]);
    let (g, welcome) = group_with_welcome(&a, &[&b], &r);
    let right: RatchetTreeIn = r.open(&r.seal(&g.export_ratchet_tree()).unwrap()).unwrap();
    let try_join = |tree: Option<RatchetTreeIn>| {
        processed(&b, &welcome)
            .into_staged_welcome(&b.p, tree)
            .map(|_| ())
            .unwrap_err()
    };

    // The same committer's tree of another group (same committer key at the same leaf, so the
    // GroupInfo signature verifies): openmls's tree-hash check refuses it.
    let d = party("dave");
    let (same_signer, _) = group_with_welcome(&a, &[&d], &TreeRef::from_seed(&[5; 32]));
    let e = try_join(Some(same_signer.export_ratchet_tree().into()));
    assert!(format!("{e:?}").contains("TreeHashMismatch"), "{e:?}");
    assert_eq!(
        staging_error(&e, true),
        GroupError::WelcomeTree(TreeError::Mismatch)
    );
    // The group's own tree before the commit (alice alone): the tree hash again.
    let mut alone = MlsGroup::new(&a.p, &a.signer, &config(), a.cwk.clone()).unwrap();
    let e = try_join(Some(alone.export_ratchet_tree().into()));
    assert!(format!("{e:?}").contains("TreeHashMismatch"), "{e:?}");
    alone.delete(a.p.storage()).unwrap();
    // Another committer's group: its signer leaf holds another key, so the signature check
    // fails first; out of band, that too is a tree that is not the group's.
    let (c, d2) = (party("carol"), party("dave"));
    let (other, _) = group_with_welcome(&c, &[&d2], &TreeRef::from_seed(&[4; 32]));
    let e = try_join(Some(other.export_ratchet_tree().into()));
    assert_eq!(
        staging_error(&e, true),
        GroupError::WelcomeTree(TreeError::Mismatch)
    );
    // No tree at all.
    assert_eq!(
        staging_error(&try_join(None), true),
        GroupError::WelcomeTree(TreeError::NoTree)
    );
    // The right tree joins, into the committer's epoch and tree.
    let joined = processed(&b, &welcome)
        .into_staged_welcome(&b.p, Some(right))
        .unwrap()
        .into_group(&b.p)
        .unwrap();
    assert_eq!(joined.epoch(), g.epoch());
    assert_eq!(
        joined
            .export_ratchet_tree()
            .tls_serialize_detached()
            .unwrap(),
        g.export_ratchet_tree().tls_serialize_detached().unwrap()
    );
}

/// LG-P4: openmls verifies the leaves of a joined tree on all cores. A tree of 100 members
/// (enough for several parallel chunks) with one leaf signature altered, far from the
/// committer's leaf, is refused; the intact tree joins.
#[test]
fn lg_p4_a_bad_leaf_signature_anywhere_in_a_joined_tree_is_refused() {
    let a = party("alice");
    let others: Vec<Party> = (0..99).map(|i| party(&format!("m{i}"))).collect();
    let b = &others[0];
    let r = TreeRef::from_seed(&[6; 32]);
    let (g, welcome) = group_with_welcome(&a, &others.iter().collect::<Vec<_>>(), &r);
    let tree = g.export_ratchet_tree().tls_serialize_detached().unwrap();
    for leaf in [90u32, 40] {
        let sig = g
            .public_group()
            .leaf(openmls::prelude::LeafNodeIndex::new(leaf))
            .unwrap()
            .signature()
            .tls_serialize_detached()
            .unwrap();
        let at = tree
            .windows(sig.len())
            .position(|w| w == sig.as_slice())
            .unwrap();
        let mut bad = tree.clone();
        bad[at + 10] ^= 1;
        let bad = RatchetTreeIn::tls_deserialize_exact_bytes(&bad).unwrap();
        let e = processed(b, &welcome)
            .into_staged_welcome(&b.p, Some(bad))
            .map(|_| ())
            .unwrap_err();
        assert!(format!("{e:?}").contains("InvalidNodeSignature"), "{e:?}");
    }
    let good = RatchetTreeIn::tls_deserialize_exact_bytes(&tree).unwrap();
    let joined = processed(b, &welcome)
        .into_staged_welcome(&b.p, Some(good))
        .unwrap()
        .into_group(&b.p)
        .unwrap();
    assert_eq!(joined.members().count(), 100);
}

/// LG-P7: the committer seals the tree from openmls's borrowed export. It encodes like the
/// cloned export whatever the tree's shape: blank leaves inside, blank parents, and after the
/// rightmost members leave (trailing blanks trimmed).
#[test]
fn lg_p7_borrowed_tree_export_seals_the_same_tree() {
    let a = party("alice");
    let others: Vec<Party> = (0..6).map(|i| party(&format!("m{i}"))).collect();
    let r = TreeRef::from_seed(&[9; 32]);
    let (mut g, _) = group_with_welcome(&a, &others.iter().collect::<Vec<_>>(), &r);
    let same = |g: &MlsGroup| {
        let cloned = g.export_ratchet_tree().tls_serialize_detached().unwrap();
        let borrowed = g
            .export_ratchet_tree_ref()
            .tls_serialize_detached()
            .unwrap();
        assert_eq!(borrowed, cloned);
        let opened = r
            .open(&r.seal(&g.export_ratchet_tree_ref()).unwrap())
            .unwrap();
        assert_eq!(opened.tls_serialize_detached().unwrap(), cloned);
    };
    same(&g);
    // A member in the middle, then the two rightmost, leave the tree.
    for gone in [[2u32].as_slice(), &[5, 6]] {
        let leaves: Vec<_> = gone
            .iter()
            .map(|&l| openmls::prelude::LeafNodeIndex::new(l))
            .collect();
        g.remove_members(&a.p, &a.signer, &leaves).unwrap();
        g.merge_pending_commit(&a.p).unwrap();
        same(&g);
    }
    assert_eq!(g.members().count(), 4);
}
