//! Roles and per-action policies, two group-context extensions every member enforces on
//! every commit (spec/governance.md GOV-1 … GOV-4).

use std::collections::BTreeMap;

use openmls::prelude::{Extension, Extensions, GroupContext, UnknownExtension};
use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::GovernanceError;
use crate::identity::Did;

pub use crate::extensions::{POLICIES_EXTENSION, ROLES_EXTENSION};

/// Most accounts with a role other than member.
pub(crate) const MAX_ROLE_ENTRIES: usize = 1000;

const VERSION: u8 = 1;

/// An account's role in a group (GOV-1). Every device of the account has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Any member without another role.
    Member,
    /// May moderate (delete others' messages, remove members when policies allow).
    Moderator,
    /// Administers the group.
    Admin,
    /// Owns the group; a group always keeps at least one owner (GOV-6).
    Owner,
}

impl Role {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Role::Owner => 1,
            Role::Admin => 2,
            Role::Moderator => 3,
            Role::Member => 4,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Role::Owner,
            2 => Role::Admin,
            3 => Role::Moderator,
            4 => Role::Member,
            _ => return None,
        })
    }

    /// A lower-case name ("owner", "admin", "moderator", "member").
    pub fn name(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::Member => "member",
        }
    }
}

/// Something a member may or may not do (GOV-2). Ids are explicit on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// Add accounts.
    AddMembers,
    /// Remove other accounts.
    RemoveMembers,
    /// Change the name.
    EditName,
    /// Change the description.
    EditDescription,
    /// Change the avatar.
    EditAvatar,
    /// Pin and unpin messages.
    EditPinned,
    /// Change roles.
    ChangeRoles,
    /// Change the policies.
    ChangePolicies,
    /// Send messages (`canPost`).
    Post,
    /// Create and revoke invite links, approve join requests (`canInvite`).
    Invite,
    /// Delete other members' messages (`canModerate`).
    Moderate,
    /// Change the disappearing-messages timer.
    SetDisappearing,
}

impl Action {
    /// Every action, in wire order.
    pub const ALL: [Action; 12] = [
        Action::AddMembers,
        Action::RemoveMembers,
        Action::EditName,
        Action::EditDescription,
        Action::EditAvatar,
        Action::EditPinned,
        Action::ChangeRoles,
        Action::ChangePolicies,
        Action::Post,
        Action::Invite,
        Action::Moderate,
        Action::SetDisappearing,
    ];

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Action::AddMembers => 1,
            Action::RemoveMembers => 2,
            Action::EditName => 3,
            Action::EditDescription => 4,
            Action::EditAvatar => 5,
            Action::EditPinned => 6,
            Action::ChangeRoles => 7,
            Action::ChangePolicies => 8,
            Action::Post => 9,
            Action::Invite => 10,
            Action::Moderate => 11,
            Action::SetDisappearing => 12,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Action::ALL.into_iter().find(|a| a.to_u8() == v)
    }
}

/// Who may take an action: nobody, or every account whose role is at least the given one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// No one (not even owners).
    Nobody,
    /// Accounts with at least this role.
    AtLeast(Role),
}

impl Policy {
    /// Any member.
    pub const ANYONE: Policy = Policy::AtLeast(Role::Member);

    /// Whether an account with `role` may act.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Policy::Nobody => false,
            Policy::AtLeast(min) => role >= min,
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Policy::Nobody => 0,
            Policy::AtLeast(r) => r.to_u8(),
        }
    }

    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        if v == 0 {
            Some(Policy::Nobody)
        } else {
            Role::from_u8(v).map(Policy::AtLeast)
        }
    }
}

/// The two preset policy sets (GOV-3), in the spirit of XMTP's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Members add people, post, invite, edit metadata; admins remove and change roles.
    AllMembers,
    /// Only admins change membership and metadata; members post.
    AdminsOnly,
}

/// The policy of every action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policies(BTreeMap<Action, Policy>);

impl Policies {
    /// A preset set of policies.
    pub fn preset(p: Preset) -> Self {
        use Role::*;
        let at = Policy::AtLeast;
        let m = |a: Action| -> Policy {
            match (p, a) {
                (_, Action::ChangePolicies) => at(Owner),
                (_, Action::ChangeRoles) => at(Admin),
                (_, Action::Post) => at(Member),
                (_, Action::Moderate) => at(Moderator),
                (_, Action::RemoveMembers) => at(Moderator),
                (Preset::AllMembers, _) => at(Member),
                (Preset::AdminsOnly, Action::EditPinned) => at(Moderator),
                (Preset::AdminsOnly, _) => at(Admin),
            }
        };
        Policies(Action::ALL.into_iter().map(|a| (a, m(a))).collect())
    }

