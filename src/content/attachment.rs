//! Attachments, `atmls.dev/attachment:1.0` (spec rule CONTENT-25): small files
//! inline, larger ones encrypted with a fresh key and stored elsewhere (a
//! [`BlobStore`](crate::blob::BlobStore)), referenced by URL, digest, key and nonce.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use super::payload::{encoded, open, utf8, Writer};
use super::{
    ContentCodec, ContentError, ContentTypeId, EncodedContent, RemoteAttachment, StreamedAttachment,
};

/// Largest file carried inline in the message, in bytes; larger files go to a blob store.
pub const MAX_INLINE_ATTACHMENT: usize = 256 * 1024;
/// Longest file name, in bytes.
pub const MAX_FILENAME_LEN: usize = 255;
/// Longest MIME type, in bytes.
pub const MAX_MIME_TYPE_LEN: usize = 127;
/// Longest blob URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Associated data of the attachment cipher, binding ciphertexts to this use.
const AAD: &[u8] = b"atmls/v1/attachment";

/// A file sent in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file's name as the sender gave it (display only; never a path to trust).
    pub filename: String,
    /// Its MIME type, e.g. `image/png`.
    pub mime_type: String,
    /// Its size in bytes (of the plaintext).
    pub size: u64,
    /// Where the bytes are.
    pub source: AttachmentSource,
}

/// Where an attachment's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentSource {
    /// In the message itself (at most [`MAX_INLINE_ATTACHMENT`] bytes).
    Inline(Vec<u8>),
    /// Encrypted whole in a blob store (the first remote form, still decoded).
    Remote(RemoteAttachment),
    /// Encrypted chunk by chunk in a blob store (CONTENT-25a): what this crate sends.
    Streamed(StreamedAttachment),
}

/// Encrypts a file for a blob store: a fresh random key and nonce, ChaCha20-Poly1305,
/// and the SHA-256 digest of the ciphertext. Returns the ciphertext and the reference
/// (with `url` empty: the caller fills it in after storing the ciphertext).
///
/// ```rust
/// use atmls::content::{encrypt_attachment};
///
/// let (ciphertext, mut reference) = encrypt_attachment(b"file bytes")?;
/// reference.url = "mem://somewhere".into();
/// assert_eq!(reference.decrypt(&ciphertext)?, b"file bytes");
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
pub fn encrypt_attachment(plaintext: &[u8]) -> Result<(Vec<u8>, RemoteAttachment), ContentError> {
    let key: [u8; 32] = rand::random();
    let nonce: [u8; 12] = rand::random();
    let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: AAD,
            },
        )
        .map_err(|_| ContentError::Encode("attachment encryption failed".into()))?;
    let digest = Sha256::digest(&ciphertext).into();
    Ok((
        ciphertext,
        RemoteAttachment {
            url: String::new(),
            digest,
            key,
            nonce,
        },
    ))
}

impl RemoteAttachment {
    /// Checks the ciphertext's digest (CONTENT-25), then decrypts and authenticates it.
    pub fn decrypt(&self, ciphertext: &[u8]) -> Result<Vec<u8>, ContentError> {
        let digest: [u8; 32] = Sha256::digest(ciphertext).into();
        if digest != self.digest {
            return Err(ContentError::DigestMismatch);
        }
        ChaCha20Poly1305::new(Key::from_slice(&self.key))
            .decrypt(
                Nonce::from_slice(&self.nonce),
                Payload {
                    msg: ciphertext,
                    aad: AAD,
                },
            )
            .map_err(|_| ContentError::DecryptionFailed)
    }
}

/// Codec for [`Attachment`], content type `atmls.dev/attachment:1.0`.
///
/// ```rust
/// use atmls::content::{Attachment, AttachmentCodec, AttachmentSource, ContentCodec};
///
/// let a = Attachment {
///     filename: "hello.txt".into(),
///     mime_type: "text/plain".into(),
///     size: 5,
///     source: AttachmentSource::Inline(b"hello".to_vec()),
/// };
/// let e = AttachmentCodec::encode(&a)?;
/// assert_eq!(e.fallback.as_deref(), Some("[attachment: hello.txt]"));
/// assert_eq!(AttachmentCodec::decode(&e)?, a);
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachmentCodec;

