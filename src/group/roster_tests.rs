//! Unit tests of the roster (spec/large-groups.md LG-8) on raw openmls groups whose leaves
//! carry atmls identities: after every commit, the roster moved on from the commit's
//! changes must equal one decoded from the whole tree.
//!
//! Test code: `unwrap`/`expect` only on values the tests build themselves, never on input
//! from another party.

use openmls::prelude::{
    BasicCredential, Ciphersuite, CredentialWithKey, KeyPackage, LeafNodeIndex, MlsGroup,
    MlsGroupCreateConfig, MlsMessageOut, ProcessedMessageContent,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::OpenMlsProvider as _;

use super::*;
use crate::identity::DeviceIdentity;

const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

struct Party {
    p: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    cwk: CredentialWithKey,
    did: Did,
}

fn did(n: usize) -> Did {
    // did:plc ids are base32 (a–z, 2–7).
    let tail: String = (0..24)
        .map(|k| b"abcdefghijklmnopqrstuvwxyz234567"[(n >> (5 * (k % 4))) & 31] as char)
        .collect();
    Did::new(&format!("did:plc:{tail}")).unwrap()
}

fn party_with(did: Did, credential: openmls::prelude::Credential) -> Party {
    let p = OpenMlsRustCrypto::default();
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).unwrap();
    signer.store(p.storage()).unwrap();
    let cwk = CredentialWithKey {
        credential,
        signature_key: signer.public().into(),
    };
    Party {
        p,
        signer,
        cwk,
        did,
    }
}

/// A device of account `n` (a new installation each time).
fn party(n: usize) -> Party {
    let dev = DeviceIdentity::new_account(did(n));
    let cred = AtmlsIdentity {
        certificate: dev.certificate.clone(),
    }
    .to_credential();
    party_with(did(n), cred)
}

fn key_package(b: &Party) -> KeyPackage {
    KeyPackage::builder()
        .build(CS, &b.p, &b.signer, b.cwk.clone())
        .unwrap()
        .key_package()
        .clone()
}

fn config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CS)
        .use_ratchet_tree_extension(true)
        .build()
}

/// `a` commits adding `adds` and removing `removes`; returns the commit. The roster follows
/// the merge and is checked against a full decode.
fn commit(
    a: &Party,
    g: &mut MlsGroup,
    roster: &mut Roster,
    adds: &[&Party],
    removes: &[u32],
) -> MlsMessageOut {
    let bundle = g
        .commit_builder()
        .propose_adds(adds.iter().map(|j| key_package(j)))
        .propose_removals(removes.iter().map(|i| LeafNodeIndex::new(*i)))
        .force_self_update(adds.is_empty() && removes.is_empty())
        .load_psks(a.p.storage())
        .unwrap()
        .build(a.p.rand(), a.p.crypto(), &a.signer, |_| true)
        .unwrap()
        .stage_commit(&a.p)
        .unwrap();
    let change = RosterChange::of(g.pending_commit().unwrap(), g.own_leaf_index()).unwrap();
    g.merge_pending_commit(&a.p).unwrap();
    assert!(roster.advance(change, g));
    assert_eq!(*roster, Roster::of(g));
    assert!(roster.fits(g));
    bundle.commit().clone()
}

fn dids(r: &Roster) -> Vec<(u32, Did)> {
    r.leaves()
        .map(|(i, l)| (i.u32(), l.member.did.clone()))
        .collect()
}

#[test]
fn lg_8_roster_follows_adds_removes_and_updates() {
    let a = party(0);
    let mut g = MlsGroup::new(&a.p, &a.signer, &config(), a.cwk.clone()).unwrap();
    let mut r = Roster::of(&g);
    assert_eq!(dids(&r), vec![(0, did(0))]);
    let ps: Vec<Party> = (1..=6).map(party).collect();
    commit(&a, &mut g, &mut r, &ps.iter().collect::<Vec<_>>(), &[]);
    assert_eq!(r.members().len(), 7);
    // Removes leave holes; the adds of the same commit fill them from the left.
    commit(&a, &mut g, &mut r, &[], &[2, 5]);
    assert_eq!(r.count(&did(2)), 0);
    let (x, y, z) = (party(7), party(8), party(9));
    commit(&a, &mut g, &mut r, &[&x, &y, &z], &[3]);
    assert_eq!(r.did(LeafNodeIndex::new(2)), Some(&did(7)));
    assert_eq!(r.did(LeafNodeIndex::new(3)), Some(&did(8)));
    assert_eq!(r.did(LeafNodeIndex::new(5)), Some(&did(9)));
    // A second device of an existing account.
    let second = party_with(did(1), party(1).cwk.credential.clone());
    commit(&a, &mut g, &mut r, &[&second], &[]);
    assert_eq!(r.count(&did(1)), 2);
    assert_eq!(r.leaves_of(&did(1)).count(), 2);
    // A self-update (the committer's leaf is replaced), then removing the tail shrinks the
    // tree.
    commit(&a, &mut g, &mut r, &[], &[]);
    let last = r.leaves().last().unwrap().0.u32();
    commit(&a, &mut g, &mut r, &[], &[last]);
    assert_eq!(r.members().len(), Roster::of(&g).members().len());
    assert!(r.accounts().all(|d| r.contains(d)));
}

