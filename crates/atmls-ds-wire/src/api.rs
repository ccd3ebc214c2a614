//! The atmls-ds HTTP API, version 1 (spec/ds.md DS-API-*): paths, headers and JSON bodies shared
//! by the server and the client transport.

use serde::{Deserialize, Serialize};

use crate::Kind;

/// Version prefix of every API path.
pub const PREFIX: &str = "/v1";
/// Header carrying the opaque epoch tag (64 hex digits).
pub const H_EPOCH: &str = "atmls-epoch";
/// Header carrying the poster's cursor on commits and messages (decimal, at most 2^63-1;
/// absent means 0, the rule of clients that predate it), DS-4.
pub const H_AFTER: &str = "atmls-after";
/// Header carrying the idempotency key (32 hex digits).
pub const H_IDEMPOTENCY: &str = "idempotency-key";
/// Header with the proof that the reader owns a Welcome mailbox (DS-W-1).
pub const WELCOME_PROOF_HEADER: &str = "atmls-welcome-proof";
/// Largest page a fetch returns, in items.
pub const MAX_PAGE_ITEMS: u32 = 1000;
/// A page stops growing once its payloads reach this many bytes (it always holds one item).
pub const MAX_PAGE_BYTES: usize = 4 << 20;
/// Longest long-poll wait a fetch may ask for, in milliseconds.
pub const MAX_WAIT_MS: u64 = 30_000;

/// Body of a successful post (`200`).
///
/// ```
/// use atmls_ds_wire::api::Accepted;
/// let body: Accepted = serde_json::from_str(r#"{"seq":42}"#)?;
/// assert_eq!(body, Accepted { seq: 42 });
/// assert_eq!(serde_json::to_string(&body)?, r#"{"seq":42}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Accepted {
    /// Position in the mailbox.
    pub seq: u64,
}

/// One item of a mailbox on the wire.
///
/// ```
/// use atmls_ds_wire::api::{Item, WireKind};
/// let item = Item { seq: 3, kind: WireKind::Commit, payload: "AAEC".into() };
/// let json = serde_json::to_string(&item)?;
/// assert_eq!(json, r#"{"seq":3,"kind":"commit","payload":"AAEC"}"#);
/// assert_eq!(serde_json::from_str::<Item>(&json)?, item);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    /// Position.
    pub seq: u64,
    /// `commit`, `message` or `welcome`.
    pub kind: WireKind,
    /// Payload, base64 (standard alphabet, padded).
    pub payload: String,
}

/// Item kinds on the wire.
///
/// ```
/// use atmls_ds_wire::{api::WireKind, Kind};
/// assert_eq!(serde_json::to_string(&WireKind::Welcome)?, r#""welcome""#);
/// assert_eq!(WireKind::from(Kind::Message), WireKind::Message);
/// assert_eq!(Kind::from(WireKind::Commit), Kind::Commit);
/// // Kinds are lowercase on the wire.
/// assert!(serde_json::from_str::<WireKind>(r#""Commit""#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WireKind {
    /// A commit.
    Commit,
    /// An application message or proposal.
    Message,
    /// A Welcome.
    Welcome,
}

impl From<Kind> for WireKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Commit => WireKind::Commit,
            Kind::Message => WireKind::Message,
            Kind::Welcome => WireKind::Welcome,
        }
    }
}

impl From<WireKind> for Kind {
    fn from(k: WireKind) -> Self {
        match k {
            WireKind::Commit => Kind::Commit,
            WireKind::Message => Kind::Message,
            WireKind::Welcome => Kind::Welcome,
        }
    }
}

/// Body of a successful tree upload (`200`, DS-API-10).
///
/// ```
/// use atmls_ds_wire::{api::TreeStored, TREE_TTL_SECS};
/// let now = 1_700_000_000i64;
/// let body = TreeStored { expires: now + TREE_TTL_SECS as i64 };
/// let json = serde_json::to_string(&body)?;
/// assert_eq!(json, r#"{"expires":1700604800}"#);
/// assert_eq!(serde_json::from_str::<TreeStored>(&json)?, body);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TreeStored {
    /// When the blob expires, unix seconds.
    pub expires: i64,
}

/// Body of a fetch (`200`).
///
/// ```
/// use atmls_ds_wire::api::{PageBody, WireKind, MAX_PAGE_ITEMS};
/// let page: PageBody = serde_json::from_str(
///     r#"{"items":[{"seq":0,"kind":"message","payload":"aGk="}],"more":false}"#,
/// )?;
/// assert_eq!(page.items.len(), 1);
/// assert_eq!(page.items[0].kind, WireKind::Message);
/// assert!(!page.more);
/// assert!(page.items.len() <= MAX_PAGE_ITEMS as usize);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PageBody {
    /// Items in order.
    pub items: Vec<Item>,
    /// Whether more items follow.
    pub more: bool,
}

