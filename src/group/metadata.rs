//! Group metadata, a group-context extension (spec/governance.md GOV-7): name,
//! description, avatar (an encrypted image in a blob store; its key travels here, inside
//! the MLS-encrypted group state) and pinned messages. Sizes are bounded.

use openmls::prelude::{Extension, UnknownExtension};
use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::GovernanceError;
use crate::content::{MessageId, RemoteAttachment};

/// Group-context extension type of the metadata.
pub const METADATA_EXTENSION: u16 = 0xF0A5;

/// Longest name, in bytes of UTF-8.
pub const MAX_NAME: usize = 128;
/// Longest description, in bytes of UTF-8.
pub const MAX_DESCRIPTION: usize = 2048;
/// Most pinned messages.
pub const MAX_PINNED: usize = 50;
/// Longest avatar URL or MIME type.
pub const MAX_AVATAR_FIELD: usize = 512;

const VERSION: u8 = 1;

/// The group's avatar: an image encrypted in a blob store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Avatar {
    /// Its MIME type.
    pub mime_type: String,
    /// Where and how to fetch and decrypt it.
    pub blob: RemoteAttachment,
}

/// Name, description, avatar and pinned messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupMetadata {
    /// The name ("" when unset).
    pub name: String,
    /// The description ("" when unset).
    pub description: String,
    /// The avatar.
    pub avatar: Option<Avatar>,
    /// Pinned messages, oldest pin first.
    pub pinned: Vec<MessageId>,
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct AvatarWire {
    mime_type: VLBytes,
    url: VLBytes,
    digest: [u8; 32],
    key: [u8; 32],
    nonce: [u8; 12],
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct Wire {
    version: u8,
    name: VLBytes,
    description: VLBytes,
    avatar: Option<AvatarWire>,
    pinned: Vec<[u8; 32]>,
}

fn too_large(what: &'static str, len: usize, max: usize) -> GovernanceError {
    GovernanceError::TooLarge { what, len, max }
}

impl GroupMetadata {
    /// Checks the size limits (GOV-7).
    pub fn check(&self) -> Result<(), GovernanceError> {
        let limit = |what, len, max| {
            if len > max {
                Err(too_large(what, len, max))
            } else {
                Ok(())
            }
        };
        limit("name", self.name.len(), MAX_NAME)?;
        limit("description", self.description.len(), MAX_DESCRIPTION)?;
        limit("pinned messages", self.pinned.len(), MAX_PINNED)?;
        if let Some(a) = &self.avatar {
            limit("avatar MIME type", a.mime_type.len(), MAX_AVATAR_FIELD)?;
            limit("avatar URL", a.blob.url.len(), MAX_AVATAR_FIELD)?;
        }
        Ok(())
    }

    /// As a group-context extension, after checking the limits.
    pub(crate) fn to_extension(&self) -> Result<Extension, GovernanceError> {
        self.check()?;
        let wire = Wire {
            version: VERSION,
            name: self.name.as_bytes().to_vec().into(),
            description: self.description.as_bytes().to_vec().into(),
            avatar: self.avatar.as_ref().map(|a| AvatarWire {
                mime_type: a.mime_type.as_bytes().to_vec().into(),
                url: a.blob.url.as_bytes().to_vec().into(),
                digest: a.blob.digest,
                key: a.blob.key,
                nonce: a.blob.nonce,
            }),
            pinned: self.pinned.iter().map(|m| *m.as_bytes()).collect(),
        };
        let bytes = wire
            .tls_serialize_detached()
            .map_err(|_| GovernanceError::Malformed("metadata"))?;
        Ok(Extension::Unknown(
            METADATA_EXTENSION,
            UnknownExtension(bytes),
        ))
    }

    /// The extension's bytes (type [`METADATA_EXTENSION`]), after checking the limits.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GovernanceError> {
        match self.to_extension()? {
            Extension::Unknown(_, b) => Ok(b.0),
            _ => Err(GovernanceError::Malformed("metadata")),
        }
    }

    /// Decodes and checks the extension (untrusted: another member's commit).
    pub(crate) fn from_bytes(raw: &[u8]) -> Result<Self, GovernanceError> {
        let bad = || GovernanceError::Malformed("metadata");
        // The largest well-formed value is a few KiB: refuse more before decoding.
        let max = MAX_NAME + MAX_DESCRIPTION + 2 * MAX_AVATAR_FIELD + 32 * MAX_PINNED + 256;
        if raw.len() > max {
            return Err(too_large("metadata", raw.len(), max));
        }
        let w = Wire::tls_deserialize_exact_bytes(raw).map_err(|_| bad())?;
        if w.version != VERSION {
            return Err(bad());
        }
        let text = |b: &VLBytes| String::from_utf8(b.as_slice().to_vec()).map_err(|_| bad());
        let m = GroupMetadata {
            name: text(&w.name)?,
            description: text(&w.description)?,
            avatar: w
                .avatar
                .map(|a| {
                    Ok::<_, GovernanceError>(Avatar {
                        mime_type: text(&a.mime_type)?,
                        blob: RemoteAttachment {
                            url: text(&a.url)?,
                            digest: a.digest,
                            key: a.key,
                            nonce: a.nonce,
                        },
                    })
                })
                .transpose()?,
            pinned: w.pinned.into_iter().map(MessageId::from_bytes).collect(),
        };
        m.check()?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gov_7_metadata_round_trip_limits_and_malformed() {
        let m = GroupMetadata {
            name: "Secret Club".into(),
            description: "members only".into(),
            avatar: Some(Avatar {
                mime_type: "image/png".into(),
                blob: RemoteAttachment {
                    url: "mem://x".into(),
                    digest: [1; 32],
                    key: [2; 32],
                    nonce: [3; 12],
                },
            }),
            pinned: vec![MessageId::from_bytes([9; 32])],
        };
        let Extension::Unknown(_, raw) = m.to_extension().unwrap() else {
            panic!()
        };
        assert_eq!(GroupMetadata::from_bytes(&raw.0).unwrap(), m);
        for cut in 0..raw.0.len() {
            assert!(GroupMetadata::from_bytes(&raw.0[..cut]).is_err());
        }
        let long = GroupMetadata {
            name: "x".repeat(MAX_NAME + 1),
            ..Default::default()
        };
        assert!(matches!(
            long.to_extension(),
            Err(GovernanceError::TooLarge { what: "name", .. })
        ));
        // A peer's oversized value is refused on decode too.
        let wire = Wire {
            version: 1,
            name: vec![b'x'; MAX_NAME + 1].into(),
            description: vec![].into(),
            avatar: None,
            pinned: vec![],
        };
        assert!(matches!(
            GroupMetadata::from_bytes(&wire.tls_serialize_detached().unwrap()),
            Err(GovernanceError::TooLarge { .. })
        ));
        assert!(GroupMetadata::from_bytes(&vec![0; 100_000]).is_err());
    }
}
