//! LG-P4: the leaves of a received ratchet tree are verified in parallel and
//! the first error in node order is the one reported, as before.

use openmls_rust_crypto::OpenMlsRustCrypto;

use crate::{
    group::tests_and_kats::utils::{generate_credential_with_key, generate_key_package},
    prelude::*,
    test_utils::frankenstein::FrankenLeafNode,
    treesync::{node::NodeIn, RatchetTree, RatchetTreeError},
};

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The nodes of a six-member tree and its group id.
fn six_member_tree() -> (Vec<Option<NodeIn>>, GroupId, RatchetTree) {
    let provider = OpenMlsRustCrypto::default();
    let founder =
        generate_credential_with_key(b"0".to_vec(), CIPHERSUITE.signature_algorithm(), &provider);
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .build();
    let mut group = MlsGroup::new(
        &provider,
        &founder.signer,
        &config,
        founder.credential_with_key.clone(),
    )
    .unwrap();
    let key_packages: Vec<KeyPackage> = (1..6)
        .map(|i| {
            let p = OpenMlsRustCrypto::default();
            let c =
                generate_credential_with_key(vec![i as u8], CIPHERSUITE.signature_algorithm(), &p);
            generate_key_package(CIPHERSUITE, Extensions::empty(), &p, c)
                .key_package()
                .clone()
        })
        .collect();
    group
        .add_members(&provider, &founder.signer, &key_packages)
        .unwrap();
    group.merge_pending_commit(&provider).unwrap();
    // A commit with a path, so that the tree has parent nodes and a leaf
    // signed at its position.
    group
        .self_update(&provider, &founder.signer, LeafNodeParameters::default())
        .unwrap();
    group.merge_pending_commit(&provider).unwrap();
    let tree = group.export_ratchet_tree();
    let nodes = RatchetTreeIn::from(tree.clone()).0;
    (nodes, group.group_id().clone(), tree)
}

fn bad_signature(node: &Option<NodeIn>) -> Option<NodeIn> {
    let Some(NodeIn::LeafNode(leaf)) = node else {
        panic!("not a leaf")
    };
    let leaf: LeafNode = (**leaf).clone().into();
    let mut franken = FrankenLeafNode::from(leaf);
    let mut signature = franken.signature.as_slice().to_vec();
    signature[0] ^= 1;
    franken.signature = signature.into();
    Some(NodeIn::LeafNode(Box::new(franken.into())))
}

fn verify(nodes: Vec<Option<NodeIn>>, group_id: &GroupId) -> Result<RatchetTree, RatchetTreeError> {
    let provider = OpenMlsRustCrypto::default();
    RatchetTree::try_from_nodes(CIPHERSUITE, provider.crypto(), nodes, group_id)
}

#[test]
fn lg_p4_parallel_leaf_verification_reports_first_error() {
    let (nodes, group_id, tree) = six_member_tree();
    assert_eq!(nodes.len(), 11);
    assert!(matches!(nodes[3], Some(NodeIn::ParentNode(_))));

    // Valid: the same tree.
    assert_eq!(verify(nodes.clone(), &group_id).unwrap(), tree);

    // A bad signature (leaf 1, node 2) before a wrong node type (node 7).
    let mut tampered = nodes.clone();
    tampered[2] = bad_signature(&nodes[2]);
    tampered[7] = nodes[4].clone();
    assert_eq!(
        verify(tampered, &group_id),
        Err(RatchetTreeError::InvalidNodeSignature)
    );

    // A wrong node type (a parent at node 4) before a bad signature (node 10).
    let mut tampered = nodes.clone();
    tampered[4] = nodes[3].clone();
    tampered[10] = bad_signature(&nodes[10]);
    assert_eq!(
        verify(tampered, &group_id),
        Err(RatchetTreeError::WrongNodeType)
    );

    // Every leaf's signature is checked: the founder's leaf (node 0, signed
    // at its position) and the last one.
    for index in [0, 10] {
        let mut tampered = nodes.clone();
        tampered[index] = bad_signature(&nodes[index]);
        assert_eq!(
            verify(tampered, &group_id),
            Err(RatchetTreeError::InvalidNodeSignature)
        );
    }
    // The founder's leaf is bound to its position (group and index).
    assert!(verify(nodes.clone(), &GroupId::from_slice(b"another group")).is_err());
}
