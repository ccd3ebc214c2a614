//! Group updates, `atmls.dev/group-updated:1.0` (spec rule CONTENT-27): history
//! items a client derives from verified commits. They are never sent; one that
//! arrives in an application message is refused as forged.

use super::payload::{encoded, open, utf8, Writer};
use super::{ContentCodec, ContentError, ContentTypeId, EncodedContent};
use crate::group::{Action, GovernanceChange, InviteId, Member, Policy, Role};
use crate::identity::{Did, PublicKey};

/// What a verified commit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupUpdated {
    /// The account whose device committed the change.
    pub by: Did,
    /// Devices added.
    pub added: Vec<Member>,
    /// Devices removed (or that left).
    pub removed: Vec<Member>,
    /// The new disappearing-message timer in seconds, if the commit changed it
    /// (`Some(0)`: turned off).
    pub disappearing_secs: Option<u32>,
    /// Role, policy, metadata and invite changes (spec/governance.md GOV-10).
    pub changes: Vec<GovernanceChange>,
}

/// Codec for [`GroupUpdated`], content type `atmls.dev/group-updated:1.0`.
///
/// ```rust
/// use atmls::content::{ContentCodec, GroupUpdated, GroupUpdatedCodec};
///
/// let u = GroupUpdated {
///     by: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?,
///     added: vec![], removed: vec![], disappearing_secs: Some(3600), changes: vec![],
/// };
/// let e = GroupUpdatedCodec::encode(&u)?;
/// assert_eq!(GroupUpdatedCodec::decode(&e)?, u);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupUpdatedCodec;

fn write_members(w: &mut Writer, members: &[Member]) -> Result<(), ContentError> {
    let mut inner = Writer::default();
    for m in members {
        inner
            .opaque(m.did.as_str().as_bytes())?
            .fixed(m.installation.as_bytes());
    }
    w.opaque(&inner.into_bytes())?;
    Ok(())
}

fn read_members(bytes: &[u8]) -> Result<Vec<Member>, ContentError> {
    let mut r = super::encoded::Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        let did = Did::new(&utf8(r.opaque()?, "member DID")?)
            .map_err(|_| ContentError::Malformed("member DID is invalid"))?;
        out.push(Member {
            did,
            installation: PublicKey(r.fixed()?),
        });
    }
    Ok(out)
}

fn write_change(w: &mut Writer, c: &GovernanceChange) -> Result<(), ContentError> {
    match c {
        GovernanceChange::RoleChanged { did, role } => {
            w.u8(1).opaque(did.as_str().as_bytes())?.u8(role.to_u8());
        }
        GovernanceChange::PolicyChanged { action, policy } => {
            w.u8(2).u8(action.to_u8()).u8(policy.to_u8());
        }
        GovernanceChange::NameChanged(s) => {
            w.u8(3).opaque(s.as_bytes())?;
        }
        GovernanceChange::DescriptionChanged(s) => {
            w.u8(4).opaque(s.as_bytes())?;
        }
        GovernanceChange::AvatarChanged(set) => {
            w.u8(5).u8(u8::from(*set));
        }
        GovernanceChange::Pinned(m) => {
            w.u8(6).fixed(m.as_bytes());
        }
        GovernanceChange::Unpinned(m) => {
            w.u8(7).fixed(m.as_bytes());
        }
        GovernanceChange::InviteCreated(id) => {
            w.u8(8).fixed(&id.0);
        }
        GovernanceChange::InviteRevoked(id) => {
            w.u8(9).fixed(&id.0);
        }
        GovernanceChange::InviteUsed { id, uses } => {
            w.u8(10).fixed(&id.0).u32(*uses);
        }
    }
    Ok(())
}

fn read_change(r: &mut super::encoded::Reader<'_>) -> Result<GovernanceChange, ContentError> {
    let bad = |what| ContentError::Malformed(what);
    Ok(match r.u8()? {
        1 => GovernanceChange::RoleChanged {
            did: Did::new(&utf8(r.opaque()?, "role DID")?).map_err(|_| bad("role DID"))?,
            role: Role::from_u8(r.u8()?).ok_or(bad("role"))?,
        },
        2 => GovernanceChange::PolicyChanged {
            action: Action::from_u8(r.u8()?).ok_or(bad("action"))?,
            policy: Policy::from_u8(r.u8()?).ok_or(bad("policy"))?,
        },
        3 => GovernanceChange::NameChanged(utf8(r.opaque()?, "name")?),
        4 => GovernanceChange::DescriptionChanged(utf8(r.opaque()?, "description")?),
        5 => GovernanceChange::AvatarChanged(match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(bad("avatar flag")),
        }),
        6 => GovernanceChange::Pinned(super::MessageId::from_bytes(r.fixed()?)),
        7 => GovernanceChange::Unpinned(super::MessageId::from_bytes(r.fixed()?)),
        8 => GovernanceChange::InviteCreated(InviteId(r.fixed()?)),
        9 => GovernanceChange::InviteRevoked(InviteId(r.fixed()?)),
        10 => GovernanceChange::InviteUsed {
            id: InviteId(r.fixed()?),
            uses: r.u32()?,
        },
        _ => return Err(bad("governance change kind")),
    })
}