#[test]
fn lg_8_a_receivers_roster_follows_commits_it_processes() {
    let a = party(0);
    let b = party(1);
    let mut g = MlsGroup::new(&a.p, &a.signer, &config(), a.cwk.clone()).unwrap();
    let bundle = g
        .commit_builder()
        .propose_adds([key_package(&b)])
        .load_psks(a.p.storage())
        .unwrap()
        .build(a.p.rand(), a.p.crypto(), &a.signer, |_| true)
        .unwrap()
        .stage_commit(&a.p)
        .unwrap();
    let welcome = bundle.to_welcome_msg().unwrap();
    g.merge_pending_commit(&a.p).unwrap();
    let mut r = Roster::of(&g);
    let welcome = match openmls::prelude::MlsMessageIn::from(welcome).extract() {
        openmls::prelude::MlsMessageBodyIn::Welcome(w) => w,
        _ => unreachable!(),
    };
    let mut bg =
        openmls::prelude::StagedWelcome::new_from_welcome(&b.p, &Default::default(), welcome, None)
            .unwrap()
            .into_group(&b.p)
            .unwrap();
    let mut br = Roster::of(&bg);
    assert_eq!(br, r);
    let (c, d) = (party(2), party(3));
    let msg = commit(&a, &mut g, &mut r, &[&c, &d], &[]);
    let pm = openmls::prelude::MlsMessageIn::from(msg)
        .try_into_protocol_message()
        .unwrap();
    let processed = bg.process_message(&b.p, pm).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        panic!("not a commit");
    };
    let change = RosterChange::of(&staged, LeafNodeIndex::new(0)).unwrap();
    assert!(!br.fits(&g), "a roster names one tree");
    bg.merge_staged_commit(&b.p, *staged).unwrap();
    assert!(br.advance(change, &bg));
    assert_eq!(br, Roster::of(&bg));
    assert_eq!(br, r);
}

#[test]
fn lg_8_a_change_that_does_not_match_the_tree_is_refused() {
    let a = party(0);
    let mut g = MlsGroup::new(&a.p, &a.signer, &config(), a.cwk.clone()).unwrap();
    let before = Roster::of(&g);
    let b = party(1);
    g.commit_builder()
        .propose_adds([key_package(&b)])
        .load_psks(a.p.storage())
        .unwrap()
        .build(a.p.rand(), a.p.crypto(), &a.signer, |_| true)
        .unwrap()
        .stage_commit(&a.p)
        .unwrap();
    let mut change = RosterChange::of(g.pending_commit().unwrap(), g.own_leaf_index()).unwrap();
    g.merge_pending_commit(&a.p).unwrap();
    // The added leaf is not where (or what) the change says: no roster rather than a wrong one.
    change.added[0].1 = vec![0; 32];
    let mut r = before.clone();
    assert!(!r.advance(change, &g));
    assert!(!before.fits(&g));
}

#[test]
fn lg_8_a_leaf_that_does_not_decode_still_occupies_its_slot() {
    let a = party(0);
    let mut g = MlsGroup::new(&a.p, &a.signer, &config(), a.cwk.clone()).unwrap();
    let odd = party_with(
        did(1),
        BasicCredential::new(b"not an identity".to_vec()).into(),
    );
    let mut r = Roster::of(&g);
    commit(&a, &mut g, &mut r, &[&odd], &[]);
    assert_eq!(r.get(LeafNodeIndex::new(1)), None);
    assert_eq!(r.first_blank(), 2);
    let c = party(2);
    commit(&a, &mut g, &mut r, &[&c], &[]);
    assert_eq!(r.did(LeafNodeIndex::new(2)), Some(&did(2)));
    commit(&a, &mut g, &mut r, &[], &[1]);
    assert_eq!(r.first_blank(), 1);
    assert_eq!(odd.did, did(1));
}
