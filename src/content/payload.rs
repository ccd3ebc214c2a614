//! Helpers shared by the codecs: a writer for codec payloads (the same TLS
//! presentation language as `EncodedContent`, CONTENT-6/7), the checks every
//! codec makes before decoding, the bounds-checked reader every decoder uses, and the
//! parsing of a [`MessageId`] (CONTENT-18).

use std::str::FromStr;

use super::{ContentError, ContentTypeId, EncodedContent, MessageId};

/// Largest `<V>` vector length that RFC 9420 variable-length integers can carry.
const MAX_VECTOR_LEN: usize = (1 << 30) - 1;

/// Builds a codec payload.
#[derive(Default)]
pub(super) struct Writer(Vec<u8>);

impl Writer {
    pub(super) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub(super) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(super) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// `opaque data[N]`.
    pub(super) fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }

    /// `opaque data<V>` with the shortest length prefix (CONTENT-7).
    pub(super) fn opaque(&mut self, v: &[u8]) -> Result<&mut Self, ContentError> {
        let len = v.len();
        if len > MAX_VECTOR_LEN {
            return Err(ContentError::TooLarge {
                len,
                max: MAX_VECTOR_LEN,
            });
        }
        // Lengths are below 2^30, so these casts keep every bit.
        if len <= 0x3f {
            self.0.push(len as u8);
        } else if len <= 0x3fff {
            self.0
                .extend_from_slice(&((len as u16) | 0x4000).to_be_bytes());
        } else {
            self.0
                .extend_from_slice(&((len as u32) | 0x8000_0000).to_be_bytes());
        }
        self.0.extend_from_slice(v);
        Ok(self)
    }

    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// The checks every codec makes first: a compatible type id (CONTENT-5) and no
/// compression (CONTENT-10). Returns a reader over the payload.
pub(super) fn open<'a>(
    expected: &ContentTypeId,
    encoded: &'a EncodedContent,
) -> Result<Reader<'a>, ContentError> {
    expected.require_compatible(&encoded.type_id)?;
    if let Some(c) = encoded.compression {
        return Err(ContentError::UnsupportedCompression(c));
    }
    Ok(Reader::new(&encoded.content))
}

pub(super) fn utf8(bytes: &[u8], field: &'static str) -> Result<String, ContentError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| ContentError::InvalidUtf8(field))
}

/// Content of `type_id` with the given payload and fallback.
pub(super) fn encoded(
    type_id: ContentTypeId,
    payload: Vec<u8>,
    fallback: Option<String>,
) -> EncodedContent {
    let mut e = EncodedContent::new(type_id, payload);
    e.fallback = fallback;
    e
}

/// Reads a message id (`opaque id[32]`).
pub(super) fn message_id(r: &mut Reader<'_>) -> Result<MessageId, ContentError> {
    Ok(MessageId(r.fixed::<32>()?))
}

impl FromStr for MessageId {
    type Err = ContentError;

    /// Parses 64 hex digits.
    fn from_str(s: &str) -> Result<Self, ContentError> {
        let bytes = hex::decode(s).map_err(|_| ContentError::Malformed("message id is not hex"))?;
        bytes
            .try_into()
            .map(MessageId)
            .map_err(|_| ContentError::Malformed("message id must be 32 bytes"))
    }
}

/// A bounds-checked cursor over untrusted bytes. Never panics.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], ContentError> {
        let (head, tail) = self
            .buf
            .split_at_checked(n)
            .ok_or(ContentError::Truncated)?;
        self.buf = tail;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, ContentError> {
        let (&b, tail) = self.buf.split_first().ok_or(ContentError::Truncated)?;
        self.buf = tail;
        Ok(b)
    }

    pub(super) fn u32(&mut self) -> Result<u32, ContentError> {
        let raw: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| ContentError::Truncated)?;
        Ok(u32::from_be_bytes(raw))
    }

    /// CONTENT-7: an RFC 9420 variable-length integer, minimally encoded.
    pub(super) fn varint(&mut self) -> Result<usize, ContentError> {
        let first = self.u8()?;
        let extra_bytes = match first >> 6 {
            0 => 0,
            1 => 1,
            2 => 3,
            _ => return Err(ContentError::Malformed("length prefix 0b11 is reserved")),
        };
        let mut value = u32::from(first & 0x3f);
        for _ in 0..extra_bytes {
            value = (value << 8) | u32::from(self.u8()?);
        }
        let minimal = match extra_bytes {
            0 => true,
            1 => value > 0x3f,
            _ => value > 0x3fff,
        };
        if !minimal {
            return Err(ContentError::NonCanonical(
                "length is not minimally encoded",
            ));
        }
        usize::try_from(value).map_err(|_| ContentError::Malformed("length does not fit in memory"))
    }

    /// `opaque data<V>`: a varint byte length followed by that many bytes.
    pub(super) fn opaque(&mut self) -> Result<&'a [u8], ContentError> {
        let len = self.varint()?;
        self.take(len)
    }

    pub(super) fn u64(&mut self) -> Result<u64, ContentError> {
        let raw: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| ContentError::Truncated)?;
        Ok(u64::from_be_bytes(raw))
    }

    /// `opaque data[N]`: exactly `N` bytes.
    pub(super) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], ContentError> {
        self.take(N)?
            .try_into()
            .map_err(|_| ContentError::Truncated)
    }

    /// Everything not read yet, consuming it.
    pub(super) fn rest(self) -> &'a [u8] {
        self.buf
    }

    /// Fails with [`ContentError::TrailingBytes`] unless everything was read (CONTENT-12).
    pub(super) fn finish(&self) -> Result<(), ContentError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ContentError::TrailingBytes(self.buf.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn content_18_message_id_is_deterministic_and_bound_to_bytes() {
        let a = MessageId::from_mls_message(b"abc");
        assert_eq!(a, MessageId::from_mls_message(b"abc"));
        assert_ne!(a, MessageId::from_mls_message(b"abd"));
        assert_eq!(a.to_string().len(), 64);
        assert_eq!(a.to_string().parse::<MessageId>().unwrap(), a);
        assert!("zz".parse::<MessageId>().is_err());
        assert!("abcd".parse::<MessageId>().is_err());
        // Pinned value: SHA-256(u32be(19) || "atmls/v1/message-id" || "abc").
        let mut h = Sha256::new();
        h.update([0, 0, 0, 19]);
        h.update(b"atmls/v1/message-id");
        h.update(b"abc");
        assert_eq!(a.as_bytes()[..], h.finalize()[..]);
    }

    #[test]
    fn content_7_writer_uses_shortest_lengths() {
        for (len, prefix) in [
            (0usize, vec![0u8]),
            (63, vec![63]),
            (64, vec![0x40, 64]),
            (16383, vec![0x7f, 0xff]),
            (16384, vec![0x80, 0, 0x40, 0]),
        ] {
            let mut w = Writer::default();
            w.opaque(&vec![7u8; len]).unwrap();
            let bytes = w.into_bytes();
            assert_eq!(&bytes[..prefix.len()], &prefix[..], "{len}");
            let mut r = Reader::new(&bytes);
            assert_eq!(r.opaque().unwrap().len(), len);
            r.finish().unwrap();
        }
    }
}
