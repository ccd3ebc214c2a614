//! Markdown, `atmls.dev/markdown:1.0` (spec rule CONTENT-17).

use super::payload::{encoded, open, utf8};
use super::{ContentCodec, ContentError, ContentTypeId, EncodedContent};

/// Codec for CommonMark text, content type `atmls.dev/markdown:1.0`.
///
/// The content is the markdown source as UTF-8; the fallback is the same
/// source, so a client without markdown support shows the raw text.
///
/// ```rust
/// use atmls::content::{Content, ContentCodec, EncodedContent, MarkdownCodec};
///
/// let encoded = MarkdownCodec::encode(&"**bold** move".to_string())?;
/// let received = EncodedContent::from_bytes(&encoded.to_bytes()?)?;
/// assert_eq!(Content::decode(&received), Content::Markdown("**bold** move".into()));
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkdownCodec;

impl ContentCodec for MarkdownCodec {
    type Content = String;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("markdown", 1)
    }

    fn encode(content: &String) -> Result<EncodedContent, ContentError> {
        Ok(encoded(
            Self::content_type(),
            content.as_bytes().to_vec(),
            Self::fallback(content),
        ))
    }

    fn decode(encoded: &EncodedContent) -> Result<String, ContentError> {
        let r = open(&Self::content_type(), encoded)?;
        utf8(r.rest(), "markdown content")
    }

    fn fallback(content: &String) -> Option<String> {
        Some(content.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_17_markdown_round_trip() {
        for md in ["", "# title\n\n*x*", "emoji 👋"] {
            let e = MarkdownCodec::encode(&md.to_owned()).unwrap();
            assert_eq!(e.type_id.to_string(), "atmls.dev/markdown:1.0");
            assert_eq!(e.fallback.as_deref(), Some(md));
            let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
            assert_eq!(MarkdownCodec::decode(&back).unwrap(), md);
        }
    }

    #[test]
    fn content_17_markdown_rejects_malformed() {
        let mut e = MarkdownCodec::encode(&"x".to_owned()).unwrap();
        e.content = vec![0xff];
        assert!(matches!(
            MarkdownCodec::decode(&e),
            Err(ContentError::InvalidUtf8(_))
        ));
        let mut e = MarkdownCodec::encode(&"x".to_owned()).unwrap();
        e.type_id = "atmls.dev/markdown:2.0".parse().unwrap();
        assert!(matches!(
            MarkdownCodec::decode(&e),
            Err(ContentError::TypeMismatch { .. })
        ));
    }
}
