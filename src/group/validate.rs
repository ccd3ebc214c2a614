//! Validation of what other members send: every added or updated leaf of a commit, every
//! proposal, every leaf of a tree joined from a Welcome (spec/credential.md, spec/group.md).

use openmls::prelude::{
    Ciphersuite, LeafNode, LeafNodeIndex, MlsGroup, Proposal, QueuedProposal, Sender, StagedCommit,
};

use super::{GroupError, Member};
use crate::credential::{check_identity_unchanged, AtmlsIdentity, LeafIdentity, VerdictCache};
use crate::identity::{Did, PublicKey};

/// The outcome of validation: refused, or the DIDs whose identity keys must first be fetched
/// from the directory and pinned.
#[derive(Debug)]
pub(crate) enum Validation {
    Refused(GroupError),
    NeedDirectory(Vec<Did>),
}

impl<E: Into<GroupError>> From<E> for Validation {
    fn from(e: E) -> Self {
        Validation::Refused(e.into())
    }
}

/// What a valid commit does.
#[derive(Debug, Default)]
pub(crate) struct CommitSummary {
    pub added: Vec<Member>,
    pub removed: Vec<Member>,
    pub self_removed: bool,
}

fn member_of(id: &LeafIdentity) -> Member {
    Member {
        did: id.did.clone(),
        installation: id.installation_key,
    }
}

/// Checks a leaf (CRED-1 … CRED-6, once per leaf content: LG-5) and its identity key against
/// our pin (CRED-7).
fn check_leaf(
    leaf: &LeafNode,
    cs: Ciphersuite,
    now: u64,
    verdicts: &VerdictCache,
    pin: &dyn Fn(&Did) -> Option<PublicKey>,
    missing: &mut Vec<Did>,
) -> Result<LeafIdentity, Validation> {
    let id = verdicts.validate(leaf, cs, now)?;
    check_pin(id, pin, missing)
}

/// CRED-7 for a validated leaf: its identity key is the pinned one, or the DID is noted as
/// missing a pin.
fn check_pin(
    id: LeafIdentity,
    pin: &dyn Fn(&Did) -> Option<PublicKey>,
    missing: &mut Vec<Did>,
) -> Result<LeafIdentity, Validation> {
    match pin(&id.did) {
        Some(k) => id.check_account(&k, None)?,
        None if !missing.contains(&id.did) => missing.push(id.did.clone()),
        None => {}
    }
    Ok(id)
}

fn leaf_at(group: &MlsGroup, index: LeafNodeIndex) -> Result<&LeafNode, Validation> {
    group
        .public_group()
        .leaf(index)
        .ok_or(Validation::Refused(GroupError::InvalidCommit(
            "no leaf at sender index".into(),
        )))
}

/// Validates a staged commit from `committer` before it is merged.
pub(crate) fn validate_staged_commit(
    group: &MlsGroup,
    staged: &StagedCommit,
    committer: LeafNodeIndex,
    verdicts: &VerdictCache,
    pin: &dyn Fn(&Did) -> Option<PublicKey>,
    now: u64,
) -> Result<CommitSummary, Validation> {
    let cs = group.ciphersuite();
    let mut missing = Vec::new();
    let mut summary = CommitSummary {
        self_removed: staged.self_removed(),
        ..Default::default()
    };
    for add in staged.add_proposals() {
        let id = check_leaf(
            add.add_proposal().key_package().leaf_node(),
            cs,
            now,
            verdicts,
            pin,
            &mut missing,
        )?;
        summary.added.push(member_of(&id));
    }
    for upd in staged.update_proposals() {
        let Sender::Member(idx) = upd.sender() else {
            return Err(GroupError::NotAllowed("update from a non-member").into());
        };
        let new = upd.update_proposal().leaf_node();
        check_leaf(new, cs, now, verdicts, pin, &mut missing)?;
        check_identity_unchanged(leaf_at(group, *idx)?.credential(), new.credential())?;
    }
    if let Some(new) = staged.update_path_leaf_node() {
        check_leaf(new, cs, now, verdicts, pin, &mut missing)?;
        check_identity_unchanged(leaf_at(group, committer)?.credential(), new.credential())?;
    }
    for rem in staged.remove_proposals() {
        let leaf = leaf_at(group, rem.remove_proposal().removed())?;
        let id = AtmlsIdentity::from_credential(leaf.credential())?;
        summary.removed.push(Member {
            did: id.certificate.did,
            installation: id.certificate.installation_key,
        });
    }
    if !missing.is_empty() {
        return Err(Validation::NeedDirectory(missing));
    }
    Ok(summary)
}