    /// The policy of `action`.
    pub fn get(&self, action: Action) -> Policy {
        self.0.get(&action).copied().unwrap_or(Policy::Nobody)
    }

    /// Sets the policy of `action`.
    pub fn set(&mut self, action: Action, policy: Policy) {
        self.0.insert(action, policy);
    }

    /// Every action with its policy.
    pub fn iter(&self) -> impl Iterator<Item = (Action, Policy)> + '_ {
        self.0.iter().map(|(a, p)| (*a, *p))
    }

    pub(crate) fn to_extension(&self) -> Extension {
        let wire = PoliciesWire {
            version: VERSION,
            entries: self
                .0
                .iter()
                .map(|(a, p)| PolicyEntry {
                    action: a.to_u8(),
                    policy: p.to_u8(),
                })
                .collect(),
        };
        Extension::Unknown(
            POLICIES_EXTENSION,
            UnknownExtension(wire.tls_serialize_detached().unwrap_or_default()),
        )
    }

    /// The extension's bytes (type [`POLICIES_EXTENSION`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.to_extension() {
            Extension::Unknown(_, b) => b.0,
            _ => Vec::new(),
        }
    }

    /// Decodes the policies: every known action exactly once, in wire order.
    pub(crate) fn from_bytes(raw: &[u8]) -> Result<Self, GovernanceError> {
        let bad = || GovernanceError::Malformed("policies");
        let w = PoliciesWire::tls_deserialize_exact_bytes(raw).map_err(|_| bad())?;
        if w.version != VERSION || w.entries.len() != Action::ALL.len() {
            return Err(bad());
        }
        let mut out = BTreeMap::new();
        for (e, want) in w.entries.iter().zip(Action::ALL) {
            let a = Action::from_u8(e.action).ok_or_else(bad)?;
            if a != want {
                return Err(bad());
            }
            out.insert(a, Policy::from_u8(e.policy).ok_or_else(bad)?);
        }
        Ok(Policies(out))
    }
}

/// The accounts whose role is not plain member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roles(BTreeMap<Did, Role>);

impl Roles {
    /// Roles with one owner.
    pub fn with_owner(owner: Did) -> Self {
        Roles(BTreeMap::from([(owner, Role::Owner)]))
    }

    /// The role of `did` (member if none is recorded).
    pub fn get(&self, did: &Did) -> Role {
        self.0.get(did).copied().unwrap_or(Role::Member)
    }

    /// Sets the role of `did`.
    pub fn set(&mut self, did: Did, role: Role) {
        if role == Role::Member {
            self.0.remove(&did);
        } else {
            self.0.insert(did, role);
        }
    }