fn check(a: &Attachment) -> Result<(), ContentError> {
    let bad = ContentError::Malformed;
    if a.filename.is_empty()
        || a.filename.len() > MAX_FILENAME_LEN
        || a.filename.chars().any(char::is_control)
    {
        return Err(bad(
            "attachment file name must be 1 to 255 bytes, no control characters",
        ));
    }
    if a.mime_type.is_empty()
        || a.mime_type.len() > MAX_MIME_TYPE_LEN
        || !a.mime_type.contains('/')
        || !a.mime_type.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad(
            "attachment MIME type must be type/subtype in printable ASCII",
        ));
    }
    match &a.source {
        AttachmentSource::Inline(data) => {
            if data.len() > MAX_INLINE_ATTACHMENT {
                return Err(ContentError::TooLarge {
                    len: data.len(),
                    max: MAX_INLINE_ATTACHMENT,
                });
            }
            if u64::try_from(data.len()).ok() != Some(a.size) {
                return Err(bad("inline attachment size does not match its data"));
            }
        }
        AttachmentSource::Remote(RemoteAttachment { url, .. })
        | AttachmentSource::Streamed(StreamedAttachment { url, .. }) => {
            if url.is_empty() || url.len() > MAX_URL_LEN {
                return Err(bad("attachment URL must be 1 to 2048 bytes"));
            }
        }
    }
    if matches!(a.source, AttachmentSource::Streamed(_)) && a.size > super::MAX_STREAM_PLAINTEXT {
        return Err(bad("streamed attachment over 4 GiB"));
    }
    Ok(())
}

