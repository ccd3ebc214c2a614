//! Invite links recorded in the group state (spec/governance.md INV-1 … INV-3): every
//! admin's device can serve them, every member enforces their use count and revocation.

use openmls::prelude::{Extension, UnknownExtension};
use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::{tagged_hash, GovernanceError};
use crate::identity::Did;

pub use crate::extensions::INVITES_EXTENSION;

/// Most invites a group records (revoked ones included).
pub const MAX_INVITES: usize = 64;

const VERSION: u8 = 1;

/// One invite link as the group state records it (INV-1).
#[derive(Clone, PartialEq, Eq)]
pub struct InviteRecord {
    /// The link's secret: its request mailbox and sealing key derive from it (INV-2).
    pub(crate) secret: [u8; 32],
    /// Unix seconds after which the link no longer works (0: never).
    pub expires: u64,
    /// How many accounts may join by it (0: unlimited).
    pub max_uses: u32,
    /// How many have.
    pub uses: u32,
    /// Whether an admin must approve each request.
    pub approval: bool,
    /// Revoked links stay recorded so that requesters get a typed answer.
    pub revoked: bool,
    /// A public join handle (INV-6) rather than a link.
    pub public: bool,
    /// Who created it.
    pub created_by: Did,
}

impl std::fmt::Debug for InviteRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteRecord")
            .field("id", &self.id())
            .field("expires", &self.expires)
            .field("max_uses", &self.max_uses)
            .field("uses", &self.uses)
            .field("approval", &self.approval)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// An invite's public id: a hash of its secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InviteId(pub [u8; 16]);

impl std::fmt::Debug for InviteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InviteId({})", hex::encode(self.0))
    }
}

impl std::fmt::Display for InviteId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The id of the invite with `secret`.
pub(crate) fn invite_id(secret: &[u8; 32]) -> InviteId {
    let h = tagged_hash(b"atmls/v1/invite-id", secret);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h[..16]);
    InviteId(id)
}

/// Why an invite cannot be used now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InviteState {
    /// It can be used.
    Open,
    /// Revoked by an admin.
    Revoked,
    /// Past its expiry.
    Expired,
    /// Used as often as allowed.
    UsedUp,
}

impl InviteRecord {
    /// Its id.
    pub fn id(&self) -> InviteId {
        invite_id(&self.secret)
    }

    /// Whether it can be used at `now` (unix seconds).
    pub fn state(&self, now: u64) -> InviteState {
        if self.revoked {
            InviteState::Revoked
        } else if self.expires != 0 && now > self.expires {
            InviteState::Expired
        } else if self.max_uses != 0 && self.uses >= self.max_uses {
            InviteState::UsedUp
        } else {
            InviteState::Open
        }
    }
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct RecordWire {
    secret: [u8; 32],
    expires: u64,
    max_uses: u32,
    uses: u32,
    flags: u8,
    created_by: VLBytes,
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct Wire {
    version: u8,
    invites: Vec<RecordWire>,
}

const F_APPROVAL: u8 = 1;
const F_REVOKED: u8 = 2;
const F_PUBLIC: u8 = 4;

/// Encodes the invites as a group-context extension.
pub(crate) fn to_extension(invites: &[InviteRecord]) -> Result<Extension, GovernanceError> {
    if invites.len() > MAX_INVITES {
        return Err(GovernanceError::TooLarge {
            what: "invites",
            len: invites.len(),
            max: MAX_INVITES,
        });
    }
    let wire = Wire {
        version: VERSION,
        invites: invites
            .iter()
            .map(|i| RecordWire {
                secret: i.secret,
                expires: i.expires,
                max_uses: i.max_uses,
                uses: i.uses,
                flags: (u8::from(i.approval) * F_APPROVAL)
                    | (u8::from(i.revoked) * F_REVOKED)
                    | (u8::from(i.public) * F_PUBLIC),
                created_by: i.created_by.as_str().as_bytes().to_vec().into(),
            })
            .collect(),
    };
    let bytes = wire
        .tls_serialize_detached()
        .map_err(|_| GovernanceError::Malformed("invites"))?;
    Ok(Extension::Unknown(
        INVITES_EXTENSION,
        UnknownExtension(bytes),
    ))
}

/// Decodes and checks the invites: distinct ids, uses within bounds, known flags.
pub(crate) fn from_bytes(raw: &[u8]) -> Result<Vec<InviteRecord>, GovernanceError> {
    let bad = || GovernanceError::Malformed("invites");
    let w = Wire::tls_deserialize_exact_bytes(raw).map_err(|_| bad())?;
    if w.version != VERSION || w.invites.len() > MAX_INVITES {
        return Err(bad());
    }
    let mut out: Vec<InviteRecord> = Vec::with_capacity(w.invites.len());
    for r in w.invites {
        if r.flags & !(F_APPROVAL | F_REVOKED | F_PUBLIC) != 0
            || (r.max_uses != 0 && r.uses > r.max_uses)
        {
            return Err(bad());
        }
        let created_by = std::str::from_utf8(r.created_by.as_slice())
            .ok()
            .and_then(|s| Did::new(s).ok())
            .ok_or_else(bad)?;
        let rec = InviteRecord {
            secret: r.secret,
            expires: r.expires,
            max_uses: r.max_uses,
            uses: r.uses,
            approval: r.flags & F_APPROVAL != 0,
            revoked: r.flags & F_REVOKED != 0,
            public: r.flags & F_PUBLIC != 0,
            created_by,
        };
        if out.iter().any(|o| o.id() == rec.id()) {
            return Err(bad());
        }
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(secret: u8) -> InviteRecord {
        InviteRecord {
            secret: [secret; 32],
            expires: 100,
            max_uses: 2,
            uses: 1,
            approval: true,
            revoked: false,
            public: false,
            created_by: Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
        }
    }

    #[test]
    fn inv_1_invites_round_trip_state_and_malformed() {
        let v = vec![rec(1), rec(2)];
        let Extension::Unknown(_, raw) = to_extension(&v).unwrap() else {
            panic!()
        };
        assert_eq!(from_bytes(&raw.0).unwrap(), v);
        for cut in 0..raw.0.len() {
            assert!(from_bytes(&raw.0[..cut]).is_err());
        }
        let Extension::Unknown(_, dup) = to_extension(&[rec(1), rec(1)]).unwrap() else {
            panic!()
        };
        assert!(from_bytes(&dup.0).is_err(), "duplicate ids");
        let mut over = rec(3);
        over.uses = 3;
        let Extension::Unknown(_, o) = to_extension(&[over]).unwrap() else {
            panic!()
        };
        assert!(from_bytes(&o.0).is_err(), "uses over max");
        let r = rec(1);
        assert_eq!(r.state(50), InviteState::Open);
        assert_eq!(r.state(101), InviteState::Expired);
        assert_eq!(
            InviteRecord { uses: 2, ..rec(1) }.state(0),
            InviteState::UsedUp
        );
        assert_eq!(
            InviteRecord {
                revoked: true,
                ..rec(1)
            }
            .state(0),
            InviteState::Revoked
        );
        assert!(to_extension(&vec![rec(1); MAX_INVITES + 1]).is_err());
    }
}
