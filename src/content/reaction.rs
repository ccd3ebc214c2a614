//! Reactions, `atmls.dev/reaction:1.0` (spec rule CONTENT-22).

use super::payload::{encoded, message_id, open, utf8, Writer};
use super::{ContentCodec, ContentError, ContentTypeId, EncodedContent, MessageId};

/// Longest reaction, in bytes of UTF-8 (an emoji with modifiers fits easily).
pub const MAX_REACTION_LEN: usize = 32;

/// Whether a reaction is added or taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReactionAction {
    /// Adds the reaction (wire code 1).
    Add,
    /// Removes a reaction the same account added earlier (wire code 2).
    Remove,
}

/// An emoji reaction to an earlier message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// The message reacted to.
    pub target: MessageId,
    /// Add or remove.
    pub action: ReactionAction,
    /// The reaction: 1 to [`MAX_REACTION_LEN`] bytes of UTF-8 with no
    /// whitespace or control characters.
    pub emoji: String,
}

/// Codec for [`Reaction`], content type `atmls.dev/reaction:1.0`.
///
/// ```rust
/// use atmls::content::{ContentCodec, MessageId, Reaction, ReactionAction, ReactionCodec};
///
/// let r = Reaction { target: MessageId::from_bytes([1; 32]), action: ReactionAction::Add, emoji: "🎉".into() };
/// let e = ReactionCodec::encode(&r)?;
/// assert_eq!(ReactionCodec::decode(&e)?, r);
/// assert_eq!(e.fallback.as_deref(), Some("Reacted 🎉 to a message"));
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReactionCodec;

fn check_emoji(emoji: &str) -> Result<(), ContentError> {
    if emoji.is_empty()
        || emoji.len() > MAX_REACTION_LEN
        || emoji.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ContentError::Malformed(
            "a reaction is 1 to 32 bytes with no whitespace or control characters",
        ));
    }
    Ok(())
}

impl ContentCodec for ReactionCodec {
    type Content = Reaction;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("reaction", 1)
    }

    fn encode(r: &Reaction) -> Result<EncodedContent, ContentError> {
        check_emoji(&r.emoji)?;
        let mut w = Writer::default();
        w.fixed(r.target.as_bytes())
            .u8(match r.action {
                ReactionAction::Add => 1,
                ReactionAction::Remove => 2,
            })
            .opaque(r.emoji.as_bytes())?;
        Ok(encoded(
            Self::content_type(),
            w.into_bytes(),
            Self::fallback(r),
        ))
    }

    fn decode(e: &EncodedContent) -> Result<Reaction, ContentError> {
        let mut r = open(&Self::content_type(), e)?;
        let target = message_id(&mut r)?;
        let action = match r.u8()? {
            1 => ReactionAction::Add,
            2 => ReactionAction::Remove,
            _ => return Err(ContentError::Malformed("reaction action must be 1 or 2")),
        };
        let emoji = utf8(r.opaque()?, "reaction")?;
        r.finish()?;
        check_emoji(&emoji)?;
        Ok(Reaction {
            target,
            action,
            emoji,
        })
    }

    fn fallback(r: &Reaction) -> Option<String> {
        Some(match r.action {
            ReactionAction::Add => format!("Reacted {} to a message", r.emoji),
            ReactionAction::Remove => format!("Removed the reaction {}", r.emoji),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(action: ReactionAction) -> Reaction {
        Reaction {
            target: MessageId::from_bytes([5; 32]),
            action,
            emoji: "👍🏽".into(),
        }
    }

    #[test]
    fn content_22_reaction_round_trip() {
        for action in [ReactionAction::Add, ReactionAction::Remove] {
            let e = ReactionCodec::encode(&sample(action)).unwrap();
            assert_eq!(e.type_id.to_string(), "atmls.dev/reaction:1.0");
            let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
            assert_eq!(ReactionCodec::decode(&back).unwrap(), sample(action));
        }
    }

    #[test]
    fn content_22_reaction_rejects_malformed() {
        let good = ReactionCodec::encode(&sample(ReactionAction::Add)).unwrap();
        for cut in 0..good.content.len() {
            let mut e = good.clone();
            e.content.truncate(cut);
            assert!(ReactionCodec::decode(&e).is_err(), "prefix {cut}");
        }
        let mut e = good.clone();
        e.content.push(0);
        assert!(matches!(
            ReactionCodec::decode(&e),
            Err(ContentError::TrailingBytes(1))
        ));
        let mut e = good.clone();
        e.content[32] = 3;
        assert!(matches!(
            ReactionCodec::decode(&e),
            Err(ContentError::Malformed(_))
        ));
        for bad in ["", "a b", "\u{7}", &"x".repeat(33)] {
            let r = Reaction {
                emoji: bad.into(),
                ..sample(ReactionAction::Add)
            };
            assert!(ReactionCodec::encode(&r).is_err(), "{bad:?}");
        }
        let mut e = good;
        let n = e.content.len();
        e.content[n - 1] = 0xff; // breaks the UTF-8 of the emoji
        assert!(matches!(
            ReactionCodec::decode(&e),
            Err(ContentError::InvalidUtf8(_))
        ));
    }
}