impl ContentCodec for GroupUpdatedCodec {
    type Content = GroupUpdated;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("group-updated", 1)
    }

    fn encode(u: &GroupUpdated) -> Result<EncodedContent, ContentError> {
        let mut w = Writer::default();
        w.opaque(u.by.as_str().as_bytes())?;
        write_members(&mut w, &u.added)?;
        write_members(&mut w, &u.removed)?;
        match u.disappearing_secs {
            None => w.u8(0),
            Some(s) => w.u8(1).u32(s),
        };
        // Absent when empty, so updates without governance changes keep their 1.0 bytes.
        if !u.changes.is_empty() {
            let mut inner = Writer::default();
            for c in &u.changes {
                write_change(&mut inner, c)?;
            }
            w.opaque(&inner.into_bytes())?;
        }
        Ok(encoded(
            Self::content_type(),
            w.into_bytes(),
            Self::fallback(u),
        ))
    }

    fn decode(e: &EncodedContent) -> Result<GroupUpdated, ContentError> {
        let mut r = open(&Self::content_type(), e)?;
        let by = Did::new(&utf8(r.opaque()?, "committer DID")?)
            .map_err(|_| ContentError::Malformed("committer DID is invalid"))?;
        let added = read_members(r.opaque()?)?;
        let removed = read_members(r.opaque()?)?;
        let disappearing_secs = match r.u8()? {
            0 => None,
            1 => Some(r.u32()?),
            _ => {
                return Err(ContentError::Malformed(
                    "optional presence flag must be 0 or 1",
                ))
            }
        };
        let mut changes = Vec::new();
        if !r.is_empty() {
            let mut inner = super::encoded::Reader::new(r.opaque()?);
            while !inner.is_empty() {
                changes.push(read_change(&mut inner)?);
            }
        }
        r.finish()?;
        Ok(GroupUpdated {
            by,
            added,
            removed,
            disappearing_secs,
            changes,
        })
    }

    fn fallback(u: &GroupUpdated) -> Option<String> {
        let dids = |ms: &[Member]| {
            let mut d: Vec<&str> = ms.iter().map(|m| m.did.as_str()).collect();
            d.dedup();
            d.join(", ")
        };
        let mut parts = Vec::new();
        if !u.added.is_empty() {
            parts.push(format!("added {}", dids(&u.added)));
        }
        if !u.removed.is_empty() {
            parts.push(format!("removed {}", dids(&u.removed)));
        }
        match u.disappearing_secs {
            Some(0) => parts.push("turned disappearing messages off".into()),
            Some(s) => parts.push(format!("set disappearing messages to {s} s")),
            None => {}
        }
        parts.extend(u.changes.iter().map(GovernanceChange::description));
        if parts.is_empty() {
            parts.push("updated the group".into());
        }
        Some(format!("{} {}", u.by, parts.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GroupUpdated {
        let m = |s: &str, b: u8| Member {
            did: s.parse().unwrap(),
            installation: PublicKey([b; 32]),
        };
        GroupUpdated {
            by: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
            added: vec![m("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", 1)],
            removed: vec![m("did:plc:cccccccccccccccccccccccc", 2)],
            disappearing_secs: None,
            changes: vec![
                GovernanceChange::RoleChanged {
                    did: "did:plc:cccccccccccccccccccccccc".parse().unwrap(),
                    role: Role::Moderator,
                },
                GovernanceChange::NameChanged("club".into()),
                GovernanceChange::InviteUsed {
                    id: InviteId([7; 16]),
                    uses: 2,
                },
            ],
        }
    }

    #[test]
    fn content_27_group_updated_round_trip() {
        for secs in [None, Some(0), Some(60)] {
            let u = GroupUpdated {
                disappearing_secs: secs,
                ..sample()
            };
            let e = GroupUpdatedCodec::encode(&u).unwrap();
            assert_eq!(e.type_id.to_string(), "atmls.dev/group-updated:1.0");
            let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
            assert_eq!(GroupUpdatedCodec::decode(&back).unwrap(), u);
        }
        let fb = GroupUpdatedCodec::fallback(&sample()).unwrap();
        assert!(fb.contains("added did:plc:bbbb"), "{fb}");
        assert!(fb.contains("moderator"), "{fb}");
    }

    #[test]
    fn content_27_group_updated_rejects_malformed() {
        let good = GroupUpdatedCodec::encode(&sample()).unwrap();
        for cut in 0..good.content.len() {
            let mut e = good.clone();
            e.content.truncate(cut);
            // A cut right before the optional changes decodes, as an update without them.
            if let Ok(u) = GroupUpdatedCodec::decode(&e) {
                assert!(u.changes.is_empty() && u != sample(), "prefix {cut}");
            }
        }
        let mut e = good.clone();
        e.content.push(0);
        assert!(matches!(
            GroupUpdatedCodec::decode(&e),
            Err(ContentError::TrailingBytes(1))
        ));
        let mut e = good;
        e.content[1] = b'X'; // "did:plc" → "Xid:plc"
        assert!(matches!(
            GroupUpdatedCodec::decode(&e),
            Err(ContentError::Malformed(_))
        ));
    }
}
