//! Read receipts and typing indicators, `atmls.dev/read-receipt:1.0` and
//! `atmls.dev/typing:1.0` (spec rules CONTENT-23 and CONTENT-24).

use super::payload::{encoded, message_id, open, Writer};
use super::{ContentCodec, ContentError, ContentTypeId, EncodedContent, MessageId};

/// "I have read everything up to and including this message."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadReceipt {
    /// The newest message read.
    pub up_to: MessageId,
}

/// Whether the sender is typing. Ephemeral: shown, never stored (CONTENT-24).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Typing {
    /// `true` when typing started, `false` when it stopped.
    pub typing: bool,
}

/// Codec for [`ReadReceipt`], content type `atmls.dev/read-receipt:1.0`. No fallback:
/// a client that does not know receipts has nothing to show.
///
/// ```rust
/// use atmls::content::{ContentCodec, MessageId, ReadReceipt, ReadReceiptCodec};
///
/// let r = ReadReceipt { up_to: MessageId::from_bytes([2; 32]) };
/// assert_eq!(ReadReceiptCodec::decode(&ReadReceiptCodec::encode(&r)?)?, r);
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadReceiptCodec;

impl ContentCodec for ReadReceiptCodec {
    type Content = ReadReceipt;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("read-receipt", 1)
    }

    fn encode(r: &ReadReceipt) -> Result<EncodedContent, ContentError> {
        let mut w = Writer::default();
        w.fixed(r.up_to.as_bytes());
        Ok(encoded(Self::content_type(), w.into_bytes(), None))
    }

    fn decode(e: &EncodedContent) -> Result<ReadReceipt, ContentError> {
        let mut r = open(&Self::content_type(), e)?;
        let up_to = message_id(&mut r)?;
        r.finish()?;
        Ok(ReadReceipt { up_to })
    }

    fn fallback(_: &ReadReceipt) -> Option<String> {
        None
    }
}

/// Codec for [`Typing`], content type `atmls.dev/typing:1.0`: one byte, 1 (typing)
/// or 0 (stopped). No fallback.
///
/// ```rust
/// use atmls::content::{ContentCodec, Typing, TypingCodec};
///
/// let e = TypingCodec::encode(&Typing { typing: true })?;
/// assert_eq!(e.content, [1]);
/// assert!(TypingCodec::decode(&e)?.typing);
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypingCodec;

impl ContentCodec for TypingCodec {
    type Content = Typing;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("typing", 1)
    }

    fn encode(t: &Typing) -> Result<EncodedContent, ContentError> {
        let mut w = Writer::default();
        w.u8(u8::from(t.typing));
        Ok(encoded(Self::content_type(), w.into_bytes(), None))
    }

    fn decode(e: &EncodedContent) -> Result<Typing, ContentError> {
        let mut r = open(&Self::content_type(), e)?;
        let typing = match r.u8()? {
            0 => false,
            1 => true,
            _ => return Err(ContentError::Malformed("typing state must be 0 or 1")),
        };
        r.finish()?;
        Ok(Typing { typing })
    }

    fn fallback(_: &Typing) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_23_read_receipt_round_trip_and_malformed() {
        let r = ReadReceipt {
            up_to: MessageId::from_bytes([8; 32]),
        };
        let e = ReadReceiptCodec::encode(&r).unwrap();
        assert_eq!(e.type_id.to_string(), "atmls.dev/read-receipt:1.0");
        assert_eq!(e.fallback, None);
        let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
        assert_eq!(ReadReceiptCodec::decode(&back).unwrap(), r);
        let mut t = e.clone();
        t.content.truncate(31);
        assert!(matches!(
            ReadReceiptCodec::decode(&t),
            Err(ContentError::Truncated)
        ));
        let mut t = e;
        t.content.push(0);
        assert!(matches!(
            ReadReceiptCodec::decode(&t),
            Err(ContentError::TrailingBytes(1))
        ));
    }

    #[test]
    fn content_24_typing_round_trip_and_malformed() {
        for typing in [true, false] {
            let e = TypingCodec::encode(&Typing { typing }).unwrap();
            assert_eq!(e.type_id.to_string(), "atmls.dev/typing:1.0");
            let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
            assert_eq!(TypingCodec::decode(&back).unwrap().typing, typing);
        }
        let mut e = TypingCodec::encode(&Typing { typing: true }).unwrap();
        e.content = vec![2];
        assert!(matches!(
            TypingCodec::decode(&e),
            Err(ContentError::Malformed(_))
        ));
        e.content = vec![];
        assert!(matches!(
            TypingCodec::decode(&e),
            Err(ContentError::Truncated)
        ));
        e.content = vec![1, 1];
        assert!(matches!(
            TypingCodec::decode(&e),
            Err(ContentError::TrailingBytes(1))
        ));
    }
}
