//! Replies, `atmls.dev/reply:1.0` (spec rule CONTENT-19).

use super::payload::{encoded, message_id, open, Writer};
use super::{Content, ContentCodec, ContentError, ContentTypeId, EncodedContent, MessageId};

/// A reply: content that refers to an earlier message of the same group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The message replied to.
    pub in_reply_to: MessageId,
    /// What the reply says: any displayable content (CONTENT-19), not a
    /// reaction, receipt, typing indicator, edit, delete, reply or group update.
    pub content: EncodedContent,
}

impl Reply {
    /// The reply's own content, decoded for display.
    pub fn decoded(&self) -> Content {
        Content::decode(&self.content)
    }
}

/// Codec for [`Reply`], content type `atmls.dev/reply:1.0`.
///
/// ```rust
/// use atmls::content::{Content, ContentCodec, EncodedContent, MessageId, Reply, ReplyCodec};
///
/// let reply = Reply { in_reply_to: MessageId::from_bytes([7; 32]), content: Content::text("yes!") };
/// let bytes = ReplyCodec::encode(&reply)?.to_bytes()?;
/// let back = ReplyCodec::decode(&EncodedContent::from_bytes(&bytes)?)?;
/// assert_eq!(back, reply);
/// assert_eq!(back.decoded(), Content::Text("yes!".into()));
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCodec;

/// Writes `opaque target[32]; opaque content<V>` (shared with edits).
pub(super) fn write_target_and_content(
    target: &MessageId,
    content: &EncodedContent,
) -> Result<Vec<u8>, ContentError> {
    require_displayable(content)?;
    let mut w = Writer::default();
    w.fixed(target.as_bytes()).opaque(&content.to_bytes()?)?;
    Ok(w.into_bytes())
}

/// Reads what [`write_target_and_content`] wrote, with the nested content checked.
pub(super) fn read_target_and_content(
    expected: &ContentTypeId,
    e: &EncodedContent,
) -> Result<(MessageId, EncodedContent), ContentError> {
    let mut r = open(expected, e)?;
    let target = message_id(&mut r)?;
    let inner = EncodedContent::from_bytes(r.opaque()?)?;
    r.finish()?;
    require_displayable(&inner)?;
    Ok((target, inner))
}

/// CONTENT-19: nested content must be something a timeline can show.
fn require_displayable(inner: &EncodedContent) -> Result<(), ContentError> {
    if super::is_control_type(&inner.type_id) {
        return Err(ContentError::Malformed(
            "nested content must be displayable, not a control type",
        ));
    }
    Ok(())
}

impl ContentCodec for ReplyCodec {
    type Content = Reply;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("reply", 1)
    }

    fn encode(reply: &Reply) -> Result<EncodedContent, ContentError> {
        Ok(encoded(
            Self::content_type(),
            write_target_and_content(&reply.in_reply_to, &reply.content)?,
            Self::fallback(reply),
        ))
    }

    fn decode(e: &EncodedContent) -> Result<Reply, ContentError> {
        let (in_reply_to, content) = read_target_and_content(&Self::content_type(), e)?;
        Ok(Reply {
            in_reply_to,
            content,
        })
    }

    fn fallback(reply: &Reply) -> Option<String> {
        let said = reply.decoded().summary().unwrap_or_default();
        Some(format!("Replied to an earlier message: {said}"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MarkdownCodec, ReactionCodec};
    use super::*;

    fn sample() -> Reply {
        Reply {
            in_reply_to: MessageId::from_bytes([3; 32]),
            content: Content::text("sure"),
        }
    }

    #[test]
    fn content_19_reply_round_trip() {
        let e = ReplyCodec::encode(&sample()).unwrap();
        assert_eq!(e.type_id.to_string(), "atmls.dev/reply:1.0");
        assert_eq!(
            e.fallback.as_deref(),
            Some("Replied to an earlier message: sure")
        );
        let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
        assert_eq!(ReplyCodec::decode(&back).unwrap(), sample());
        let md = Reply {
            content: MarkdownCodec::encode(&"*x*".into()).unwrap(),
            ..sample()
        };
        assert_eq!(
            ReplyCodec::decode(&ReplyCodec::encode(&md).unwrap()).unwrap(),
            md
        );
    }

    #[test]
    fn content_19_reply_rejects_malformed_and_trailing() {
        let good = ReplyCodec::encode(&sample()).unwrap();
        for cut in 0..good.content.len() {
            let mut e = good.clone();
            e.content.truncate(cut);
            assert!(ReplyCodec::decode(&e).is_err(), "prefix {cut}");
        }
        let mut e = good.clone();
        e.content.push(0);
        assert!(matches!(
            ReplyCodec::decode(&e),
            Err(ContentError::TrailingBytes(1))
        ));
    }

    #[test]
    fn content_19_reply_rejects_control_content() {
        let reaction = ReactionCodec::encode(&super::super::Reaction {
            target: MessageId::from_bytes([1; 32]),
            action: super::super::ReactionAction::Add,
            emoji: "👍".into(),
        })
        .unwrap();
        let bad = Reply {
            content: reaction.clone(),
            ..sample()
        };
        assert!(ReplyCodec::encode(&bad).is_err());
        // Hand-built on the wire, too.
        let mut w = Writer::default();
        w.fixed(&[0; 32])
            .opaque(&reaction.to_bytes().unwrap())
            .unwrap();
        let e = encoded(ReplyCodec::content_type(), w.into_bytes(), None);
        assert!(matches!(
            ReplyCodec::decode(&e),
            Err(ContentError::Malformed(_))
        ));
    }
}
