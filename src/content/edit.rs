//! Edits and deletes, `atmls.dev/edit:1.0` and `atmls.dev/delete:1.0` (spec
//! rules CONTENT-20 and CONTENT-21; who may send them is CONTENT-26).

use super::payload::{encoded, message_id, open, Writer};
use super::reply::{read_target_and_content, write_target_and_content};
use super::{Content, ContentCodec, ContentError, ContentTypeId, EncodedContent, MessageId};

/// Replaces the content of an earlier message; only its author may send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The message edited.
    pub target: MessageId,
    /// Its new content (displayable, as for replies).
    pub content: EncodedContent,
}

/// Deletes an earlier message: its author, or whoever the moderation hook allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delete {
    /// The message deleted.
    pub target: MessageId,
}

/// Codec for [`Edit`], content type `atmls.dev/edit:1.0`.
///
/// ```rust
/// use atmls::content::{Content, ContentCodec, Edit, EditCodec, MessageId};
///
/// let edit = Edit { target: MessageId::from_bytes([1; 32]), content: Content::text("fixed typo") };
/// let e = EditCodec::encode(&edit)?;
/// assert_eq!(EditCodec::decode(&e)?, edit);
/// assert_eq!(e.fallback.as_deref(), Some("Edited a message: fixed typo"));
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EditCodec;

impl ContentCodec for EditCodec {
    type Content = Edit;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("edit", 1)
    }

    fn encode(edit: &Edit) -> Result<EncodedContent, ContentError> {
        Ok(encoded(
            Self::content_type(),
            write_target_and_content(&edit.target, &edit.content)?,
            Self::fallback(edit),
        ))
    }

    fn decode(e: &EncodedContent) -> Result<Edit, ContentError> {
        let (target, content) = read_target_and_content(&Self::content_type(), e)?;
        Ok(Edit { target, content })
    }

    fn fallback(edit: &Edit) -> Option<String> {
        let text = Content::decode(&edit.content).summary().unwrap_or_default();
        Some(format!("Edited a message: {text}"))
    }
}

/// Codec for [`Delete`], content type `atmls.dev/delete:1.0`.
///
/// ```rust
/// use atmls::content::{ContentCodec, Delete, DeleteCodec, MessageId};
///
/// let del = Delete { target: MessageId::from_bytes([1; 32]) };
/// assert_eq!(DeleteCodec::decode(&DeleteCodec::encode(&del)?)?, del);
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteCodec;

impl ContentCodec for DeleteCodec {
    type Content = Delete;

    fn content_type() -> ContentTypeId {
        ContentTypeId::atmls("delete", 1)
    }

    fn encode(d: &Delete) -> Result<EncodedContent, ContentError> {
        let mut w = Writer::default();
        w.fixed(d.target.as_bytes());
        Ok(encoded(
            Self::content_type(),
            w.into_bytes(),
            Self::fallback(d),
        ))
    }

    fn decode(e: &EncodedContent) -> Result<Delete, ContentError> {
        let mut r = open(&Self::content_type(), e)?;
        let target = message_id(&mut r)?;
        r.finish()?;
        Ok(Delete { target })
    }

    fn fallback(_: &Delete) -> Option<String> {
        Some("Deleted a message".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit() -> Edit {
        Edit {
            target: MessageId::from_bytes([9; 32]),
            content: Content::text("new"),
        }
    }

    #[test]
    fn content_20_edit_round_trip_and_malformed() {
        let e = EditCodec::encode(&edit()).unwrap();
        assert_eq!(e.type_id.to_string(), "atmls.dev/edit:1.0");
        let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
        assert_eq!(EditCodec::decode(&back).unwrap(), edit());
        for cut in 0..e.content.len() {
            let mut t = e.clone();
            t.content.truncate(cut);
            assert!(EditCodec::decode(&t).is_err());
        }
        let mut t = e.clone();
        t.content.extend_from_slice(b"xx");
        assert!(matches!(
            EditCodec::decode(&t),
            Err(ContentError::TrailingBytes(2))
        ));
        let nested_edit = Edit {
            content: e.clone(),
            ..edit()
        };
        assert!(EditCodec::encode(&nested_edit).is_err());
    }

    #[test]
    fn content_21_delete_round_trip_and_malformed() {
        let d = Delete {
            target: MessageId::from_bytes([4; 32]),
        };
        let e = DeleteCodec::encode(&d).unwrap();
        assert_eq!(e.type_id.to_string(), "atmls.dev/delete:1.0");
        assert_eq!(e.content.len(), 32);
        let back = EncodedContent::from_bytes(&e.to_bytes().unwrap()).unwrap();
        assert_eq!(DeleteCodec::decode(&back).unwrap(), d);
        let mut t = e.clone();
        t.content.pop();
        assert!(matches!(
            DeleteCodec::decode(&t),
            Err(ContentError::Truncated)
        ));
        let mut t = e.clone();
        t.content.push(1);
        assert!(matches!(
            DeleteCodec::decode(&t),
            Err(ContentError::TrailingBytes(1))
        ));
        let mut t = e;
        t.type_id = ContentTypeId::text();
        assert!(matches!(
            DeleteCodec::decode(&t),
            Err(ContentError::TypeMismatch { .. })
        ));
    }
}
