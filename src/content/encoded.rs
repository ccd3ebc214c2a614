//! [`EncodedContent`] and its wire encoding, spec rules CONTENT-6 to CONTENT-13.
//!
//! Encoding uses `tls_codec` derives on an internal wire struct. Decoding is a
//! small hand-written strict parser for the same structure, because
//! `tls_codec` 0.4's vector decoding trips `debug_assert!`s (panics in debug
//! builds) on truncated input and on the reserved `0b11` length prefix, and its
//! `Read`-based path allocates whatever length the input claims. A test checks
//! that both decoders agree on valid encodings, and [`EncodedContent::from_bytes`]
//! re-encodes what it parsed to make sure only canonical bytes are accepted.

use std::collections::BTreeMap;

use tls_codec::{Serialize as _, Size as _, TlsSerialize, TlsSize, VLBytes};

pub(super) use super::payload::Reader;
use super::{ContentError, ContentTypeId};

/// Largest accepted encoded content, in bytes: 1 MiB (CONTENT-11).
pub const MAX_ENCODED_CONTENT_LEN: usize = 1 << 20;

/// Most parameters one [`EncodedContent`] may carry (CONTENT-8).
pub const MAX_PARAMETERS: usize = 64;

/// Longest parameter key, in bytes (CONTENT-8).
pub const MAX_PARAMETER_KEY_LEN: usize = 64;

/// The wire format version this crate writes and reads (CONTENT-6).
pub const ENCODED_CONTENT_VERSION: u8 = 1;

/// How [`EncodedContent::content`] is compressed (CONTENT-10).
///
/// The code points are fixed so the wire format is stable, but this crate does
/// not implement any compression yet: the built-in codecs reject compressed
/// content with [`ContentError::UnsupportedCompression`], which
/// [`Content::decode`](super::Content::decode) turns into the fallback text.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// DEFLATE (RFC 1951), wire code 1.
    Deflate,
    /// gzip (RFC 1952), wire code 2.
    Gzip,
}

impl Compression {
    /// The wire code of this algorithm (0 on the wire means uncompressed).
    pub fn code(self) -> u8 {
        match self {
            Compression::Deflate => 1,
            Compression::Gzip => 2,
        }
    }

    /// Maps a wire code to a compression setting; unknown codes are rejected.
    fn from_code(code: u8) -> Result<Option<Self>, ContentError> {
        match code {
            0 => Ok(None),
            1 => Ok(Some(Compression::Deflate)),
            2 => Ok(Some(Compression::Gzip)),
            other => Err(ContentError::UnknownCompression(other)),
        }
    }
}

/// A typed, self-describing piece of content, ready to be encrypted and sent.
///
/// Codecs such as [`TextCodec`](super::TextCodec) produce and consume it;
/// [`to_bytes`](Self::to_bytes) and [`from_bytes`](Self::from_bytes) convert
/// it to and from its canonical wire form (see `spec/content.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedContent {
    /// What kind of content this is.
    pub type_id: ContentTypeId,
    /// Codec-specific parameters, e.g. `encoding=UTF-8` (CONTENT-8).
    pub parameters: BTreeMap<String, String>,
    /// Human-readable text to show if the receiver cannot decode the content.
    pub fallback: Option<String>,
    /// How `content` is compressed; `None` means uncompressed.
    pub compression: Option<Compression>,
    /// The encoded payload, interpreted according to `type_id`.
    pub content: Vec<u8>,
}

// Wire structs (CONTENT-6). Field order and types are the wire format.

#[derive(Debug, TlsSerialize, TlsSize)]
#[cfg_attr(test, derive(tls_codec::TlsDeserializeBytes))]
struct WireTypeId {
    authority: VLBytes,
    type_id: VLBytes,
    version_major: u32,
    version_minor: u32,
}

#[derive(Debug, TlsSerialize, TlsSize)]
#[cfg_attr(test, derive(tls_codec::TlsDeserializeBytes))]
struct WireParameter {
    key: VLBytes,
    value: VLBytes,
}

#[derive(Debug, TlsSerialize, TlsSize)]
#[cfg_attr(test, derive(tls_codec::TlsDeserializeBytes))]
struct WireEncodedContent {
    version: u8,
    type_id: WireTypeId,
    parameters: Vec<WireParameter>,
    fallback: Option<VLBytes>,
    compression: u8,
    content: VLBytes,
}

fn bytes_of(s: &str) -> VLBytes {
    VLBytes::new(s.as_bytes().to_vec())
}

