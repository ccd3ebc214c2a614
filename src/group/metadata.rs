//! Group metadata, a group-context extension (spec/governance.md GOV-7): name,
//! description, avatar (an encrypted image in a blob store; its key travels here, inside
//! the MLS-encrypted group state) and pinned messages. Sizes are bounded.

use openmls::prelude::{Extension, UnknownExtension};
use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::GovernanceError;
use super::MessageId;
use crate::blob::{RemoteAttachment, StreamKey, StreamedAttachment};

pub use crate::extensions::METADATA_EXTENSION;

/// Longest name, in bytes of UTF-8.
pub const MAX_NAME: usize = 128;
/// Longest description, in bytes of UTF-8.
pub const MAX_DESCRIPTION: usize = 2048;
/// Most pinned messages.
pub const MAX_PINNED: usize = 50;
/// Longest avatar URL or MIME type.
pub(crate) const MAX_AVATAR_FIELD: usize = 512;
/// Largest avatar image, in bytes (every member fetches it whole).
pub const MAX_AVATAR_BYTES: u64 = 1 << 20;

/// Version 1: the avatar encrypted whole (still decoded, and written again while a group
/// keeps such an avatar).
const VERSION_WHOLE: u8 = 1;
/// Version 2: the avatar encrypted chunk by chunk and padded (CONTENT-25a to CONTENT-25d),
/// what a blob store at atmls-ds accepts.
const VERSION_STREAMED: u8 = 2;

/// The group's avatar: an image encrypted in a blob store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Avatar {
    /// Its MIME type.
    pub mime_type: String,
    /// Where and how to fetch and decrypt it.
    pub blob: AvatarBlob,
}

/// Where and how an avatar is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AvatarBlob {
    /// Encrypted whole (version 1 of the extension): read, no longer written.
    Whole(RemoteAttachment),
    /// Encrypted chunk by chunk and padded, like a large attachment (CONTENT-25a): what this
    /// crate writes.
    Streamed {
        /// URL, digest of the whole blob, key and nonce prefix.
        reference: StreamedAttachment,
        /// Bytes of the image (at most [`MAX_AVATAR_BYTES`]).
        size: u64,
    },
}

impl AvatarBlob {
    /// Where the blob store keeps it.
    pub fn url(&self) -> &str {
        match self {
            AvatarBlob::Whole(r) => &r.url,
            AvatarBlob::Streamed { reference, .. } => &reference.url,
        }
    }
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
struct WholeAvatarWire {
    mime_type: VLBytes,
    url: VLBytes,
    digest: [u8; 32],
    key: [u8; 32],
    nonce: [u8; 12],
}

#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct StreamedAvatarWire {
    mime_type: VLBytes,
    url: VLBytes,
    digest: [u8; 32],
    key: [u8; 32],
    nonce_prefix: [u8; 7],
    size: u64,
}

/// The extension, version 1.
#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct WholeWire {
    version: u8,
    name: VLBytes,
    description: VLBytes,
    avatar: Option<WholeAvatarWire>,
    pinned: Vec<[u8; 32]>,
}

/// The extension, version 2 (the same but for the avatar).
#[derive(Debug, TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct StreamedWire {
    version: u8,
    name: VLBytes,
    description: VLBytes,
    avatar: Option<StreamedAvatarWire>,
    pinned: Vec<[u8; 32]>,
}

fn too_large(what: &'static str, len: usize, max: usize) -> GovernanceError {
    GovernanceError::TooLarge { what, len, max }
}

