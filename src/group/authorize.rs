//! Authorization of a commit against the group's roles and policies (spec/governance.md
//! GOV-4 … GOV-9, INV-3). Every member runs it on every commit it receives, and on every
//! commit it builds, before anything is merged: the rules are evaluated on the state
//! *before* the commit, so all members reach the same verdict.

use std::collections::{BTreeMap, BTreeSet};

use openmls::prelude::{
    Extension, ExtensionType, Extensions, GroupContext, LeafNodeIndex, MlsGroup, Proposal, Sender,
    StagedCommit,
};

use super::governance::{Action, Governance, Policy, Role, POLICIES_EXTENSION, ROLES_EXTENSION};
use super::invites::{self, InviteId, InviteRecord, INVITES_EXTENSION};
use super::metadata::{GroupMetadata, METADATA_EXTENSION};
use super::MessageId;
use super::{
    disappearing_secs, GroupData, GroupError, GroupKind, Roster, DISAPPEARING_EXTENSION,
    GROUP_DATA_EXTENSION,
};
use crate::identity::Did;

/// Why a governance rule refused a commit, a message or a call. None is retryable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    /// The account's role does not allow the action under the group's policies.
    #[error("{did} may not {action:?} in this group")]
    Forbidden {
        /// Who tried.
        did: Did,
        /// What.
        action: Action,
    },
    /// The account acted on someone whose role is above its own (GOV-5).
    #[error("{did} may not act on {target}, whose role is higher")]
    Outranked {
        /// Who tried.
        did: Did,
        /// On whom.
        target: Did,
    },
    /// The change would leave the group without an owner (GOV-6): name a successor first.
    #[error("the last owner cannot leave or be demoted without naming a successor")]
    LastOwner,
    /// A value is over its size limit (GOV-7).
    #[error("{what} is {len}, over the limit of {max}")]
    TooLarge {
        /// Which value.
        what: &'static str,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An extension does not decode.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The commit changes something no commit may change (GOV-4), or something a DM does
    /// not have (GOV-3).
    #[error("not changeable: {0}")]
    Immutable(&'static str),
    /// No such invite in the group state.
    #[error("unknown invite")]
    UnknownInvite,
}

impl GovernanceError {
    /// Always `false`.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// One audited change a verified commit made (GOV-10).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum GovernanceChange {
    /// An account's role changed.
    RoleChanged {
        /// The account.
        did: Did,
        /// Its new role.
        role: Role,
    },
    /// An action's policy changed.
    PolicyChanged {
        /// The action.
        action: Action,
        /// Its new policy.
        policy: Policy,
    },
    /// The name changed.
    NameChanged(String),
    /// The description changed.
    DescriptionChanged(String),
    /// The avatar was set (`true`) or removed.
    AvatarChanged(bool),
    /// A message was pinned.
    Pinned(MessageId),
    /// A message was unpinned.
    Unpinned(MessageId),
    /// An invite link was created.
    InviteCreated(InviteId),
    /// An invite link was revoked.
    InviteRevoked(InviteId),
    /// Someone joined by an invite link; `uses` is its new use count.
    InviteUsed {
        /// The invite.
        id: InviteId,
        /// Its use count now.
        uses: u32,
    },
}

impl GovernanceChange {
    /// A one-line description ("made did:… moderator", "renamed the group to …"); prefix
    /// it with who committed it.
    pub fn description(&self) -> String {
        match self {
            GovernanceChange::RoleChanged { did, role } => format!("made {did} {}", role.name()),
            GovernanceChange::PolicyChanged { action, policy } => match policy {
                Policy::Nobody => format!("set {action:?} to nobody"),
                Policy::AtLeast(r) => format!("set {action:?} to {}s and up", r.name()),
            },
            GovernanceChange::NameChanged(n) => format!("renamed the group to \"{n}\""),
            GovernanceChange::DescriptionChanged(_) => "changed the description".into(),
            GovernanceChange::AvatarChanged(true) => "changed the avatar".into(),
            GovernanceChange::AvatarChanged(false) => "removed the avatar".into(),
            GovernanceChange::Pinned(m) => format!("pinned {m}"),
            GovernanceChange::Unpinned(m) => format!("unpinned {m}"),
            GovernanceChange::InviteCreated(id) => format!("created invite {id}"),
            GovernanceChange::InviteRevoked(id) => format!("revoked invite {id}"),
            GovernanceChange::InviteUsed { id, uses } => {
                format!("admitted someone by invite {id} ({uses} use(s))")
            }
        }
    }
}

/// What an authorized commit changes beyond membership.
#[derive(Debug, Default)]
pub(crate) struct CommitEffect {
    /// The new disappearing timer if it changed (`Some(0)`: off).
    pub timer: Option<u32>,
    /// Role, policy, metadata and invite changes, in that order.
    pub changes: Vec<GovernanceChange>,
}

const MUTABLE: [u16; 5] = [
    DISAPPEARING_EXTENSION,
    ROLES_EXTENSION,
    POLICIES_EXTENSION,
    METADATA_EXTENSION,
    INVITES_EXTENSION,
];

fn immutable_part(e: &Extensions<GroupContext>) -> Vec<Extension> {
    let mut v: Vec<Extension> = e
        .iter()
        .filter(
            |x| !matches!(x.extension_type(), ExtensionType::Unknown(t) if MUTABLE.contains(&t)),
        )
        .cloned()
        .collect();
    v.sort_by_key(|x| u16::from(x.extension_type()));
    v
}

/// The metadata in a group context (empty if none).
pub(crate) fn metadata_of(e: &Extensions<GroupContext>) -> Result<GroupMetadata, GovernanceError> {
    e.unknown(METADATA_EXTENSION)
        .map(|m| GroupMetadata::from_bytes(&m.0))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The invites in a group context.
pub(crate) fn invites_of(
    e: &Extensions<GroupContext>,
) -> Result<Vec<InviteRecord>, GovernanceError> {
    e.unknown(INVITES_EXTENSION)
        .map(|m| invites::from_bytes(&m.0))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Checks that a group context's governance extensions decode (a Welcome's, GOV-3).
pub(crate) fn check_context(e: &Extensions<GroupContext>) -> Result<(), GroupError> {
    let data = GroupData::from_extensions(e)?;
    let gov = Governance::from_extensions(e)?;
    metadata_of(e)?;
    invites_of(e)?;
    match (data.kind, gov) {
        (GroupKind::Group, Some(_)) => Ok(()),
        (GroupKind::Group, None) => Err(GovernanceError::Malformed("group without roles").into()),
        (GroupKind::Dm, None) => Ok(()),
        (GroupKind::Dm, Some(_)) => Err(GovernanceError::Immutable("a DM has no roles").into()),
        (GroupKind::Account, None) => Ok(()),
        (GroupKind::Account, Some(_)) => {
            Err(GovernanceError::Immutable("an own-device group has no roles").into())
        }
    }
}

/// Who proposed each leaf's removal, per account.
type Removals = BTreeMap<Did, Vec<Option<Did>>>;

/// Leaves per account before and after a commit: the roster and what the commit changes, so
/// that only the accounts it touches are looked at (LG-8).
struct Counts<'a> {
    roster: &'a Roster,
    delta: BTreeMap<Did, isize>,
}

impl Counts<'_> {
    fn before(&self, d: &Did) -> bool {
        self.roster.contains(d)
    }

    fn after(&self, d: &Did) -> bool {
        self.roster.count(d) as isize + self.delta.get(d).copied().unwrap_or(0) > 0
    }

    /// Every account with a leaf after the commit.
    fn after_accounts(&self) -> impl Iterator<Item = &Did> {
        self.roster
            .accounts()
            .chain(self.delta.keys())
            .filter(|d| self.after(d))
    }
}

