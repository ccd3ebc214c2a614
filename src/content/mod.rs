//! Typed message content, in the style of XMTP's XIP-5 content types.
//!
//! Every application message carries an [`EncodedContent`]: a
//! [`ContentTypeId`] such as `atmls.dev/text:1.0`, codec parameters, an
//! optional human-readable fallback, and the encoded payload. A
//! [`ContentCodec`] turns a Rust value into an [`EncodedContent`] and back;
//! [`TextCodec`] is the built-in one. Apps that just want something to show
//! use [`Content::decode`], which never fails: content it cannot decode
//! becomes [`Content::Unknown`] with the sender's fallback text.
//!
//! The rules (`CONTENT-1`, `CONTENT-2`, ...) and the exact wire encoding are in
//! `spec/content.md`; tests are named after the rule they check.

// The `unwrap`/`expect` calls in this file are in doc examples, which run as tests on
// values they build themselves: none is on input from another party.

mod attachment;
mod edit;
mod encoded;
mod group_updated;
mod markdown;
mod payload;
mod reaction;
mod receipt;
mod reply;
mod stream;
mod text;
mod type_id;

pub use attachment::{
    encrypt_attachment, Attachment, AttachmentCodec, AttachmentSource, MAX_FILENAME_LEN,
    MAX_INLINE_ATTACHMENT, MAX_MIME_TYPE_LEN, MAX_URL_LEN,
};
// Defined below content, where group state can name them too.
pub use crate::blob::{RemoteAttachment, StreamKey, StreamedAttachment};
pub use crate::group::MessageId;
pub use edit::{Delete, DeleteCodec, Edit, EditCodec};
pub use group_updated::{GroupUpdated, GroupUpdatedCodec};
pub use markdown::MarkdownCodec;
pub use reaction::{Reaction, ReactionAction, ReactionCodec, MAX_REACTION_LEN};
pub use receipt::{ReadReceipt, ReadReceiptCodec, Typing, TypingCodec};
pub use reply::{Reply, ReplyCodec};
pub use stream::{
    decrypt_stream, decrypt_stream_to_path, encrypt_stream, padded_len, stream_len, SealedStream,
    StreamError, MAX_STREAM_PLAINTEXT, STREAM_AAD, STREAM_CHUNK, STREAM_TAG,
};

pub use encoded::{
    Compression, EncodedContent, ENCODED_CONTENT_VERSION, MAX_ENCODED_CONTENT_LEN, MAX_PARAMETERS,
    MAX_PARAMETER_KEY_LEN,
};
pub use text::TextCodec;
pub use type_id::{ContentTypeId, ATMLS_AUTHORITY, MAX_TYPE_ID_PART_LEN, TEXT_TYPE};