impl EncodedContent {
    /// Content of the given type with no parameters, fallback or compression.
    pub fn new(type_id: ContentTypeId, content: Vec<u8>) -> Self {
        Self {
            type_id,
            parameters: BTreeMap::new(),
            fallback: None,
            compression: None,
            content,
        }
    }

    /// Encodes to the canonical wire form (CONTENT-6 to CONTENT-11).
    ///
    /// Fails if a parameter is invalid or the result would exceed
    /// [`MAX_ENCODED_CONTENT_LEN`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, ContentError> {
        validate_parameters(&self.parameters)?;
        // Cheap early exit before copying a huge payload.
        if self.content.len() > MAX_ENCODED_CONTENT_LEN {
            return Err(ContentError::TooLarge {
                len: self.content.len(),
                max: MAX_ENCODED_CONTENT_LEN,
            });
        }
        let wire = WireEncodedContent {
            version: ENCODED_CONTENT_VERSION,
            type_id: WireTypeId {
                authority: bytes_of(self.type_id.authority()),
                type_id: bytes_of(self.type_id.type_id()),
                version_major: self.type_id.version_major(),
                version_minor: self.type_id.version_minor(),
            },
            parameters: self
                .parameters
                .iter()
                .map(|(key, value)| WireParameter {
                    key: bytes_of(key),
                    value: bytes_of(value),
                })
                .collect(),
            fallback: self.fallback.as_deref().map(bytes_of),
            compression: self.compression.map_or(0, Compression::code),
            content: VLBytes::new(self.content.clone()),
        };
        let len = wire.tls_serialized_len();
        if len > MAX_ENCODED_CONTENT_LEN {
            return Err(ContentError::TooLarge {
                len,
                max: MAX_ENCODED_CONTENT_LEN,
            });
        }
        wire.tls_serialize_detached()
            .map_err(|e| ContentError::Encode(e.to_string()))
    }

    /// Decodes untrusted bytes produced by [`to_bytes`](Self::to_bytes).
    ///
    /// Accepts exactly the canonical encodings: wrong version, truncation,
    /// trailing bytes, bad lengths, invalid type ids, parameters or UTF-8,
    /// unknown compression codes and inputs over [`MAX_ENCODED_CONTENT_LEN`]
    /// are all errors (CONTENT-6 to CONTENT-13).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContentError> {
        if bytes.len() > MAX_ENCODED_CONTENT_LEN {
            return Err(ContentError::TooLarge {
                len: bytes.len(),
                max: MAX_ENCODED_CONTENT_LEN,
            });
        }
        let mut r = Reader::new(bytes);

        let version = r.u8()?;
        if version != ENCODED_CONTENT_VERSION {
            return Err(ContentError::UnsupportedVersion(version));
        }

        let authority = utf8(r.opaque()?, "content type authority")?;
        let type_name = utf8(r.opaque()?, "content type name")?;
        let version_major = r.u32()?;
        let version_minor = r.u32()?;
        let type_id = ContentTypeId::new(authority, type_name, version_major, version_minor)?;

        let mut params = Reader::new(r.opaque()?);
        let mut parameters = BTreeMap::new();
        let mut previous: Option<&str> = None;
        while !params.is_empty() {
            if parameters.len() >= MAX_PARAMETERS {
                return Err(too_many_parameters());
            }
            let key = utf8(params.opaque()?, "parameter key")?;
            let value = utf8(params.opaque()?, "parameter value")?;
            validate_parameter_key(key)?;
            if previous.is_some_and(|prev| prev >= key) {
                return Err(ContentError::NonCanonical(
                    "parameters must be sorted by key, without duplicates",
                ));
            }
            previous = Some(key);
            parameters.insert(key.to_owned(), value.to_owned());
        }

        let fallback = match r.u8()? {
            0 => None,
            1 => Some(utf8(r.opaque()?, "fallback")?.to_owned()),
            _ => {
                return Err(ContentError::Malformed(
                    "optional presence flag must be 0 or 1",
                ))
            }
        };
        let compression = Compression::from_code(r.u8()?)?;
        let content = r.opaque()?.to_vec();

        if !r.is_empty() {
            return Err(ContentError::TrailingBytes(r.remaining()));
        }

        let decoded = Self {
            type_id,
            parameters,
            fallback,
            compression,
            content,
        };
        // CONTENT-13, defence in depth: the parser above should already accept
        // only canonical bytes; make sure the encoder agrees.
        if decoded.to_bytes()? != bytes {
            return Err(ContentError::NonCanonical(
                "input differs from its canonical re-encoding",
            ));
        }
        Ok(decoded)
    }
}

