//! The atmls group-data extension in the group context (GROUP-3).

use openmls::prelude::{Extension, Extensions, GroupContext, UnknownExtension};
use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::GroupError;
use crate::identity::Did;

pub use crate::extensions::GROUP_DATA_EXTENSION;

/// What kind of conversation a group is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// A group chat.
    Group,
    /// A direct conversation between two accounts.
    Dm,
    /// The account's own devices, keeping their consent decisions the same
    /// (spec/consent.md CONSENT-7): never shown as a conversation.
    Account,
}

impl GroupKind {
    pub(crate) fn to_i64(self) -> i64 {
        match self {
            GroupKind::Group => 1,
            GroupKind::Dm => 2,
            GroupKind::Account => 3,
        }
    }

    pub(crate) fn from_i64(v: i64) -> Option<Self> {
        match v {
            1 => Some(GroupKind::Group),
            2 => Some(GroupKind::Dm),
            3 => Some(GroupKind::Account),
            _ => None,
        }
    }
}

#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct Wire {
    version: u8,
    kind: u8,
    dm_members: Vec<VLBytes>,
}

/// Group data every member sees in the group context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupData {
    /// Group or DM.
    pub kind: GroupKind,
    /// For a DM, the two accounts, sorted.
    pub dm_members: Vec<Did>,
}

impl GroupData {
    /// As a group-context extension.
    pub(crate) fn to_extension(&self) -> Extension {
        let wire = Wire {
            version: 1,
            kind: self.kind.to_i64() as u8,
            dm_members: self
                .dm_members
                .iter()
                .map(|d| d.as_str().as_bytes().to_vec().into())
                .collect(),
        };
        Extension::Unknown(
            GROUP_DATA_EXTENSION,
            UnknownExtension(wire.tls_serialize_detached().unwrap_or_default()),
        )
    }

    /// Reads and checks the extension from a group context (untrusted: it came in a Welcome).
    pub(crate) fn from_extensions(ext: &Extensions<GroupContext>) -> Result<Self, GroupError> {
        let raw = ext
            .unknown(GROUP_DATA_EXTENSION)
            .ok_or_else(|| GroupError::Malformed("group has no atmls group data".into()))?;
        let bad = || GroupError::Malformed("group data".into());
        let w = Wire::tls_deserialize_exact_bytes(raw.0.as_slice()).map_err(|_| bad())?;
        if w.version != 1 {
            return Err(bad());
        }
        let kind = GroupKind::from_i64(i64::from(w.kind)).ok_or_else(bad)?;
        let dm_members = w
            .dm_members
            .iter()
            .map(|b| {
                std::str::from_utf8(b.as_slice())
                    .ok()
                    .and_then(|s| Did::new(s).ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A DM names its two accounts, an own-device group its one account (CONSENT-7).
        let named = match kind {
            GroupKind::Group => 0,
            GroupKind::Dm => 2,
            GroupKind::Account => 1,
        };
        if dm_members.len() != named {
            return Err(bad());
        }
        Ok(GroupData { kind, dm_members })
    }
}