/// Body of a subscription request.
///
/// ```
/// use atmls_ds_wire::{api::{parse_hex, SubscribeBody}, MailboxId};
/// let id = MailboxId::for_capability(&[1; 32]);
/// let body = SubscribeBody { mailboxes: vec![hex::encode(id.0)] };
/// let back: SubscribeBody = serde_json::from_str(&serde_json::to_string(&body)?)?;
/// assert_eq!(back, body);
/// assert_eq!(parse_hex::<32>(&back.mailboxes[0]).map(MailboxId), Some(id));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubscribeBody {
    /// Mailbox ids, hex.
    pub mailboxes: Vec<String>,
}

/// Body of every error response.
///
/// ```
/// use atmls_ds_wire::{api::{code, ErrorBody}, MAX_PAYLOAD};
/// let body = ErrorBody {
///     error: code::PAYLOAD_TOO_LARGE.into(),
///     message: "payload over 1 MiB".into(),
///     winner: None,
///     limit: Some(MAX_PAYLOAD as u64),
/// };
/// let json = serde_json::to_string(&body)?;
/// // An absent winner is left out of the JSON, and read back as `None`.
/// assert!(!json.contains("winner"));
/// let back: ErrorBody = serde_json::from_str(&json)?;
/// assert_eq!(back, body);
/// assert_eq!(back.limit, Some(1 << 20));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Machine-readable code (spec/ds.md DS-API-9).
    pub error: String,
    /// Human-readable detail.
    pub message: String,
    /// For `epoch_taken`: the winning commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winner: Option<Item>,
    /// For `payload_too_large`: the limit in bytes; for `stamp_required`: the bits of work
    /// the service asks for (DS-17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

/// Error codes (spec/ds.md DS-API-9).
pub mod code {
    /// Malformed request: bad path, header, query or body.
    pub const MALFORMED: &str = "malformed";
    /// Payload over the limit.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// Missing or wrong posting capability.
    pub const FORBIDDEN: &str = "forbidden";
    /// Group post to a Welcome mailbox or the reverse.
    pub const WRONG_MAILBOX_KIND: &str = "wrong_mailbox_kind";
    /// An idempotency key reused for a different request.
    pub const IDEMPOTENCY_CONFLICT: &str = "idempotency_conflict";
    /// Another commit holds the epoch (the answer carries it).
    pub const EPOCH_TAKEN: &str = "epoch_taken";
    /// A message for an epoch already committed away.
    pub const STALE_EPOCH: &str = "stale_epoch";
    /// No tree blob under this locator (never stored, or expired).
    pub const UNKNOWN_TREE: &str = "unknown_tree";
    /// A cursor past the end of the mailbox or out of range.
    pub const CURSOR_OUT_OF_RANGE: &str = "cursor_out_of_range";
    /// A stranger's post without enough proof of work; `limit` is the price in bits (DS-17).
    pub const STAMP_REQUIRED: &str = "stamp_required";
    /// Rate limited.
    pub const RATE_LIMITED: &str = "rate_limited";
    /// Storage unavailable; retry.
    pub const UNAVAILABLE: &str = "unavailable";
    /// Too many requests in flight at the service; retry (DS-15).
    pub const BUSY: &str = "busy";
    /// The request's body did not arrive in time (DS-15); retry.
    pub const REQUEST_TIMEOUT: &str = "request_timeout";
    /// No such route.
    pub const NOT_FOUND: &str = "not_found";
    /// The route exists, not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
}

/// Parses exactly `N` bytes of lowercase or uppercase hex.
///
/// ```
/// use atmls_ds_wire::api::parse_hex;
/// assert_eq!(parse_hex::<2>("0aFf"), Some([0x0a, 0xff]));
/// // Exactly 2 * N digits.
/// assert_eq!(parse_hex::<2>("0aF"), None);
/// assert_eq!(parse_hex::<2>("0aff00"), None);
/// assert_eq!(parse_hex::<2>("zzzz"), None);
/// ```
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Parses a cursor: decimal digits only, at most 2^63-1 (what the stores hold).
///
/// ```
/// use atmls_ds_wire::api::parse_cursor;
/// assert_eq!(parse_cursor("0042"), Some(42));
/// assert_eq!(parse_cursor("9223372036854775807"), Some(i64::MAX as u64));
/// assert_eq!(parse_cursor("9223372036854775808"), None);
/// assert_eq!(parse_cursor("+1"), None);
/// assert_eq!(parse_cursor(""), None);
/// ```
pub fn parse_cursor(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|v| *v <= i64::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_api_9_cursor_is_decimal_up_to_2_63_minus_1() {
        assert_eq!(parse_cursor("0"), Some(0));
        assert_eq!(parse_cursor("0042"), Some(42));
        assert_eq!(parse_cursor("9223372036854775807"), Some(i64::MAX as u64));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1.0",
            "x",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ds_api_9_hex_is_exact() {
        assert_eq!(parse_hex::<2>("0aFf"), Some([0x0a, 0xff]));
        assert_eq!(parse_hex::<2>("0aF"), None);
        assert_eq!(parse_hex::<2>("0aFf00"), None);
        assert_eq!(parse_hex::<2>("zzzz"), None);
    }
}