    /// Every recorded (non-member) role.
    pub fn iter(&self) -> impl Iterator<Item = (&Did, Role)> + '_ {
        self.0.iter().map(|(d, r)| (d, *r))
    }

    pub(crate) fn to_extension(&self) -> Extension {
        let wire = RolesWire {
            version: VERSION,
            entries: self
                .0
                .iter()
                .map(|(d, r)| RoleEntry {
                    did: d.as_str().as_bytes().to_vec().into(),
                    role: r.to_u8(),
                })
                .collect(),
        };
        Extension::Unknown(
            ROLES_EXTENSION,
            UnknownExtension(wire.tls_serialize_detached().unwrap_or_default()),
        )
    }

    /// The extension's bytes (type [`ROLES_EXTENSION`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.to_extension() {
            Extension::Unknown(_, b) => b.0,
            _ => Vec::new(),
        }
    }

    /// Decodes the roles: valid DIDs, strictly sorted (so distinct), no explicit member.
    pub(crate) fn from_bytes(raw: &[u8]) -> Result<Self, GovernanceError> {
        let bad = || GovernanceError::Malformed("roles");
        let w = RolesWire::tls_deserialize_exact_bytes(raw).map_err(|_| bad())?;
        if w.version != VERSION || w.entries.len() > MAX_ROLE_ENTRIES {
            return Err(bad());
        }
        let mut out = BTreeMap::new();
        let mut last: Option<Did> = None;
        for e in &w.entries {
            let did = std::str::from_utf8(e.did.as_slice())
                .ok()
                .and_then(|s| Did::new(s).ok())
                .ok_or_else(bad)?;
            let role = Role::from_u8(e.role)
                .filter(|r| *r != Role::Member)
                .ok_or_else(bad)?;
            if last.as_ref().is_some_and(|l| l.as_str() >= did.as_str()) {
                return Err(bad());
            }
            last = Some(did.clone());
            out.insert(did, role);
        }
        Ok(Roles(out))
    }
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct RoleEntry {
    did: VLBytes,
    role: u8,
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct RolesWire {
    version: u8,
    entries: Vec<RoleEntry>,
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct PolicyEntry {
    action: u8,
    policy: u8,
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct PoliciesWire {
    version: u8,
    entries: Vec<PolicyEntry>,
}

/// Roles and policies of a group, as read from its context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Governance {
    /// Who has which role.
    pub roles: Roles,
    /// Who may do what.
    pub policies: Policies,
}

impl Governance {
    /// Reads both extensions (a group must have both; a DM has neither, GOV-3).
    pub(crate) fn from_extensions(
        ext: &Extensions<GroupContext>,
    ) -> Result<Option<Self>, GovernanceError> {
        match (
            ext.unknown(ROLES_EXTENSION),
            ext.unknown(POLICIES_EXTENSION),
        ) {
            (None, None) => Ok(None),
            (Some(r), Some(p)) => Ok(Some(Governance {
                roles: Roles::from_bytes(&r.0)?,
                policies: Policies::from_bytes(&p.0)?,
            })),
            _ => Err(GovernanceError::Malformed("roles without policies")),
        }
    }

    /// Whether `did` may take `action`.
    pub fn allows(&self, did: &Did, action: Action) -> bool {
        self.policies.get(action).allows(self.roles.get(did))
    }

    /// `Ok` if `did` may take `action`, else [`GovernanceError::Forbidden`].
    pub(crate) fn require(&self, did: &Did, action: Action) -> Result<(), GovernanceError> {
        if self.allows(did, action) {
            Ok(())
        } else {
            Err(GovernanceError::Forbidden {
                did: did.clone(),
                action,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Did {
        Did::new(&format!("did:plc:{}", c.to_string().repeat(24))).unwrap()
    }

    #[test]
    fn gov_1_roles_round_trip_and_reject_malformed() {
        let mut r = Roles::with_owner(d('a'));
        r.set(d('b'), Role::Moderator);
        r.set(d('c'), Role::Admin);
        r.set(d('c'), Role::Member);
        let Extension::Unknown(_, raw) = r.to_extension() else {
            panic!()
        };
        assert_eq!(Roles::from_bytes(&raw.0).unwrap(), r);
        assert_eq!(r.get(&d('c')), Role::Member);
        for cut in 0..raw.0.len() {
            assert!(Roles::from_bytes(&raw.0[..cut]).is_err(), "{cut}");
        }
        // Unsorted, duplicate, explicit member, unknown role.
        let enc = |entries: Vec<(Did, u8)>| {
            RolesWire {
                version: 1,
                entries: entries
                    .into_iter()
                    .map(|(d, role)| RoleEntry {
                        did: d.as_str().as_bytes().to_vec().into(),
                        role,
                    })
                    .collect(),
            }
            .tls_serialize_detached()
            .unwrap()
        };
        for bad in [
            vec![(d('b'), 1), (d('a'), 1)],
            vec![(d('a'), 1), (d('a'), 2)],
            vec![(d('a'), 4)],
            vec![(d('a'), 9)],
        ] {
            assert!(Roles::from_bytes(&enc(bad)).is_err());
        }
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Moderator);
    }

    #[test]
    fn gov_2_policies_round_trip_presets_and_reject_malformed() {
        let p = Policies::preset(Preset::AdminsOnly);
        let Extension::Unknown(_, raw) = p.to_extension() else {
            panic!()
        };
        assert_eq!(Policies::from_bytes(&raw.0).unwrap(), p);
        assert!(!p.get(Action::AddMembers).allows(Role::Moderator));
        assert!(p.get(Action::AddMembers).allows(Role::Admin));
        let all = Policies::preset(Preset::AllMembers);
        assert!(all.get(Action::AddMembers).allows(Role::Member));
        assert!(!all.get(Action::ChangeRoles).allows(Role::Member));
        let mut bytes = raw.0.clone();
        let last = bytes.len() - 1;
        bytes[last] = 7; // unknown policy value
        assert!(Policies::from_bytes(&bytes).is_err());
        assert!(Policies::from_bytes(&raw.0[..raw.0.len() - 2]).is_err());
    }
}