/// Errors from building, encoding or decoding content.
///
/// All of them describe bad input, so none is retryable.
///
/// ```rust
/// use atmls::content::{ContentCodec, ContentError, ContentTypeId, EncodedContent};
/// use atmls::content::{MarkdownCodec, TextCodec};
///
/// // Bytes from another version of the format:
/// let err = EncodedContent::from_bytes(&[2]).unwrap_err();
/// assert!(matches!(err, ContentError::UnsupportedVersion(2)));
///
/// // A codec given content of another type:
/// let markdown = MarkdownCodec::encode(&"*hi*".to_string())?;
/// match TextCodec::decode(&markdown) {
///     Err(ContentError::TypeMismatch { expected, actual }) => {
///         assert_eq!(expected, ContentTypeId::text());
///         assert_eq!(actual.type_id(), "markdown");
///     }
///     other => panic!("expected a type mismatch, got {other:?}"),
/// }
/// # Ok::<(), ContentError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A content type id breaks CONTENT-1 to CONTENT-4; the text says how.
    #[error("invalid content type id: {0}")]
    InvalidTypeId(String),
    /// A parameter breaks CONTENT-8, or a codec rejects a parameter value.
    #[error("invalid content parameter: {0}")]
    InvalidParameter(String),
    /// The encoded form is larger than [`MAX_ENCODED_CONTENT_LEN`] (CONTENT-11).
    #[error("encoded content is {len} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Size of the input or of the encoding that would be produced.
        len: usize,
        /// The limit, [`MAX_ENCODED_CONTENT_LEN`].
        max: usize,
    },
    /// The leading version byte is not [`ENCODED_CONTENT_VERSION`] (CONTENT-6).
    #[error("unsupported encoded content version {0}")]
    UnsupportedVersion(u8),
    /// The input ends before the structure does (CONTENT-12).
    #[error("encoded content is truncated")]
    Truncated,
    /// Bytes remain after the structure ends (CONTENT-12).
    #[error("{0} trailing bytes after encoded content")]
    TrailingBytes(usize),
    /// The input is structurally invalid (CONTENT-7, CONTENT-9).
    #[error("malformed encoded content: {0}")]
    Malformed(&'static str),
    /// The input is valid but not in canonical form (CONTENT-7, CONTENT-8, CONTENT-13).
    #[error("non-canonical encoded content: {0}")]
    NonCanonical(&'static str),
    /// A text field is not valid UTF-8; names the field.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// The compression code is not one of those in CONTENT-10.
    #[error("unknown compression code {0}")]
    UnknownCompression(u8),
    /// The content is compressed with an algorithm this crate cannot undo.
    #[error("compression {0:?} is not supported")]
    UnsupportedCompression(Compression),
    /// A codec was given content of another type or major version (CONTENT-5).
    #[error("content of type {actual} cannot be decoded as {expected}")]
    TypeMismatch {
        /// The type the codec handles.
        expected: ContentTypeId,
        /// The type the content declares.
        actual: ContentTypeId,
    },
    /// The TLS encoder failed (should not happen for valid content).
    #[error("content encoding failed: {0}")]
    Encode(String),
    /// A downloaded attachment's digest differs from the one in the message (CONTENT-25).
    #[error("attachment digest mismatch")]
    DigestMismatch,
    /// A downloaded attachment failed authenticated decryption (CONTENT-25).
    #[error("attachment decryption failed")]
    DecryptionFailed,
}

impl ContentError {
    /// Whether trying again could succeed. Always `false`: bad content does
    /// not get better by retrying (CONTENT-16).
    ///
    /// ```rust
    /// use atmls::content::{ContentError, EncodedContent};
    ///
    /// let err = EncodedContent::from_bytes(&[]).unwrap_err();
    /// assert!(matches!(err, ContentError::Truncated));
    /// assert!(!err.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            ContentError::InvalidTypeId(_)
            | ContentError::InvalidParameter(_)
            | ContentError::TooLarge { .. }
            | ContentError::UnsupportedVersion(_)
            | ContentError::Truncated
            | ContentError::TrailingBytes(_)
            | ContentError::Malformed(_)
            | ContentError::NonCanonical(_)
            | ContentError::InvalidUtf8(_)
            | ContentError::UnknownCompression(_)
            | ContentError::UnsupportedCompression(_)
            | ContentError::TypeMismatch { .. }
            | ContentError::Encode(_)
            | ContentError::DigestMismatch
            | ContentError::DecryptionFailed => false,
        }
    }
}

