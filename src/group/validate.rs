//! Validation of what other members send: every added or updated leaf of a commit, every
//! proposal, every leaf of a tree joined from a Welcome (spec/credential.md, spec/group.md).

use openmls::prelude::{
    LeafNode, LeafNodeIndex, MlsGroup, Proposal, QueuedProposal, Sender, StagedCommit,
};

use super::{GroupError, Member};
use crate::credential::{
    check_identity_unchanged, AgreedLeaf, AtmlsIdentity, LeafIdentity, VerdictCache,
};
use crate::identity::Did;

/// What a valid commit does.
#[derive(Debug, Default)]
pub(crate) struct CommitSummary {
    pub added: Vec<Member>,
    pub removed: Vec<Member>,
    pub self_removed: bool,
    /// Every leaf the commit brings in or changes, for the trust checks after the merge
    /// (TRUST-20): with whether it was already in the group (an endorsed predecessor's
    /// certificate is then still accepted, TRUST-14).
    pub leaves: Vec<(AgreedLeaf, bool)>,
}

fn member_of(id: &LeafIdentity) -> Member {
    Member {
        did: id.did.clone(),
        installation: id.installation_key,
    }
}

fn leaf_at(group: &MlsGroup, index: LeafNodeIndex) -> Result<&LeafNode, GroupError> {
    group
        .public_group()
        .leaf(index)
        .ok_or(GroupError::InvalidCommit("no leaf at sender index".into()))
}

/// The agreement checks on the leaves of a staged commit from `committer` (AGREE-3, AGREE-4):
/// a pure function of the group and the commit, so every member reaches the same verdict.
/// Pins, the directory, revocations and the clock are not consulted: they are trust checks,
/// run after the merge on what [`CommitSummary::leaves`] lists.
pub(crate) fn validate_staged_commit(
    group: &MlsGroup,
    staged: &StagedCommit,
    committer: LeafNodeIndex,
    verdicts: &VerdictCache,
) -> Result<CommitSummary, GroupError> {
    let cs = group.ciphersuite();
    let mut summary = CommitSummary {
        self_removed: staged.self_removed(),
        ..Default::default()
    };
    for add in staged.add_proposals() {
        let v = verdicts.agree(add.add_proposal().key_package().leaf_node(), cs)?;
        summary.added.push(member_of(&v.id));
        summary.leaves.push((v, false));
    }
    for upd in staged.update_proposals() {
        let Sender::Member(idx) = upd.sender() else {
            return Err(GroupError::NotAllowed("update from a non-member"));
        };
        let new = upd.update_proposal().leaf_node();
        let changed =
            check_identity_unchanged(leaf_at(group, *idx)?.credential(), new.credential())?;
        summary.leaves.push((verdicts.agree(new, cs)?, !changed));
    }
    if let Some(new) = staged.update_path_leaf_node() {
        let changed =
            check_identity_unchanged(leaf_at(group, committer)?.credential(), new.credential())?;
        summary.leaves.push((verdicts.agree(new, cs)?, !changed));
    }
    for rem in staged.remove_proposals() {
        let leaf = leaf_at(group, rem.remove_proposal().removed())?;
        let id = AtmlsIdentity::from_credential(leaf.credential())?;
        summary.removed.push(Member {
            did: id.certificate.did,
            installation: id.certificate.installation_key,
        });
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
    // GOV-6: the last owner's leave request is refused; it must name a successor first. An
    // owner who already asked to leave does not count: two owners asking at once would leave
    // requests no one may commit together, and while a proposal is pending no member can
    // send (openmls) or commit without it: the group would be frozen.
    if let Some(gov) = super::Governance::from_extensions(group.extensions())? {
        if gov.roles.get(&proposer) == super::Role::Owner {
            let other_owner = gov
                .roles
                .iter()
                .any(|(d, r)| r == super::Role::Owner && *d != proposer && stays(group, roster, d));
            if !other_owner {
                return Err(super::GovernanceError::LastOwner.into());
            }
        }
    }
    Ok(())
}

/// Whether `did` keeps a leaf once the leave requests pending in `group` are committed: a
/// pure function of the group, like every agreement check (the same proposals are pending
/// at every member).
pub(crate) fn stays(group: &MlsGroup, roster: &super::Roster, did: &Did) -> bool {
    let leaving: std::collections::BTreeSet<LeafNodeIndex> = group
        .pending_proposals()
        .filter_map(|p| match p.proposal() {
            Proposal::Remove(r) if roster.did(r.removed()) == Some(did) => Some(r.removed()),
            _ => None,
        })
        .collect();
    roster.count(did) > leaving.len()
}

/// The agreement checks on every leaf of a tree joined from a Welcome (AGREE-3, AGREE-6): the
/// leaves on all cores, each once per content (LG-5), in leaf order. No pin or directory
/// answer is needed to join (TRUST-20 checks the bindings afterwards).
pub(crate) fn validate_joined_tree(
    group: &MlsGroup,
    verdicts: &VerdictCache,
) -> Result<Vec<AgreedLeaf>, GroupError> {
    let cs = group.ciphersuite();
    let leaves: Vec<&LeafNode> = group
        .members()
        .map(|m| leaf_at(group, m.index))
        .collect::<Result<_, _>>()?;
    verdicts
        .agree_all(&leaves, cs)
        .into_iter()
        .map(|r| r.map_err(GroupError::from))
        .collect()
}

/// A received commit that passed every agreement check (spec/agreement.md): governance
/// (GOV-4, GOV-5), the group context, every new or changed leaf (AGREE-3). Only
/// [`check_commit`] makes one, and [`CheckedCommit::merge`] is the only way a received commit
/// is merged, so nothing else can decide a merge.
pub(crate) struct CheckedCommit {
    staged: StagedCommit,
    committer: LeafNodeIndex,
    /// What it does to the membership, and the leaves for the trust checks.
    pub summary: CommitSummary,
    /// What it changes beyond membership.
    pub effect: super::authorize::CommitEffect,
}

/// Runs the agreement checks on a commit staged by openmls (which validated it as RFC 9420
/// says).
pub(crate) fn check_commit(
    group: &MlsGroup,
    roster: &super::Roster,
    staged: StagedCommit,
    committer: LeafNodeIndex,
    verdicts: &VerdictCache,
) -> Result<CheckedCommit, GroupError> {
    let effect = super::authorize_commit(group, roster, &staged, committer)?;
    let summary = validate_staged_commit(group, &staged, committer, verdicts)?;
    Ok(CheckedCommit {
        staged,
        committer,
        summary,
        effect,
    })
}

impl CheckedCommit {
    /// Merges it; returns what the roster must follow (LG-8) and what the commit did.
    pub(crate) fn merge<P: openmls_traits::OpenMlsProvider>(
        self,
        group: &mut MlsGroup,
        provider: &P,
    ) -> Result<
        (
            Option<super::RosterChange>,
            CommitSummary,
            super::authorize::CommitEffect,
        ),
        GroupError,
    > {
        let change = super::RosterChange::of(&self.staged, self.committer);
        group
            .merge_staged_commit(provider, self.staged)
            .map_err(|e| GroupError::InvalidCommit(e.to_string()))?;
        Ok((change, self.summary, self.effect))
    }
}
