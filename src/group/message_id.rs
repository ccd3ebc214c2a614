//! Message ids (spec/content.md CONTENT-18): the id of an application message is a hash of
//! the MLS message exactly as it was sent, so every member computes the same one. Defined
//! here, below content, because group state names messages too (pinned messages, GOV-*).

use std::fmt;

use sha2::{Digest, Sha256};

/// Identifies one application message of a group, the same on every member's
/// device (CONTENT-18): SHA-256 over a context label and the serialized MLS
/// message (the `MLSMessage` carrying the `PrivateMessage`) exactly as it was
/// sent and delivered.
///
/// ```rust
/// use atmls::content::MessageId;
///
/// let id = MessageId::from_mls_message(b"serialized MLSMessage bytes");
/// assert_eq!(id, MessageId::from_mls_message(b"serialized MLSMessage bytes"));
/// assert_eq!(id.to_string().parse::<MessageId>()?, id);
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub(crate) [u8; 32]);

impl MessageId {
    /// The context label hashed before the message (CONTENT-18).
    pub const LABEL: &'static [u8] = b"atmls/v1/message-id";

    /// The id of the MLS message whose serialized form is `mls_message`.
    pub fn from_mls_message(mls_message: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update((Self::LABEL.len() as u32).to_be_bytes());
        h.update(Self::LABEL);
        h.update(mls_message);
        MessageId(h.finalize().into())
    }

    /// An id from its 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MessageId(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for MessageId {
    /// Lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", hex::encode(&self.0[..6]))
    }
}