/// Converts one content type between a Rust value and [`EncodedContent`].
///
/// An app's own content type, here a poll question:
///
/// ```rust
/// use atmls::content::{Content, ContentCodec, ContentError, ContentTypeId, EncodedContent};
///
/// struct PollCodec;
///
/// impl ContentCodec for PollCodec {
///     type Content = String;
///
///     fn content_type() -> ContentTypeId {
///         ContentTypeId::new("example.org", "poll", 1, 0).expect("a valid type id")
///     }
///
///     fn encode(question: &String) -> Result<EncodedContent, ContentError> {
///         let bytes = question.as_bytes().to_vec();
///         let mut encoded = EncodedContent::new(Self::content_type(), bytes);
///         encoded.fallback = Self::fallback(question);
///         Ok(encoded)
///     }
///
///     fn decode(encoded: &EncodedContent) -> Result<String, ContentError> {
///         Self::content_type().require_compatible(&encoded.type_id)?;
///         String::from_utf8(encoded.content.clone())
///             .map_err(|_| ContentError::InvalidUtf8("poll question"))
///     }
///
///     fn fallback(question: &String) -> Option<String> {
///         Some(format!("[poll: {question}]"))
///     }
/// }
///
/// let bytes = PollCodec::encode(&"Lunch at noon?".to_string())?.to_bytes()?;
/// let received = EncodedContent::from_bytes(&bytes)?;
/// assert_eq!(PollCodec::decode(&received)?, "Lunch at noon?");
/// // Apps without the codec show the fallback.
/// assert_eq!(Content::decode(&received).display_text(), Some("[poll: Lunch at noon?]"));
/// # Ok::<(), ContentError>(())
/// ```
pub trait ContentCodec {
    /// The Rust type this codec handles.
    type Content;

    /// The content type id this codec writes; it reads any id with the same
    /// authority, type and major version (CONTENT-5).
    ///
    /// ```rust
    /// use atmls::content::{ContentCodec, TextCodec};
    ///
    /// let text = TextCodec::content_type();
    /// assert_eq!(text.to_string(), "atmls.dev/text:1.0");
    /// assert!(text.is_compatible(&"atmls.dev/text:1.3".parse()?));
    /// assert!(!text.is_compatible(&"atmls.dev/text:2.0".parse()?));
    /// # Ok::<(), atmls::content::ContentError>(())
    /// ```
    fn content_type() -> ContentTypeId;

    /// Encodes a value, including its [`fallback`](Self::fallback) text.
    ///
    /// ```rust
    /// use atmls::content::{ContentCodec, MessageId, Reaction, ReactionAction, ReactionCodec};
    ///
    /// let reaction = Reaction {
    ///     target: MessageId::from_bytes([1; 32]),
    ///     action: ReactionAction::Add,
    ///     emoji: "👍".into(),
    /// };
    /// let encoded = ReactionCodec::encode(&reaction)?;
    /// assert_eq!(encoded.type_id, ReactionCodec::content_type());
    /// assert_eq!(encoded.fallback.as_deref(), Some("Reacted 👍 to a message"));
    /// # Ok::<(), atmls::content::ContentError>(())
    /// ```
    fn encode(content: &Self::Content) -> Result<EncodedContent, ContentError>;

    /// Decodes a value, checking the type id first.
    ///
    /// ```rust
    /// use atmls::content::{Content, ContentCodec, ContentError, EncodedContent, ReadReceipt};
    /// use atmls::content::{MessageId, ReadReceiptCodec};
    ///
    /// let receipt = ReadReceipt { up_to: MessageId::from_bytes([1; 32]) };
    /// let bytes = ReadReceiptCodec::encode(&receipt)?.to_bytes()?;
    /// let received = EncodedContent::from_bytes(&bytes)?;
    /// assert_eq!(ReadReceiptCodec::decode(&received)?, receipt);
    ///
    /// // Content of another type is refused before its payload is read.
    /// let text = Content::text("read");
    /// assert!(matches!(ReadReceiptCodec::decode(&text), Err(ContentError::TypeMismatch { .. })));
    /// # Ok::<(), ContentError>(())
    /// ```
    fn decode(encoded: &EncodedContent) -> Result<Self::Content, ContentError>;

