//! Validation of what other members send: every added or updated leaf of a commit, every
//! proposal, every leaf of a tree joined from a Welcome (spec/credential.md, spec/group.md).

use openmls::prelude::{
    Ciphersuite, LeafNode, LeafNodeIndex, MlsGroup, Proposal, QueuedProposal, Sender, StagedCommit,
};

use super::{GroupError, Member};
use crate::credential::{check_identity_unchanged, AtmlsIdentity, LeafIdentity, VerdictCache};
use crate::identity::Did;
use crate::trust::PinnedKeys;

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

/// Our pins, by DID: what leaf validation checks certificates against.
pub(crate) type Pins<'a> = dyn Fn(&Did) -> Option<PinnedKeys> + 'a;

/// Checks a leaf (CRED-1 … CRED-6, once per leaf content: LG-5) and its identity key against
/// our pin (CRED-7): the pinned key, or for an `existing` leaf also an endorsed predecessor
/// (TRUST-14).
fn check_leaf(
    leaf: &LeafNode,
    cs: Ciphersuite,
    now: u64,
    verdicts: &VerdictCache,
    pin: &Pins<'_>,
    existing: bool,
    missing: &mut Vec<Did>,
) -> Result<LeafIdentity, Validation> {
    let id = verdicts.validate(leaf, cs, now)?;
    check_pin(id, pin, existing, missing)
}

/// CRED-7 for a validated leaf. A DID we have not pinned, or whose leaf carries another key,
/// is noted for a directory lookup (the account may have rotated its key, TRUST-14); the
/// caller refuses if that does not settle it.
fn check_pin(
    id: LeafIdentity,
    pin: &Pins<'_>,
    existing: bool,
    missing: &mut Vec<Did>,
) -> Result<LeafIdentity, Validation> {
    let known = pin(&id.did).is_some_and(|k| k.accepts(&id.identity_key, existing));
    if !known && !missing.contains(&id.did) {
        missing.push(id.did.clone());
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
    pin: &Pins<'_>,
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
            false,
            &mut missing,
        )?;
        summary.added.push(member_of(&id));
    }
    for upd in staged.update_proposals() {
        let Sender::Member(idx) = upd.sender() else {
            return Err(GroupError::NotAllowed("update from a non-member").into());
        };
        let new = upd.update_proposal().leaf_node();
        let changed =
            check_identity_unchanged(leaf_at(group, *idx)?.credential(), new.credential())?;
        check_leaf(new, cs, now, verdicts, pin, !changed, &mut missing)?;
    }
    if let Some(new) = staged.update_path_leaf_node() {
        let changed =
            check_identity_unchanged(leaf_at(group, committer)?.credential(), new.credential())?;
        check_leaf(new, cs, now, verdicts, pin, !changed, &mut missing)?;
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
    roster: &super::Roster,
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
        roster
            .did(i)
            .cloned()
            .ok_or(GroupError::NotAllowed("no such leaf"))
    };
    let proposer = did_at(*from)?;
    if proposer != did_at(r.removed())? {
        return Err(GroupError::NotAllowed(
            "a proposal may only remove the proposer's own devices",
        ));
    }
    // GOV-6: the last owner's leave request is refused; it must name a successor first.
    if let Some(gov) = super::Governance::from_extensions(group.extensions())? {
        if gov.roles.get(&proposer) == super::Role::Owner {
            let other_owner = gov
                .roles
                .iter()
                .any(|(d, r)| r == super::Role::Owner && *d != proposer && roster.contains(d));
            if !other_owner {
                return Err(super::GovernanceError::LastOwner.into());
            }
        }
    }
    Ok(())
}

/// Validates every leaf of a tree joined from a Welcome (CRED-1 … CRED-7): the leaves on all
/// cores, each once per content (LG-5), then the pins in leaf order.
pub(crate) fn validate_joined_tree(
    group: &MlsGroup,
    verdicts: &VerdictCache,
    pin: &Pins<'_>,
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
        out.push(check_pin(r?, pin, true, &mut missing)?);
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
    out_of_band: Option<&openmls::prelude::RatchetTreeIn>,
    pin: &Pins<'_>,
) -> Vec<Did> {
    // The tree fetched out of band (LG-T-5), else one the Welcome carries.
    let tree = match out_of_band {
        Some(t) => t,
        None => match welcome.unverified_group_info().extensions().ratchet_tree() {
            Some(e) => e.ratchet_tree(),
            None => return Vec::new(),
        },
    };
    unpinned(
        tree.leaves()
            .filter_map(|l| AtmlsIdentity::from_credential(l.credential()).ok())
            .map(|id| id.certificate.did),
        pin,
    )
}

/// Of `dids`, those without a pin, each once, in order.
pub(crate) fn unpinned(dids: impl Iterator<Item = Did>, pin: &Pins<'_>) -> Vec<Did> {
    distinct(dids, |d| pin(d).is_none())
}

/// Each account once, in order, that `keep` accepts (asked once per account).
fn distinct(dids: impl Iterator<Item = Did>, mut keep: impl FnMut(&Did) -> bool) -> Vec<Did> {
    let mut seen = std::collections::HashSet::new();
    dids.filter(|d| seen.insert(d.clone()) && keep(d)).collect()
}

/// The accounts a staged commit adds, each once, in proposal order: the hint its receivers
/// look up before processing it (LG-14). Leaves that carry no atmls credential are left out
/// (the commit is refused for them anyway).
pub(crate) fn added_accounts(staged: &openmls::prelude::StagedCommit) -> Vec<Did> {
    distinct(
        staged
            .add_proposals()
            .filter_map(|a| {
                AtmlsIdentity::from_credential(
                    a.add_proposal().key_package().leaf_node().credential(),
                )
                .ok()
            })
            .map(|id| id.certificate.did),
        |_| true,
    )
}
