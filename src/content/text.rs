//! The plain text codec, `atmls.dev/text:1.0` (spec rule CONTENT-14).

use std::collections::BTreeMap;

use super::{ContentCodec, ContentError, ContentTypeId, EncodedContent};

/// Codec for plain UTF-8 text, content type `atmls.dev/text:1.0`.
///
/// Text needs no fallback: it is its own fallback.
///
/// ```rust
/// use atmls::content::{ContentCodec, EncodedContent, TextCodec};
///
/// let encoded = TextCodec::encode(&"hello 👋".to_string())?;
/// assert_eq!(encoded.type_id.to_string(), "atmls.dev/text:1.0");
/// assert_eq!(encoded.parameters.get("encoding").map(String::as_str), Some("UTF-8"));
///
/// let bytes = encoded.to_bytes()?;
/// let received = EncodedContent::from_bytes(&bytes)?;
/// assert_eq!(TextCodec::decode(&received)?, "hello 👋");
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextCodec;

impl TextCodec {
    /// The parameter naming the character encoding.
    pub const ENCODING_PARAMETER: &'static str = "encoding";
    /// The only supported value of [`ENCODING_PARAMETER`](Self::ENCODING_PARAMETER).
    pub const UTF_8: &'static str = "UTF-8";

    /// Encodes owned text without copying it.
    pub(crate) fn encode_string(text: String) -> EncodedContent {
        let mut parameters = BTreeMap::new();
        parameters.insert(Self::ENCODING_PARAMETER.to_owned(), Self::UTF_8.to_owned());
        EncodedContent {
            type_id: ContentTypeId::text(),
            parameters,
            fallback: None,
            compression: None,
            content: text.into_bytes(),
        }
    }
}

impl ContentCodec for TextCodec {
    type Content = String;

    fn content_type() -> ContentTypeId {
        ContentTypeId::text()
    }

    fn encode(content: &String) -> Result<EncodedContent, ContentError> {
        Ok(Self::encode_string(content.clone()))
    }

    /// Checks the type id (same major version), that there is no
    /// compression, that `encoding` is absent or `UTF-8`, and that the bytes
    /// are valid UTF-8 (CONTENT-14).
    fn decode(encoded: &EncodedContent) -> Result<String, ContentError> {
        Self::content_type().require_compatible(&encoded.type_id)?;
        if let Some(compression) = encoded.compression {
            return Err(ContentError::UnsupportedCompression(compression));
        }
        if let Some(encoding) = encoded.parameters.get(Self::ENCODING_PARAMETER) {
            if !encoding.eq_ignore_ascii_case(Self::UTF_8) {
                return Err(ContentError::InvalidParameter(format!(
                    "unsupported text encoding {encoding:?}"
                )));
            }
        }
        String::from_utf8(encoded.content.clone())
            .map_err(|_| ContentError::InvalidUtf8("text content"))
    }

    fn fallback(_content: &String) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::Compression;
    use super::*;

    #[test]
    fn content_14_round_trip() {
        for text in ["", "hello", "héllo ✓ 👋", "line\nbreak\0nul"] {
            let encoded = TextCodec::encode(&text.to_owned()).unwrap();
            assert_eq!(encoded.type_id, ContentTypeId::text());
            assert_eq!(encoded.parameters.len(), 1);
            assert_eq!(encoded.parameters["encoding"], "UTF-8");
            assert_eq!(encoded.fallback, None);
            assert_eq!(encoded.compression, None);
            assert_eq!(encoded.content, text.as_bytes());
            let bytes = encoded.to_bytes().unwrap();
            let back = EncodedContent::from_bytes(&bytes).unwrap();
            assert_eq!(TextCodec::decode(&back).unwrap(), text);
        }
        assert_eq!(TextCodec::fallback(&"x".to_owned()), None);
        assert_eq!(TextCodec::content_type().to_string(), "atmls.dev/text:1.0");
    }

    #[test]
    fn content_14_rejects_invalid_utf8() {
        for raw in [&b"\xff"[..], b"ok\xc3", b"\xed\xa0\x80", b"\xc0\x80"] {
            let mut encoded = TextCodec::encode_string(String::new());
            encoded.content = raw.to_vec();
            // Still a valid EncodedContent on the wire ...
            let bytes = encoded.to_bytes().unwrap();
            let back = EncodedContent::from_bytes(&bytes).unwrap();
            // ... but not valid text.
            assert!(matches!(
                TextCodec::decode(&back),
                Err(ContentError::InvalidUtf8(_))
            ));
        }
    }

    #[test]
    fn content_14_accepts_minor_versions_and_missing_encoding() {
        let mut encoded = TextCodec::encode_string("hi".into());
        encoded.type_id = "atmls.dev/text:1.9".parse().unwrap();
        assert_eq!(TextCodec::decode(&encoded).unwrap(), "hi");
        encoded.parameters.clear();
        assert_eq!(TextCodec::decode(&encoded).unwrap(), "hi");
        encoded.parameters.insert("encoding".into(), "utf-8".into());
        assert_eq!(TextCodec::decode(&encoded).unwrap(), "hi");
        encoded
            .parameters
            .insert("x-extra".into(), "ignored".into());
        assert_eq!(TextCodec::decode(&encoded).unwrap(), "hi");
    }

    #[test]
    fn content_14_rejects_other_major_versions_and_types() {
        for id in [
            "atmls.dev/text:0.0",
            "atmls.dev/text:2.0",
            "atmls.dev/markdown:1.0",
            "other.dev/text:1.0",
        ] {
            let mut encoded = TextCodec::encode_string("hi".into());
            encoded.type_id = id.parse().unwrap();
            assert!(
                matches!(
                    TextCodec::decode(&encoded),
                    Err(ContentError::TypeMismatch { .. })
                ),
                "{id}"
            );
        }
    }

    #[test]
    fn content_14_rejects_other_encodings_and_compression() {
        let mut encoded = TextCodec::encode_string("hi".into());
        encoded
            .parameters
            .insert("encoding".into(), "UTF-16".into());
        assert!(matches!(
            TextCodec::decode(&encoded),
            Err(ContentError::InvalidParameter(_))
        ));

        let mut encoded = TextCodec::encode_string("hi".into());
        encoded.compression = Some(Compression::Gzip);
        assert!(matches!(
            TextCodec::decode(&encoded),
            Err(ContentError::UnsupportedCompression(Compression::Gzip))
        ));
    }
}