    /// Text for receivers that cannot decode this content type, if useful.
    ///
    /// ```rust
    /// use atmls::content::{ContentCodec, Delete, DeleteCodec, MessageId, TextCodec};
    ///
    /// let delete = Delete { target: MessageId::from_bytes([1; 32]) };
    /// assert_eq!(DeleteCodec::fallback(&delete).as_deref(), Some("Deleted a message"));
    /// // Text is its own fallback.
    /// assert_eq!(TextCodec::fallback(&"hi".to_string()), None);
    /// ```
    fn fallback(content: &Self::Content) -> Option<String>;
}

/// Decoded content, ready for an app to display (CONTENT-15).
///
/// ```rust
/// use atmls::content::{Content, ContentTypeId, EncodedContent};
///
/// // Sending text:
/// let bytes = Content::text("hi there").to_bytes()?;
///
/// // Receiving it:
/// let received = Content::decode(&EncodedContent::from_bytes(&bytes)?);
/// assert_eq!(received, Content::Text("hi there".into()));
/// assert_eq!(received.display_text(), Some("hi there"));
///
/// // A type this version does not know shows its fallback text instead.
/// let poll_type: ContentTypeId = "example.org/poll:1.0".parse()?;
/// let mut poll = EncodedContent::new(poll_type.clone(), vec![1, 2, 3]);
/// poll.fallback = Some("[a poll; update your app to vote]".into());
/// let received = Content::decode(&poll);
/// assert!(matches!(received, Content::Unknown { ref type_id, .. } if *type_id == poll_type));
/// assert_eq!(received.display_text(), Some("[a poll; update your app to vote]"));
/// # Ok::<(), atmls::content::ContentError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Plain text (`atmls.dev/text:1.x`).
    Text(String),
    /// Markdown source (`atmls.dev/markdown:1.x`).
    Markdown(String),
    /// A reply to an earlier message (`atmls.dev/reply:1.x`).
    Reply(Reply),
    /// An emoji reaction added or removed (`atmls.dev/reaction:1.x`).
    Reaction(Reaction),
    /// A read receipt (`atmls.dev/read-receipt:1.x`).
    ReadReceipt(ReadReceipt),
    /// A typing indicator, never stored (`atmls.dev/typing:1.x`).
    Typing(Typing),
    /// A file (`atmls.dev/attachment:1.x`).
    Attachment(Attachment),
    /// An edit of an earlier message (`atmls.dev/edit:1.x`).
    Edit(Edit),
    /// A delete of an earlier message (`atmls.dev/delete:1.x`).
    Delete(Delete),
    /// A membership or settings change derived from a verified commit
    /// (`atmls.dev/group-updated:1.x`); only ever produced locally.
    GroupUpdated(GroupUpdated),
    /// Content this version cannot decode: an unknown type, an unsupported
    /// major version, or a known type whose payload is invalid.
    Unknown {
        /// The type the content declares.
        type_id: ContentTypeId,
        /// The sender's fallback text, if any.
        fallback: Option<String>,
    },
}