fn too_many_parameters() -> ContentError {
    ContentError::InvalidParameter(format!("more than {MAX_PARAMETERS} parameters"))
}

/// CONTENT-8: keys are 1..=64 bytes of `[A-Za-z0-9._-]`.
fn validate_parameter_key(key: &str) -> Result<(), ContentError> {
    if key.is_empty() || key.len() > MAX_PARAMETER_KEY_LEN {
        return Err(ContentError::InvalidParameter(format!(
            "parameter keys must be 1 to {MAX_PARAMETER_KEY_LEN} bytes"
        )));
    }
    let ok = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if !ok {
        return Err(ContentError::InvalidParameter(format!(
            "parameter key {key:?} may contain only A-Z, a-z, 0-9, '.', '_' and '-'"
        )));
    }
    Ok(())
}

fn validate_parameters(parameters: &BTreeMap<String, String>) -> Result<(), ContentError> {
    if parameters.len() > MAX_PARAMETERS {
        return Err(too_many_parameters());
    }
    parameters
        .keys()
        .try_for_each(|k| validate_parameter_key(k))
}

fn utf8<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, ContentError> {
    std::str::from_utf8(bytes).map_err(|_| ContentError::InvalidUtf8(field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tls_codec::DeserializeBytes as _;

    fn sample() -> EncodedContent {
        let mut e = EncodedContent::new(
            "example.org/poll:2.3".parse().unwrap(),
            b"\x00\x01binary\xff".to_vec(),
        );
        e.parameters.insert("encoding".into(), "UTF-8".into());
        e.parameters.insert("Z-key_1.x".into(), "".into());
        e.parameters.insert("ref".into(), "héllo ✓".into());
        e.fallback = Some("A poll: update your app to vote".into());
        e
    }

    /// Hand-assembles the encoding of `sample_minimal()` (CONTENT-6).
    fn minimal_bytes() -> Vec<u8> {
        let mut b = vec![1u8]; // version
        b.push(9);
        b.extend_from_slice(b"atmls.dev");
        b.push(4);
        b.extend_from_slice(b"text");
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.push(15); // parameters<V>: (1 + 8) + (1 + 5) bytes
        b.push(8);
        b.extend_from_slice(b"encoding");
        b.push(5);
        b.extend_from_slice(b"UTF-8");
        b.push(0); // fallback absent
        b.push(0); // no compression
        b.push(2);
        b.extend_from_slice(b"hi");
        b
    }

    /// RFC 9420 variable-length integer, for lengths under 16384.
    fn varint(len: usize) -> Vec<u8> {
        let len = u16::try_from(len).unwrap();
        if len < 64 {
            vec![u8::try_from(len).unwrap()]
        } else {
            (len | 0x4000).to_be_bytes().to_vec()
        }
    }

    fn sample_minimal() -> EncodedContent {
        let mut e = EncodedContent::new(ContentTypeId::text(), b"hi".to_vec());
        e.parameters.insert("encoding".into(), "UTF-8".into());
        e
    }

    /// A text message whose only parameter is `key=value`, given as raw
    /// bytes so that invalid inputs can be built.
    fn with_param(key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut b = vec![1u8, 9];
        b.extend_from_slice(b"atmls.dev");
        b.push(4);
        b.extend_from_slice(b"text");
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        let mut inner = varint(key.len());
        inner.extend_from_slice(key);
        inner.extend(varint(value.len()));
        inner.extend_from_slice(value);
        b.extend(varint(inner.len()));
        b.extend(inner);
        b.extend_from_slice(&[0, 0, 2]);
        b.extend_from_slice(b"hi");
        b
    }

    #[test]
    fn content_6_round_trip() {
        for e in [
            sample(),
            sample_minimal(),
            EncodedContent::new(ContentTypeId::text(), vec![]),
        ] {
            let bytes = e.to_bytes().unwrap();
            assert_eq!(EncodedContent::from_bytes(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn content_6_exact_wire_layout() {
        assert_eq!(sample_minimal().to_bytes().unwrap(), minimal_bytes());
        assert_eq!(
            EncodedContent::from_bytes(&minimal_bytes()).unwrap(),
            sample_minimal()
        );
    }

    /// The test vector in spec/content.md (CONTENT-6, CONTENT-14).
    const TEXT_HI_HEX: &str = "01\
        09 61746d6c732e646576 04 74657874 00000001 00000000\
        0f 08 656e636f64696e67 05 5554462d38\
        00 00 02 6869";

    #[test]
    fn content_6_spec_test_vector() {
        let digits: Vec<u8> = TEXT_HI_HEX.bytes().filter(u8::is_ascii_hexdigit).collect();
        let expected: Vec<u8> = digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect();
        assert_eq!(expected.len(), 45);
        assert_eq!(expected, minimal_bytes());
        assert_eq!(
            super::super::Content::text("hi").to_bytes().unwrap(),
            expected
        );
    }

    #[test]
    fn content_6_rejects_wrong_version_byte() {
        for v in [0u8, 2, 255] {
            let mut bytes = minimal_bytes();
            bytes[0] = v;
            assert!(matches!(
                EncodedContent::from_bytes(&bytes),
                Err(ContentError::UnsupportedVersion(x)) if x == v
            ));
        }
    }

    #[test]
    fn content_6_rejects_invalid_type_id() {
        let mut bytes = minimal_bytes();
        bytes[2] = b'A'; // "Atmls.dev"
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::InvalidTypeId(_))
        ));
        let mut bytes = minimal_bytes();
        bytes[12] = b'_'; // "_ext"
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::InvalidTypeId(_))
        ));
        let mut bytes = minimal_bytes();
        bytes[2] = 0xff;
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::InvalidUtf8(_))
        ));
    }

    #[test]
    fn content_6_matches_tls_codec_decoder() {
        // Differential check: on valid encodings our strict parser and the
        // tls_codec-derived decoder read the same structure.
        for e in [sample(), sample_minimal()] {
            let bytes = e.to_bytes().unwrap();
            let wire = WireEncodedContent::tls_deserialize_exact_bytes(&bytes).unwrap();
            assert_eq!(wire.version, 1);
            assert_eq!(
                wire.type_id.authority.as_slice(),
                e.type_id.authority().as_bytes()
            );
            assert_eq!(
                wire.type_id.type_id.as_slice(),
                e.type_id.type_id().as_bytes()
            );
            assert_eq!(wire.type_id.version_major, e.type_id.version_major());
            assert_eq!(wire.type_id.version_minor, e.type_id.version_minor());
            let params: Vec<(Vec<u8>, Vec<u8>)> = wire
                .parameters
                .iter()
                .map(|p| (p.key.as_slice().to_vec(), p.value.as_slice().to_vec()))
                .collect();
            let expected: Vec<(Vec<u8>, Vec<u8>)> = e
                .parameters
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect();
            assert_eq!(params, expected);
            assert_eq!(
                wire.fallback.as_ref().map(|f| f.as_slice().to_vec()),
                e.fallback.as_ref().map(|f| f.as_bytes().to_vec())
            );
            assert_eq!(wire.compression, 0);
            assert_eq!(wire.content.as_slice(), e.content.as_slice());
        }
    }

    #[test]
    fn content_7_uses_minimal_multi_byte_lengths() {
        for len in [63usize, 64, 16383, 16384, 100_000] {
            let e = EncodedContent::new(ContentTypeId::text(), vec![b'a'; len]);
            let bytes = e.to_bytes().unwrap();
            assert_eq!(EncodedContent::from_bytes(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn content_7_rejects_non_minimal_and_reserved_lengths() {
        // authority length 9 written as two bytes (0x40 0x09).
        let mut bytes = minimal_bytes();
        bytes.splice(1..2, [0x40, 0x09]);
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::NonCanonical(_))
        ));
        // ... and as four bytes.
        let mut bytes = minimal_bytes();
        bytes.splice(1..2, [0x80, 0, 0, 0x09]);
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::NonCanonical(_))
        ));
        // 0b11 prefix (8-byte lengths) is not allowed.
        let mut bytes = minimal_bytes();
        bytes.splice(1..2, [0xc0, 0, 0, 0, 0, 0, 0, 0x09]);
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::Malformed(_))
        ));
        // A length claiming ~1 GiB just fails as truncated, without allocating.
        let mut bytes = minimal_bytes();
        let n = bytes.len();
        bytes.splice(n - 3..n, [0xbf, 0xff, 0xff, 0xff]);
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::Truncated)
        ));
    }

    #[test]
    fn content_8_parameters_round_trip_sorted() {
        let bytes = sample().to_bytes().unwrap();
        let back = EncodedContent::from_bytes(&bytes).unwrap();
        let keys: Vec<&str> = back.parameters.keys().map(String::as_str).collect();
        assert_eq!(keys, ["Z-key_1.x", "encoding", "ref"]);
    }

    #[test]
    fn content_8_rejects_unsorted_or_duplicate_parameters() {
        let two = |k1: &[u8], k2: &[u8]| {
            let mut b = vec![1u8, 9];
            b.extend_from_slice(b"atmls.dev");
            b.push(4);
            b.extend_from_slice(b"text");
            b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
            let inner = 1 + k1.len() + 1 + 1 + k2.len() + 1;
            b.push(u8::try_from(inner).unwrap());
            b.push(u8::try_from(k1.len()).unwrap());
            b.extend_from_slice(k1);
            b.push(0);
            b.push(u8::try_from(k2.len()).unwrap());
            b.extend_from_slice(k2);
            b.push(0);
            b.extend_from_slice(&[0, 0, 0]);
            b
        };
        let ok = two(b"a", b"b");
        let parsed = EncodedContent::from_bytes(&ok).unwrap();
        assert_eq!(parsed.parameters.len(), 2);
        for bad in [two(b"b", b"a"), two(b"a", b"a")] {
            assert!(matches!(
                EncodedContent::from_bytes(&bad),
                Err(ContentError::NonCanonical(_))
            ));
        }
    }

    #[test]
    fn content_8_rejects_bad_parameter_keys() {
        let long = vec![b'k'; 65];
        for key in [&b""[..], b"bad key", b"k=v", b"caf\xc3\xa9", &long] {
            let bytes = with_param(key, b"v");
            assert!(
                matches!(
                    EncodedContent::from_bytes(&bytes),
                    Err(ContentError::InvalidParameter(_))
                ),
                "{key:?}"
            );
            if let Ok(k) = std::str::from_utf8(key) {
                let mut e = sample_minimal();
                e.parameters.insert(k.to_owned(), "v".into());
                assert!(matches!(
                    e.to_bytes(),
                    Err(ContentError::InvalidParameter(_))
                ));
            }
        }
        assert!(EncodedContent::from_bytes(&with_param(&[b'k'; 64], b"v")).is_ok());
    }

    #[test]
    fn content_8_rejects_invalid_utf8_in_parameters() {
        assert!(matches!(
            EncodedContent::from_bytes(&with_param(b"\xff", b"v")),
            Err(ContentError::InvalidUtf8(_))
        ));
        assert!(matches!(
            EncodedContent::from_bytes(&with_param(b"k", b"\xc3")),
            Err(ContentError::InvalidUtf8(_))
        ));
    }

    #[test]
    fn content_8_rejects_too_many_parameters() {
        let mut e = EncodedContent::new(ContentTypeId::text(), vec![]);
        for i in 0..MAX_PARAMETERS {
            e.parameters.insert(format!("k{i:03}"), String::new());
        }
        let bytes = e.to_bytes().unwrap();
        assert_eq!(EncodedContent::from_bytes(&bytes).unwrap(), e);

        e.parameters.insert("k999".into(), String::new());
        assert!(matches!(
            e.to_bytes(),
            Err(ContentError::InvalidParameter(_))
        ));

        // Hand-build 65 parameters on the wire.
        let mut params = Vec::new();
        for i in 0..=MAX_PARAMETERS {
            let key = format!("k{i:03}");
            params.push(u8::try_from(key.len()).unwrap());
            params.extend_from_slice(key.as_bytes());
            params.push(0);
        }
        let mut b = vec![1u8, 9];
        b.extend_from_slice(b"atmls.dev");
        b.push(4);
        b.extend_from_slice(b"text");
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]);
        b.extend(varint(params.len()));
        b.extend_from_slice(&params);
        b.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(
            EncodedContent::from_bytes(&b),
            Err(ContentError::InvalidParameter(_))
        ));
    }

    #[test]
    fn content_8_rejects_parameter_crossing_vector_end() {
        // parameters<V> declares 3 bytes but the parameter inside needs 4.
        let mut bytes = with_param(b"k", b"v");
        bytes[24] = 3;
        assert!(EncodedContent::from_bytes(&bytes).is_err());
    }

    #[test]
    fn content_9_fallback_presence_and_utf8() {
        let mut e = sample_minimal();
        e.fallback = Some(String::new());
        let bytes = e.to_bytes().unwrap();
        assert_eq!(EncodedContent::from_bytes(&bytes).unwrap(), e);

        // presence flag 2
        let mut bytes = minimal_bytes();
        let n = bytes.len();
        bytes[n - 5] = 2;
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::Malformed(_))
        ));

        // fallback with invalid UTF-8
        let mut bytes = minimal_bytes();
        let n = bytes.len();
        bytes.splice(n - 5..n - 4, [1, 2, 0xc3, 0x28]);
        assert!(matches!(
            EncodedContent::from_bytes(&bytes),
            Err(ContentError::InvalidUtf8("fallback"))
        ));
    }

    #[test]
    fn content_10_compression_codes() {
        for c in [Compression::Deflate, Compression::Gzip] {
            let mut e = sample_minimal();
            e.compression = Some(c);
            let bytes = e.to_bytes().unwrap();
            assert_eq!(bytes[bytes.len() - 4], c.code());
            assert_eq!(EncodedContent::from_bytes(&bytes).unwrap(), e);
        }
        for code in [3u8, 200, 255] {
            let mut bytes = minimal_bytes();
            let n = bytes.len();
            bytes[n - 4] = code;
            assert!(matches!(
                EncodedContent::from_bytes(&bytes),
                Err(ContentError::UnknownCompression(c)) if c == code
            ));
        }
    }

    #[test]
    fn content_11_rejects_oversized() {
        // Largest content that still fits: total = 1 MiB exactly.
        let overhead = EncodedContent::new(ContentTypeId::text(), vec![])
            .to_bytes()
            .unwrap()
            .len()
            - 1 // the 1-byte empty length becomes 4 bytes
            + 4;
        let fits = EncodedContent::new(
            ContentTypeId::text(),
            vec![0; MAX_ENCODED_CONTENT_LEN - overhead],
        );
        let bytes = fits.to_bytes().unwrap();
        assert_eq!(bytes.len(), MAX_ENCODED_CONTENT_LEN);
        assert_eq!(EncodedContent::from_bytes(&bytes).unwrap(), fits);

        let too_big = EncodedContent::new(
            ContentTypeId::text(),
            vec![0; MAX_ENCODED_CONTENT_LEN - overhead + 1],
        );
        assert!(matches!(
            too_big.to_bytes(),
            Err(ContentError::TooLarge { len, max })
                if len == MAX_ENCODED_CONTENT_LEN + 1 && max == MAX_ENCODED_CONTENT_LEN
        ));
        let huge = EncodedContent::new(ContentTypeId::text(), vec![0; 2 * MAX_ENCODED_CONTENT_LEN]);
        assert!(matches!(
            huge.to_bytes(),
            Err(ContentError::TooLarge { .. })
        ));

        let mut input = bytes;
        input.push(0);
        assert!(matches!(
            EncodedContent::from_bytes(&input),
            Err(ContentError::TooLarge { .. })
        ));
    }

    #[test]
    fn content_12_rejects_truncation_at_every_prefix() {
        for e in [sample(), sample_minimal()] {
            let bytes = e.to_bytes().unwrap();
            for n in 0..bytes.len() {
                let err = EncodedContent::from_bytes(&bytes[..n]).unwrap_err();
                assert!(
                    matches!(err, ContentError::Truncated),
                    "prefix {n} of {}: {err:?}",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn content_12_rejects_trailing_bytes() {
        for extra in [&[0u8][..], &[1, 2, 3]] {
            let mut bytes = minimal_bytes();
            bytes.extend_from_slice(extra);
            assert!(matches!(
                EncodedContent::from_bytes(&bytes),
                Err(ContentError::TrailingBytes(n)) if n == extra.len()
            ));
        }
    }

    #[test]
    fn content_13_reencoding_is_identical() {
        for e in [sample(), sample_minimal()] {
            let bytes = e.to_bytes().unwrap();
            let again = EncodedContent::from_bytes(&bytes)
                .unwrap()
                .to_bytes()
                .unwrap();
            assert_eq!(again, bytes);
        }
    }

    #[test]
    fn content_13_never_panics_on_mutations() {
        // Flip every byte of a valid encoding to a few values: each result
        // either fails cleanly or, if accepted, re-encodes identically.
        let bytes = sample().to_bytes().unwrap();
        for i in 0..bytes.len() {
            for v in [0u8, 1, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff] {
                let mut m = bytes.clone();
                m[i] = v;
                if let Ok(e) = EncodedContent::from_bytes(&m) {
                    assert_eq!(e.to_bytes().unwrap(), m);
                }
            }
        }
    }
}