fn bytes(s: &str) -> VLBytes {
    s.as_bytes().to_vec().into()
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
            limit("avatar URL", a.blob.url().len(), MAX_AVATAR_FIELD)?;
            if let AvatarBlob::Streamed { size, .. } = &a.blob {
                let len = usize::try_from(*size).unwrap_or(usize::MAX);
                limit("avatar", len, MAX_AVATAR_BYTES as usize)?;
            }
        }
        Ok(())
    }

    /// As a group-context extension, after checking the limits: version 1 while the avatar
    /// is one encrypted whole, version 2 otherwise.
    pub(crate) fn to_extension(&self) -> Result<Extension, GovernanceError> {
        self.check()?;
        let (name, description) = (bytes(&self.name), bytes(&self.description));
        let pinned = self.pinned.iter().map(|m| *m.as_bytes()).collect();
        let encoded = match &self.avatar {
            Some(Avatar {
                mime_type,
                blob: AvatarBlob::Whole(r),
            }) => WholeWire {
                version: VERSION_WHOLE,
                name,
                description,
                avatar: Some(WholeAvatarWire {
                    mime_type: bytes(mime_type),
                    url: bytes(&r.url),
                    digest: r.digest,
                    key: r.key,
                    nonce: r.nonce,
                }),
                pinned,
            }
            .tls_serialize_detached(),
            avatar => StreamedWire {
                version: VERSION_STREAMED,
                name,
                description,
                avatar: avatar.as_ref().and_then(streamed_wire),
                pinned,
            }
            .tls_serialize_detached(),
        };
        let encoded = encoded.map_err(|_| GovernanceError::Malformed("metadata"))?;
        Ok(Extension::Unknown(
            METADATA_EXTENSION,
            UnknownExtension(encoded),
        ))
    }

    /// The extension's bytes (type [`METADATA_EXTENSION`]), after checking the limits.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GovernanceError> {
        match self.to_extension()? {
            Extension::Unknown(_, b) => Ok(b.0),
            _ => Err(GovernanceError::Malformed("metadata")),
        }
    }

    /// Decodes and checks the extension (untrusted: another member's commit). A pure
    /// function of the bytes, so every member merges or skips the same commits (AGREE-4).
    pub(crate) fn from_bytes(raw: &[u8]) -> Result<Self, GovernanceError> {
        let bad = || GovernanceError::Malformed("metadata");
        // The largest well-formed value is a few KiB: refuse more before decoding.
        let max = MAX_NAME + MAX_DESCRIPTION + 2 * MAX_AVATAR_FIELD + 32 * MAX_PINNED + 256;
        if raw.len() > max {
            return Err(too_large("metadata", raw.len(), max));
        }
        let text = |b: &VLBytes| String::from_utf8(b.as_slice().to_vec()).map_err(|_| bad());
        let m = match raw.first() {
            Some(&VERSION_WHOLE) => {
                let w = WholeWire::tls_deserialize_exact_bytes(raw).map_err(|_| bad())?;
                let avatar = w.avatar.map(|a| {
                    Ok::<_, GovernanceError>(Avatar {
                        mime_type: text(&a.mime_type)?,
                        blob: AvatarBlob::Whole(RemoteAttachment {
                            url: text(&a.url)?,
                            digest: a.digest,
                            key: a.key,
                            nonce: a.nonce,
                        }),
                    })
                });
                GroupMetadata {
                    name: text(&w.name)?,
                    description: text(&w.description)?,
                    avatar: avatar.transpose()?,
                    pinned: w.pinned.into_iter().map(MessageId::from_bytes).collect(),
                }
            }
            Some(&VERSION_STREAMED) => {
                let w = StreamedWire::tls_deserialize_exact_bytes(raw).map_err(|_| bad())?;
                let avatar = w.avatar.map(|a| {
                    Ok::<_, GovernanceError>(Avatar {
                        mime_type: text(&a.mime_type)?,
                        blob: AvatarBlob::Streamed {
                            reference: StreamedAttachment {
                                url: text(&a.url)?,
                                digest: a.digest,
                                key: StreamKey {
                                    key: a.key,
                                    nonce_prefix: a.nonce_prefix,
                                },
                            },
                            size: a.size,
                        },
                    })
                });
                GroupMetadata {
                    name: text(&w.name)?,
                    description: text(&w.description)?,
                    avatar: avatar.transpose()?,
                    pinned: w.pinned.into_iter().map(MessageId::from_bytes).collect(),
                }
            }
            _ => return Err(bad()),
        };
        m.check()?;
        Ok(m)
    }
}