/// Authorizes `staged`, made by the member at leaf `committer` of `g` (GOV-4); `roster` is
/// `g`'s (LG-8).
pub(crate) fn authorize_commit(
    g: &MlsGroup,
    roster: &Roster,
    staged: &StagedCommit,
    committer: LeafNodeIndex,
) -> Result<CommitEffect, GroupError> {
    let old = g.extensions();
    let new = staged.group_context().extensions();
    if immutable_part(old) != immutable_part(new) {
        return Err(GovernanceError::Immutable("group data or capabilities").into());
    }
    if new.unknown(GROUP_DATA_EXTENSION).is_none() {
        return Err(GovernanceError::Immutable("group data").into());
    }
    for q in staged.queued_proposals() {
        if !matches!(
            q.proposal(),
            Proposal::Add(_)
                | Proposal::Remove(_)
                | Proposal::Update(_)
                | Proposal::GroupContextExtensions(_)
        ) {
            return Err(GroupError::NotAllowed("proposal type"));
        }
    }
    let me = roster
        .did(committer)
        .cloned()
        .ok_or(GroupError::NotAllowed("committer is not a member"))?;
    let mut counts = Counts {
        roster,
        delta: BTreeMap::new(),
    };
    let mut removals: Removals = BTreeMap::new();
    for r in staged.remove_proposals() {
        let did = roster
            .did(r.remove_proposal().removed())
            .ok_or(GroupError::NotAllowed("removes no member"))?;
        let proposer = match r.sender() {
            Sender::Member(i) => roster.did(*i).cloned(),
            _ => None,
        };
        removals.entry(did.clone()).or_default().push(proposer);
        *counts.delta.entry(did.clone()).or_default() -= 1;
    }
    for a in staged.add_proposals() {
        let id = crate::credential::AtmlsIdentity::from_credential(
            a.add_proposal().key_package().leaf_node().credential(),
        )?;
        *counts.delta.entry(id.certificate.did).or_default() += 1;
    }
    // Only an account the commit touches can join or go.
    let joined: Vec<Did> = counts
        .delta
        .keys()
        .filter(|d| counts.after(d) && !counts.before(d))
        .cloned()
        .collect();
    let gone: BTreeSet<Did> = counts
        .delta
        .keys()
        .filter(|d| counts.before(d) && !counts.after(d))
        .cloned()
        .collect();
    let timer_before = disappearing_secs(old)?;
    let timer_after = disappearing_secs(new)?;
    let timer = (timer_before != timer_after).then_some(timer_after.unwrap_or(0));
    let data = GroupData::from_extensions(old)?;
    // An own-device group follows a DM's rules with its one account (CONSENT-7).
    if matches!(data.kind, GroupKind::Dm | GroupKind::Account) {
        return authorize_dm(&data, new, &me, &counts, &removals, &gone, timer);
    }
    let gov = Governance::from_extensions(old)?
        .ok_or(GovernanceError::Malformed("group without roles"))?;
    let gov_new =
        Governance::from_extensions(new)?.ok_or(GovernanceError::Immutable("roles removed"))?;
    let my_role = gov.roles.get(&me);
    let mut effect = CommitEffect {
        timer,
        ..Default::default()
    };
    // GOV-5: removing an account needs the permission and a higher role, unless it left.
    for did in &gone {
        let left = removals
            .get(did)
            .is_some_and(|ps| ps.iter().all(|p| p.as_ref() == Some(did)));
        if !left {
            gov.require(&me, Action::RemoveMembers)?;
            if my_role != Role::Owner && gov.roles.get(did) >= my_role {
                return Err(outranked(&me, did));
            }
        }
    }
    // GOV-5: roles.
    let dids: BTreeSet<&Did> = gov
        .roles
        .iter()
        .chain(gov_new.roles.iter())
        .map(|(d, _)| d)
        .collect();
    for did in dids {
        let (was, now) = (gov.roles.get(did), gov_new.roles.get(did));
        if was == now || (now == Role::Member && gone.contains(did)) {
            continue;
        }
        gov.require(&me, Action::ChangeRoles)?;
        if my_role < was.max(now) {
            return Err(outranked(&me, did));
        }
        effect.changes.push(GovernanceChange::RoleChanged {
            did: did.clone(),
            role: now,
        });
    }
    if gov.policies != gov_new.policies {
        gov.require(&me, Action::ChangePolicies)?;
        for (action, policy) in gov_new.policies.iter() {
            if gov.policies.get(action) != policy {
                effect
                    .changes
                    .push(GovernanceChange::PolicyChanged { action, policy });
            }
        }
    }
    metadata_changes(&gov, &me, old, new, &mut effect.changes)?;
    let bumps = invite_changes(&gov, &me, old, new, &mut effect.changes)?;
    // GOV-4 / INV-3: new accounts come in by the add permission, or by an invite whose use
    // count the same commit raises by exactly their number.
    let may_admit = joined.is_empty()
        || gov.allows(&me, Action::AddMembers)
        || (gov.allows(&me, Action::Invite) && bumps == joined.len());
    if !may_admit {
        return Err(forbidden(&me, Action::AddMembers));
    }
    if bumps != 0 && bumps != joined.len() {
        return Err(GovernanceError::Immutable("invite use count without a join").into());
    }
    if timer.is_some() {
        gov.require(&me, Action::SetDisappearing)?;
    }
    // GOV-6: a group that had an owner among its members keeps one.
    let owners = |gv: &Governance, is_in: &dyn Fn(&Did) -> bool| {
        gv.roles
            .iter()
            .filter(|(d, r)| *r == Role::Owner && is_in(d))
            .count()
    };
    if owners(&gov, &|d| counts.before(d)) > 0 && owners(&gov_new, &|d| counts.after(d)) == 0 {
        return Err(GovernanceError::LastOwner.into());
    }
    Ok(effect)
}

