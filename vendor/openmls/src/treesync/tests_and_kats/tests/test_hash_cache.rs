//! LG-P2: the tree-hash cache gives the same tree hashes as a computation
//! from scratch, whatever sequence of commits the tree goes through. The same
//! random runs check LG-P7 (the borrowed tree export encodes like the cloned one).

use openmls_rust_crypto::OpenMlsRustCrypto;
use tls_codec::{Serialize as _, Size as _};

use crate::{
    group::tests_and_kats::utils::{
        generate_credential_with_key, generate_key_package, CredentialWithKeyAndSigner,
    },
    prelude::*,
    treesync::TreeSync,
};

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// A small deterministic generator (xorshift64*), so that a failure names
/// the seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }
}

struct Member {
    provider: OpenMlsRustCrypto,
    credential: CredentialWithKeyAndSigner,
    group: MlsGroup,
}

struct Joiner {
    provider: OpenMlsRustCrypto,
    credential: CredentialWithKeyAndSigner,
}

fn new_party(name: usize) -> Joiner {
    let provider = OpenMlsRustCrypto::default();
    let credential = generate_credential_with_key(
        format!("member {name}").into_bytes(),
        CIPHERSUITE.signature_algorithm(),
        &provider,
    );
    Joiner {
        provider,
        credential,
    }
}

fn config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(false)
        .build()
}

fn check_fresh(tree: &TreeSync, what: &str, seed: u64, step: usize) -> usize {
    let crypto = OpenMlsRustCrypto::default();
    let cached = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tree.assert_tree_hashes_fresh(crypto.crypto(), CIPHERSUITE)
    }));
    match cached {
        Ok(cached) => cached,
        Err(_) => panic!("seed {seed}, step {step}: {what}"),
    }
}

/// Runs random adds, removes (the rightmost members too, which shrinks the
/// tree), removes and adds in one commit (shrinking and growing in one diff),
/// path updates and reloads from storage (an empty cache), and checks at every
/// step that every member's tree hash and cached node hashes equal a
/// computation from scratch.
fn run(seed: u64, steps: usize) {
    let mut rng = Rng(seed);
    let mut next_name = 0;
    let mut party = || {
        next_name += 1;
        new_party(next_name)
    };
    let founder = party();
    let group = MlsGroup::new(
        &founder.provider,
        &founder.credential.signer,
        &config(),
        founder.credential.credential_with_key.clone(),
    )
    .unwrap();
    let mut members = vec![Member {
        provider: founder.provider,
        credential: founder.credential,
        group,
    }];
    let mut path_commits = 0;
    let mut shrinks = 0;
    let mut grows = 0;
    for step in 0..steps {
        let committer = rng.below(members.len());
        let others: Vec<LeafNodeIndex> = members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != committer)
            .map(|(_, m)| m.group.own_leaf_index())
            .collect();
        let mut removed: Vec<LeafNodeIndex> = Vec::new();
        let mut joiners: Vec<Joiner> = Vec::new();
        let op = rng.below(6);
        match op {
            // Add one to three members.
            0 | 1 if members.len() < 20 => {
                for _ in 0..=rng.below(3) {
                    joiners.push(party());
                }
            }
            // Remove one or two random members.
            2 if !others.is_empty() => {
                for _ in 0..=rng.below(2) {
                    let victim = others[rng.below(others.len())];
                    if !removed.contains(&victim) {
                        removed.push(victim);
                    }
                }
            }
            // Remove the rightmost members (the tree shrinks), and add some
            // in the same commit (it may grow back).
            3 if !others.is_empty() => {
                let highest = others.iter().map(|l| l.u32()).max().unwrap_or(0);
                let cut = rng.below(highest as usize + 1) as u32;
                removed.extend(others.iter().filter(|l| l.u32() >= cut));
                if rng.below(2) == 0 {
                    for _ in 0..=rng.below(2) {
                        joiners.push(party());
                    }
                }
            }
            // Reload a member from storage: its tree comes without a cache.
            4 => {
                let reloaded = rng.below(members.len());
                let m = &mut members[reloaded];
                m.group = MlsGroup::load(m.provider.storage(), m.group.group_id())
                    .unwrap()
                    .unwrap();
            }
            // Otherwise: a commit with a path.
            _ => {}
        }
        let key_packages: Vec<KeyPackage> = joiners
            .iter()
            .map(|j| {
                generate_key_package(
                    CIPHERSUITE,
                    Extensions::empty(),
                    &j.provider,
                    j.credential.clone(),
                )
                .key_package()
                .clone()
            })
            .collect();
        let with_path = removed.is_empty() && key_packages.is_empty();
        if with_path {
            path_commits += 1;
        }
        let old_leaves = members[committer].group.treesync().leaf_count();
        let m = &mut members[committer];
        let bundle = m
            .group
            .commit_builder()
            .propose_adds(key_packages)
            .propose_removals(removed.iter().copied())
            .force_self_update(with_path)
            .leaf_node_parameters(LeafNodeParameters::default())
            .load_psks(m.provider.storage())
            .unwrap()
            .build(
                m.provider.rand(),
                m.provider.crypto(),
                &m.credential.signer,
                |_| true,
            )
            .unwrap()
            .stage_commit(&m.provider)
            .unwrap();
        let (commit, welcome, _) = bundle.contents();
        let commit: MlsMessageIn = commit.clone().into();
        let welcome = welcome.cloned();
        m.group.merge_pending_commit(&m.provider).unwrap();
        if m.group.treesync().leaf_count() < old_leaves {
            shrinks += 1;
        }
        if m.group.treesync().leaf_count() > old_leaves {
            grows += 1;
        }
        let ratchet_tree = m.group.export_ratchet_tree();

        for (i, member) in members.iter_mut().enumerate() {
            if i == committer || removed.contains(&member.group.own_leaf_index()) {
                continue;
            }
            let processed = member
                .group
                .process_message(
                    &member.provider,
                    commit.clone().try_into_protocol_message().unwrap(),
                )
                .unwrap();
            match processed.into_content() {
                ProcessedMessageContent::StagedCommitMessage(staged) => member
                    .group
                    .merge_staged_commit(&member.provider, *staged)
                    .unwrap(),
                _ => panic!("expected a commit"),
            }
        }
        members.retain(|m| !removed.contains(&m.group.own_leaf_index()));
        if let Some(welcome) = welcome {
            for joiner in joiners {
                let group = StagedWelcome::new_from_welcome(
                    &joiner.provider,
                    config().join_config(),
                    welcome.clone(),
                    Some(ratchet_tree.clone().into()),
                )
                .unwrap()
                .into_group(&joiner.provider)
                .unwrap();
                members.push(Member {
                    provider: joiner.provider,
                    credential: joiner.credential,
                    group,
                });
            }
        }

        let tree_hash = members[0].group.export_group_context().tree_hash().to_vec();
        for (i, member) in members.iter().enumerate() {
            let what = format!("member {i} after op {op}");
            let tree = member.group.treesync();
            let cached = check_fresh(tree, &what, seed, step);
            // Every member merged a staged diff that carried the hashes it
            // computed (all of them after a reload), or joined: the caches
            // are full.
            assert_eq!(
                cached as u32,
                tree.tree_size().u32(),
                "seed {seed}, step {step}: {what}: cache not full"
            );
            assert_eq!(
                member.group.export_group_context().tree_hash(),
                tree_hash,
                "seed {seed}, step {step}: members disagree"
            );
            // LG-P7: the borrowed export encodes exactly like the cloned one, through
            // blanks, shrinking and growing.
            let cloned = member.group.export_ratchet_tree();
            let borrowed = member.group.export_ratchet_tree_ref();
            assert_eq!(
                borrowed.tls_serialized_len(),
                cloned.tls_serialized_len(),
                "seed {seed}, step {step}: {what}: LG-P7 length"
            );
            assert_eq!(
                borrowed.tls_serialize_detached().unwrap(),
                cloned.tls_serialize_detached().unwrap(),
                "seed {seed}, step {step}: {what}: LG-P7 bytes"
            );
        }
    }
    assert!(path_commits > 0, "seed {seed}: no commit with a path");
    assert!(shrinks > 0, "seed {seed}: the tree never shrank");
    assert!(grows > 1, "seed {seed}: the tree never grew again");
}

