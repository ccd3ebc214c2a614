//! Targets of the content layer (spec/content.md): the `EncodedContent` wire form and each
//! built-in codec. Every codec target reads the fuzzer's bytes as a whole `EncodedContent`
//! retyped to the codec (so parameters, fallback and compression vary too) or, when they do
//! not parse as one, as the codec's payload; what decodes must encode and decode back to the
//! same value.

use std::fmt::Debug;

use crate::content::{
    AttachmentCodec, Content, ContentCodec, ContentTypeId, DeleteCodec, EditCodec, EncodedContent,
    GroupUpdatedCodec, MarkdownCodec, ReactionCodec, ReadReceiptCodec, ReplyCodec, TextCodec,
    TypingCodec,
};

/// CONTENT-6 … CONTENT-13: only canonical encodings decode; any decoded content displays
/// (CONTENT-15). Text that is valid UTF-8 is also tried as a content type id (CONTENT-1).
pub(super) fn encoded(data: &[u8]) {
    if let Ok(e) = EncodedContent::from_bytes(data) {
        assert_eq!(e.to_bytes().ok().as_deref(), Some(data), "non-canonical");
        let c = Content::decode(&e);
        let _ = (c.summary(), c.display_text());
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(id) = s.parse::<ContentTypeId>() {
            assert_eq!(id.to_string().parse::<ContentTypeId>().ok(), Some(id));
        }
    }
}

/// The codec round trip: decode, encode, decode to the same value.
fn codec<C>(data: &[u8])
where
    C: ContentCodec,
    C::Content: PartialEq + Debug,
{
    let e = match EncodedContent::from_bytes(data) {
        Ok(mut e) => {
            e.type_id = C::content_type();
            e
        }
        Err(_) => EncodedContent::new(C::content_type(), data.to_vec()),
    };
    let Ok(v) = C::decode(&e) else {
        return;
    };
    let _ = C::fallback(&v);
    let again =
        C::encode(&v).unwrap_or_else(|err| panic!("{v:?} decodes but does not encode: {err}"));
    let bytes = again
        .to_bytes()
        .unwrap_or_else(|err| panic!("{again:?}: {err}"));
    let back = EncodedContent::from_bytes(&bytes).unwrap_or_else(|err| panic!("{again:?}: {err}"));
    assert_eq!(C::decode(&back).ok().as_ref(), Some(&v), "round trip");
}

pub(super) fn text(data: &[u8]) {
    codec::<TextCodec>(data)
}

pub(super) fn markdown(data: &[u8]) {
    codec::<MarkdownCodec>(data)
}

pub(super) fn reply(data: &[u8]) {
    codec::<ReplyCodec>(data)
}

pub(super) fn reaction(data: &[u8]) {
    codec::<ReactionCodec>(data)
}

pub(super) fn read_receipt(data: &[u8]) {
    codec::<ReadReceiptCodec>(data)
}

pub(super) fn typing(data: &[u8]) {
    codec::<TypingCodec>(data)
}

pub(super) fn attachment(data: &[u8]) {
    codec::<AttachmentCodec>(data)
}

pub(super) fn edit(data: &[u8]) {
    codec::<EditCodec>(data)
}

pub(super) fn delete(data: &[u8]) {
    codec::<DeleteCodec>(data)
}

pub(super) fn group_updated(data: &[u8]) {
    codec::<GroupUpdatedCodec>(data)
}