fn outranked(me: &Did, target: &Did) -> GroupError {
    GovernanceError::Outranked {
        did: me.clone(),
        target: target.clone(),
    }
    .into()
}

fn forbidden(me: &Did, action: Action) -> GroupError {
    GovernanceError::Forbidden {
        did: me.clone(),
        action,
    }
    .into()
}

/// GOV-3: a DM's members are fixed; only the timer and the two accounts' devices change.
fn authorize_dm(
    data: &GroupData,
    new: &Extensions<GroupContext>,
    me: &Did,
    counts: &Counts<'_>,
    removals: &Removals,
    gone: &BTreeSet<Did>,
    timer: Option<u32>,
) -> Result<CommitEffect, GroupError> {
    for t in [
        ROLES_EXTENSION,
        POLICIES_EXTENSION,
        METADATA_EXTENSION,
        INVITES_EXTENSION,
    ] {
        if new.unknown(t).is_some() {
            return Err(
                GovernanceError::Immutable("a DM has no roles, metadata or invites").into(),
            );
        }
    }
    if counts
        .after_accounts()
        .any(|d| !data.dm_members.contains(d))
    {
        return Err(forbidden(me, Action::AddMembers));
    }
    for did in gone {
        let left = removals
            .get(did)
            .is_some_and(|ps| ps.iter().all(|p| p.as_ref() == Some(did)));
        if !left {
            return Err(forbidden(me, Action::RemoveMembers));
        }
    }
    Ok(CommitEffect {
        timer,
        changes: Vec::new(),
    })
}