#[test]
fn lg_p2_tree_hash_cache_matches_recomputation() {
    for seed in [1, 2, 0x5eed] {
        run(seed, 50);
    }
}

/// A staged diff read back from storage carries no computed hashes: merging
/// it drops the stale cache entries and later diffs recompute them.
#[test]
fn lg_p2_stored_staged_diff_invalidates_cache() {
    let crypto = OpenMlsRustCrypto::default();
    let founder = new_party(0);
    let mut group = MlsGroup::new(
        &founder.provider,
        &founder.credential.signer,
        &config(),
        founder.credential.credential_with_key.clone(),
    )
    .unwrap();
    let key_packages: Vec<KeyPackage> = (1..6)
        .map(|i| {
            let j = new_party(i);
            generate_key_package(CIPHERSUITE, Extensions::empty(), &j.provider, j.credential)
                .key_package()
                .clone()
        })
        .collect();
    group
        .add_members(&founder.provider, &founder.credential.signer, &key_packages)
        .unwrap();
    group.merge_pending_commit(&founder.provider).unwrap();
    let mut tree = group.treesync().clone();
    let full = tree.assert_tree_hashes_fresh(crypto.crypto(), CIPHERSUITE);
    assert_eq!(full as u32, tree.tree_size().u32());

    let extra = new_party(9);
    let extra_leaf = generate_key_package(
        CIPHERSUITE,
        Extensions::empty(),
        &extra.provider,
        extra.credential,
    )
    .key_package()
    .leaf_node()
    .clone();
    let mut diff = tree.empty_diff();
    diff.blank_leaf(LeafNodeIndex::new(2));
    diff.add_leaf(extra_leaf.clone()).unwrap();
    diff.add_leaf(extra_leaf).unwrap();
    let staged = diff.into_staged_diff(crypto.crypto(), CIPHERSUITE).unwrap();
    let stored = serde_json::to_vec(&staged).unwrap();
    let staged: crate::treesync::diff::StagedTreeSyncDiff =
        serde_json::from_slice(&stored).unwrap();
    tree.merge_diff(staged);
    let cached = tree.assert_tree_hashes_fresh(crypto.crypto(), CIPHERSUITE);
    assert!(
        cached < tree.tree_size().u32() as usize,
        "stale entries kept"
    );

    // The next diff finds the missing entries recomputed.
    let mut diff = tree.empty_diff();
    diff.blank_leaf(LeafNodeIndex::new(5));
    diff.trim_tree();
    let staged = diff.into_staged_diff(crypto.crypto(), CIPHERSUITE).unwrap();
    tree.merge_diff(staged);
    let cached = tree.assert_tree_hashes_fresh(crypto.crypto(), CIPHERSUITE);
    assert_eq!(cached as u32, tree.tree_size().u32());
}