impl ContentCodec for AttachmentCodec {
    type Content = Attachment;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("attachment", 1)
    }

    fn encode(a: &Attachment) -> Result<EncodedContent, ContentError> {
        check(a)?;
        let mut w = Writer::default();
        w.opaque(a.filename.as_bytes())?
            .opaque(a.mime_type.as_bytes())?
            .u64(a.size);
        match &a.source {
            AttachmentSource::Inline(data) => {
                w.u8(1).opaque(data)?;
            }
            AttachmentSource::Remote(r) => {
                w.u8(2)
                    .opaque(r.url.as_bytes())?
                    .fixed(&r.digest)
                    .fixed(&r.key)
                    .fixed(&r.nonce);
            }
            AttachmentSource::Streamed(r) => {
                w.u8(3)
                    .opaque(r.url.as_bytes())?
                    .fixed(&r.digest)
                    .fixed(&r.key.key)
                    .fixed(&r.key.nonce_prefix);
            }
        }
        Ok(encoded(
            Self::content_type(),
            w.into_bytes(),
            Self::fallback(a),
        ))
    }

    fn decode(e: &EncodedContent) -> Result<Attachment, ContentError> {
        let mut r = open(&Self::content_type(), e)?;
        let filename = utf8(r.opaque()?, "attachment file name")?;
        let mime_type = utf8(r.opaque()?, "attachment MIME type")?;
        let size = r.u64()?;
        let source = match r.u8()? {
            1 => AttachmentSource::Inline(r.opaque()?.to_vec()),
            2 => AttachmentSource::Remote(RemoteAttachment {
                url: utf8(r.opaque()?, "attachment URL")?,
                digest: r.fixed()?,
                key: r.fixed()?,
                nonce: r.fixed()?,
            }),
            3 => AttachmentSource::Streamed(StreamedAttachment {
                url: utf8(r.opaque()?, "attachment URL")?,
                digest: r.fixed()?,
                key: super::StreamKey {
                    key: r.fixed()?,
                    nonce_prefix: r.fixed()?,
                },
            }),
            _ => return Err(ContentError::Malformed("attachment kind must be 1, 2 or 3")),
        };
        r.finish()?;
        let a = Attachment {
            filename,
            mime_type,
            size,
            source,
        };
        check(&a)?;
        Ok(a)
    }

    fn fallback(a: &Attachment) -> Option<String> {
        Some(format!("[attachment: {}]", a.filename))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline() -> Attachment {
        Attachment {
            filename: "a.txt".into(),
            mime_type: "text/plain".into(),
            size: 3,
            source: AttachmentSource::Inline(b"abc".to_vec()),
        }
    }

    fn remote() -> Attachment {
        let (_, mut r) = encrypt_attachment(b"big file").unwrap();
        r.url = "mem://x".into();
        Attachment {
            filename: "photo.jpg".into(),
            mime_type: "image/jpeg".into(),
            size: 8,
            source: AttachmentSource::Remote(r),
        }
    }

    fn streamed() -> Attachment {
        Attachment {
            filename: "film.mp4".into(),
            mime_type: "video/mp4".into(),
            size: 100 << 20,
            source: AttachmentSource::Streamed(StreamedAttachment {
                url: "atmls-ds://x".into(),
                digest: [7; 32],
                key: super::super::StreamKey::generate(),
            }),
        }
    }

    #[test]
    fn content_25a_streamed_reference_round_trip_and_truncation() {
        let a = streamed();
        let good = AttachmentCodec::encode(&a).unwrap();
        assert_eq!(AttachmentCodec::decode(&good).unwrap(), a);
        for cut in 0..good.content.len() {
            let mut e = good.clone();
            e.content.truncate(cut);
            assert!(AttachmentCodec::decode(&e).is_err(), "prefix {cut}");
        }
        let mut huge = streamed();
        huge.size = super::super::MAX_STREAM_PLAINTEXT + 1;
        assert!(AttachmentCodec::encode(&huge).is_err());
    }

    #[test]
    fn content_25_attachment_round_trip() {
        for a in [inline(), remote(), streamed()] {
            let e = AttachmentCodec::encode(&a).unwrap();
            assert_eq!(e.type_id.to_string(), "atmls.dev/attachment:1.0");
            let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
            assert_eq!(AttachmentCodec::decode(&back).unwrap(), a);
        }
    }

    #[test]
    fn content_25_attachment_rejects_malformed() {
        let good = AttachmentCodec::encode(&remote()).unwrap();
        for cut in 0..good.content.len() {
            let mut e = good.clone();
            e.content.truncate(cut);
            assert!(AttachmentCodec::decode(&e).is_err(), "prefix {cut}");
        }
        let mut e = good.clone();
        e.content.push(0);
        assert!(matches!(
            AttachmentCodec::decode(&e),
            Err(ContentError::TrailingBytes(1))
        ));
        let mut wrong_size = inline();
        wrong_size.size = 4;
        assert!(AttachmentCodec::encode(&wrong_size).is_err());
        let mut too_big = inline();
        too_big.source = AttachmentSource::Inline(vec![0; MAX_INLINE_ATTACHMENT + 1]);
        too_big.size = MAX_INLINE_ATTACHMENT as u64 + 1;
        assert!(matches!(
            AttachmentCodec::encode(&too_big),
            Err(ContentError::TooLarge { .. })
        ));
        for (name, mime) in [("", "a/b"), ("x\n", "a/b"), ("x", "nomime"), ("x", "a /b")] {
            let a = Attachment {
                filename: name.into(),
                mime_type: mime.into(),
                ..inline()
            };
            assert!(AttachmentCodec::encode(&a).is_err(), "{name:?} {mime:?}");
        }
    }

    #[test]
    fn content_25_digest_and_tag_checked() {
        let (mut ct, mut r) = encrypt_attachment(&[42u8; 1000]).unwrap();
        r.url = "x".into();
        assert_eq!(r.decrypt(&ct).unwrap(), vec![42u8; 1000]);
        ct[10] ^= 1;
        assert!(matches!(r.decrypt(&ct), Err(ContentError::DigestMismatch)));
        // A matching digest over a forged ciphertext still fails authentication.
        r.digest = Sha256::digest(&ct).into();
        assert!(matches!(
            r.decrypt(&ct),
            Err(ContentError::DecryptionFailed)
        ));
        // Fresh key and nonce every time.
        let (_, r2) = encrypt_attachment(&[42u8; 1000]).unwrap();
        assert_ne!(r.key, r2.key);
        assert_ne!(r.nonce, r2.nonce);
    }
}