fn metadata_changes(
    gov: &Governance,
    me: &Did,
    old: &Extensions<GroupContext>,
    new: &Extensions<GroupContext>,
    out: &mut Vec<GovernanceChange>,
) -> Result<(), GroupError> {
    let (a, b) = (metadata_of(old)?, metadata_of(new)?);
    if a.name != b.name {
        gov.require(me, Action::EditName)?;
        out.push(GovernanceChange::NameChanged(b.name.clone()));
    }
    if a.description != b.description {
        gov.require(me, Action::EditDescription)?;
        out.push(GovernanceChange::DescriptionChanged(b.description.clone()));
    }
    if a.avatar != b.avatar {
        gov.require(me, Action::EditAvatar)?;
        out.push(GovernanceChange::AvatarChanged(b.avatar.is_some()));
    }
    if a.pinned != b.pinned {
        gov.require(me, Action::EditPinned)?;
        for p in b.pinned.iter().filter(|p| !a.pinned.contains(p)) {
            out.push(GovernanceChange::Pinned(*p));
        }
        for p in a.pinned.iter().filter(|p| !b.pinned.contains(p)) {
            out.push(GovernanceChange::Unpinned(*p));
        }
    }
    Ok(())
}

/// Checks invite changes (INV-3); returns by how much use counts went up in total.
fn invite_changes(
    gov: &Governance,
    me: &Did,
    old: &Extensions<GroupContext>,
    new: &Extensions<GroupContext>,
    out: &mut Vec<GovernanceChange>,
) -> Result<usize, GroupError> {
    let (a, b) = (invites_of(old)?, invites_of(new)?);
    let mut bumps = 0usize;
    for n in &b {
        match a.iter().find(|o| o.id() == n.id()) {
            None => {
                gov.require(me, Action::Invite)?;
                if n.uses != 0 || n.revoked || n.created_by != *me {
                    return Err(GovernanceError::Immutable("a new invite starts unused").into());
                }
                out.push(GovernanceChange::InviteCreated(n.id()));
            }
            Some(o) => {
                let fixed = |r: &InviteRecord| {
                    (
                        r.expires,
                        r.max_uses,
                        r.approval,
                        r.public,
                        r.created_by.clone(),
                    )
                };
                if fixed(o) != fixed(n) || n.uses < o.uses || (o.revoked && !n.revoked) {
                    return Err(GovernanceError::Immutable("invite terms").into());
                }
                if n.revoked && !o.revoked {
                    gov.require(me, Action::Invite)?;
                    out.push(GovernanceChange::InviteRevoked(n.id()));
                }
                if n.uses > o.uses {
                    if o.revoked {
                        return Err(GovernanceError::Immutable("use of a revoked invite").into());
                    }
                    bumps += (n.uses - o.uses) as usize;
                    out.push(GovernanceChange::InviteUsed {
                        id: n.id(),
                        uses: n.uses,
                    });
                }
            }
        }
    }
    if a.iter().any(|o| !b.iter().any(|n| n.id() == o.id())) {
        gov.require(me, Action::Invite)?;
    }
    Ok(bumps)
}