impl Content {
    /// Decodes with the built-in codecs. Never fails and never panics:
    /// anything that cannot be decoded becomes [`Content::Unknown`] carrying
    /// the fallback text (CONTENT-15).
    ///
    /// ```rust
    /// use atmls::content::{Content, EncodedContent};
    ///
    /// let received = EncodedContent::from_bytes(&Content::text("hi").to_bytes()?)?;
    /// assert_eq!(Content::decode(&received), Content::Text("hi".into()));
    ///
    /// // A major version this crate does not read: the sender's fallback instead.
    /// let mut newer = Content::text("hi");
    /// newer.type_id = "atmls.dev/text:2.0".parse()?;
    /// newer.fallback = Some("[update your app to read this]".into());
    /// assert_eq!(
    ///     Content::decode(&newer),
    ///     Content::Unknown {
    ///         type_id: newer.type_id.clone(),
    ///         fallback: Some("[update your app to read this]".into()),
    ///     }
    /// );
    /// # Ok::<(), atmls::content::ContentError>(())
    /// ```
    pub fn decode(encoded: &EncodedContent) -> Content {
        fn try_codec<C: ContentCodec>(
            e: &EncodedContent,
            wrap: fn(C::Content) -> Content,
        ) -> Option<Content> {
            if C::content_type().is_compatible(&e.type_id) {
                C::decode(e).ok().map(wrap)
            } else {
                None
            }
        }
        let e = encoded;
        let decoded = try_codec::<TextCodec>(e, Content::Text)
            .or_else(|| try_codec::<MarkdownCodec>(e, Content::Markdown))
            .or_else(|| try_codec::<ReplyCodec>(e, Content::Reply))
            .or_else(|| try_codec::<ReactionCodec>(e, Content::Reaction))
            .or_else(|| try_codec::<ReadReceiptCodec>(e, Content::ReadReceipt))
            .or_else(|| try_codec::<TypingCodec>(e, Content::Typing))
            .or_else(|| try_codec::<AttachmentCodec>(e, Content::Attachment))
            .or_else(|| try_codec::<EditCodec>(e, Content::Edit))
            .or_else(|| try_codec::<DeleteCodec>(e, Content::Delete))
            .or_else(|| try_codec::<GroupUpdatedCodec>(e, Content::GroupUpdated));
        if let Some(c) = decoded {
            return c;
        }
        Content::Unknown {
            type_id: encoded.type_id.clone(),
            fallback: encoded.fallback.clone(),
        }
    }

    /// Encodes `text` as `atmls.dev/text:1.0` content.
    ///
    /// ```rust
    /// use atmls::content::{Content, ContentCodec, ContentTypeId, TextCodec};
    ///
    /// let encoded = Content::text("hello");
    /// assert_eq!(encoded.type_id, ContentTypeId::text());
    /// assert_eq!(encoded, TextCodec::encode(&"hello".to_string())?);
    /// # Ok::<(), atmls::content::ContentError>(())
    /// ```
    pub fn text(text: impl Into<String>) -> EncodedContent {
        TextCodec::encode_string(text.into())
    }

    /// The text to show for text-like content: the text or markdown source
    /// itself, or an unknown type's fallback. `None` for other types (see
    /// [`summary`](Self::summary)).
    ///
    /// ```rust
    /// use atmls::content::{Content, ContentCodec, MessageId, ReadReceipt, ReadReceiptCodec};
    ///
    /// assert_eq!(Content::Markdown("**hi**".into()).display_text(), Some("**hi**"));
    /// let receipt = ReadReceipt { up_to: MessageId::from_bytes([1; 32]) };
    /// let received = Content::decode(&ReadReceiptCodec::encode(&receipt)?);
    /// assert_eq!(received.display_text(), None);
    /// # Ok::<(), atmls::content::ContentError>(())
    /// ```
    pub fn display_text(&self) -> Option<&str> {
        match self {
            Content::Text(text) | Content::Markdown(text) => Some(text),
            Content::Unknown { fallback, .. } => fallback.as_deref(),
            _ => None,
        }
    }

    /// One line describing any content: the text itself, the reply's text, or
    /// the codec's fallback (e.g. `[attachment: photo.jpg]`). `None` for
    /// receipts, typing indicators and unknown content without a fallback.
    ///
    /// ```rust
    /// use atmls::content::{Content, ContentCodec, MessageId, Reaction, ReactionAction};
    /// use atmls::content::{ReactionCodec, Reply, Typing};
    ///
    /// let id = MessageId::from_bytes([1; 32]);
    /// let reply = Reply { in_reply_to: id, content: Content::text("sounds good") };
    /// let reply = Content::Reply(reply);
    /// assert_eq!(reply.summary().as_deref(), Some("sounds good"));
    ///
    /// let reaction = Reaction { target: id, action: ReactionAction::Add, emoji: "👍".into() };
    /// let received = Content::decode(&ReactionCodec::encode(&reaction)?);
    /// assert_eq!(received.summary().as_deref(), Some("Reacted 👍 to a message"));
    ///
    /// assert_eq!(Content::Typing(Typing { typing: true }).summary(), None);
    /// # Ok::<(), atmls::content::ContentError>(())
    /// ```
    pub fn summary(&self) -> Option<String> {
        match self {
            Content::Text(t) | Content::Markdown(t) => Some(t.clone()),
            Content::Reply(r) => r.decoded().summary(),
            Content::Reaction(r) => ReactionCodec::fallback(r),
            Content::ReadReceipt(_) | Content::Typing(_) => None,
            Content::Attachment(a) => AttachmentCodec::fallback(a),
            Content::Edit(e) => EditCodec::fallback(e),
            Content::Delete(d) => DeleteCodec::fallback(d),
            Content::GroupUpdated(u) => GroupUpdatedCodec::fallback(u),
            Content::Unknown { fallback, .. } => fallback.clone(),
        }
    }
}