/// Proposals a member may send by itself: removing leaves of its own account (leaving).
pub(crate) fn validate_proposal(
    group: &MlsGroup,
    proposal: &QueuedProposal,
) -> Result<(), GroupError> {
    let Sender::Member(from) = proposal.sender() else {
        return Err(GroupError::NotAllowed("proposal from a non-member"));
    };
    let Proposal::Remove(r) = proposal.proposal() else {
        return Err(GroupError::NotAllowed(
            "only leave proposals may be sent alone",
        ));
    };
    let did_at = |i: LeafNodeIndex| -> Result<Did, GroupError> {
        let leaf = group
            .public_group()
            .leaf(i)
            .ok_or(GroupError::NotAllowed("no such leaf"))?;
        Ok(AtmlsIdentity::from_credential(leaf.credential())?
            .certificate
            .did)
    };
    if did_at(*from)? != did_at(r.removed())? {
        return Err(GroupError::NotAllowed(
            "a proposal may only remove the proposer's own devices",
        ));
    }
    Ok(())
}

/// Validates every leaf of a tree joined from a Welcome (CRED-1 … CRED-7): the leaves on all
/// cores, each once per content (LG-5), then the pins in leaf order.
pub(crate) fn validate_joined_tree(
    group: &MlsGroup,
    verdicts: &VerdictCache,
    pin: &dyn Fn(&Did) -> Option<PublicKey>,
    now: u64,
) -> Result<Vec<LeafIdentity>, Validation> {
    let cs = group.ciphersuite();
    let leaves: Vec<&LeafNode> = group
        .members()
        .map(|m| leaf_at(group, m.index))
        .collect::<Result<_, _>>()?;
    let mut missing = Vec::new();
    let mut out = Vec::with_capacity(leaves.len());
    for r in verdicts.validate_all(&leaves, cs, now) {
        out.push(check_pin(r?, pin, &mut missing)?);
    }
    if !missing.is_empty() {
        return Err(Validation::NeedDirectory(missing));
    }
    Ok(out)
}

/// The accounts named in a Welcome's ratchet tree (not yet verified) that have no pin: fetched
/// from the directory before the join rather than after it, so that a joiner of a large group
/// runs openmls's join once, not twice (LG-7). Only a hint: the leaves are validated as ever
/// once the tree is verified.
pub(crate) fn unpinned_in_welcome(
    welcome: &openmls::prelude::ProcessedWelcome,
    pin: &dyn Fn(&Did) -> Option<PublicKey>,
) -> Vec<Did> {
    let Some(tree) = welcome.unverified_group_info().extensions().ratchet_tree() else {
        return Vec::new();
    };
    let mut seen = std::collections::HashSet::new();
    tree.ratchet_tree()
        .leaves()
        .filter_map(|l| AtmlsIdentity::from_credential(l.credential()).ok())
        .map(|id| id.certificate.did)
        .filter(|d| seen.insert(d.clone()) && pin(d).is_none())
        .collect()
}

/// The members of a group by leaf, decoded from their (already validated) credentials.
pub(crate) fn member_leaves(group: &MlsGroup) -> Vec<(LeafNodeIndex, Member)> {
    group
        .members()
        .filter_map(|m| {
            let id = AtmlsIdentity::from_credential(&m.credential).ok()?;
            Some((
                m.index,
                Member {
                    did: id.certificate.did,
                    installation: id.certificate.installation_key,
                },
            ))
        })
        .collect()
}
