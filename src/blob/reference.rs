//! References to encrypted blobs (spec/content.md CONTENT-25, CONTENT-25a): where a blob is
//! kept, its digest and the key that decrypts it. Message content carries them (attachments)
//! and so does group state (the avatar, GOV-7), so they are defined here, below both; the
//! encryption itself is `content`'s.

use zeroize::Zeroize as _;

/// How to fetch and decrypt an attachment encrypted chunk by chunk
/// (`content::encrypt_stream`, CONTENT-25a to CONTENT-25f).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedAttachment {
    /// Where the blob store keeps the blob.
    pub url: String,
    /// SHA-256 of the whole blob (stream and padding).
    pub digest: [u8; 32],
    /// The fresh key and nonce prefix of this attachment.
    pub key: StreamKey,
}

/// How to fetch and decrypt an attachment kept outside the message.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteAttachment {
    /// Where the blob store keeps the ciphertext.
    pub url: String,
    /// SHA-256 of the ciphertext, checked before decrypting.
    pub digest: [u8; 32],
    /// The fresh ChaCha20-Poly1305 key of this attachment.
    pub key: [u8; 32],
    /// The nonce used with `key`.
    pub nonce: [u8; 12],
}

impl std::fmt::Debug for RemoteAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAttachment")
            .field("url", &self.url)
            .field("digest", &hex::encode(self.digest))
            .finish_non_exhaustive()
    }
}

impl Drop for RemoteAttachment {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// The secret of one streamed attachment: a fresh key and nonce prefix (CONTENT-25a).
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey {
    /// The ChaCha20-Poly1305 key.
    pub key: [u8; 32],
    /// The first 7 bytes of every chunk nonce.
    pub nonce_prefix: [u8; 7],
}

impl StreamKey {
    /// A fresh random key and prefix.
    pub fn generate() -> Self {
        StreamKey {
            key: rand::random(),
            nonce_prefix: rand::random(),
        }
    }
}

impl std::fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StreamKey(..)")
    }
}

impl Drop for StreamKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}