/// Types that act on other messages or on the session rather than being shown in
/// a timeline: they may not be nested in replies or edits (CONTENT-19).
pub(crate) fn is_control_type(t: &ContentTypeId) -> bool {
    [
        ReplyCodec::content_type(),
        ReactionCodec::content_type(),
        ReadReceiptCodec::content_type(),
        TypingCodec::content_type(),
        EditCodec::content_type(),
        DeleteCodec::content_type(),
        GroupUpdatedCodec::content_type(),
    ]
    .iter()
    .any(|c| c.is_same_type(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown_with(type_id: &str, fallback: Option<&str>) -> EncodedContent {
        let mut e = EncodedContent::new(type_id.parse().unwrap(), b"\x00payload".to_vec());
        e.fallback = fallback.map(str::to_owned);
        e
    }

    #[test]
    fn content_15_text_decodes() {
        let bytes = Content::text("hello").to_bytes().unwrap();
        let decoded = Content::decode(&EncodedContent::from_bytes(&bytes).unwrap());
        assert_eq!(decoded, Content::Text("hello".into()));
        assert_eq!(decoded.display_text(), Some("hello"));
        assert_eq!(
            Content::text("x"),
            TextCodec::encode(&"x".to_owned()).unwrap()
        );
    }

    #[test]
    fn content_15_unknown_type_degrades_to_fallback() {
        let e = unknown_with("example.org/poll:1.0", Some("a poll"));
        let bytes = e.to_bytes().unwrap();
        let decoded = Content::decode(&EncodedContent::from_bytes(&bytes).unwrap());
        assert_eq!(
            decoded,
            Content::Unknown {
                type_id: "example.org/poll:1.0".parse().unwrap(),
                fallback: Some("a poll".into()),
            }
        );
        assert_eq!(decoded.display_text(), Some("a poll"));

        let no_fallback = Content::decode(&unknown_with("example.org/poll:1.0", None));
        assert_eq!(no_fallback.display_text(), None);
    }

    #[test]
    fn content_15_minor_version_accepted_major_not() {
        let mut e = Content::text("hi");
        e.type_id = "atmls.dev/text:1.42".parse().unwrap();
        e.fallback = Some("fallback".into());
        assert_eq!(Content::decode(&e), Content::Text("hi".into()));

        e.type_id = "atmls.dev/text:2.0".parse().unwrap();
        let decoded = Content::decode(&e);
        assert!(
            matches!(decoded, Content::Unknown { ref type_id, .. } if type_id.version_major() == 2)
        );
        assert_eq!(decoded.display_text(), Some("fallback"));
    }

    #[test]
    fn content_15_undecodable_known_type_degrades_to_fallback() {
        let mut bad_utf8 = Content::text("");
        bad_utf8.content = vec![0xff, 0xfe];
        bad_utf8.fallback = Some("[garbled]".into());

        let mut compressed = Content::text("hi");
        compressed.compression = Some(Compression::Deflate);

        let mut utf16 = Content::text("hi");
        utf16.parameters.insert("encoding".into(), "UTF-16".into());

        for e in [bad_utf8, compressed, utf16] {
            let bytes = e.to_bytes().unwrap();
            let decoded = Content::decode(&EncodedContent::from_bytes(&bytes).unwrap());
            assert_eq!(
                decoded,
                Content::Unknown {
                    type_id: ContentTypeId::text(),
                    fallback: e.fallback.clone(),
                }
            );
        }
    }

    #[test]
    fn content_1_builtin_type_ids_are_valid() {
        let ids = [
            TextCodec::content_type(),
            MarkdownCodec::content_type(),
            ReplyCodec::content_type(),
            ReactionCodec::content_type(),
            ReadReceiptCodec::content_type(),
            TypingCodec::content_type(),
            AttachmentCodec::content_type(),
            EditCodec::content_type(),
            DeleteCodec::content_type(),
            GroupUpdatedCodec::content_type(),
        ];
        for id in &ids {
            // The unchecked constructor only builds ids the checked one accepts.
            let checked = ContentTypeId::new(
                id.authority(),
                id.type_id(),
                id.version_major(),
                id.version_minor(),
            )
            .unwrap();
            assert_eq!(&checked, id);
            assert_eq!(id.to_string().parse::<ContentTypeId>().unwrap(), *id);
        }
        let mut names: Vec<_> = ids.iter().map(|i| i.type_id().to_owned()).collect();
        names.dedup();
        assert_eq!(names.len(), ids.len());
    }

    #[test]
    fn content_15_every_builtin_codec_decodes_to_its_variant() {
        let id = MessageId::from_bytes([1; 32]);
        let samples = [
            MarkdownCodec::encode(&"*m*".into()).unwrap(),
            ReplyCodec::encode(&Reply {
                in_reply_to: id,
                content: Content::text("r"),
            })
            .unwrap(),
            ReactionCodec::encode(&Reaction {
                target: id,
                action: ReactionAction::Add,
                emoji: "👍".into(),
            })
            .unwrap(),
            ReadReceiptCodec::encode(&ReadReceipt { up_to: id }).unwrap(),
            TypingCodec::encode(&Typing { typing: true }).unwrap(),
            EditCodec::encode(&Edit {
                target: id,
                content: Content::text("e"),
            })
            .unwrap(),
            DeleteCodec::encode(&Delete { target: id }).unwrap(),
        ];
        for e in samples {
            let decoded = Content::decode(&e);
            assert!(
                !matches!(decoded, Content::Unknown { .. }),
                "{} decoded as unknown",
                e.type_id
            );
        }
        // A malformed payload of a known type degrades to its fallback.
        let mut bad = ReactionCodec::encode(&Reaction {
            target: id,
            action: ReactionAction::Add,
            emoji: "👍".into(),
        })
        .unwrap();
        bad.content.push(0);
        assert_eq!(
            Content::decode(&bad).display_text(),
            Some("Reacted 👍 to a message")
        );
    }

    #[test]
    fn content_16_errors_are_not_retryable() {
        let errors = [
            ContentError::InvalidTypeId(String::new()),
            ContentError::InvalidParameter(String::new()),
            ContentError::TooLarge { len: 2, max: 1 },
            ContentError::UnsupportedVersion(2),
            ContentError::Truncated,
            ContentError::TrailingBytes(1),
            ContentError::Malformed(""),
            ContentError::NonCanonical(""),
            ContentError::InvalidUtf8(""),
            ContentError::UnknownCompression(9),
            ContentError::UnsupportedCompression(Compression::Gzip),
            ContentError::TypeMismatch {
                expected: ContentTypeId::text(),
                actual: ContentTypeId::text(),
            },
            ContentError::Encode(String::new()),
            ContentError::DigestMismatch,
            ContentError::DecryptionFailed,
        ];
        for e in errors {
            assert!(!e.is_retryable(), "{e:?}");
            assert!(!e.to_string().is_empty());
        }
    }
}