/// The version-2 wire form of a streamed avatar (`None` for a whole one, written as
/// version 1 instead).
fn streamed_wire(a: &Avatar) -> Option<StreamedAvatarWire> {
    let AvatarBlob::Streamed { reference, size } = &a.blob else {
        return None;
    };
    Some(StreamedAvatarWire {
        mime_type: bytes(&a.mime_type),
        url: bytes(&reference.url),
        digest: reference.digest,
        key: reference.key.key,
        nonce_prefix: reference.key.nonce_prefix,
        size: *size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(size: u64) -> Avatar {
        Avatar {
            mime_type: "image/png".into(),
            blob: AvatarBlob::Streamed {
                reference: StreamedAttachment {
                    url: "https://ds.example/blobs/x".into(),
                    digest: [4; 32],
                    key: StreamKey {
                        key: [5; 32],
                        nonce_prefix: [6; 7],
                    },
                },
                size,
            },
        }
    }

    fn round_trip(m: &GroupMetadata, version: u8) {
        let Extension::Unknown(_, raw) = m.to_extension().unwrap() else {
            panic!()
        };
        assert_eq!(raw.0[0], version);
        assert_eq!(&GroupMetadata::from_bytes(&raw.0).unwrap(), m);
        for cut in 0..raw.0.len() {
            assert!(GroupMetadata::from_bytes(&raw.0[..cut]).is_err());
        }
    }

    #[test]
    fn gov_7_metadata_round_trip_limits_and_malformed() {
        let mut m = GroupMetadata {
            name: "Secret Club".into(),
            description: "members only".into(),
            avatar: Some(Avatar {
                mime_type: "image/png".into(),
                blob: AvatarBlob::Whole(RemoteAttachment {
                    url: "mem://x".into(),
                    digest: [1; 32],
                    key: [2; 32],
                    nonce: [3; 12],
                }),
            }),
            pinned: vec![MessageId::from_bytes([9; 32])],
        };
        // A whole avatar (written before streamed ones) keeps version 1; otherwise 2.
        round_trip(&m, VERSION_WHOLE);
        m.avatar = Some(streamed(MAX_AVATAR_BYTES));
        round_trip(&m, VERSION_STREAMED);
        m.avatar = None;
        round_trip(&m, VERSION_STREAMED);
        let long = GroupMetadata {
            name: "x".repeat(MAX_NAME + 1),
            ..Default::default()
        };
        assert!(matches!(
            long.to_extension(),
            Err(GovernanceError::TooLarge { what: "name", .. })
        ));
        // A peer's oversized value is refused on decode too.
        let wire = WholeWire {
            version: VERSION_WHOLE,
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

    #[test]
    fn gov_7_avatar_over_the_size_limit_and_unknown_versions_are_refused() {
        let big = GroupMetadata {
            avatar: Some(streamed(MAX_AVATAR_BYTES + 1)),
            ..Default::default()
        };
        assert!(matches!(
            big.to_extension(),
            Err(GovernanceError::TooLarge { what: "avatar", .. })
        ));
        // The same value from a peer: the wire holds it, the decoder refuses it.
        let a = streamed_wire(big.avatar.as_ref().unwrap()).unwrap();
        let wire = StreamedWire {
            version: VERSION_STREAMED,
            name: vec![].into(),
            description: vec![].into(),
            avatar: Some(a),
            pinned: vec![],
        };
        let mut raw = wire.tls_serialize_detached().unwrap();
        assert!(matches!(
            GroupMetadata::from_bytes(&raw),
            Err(GovernanceError::TooLarge { what: "avatar", .. })
        ));
        for version in [0, 3, 255] {
            raw[0] = version;
            assert!(matches!(
                GroupMetadata::from_bytes(&raw),
                Err(GovernanceError::Malformed(_))
            ));
        }
    }
}
