//! # atmls-ds-wire
//!
//! The contract between atmls clients and the atmls-ds delivery service (spec/ds.md): the
//! HTTP API's paths, headers and JSON bodies ([`api`], [`blob_api`]), mailbox ids, the
//! proof-of-work stamps on strangers' posts ([`stamp`]), the proof that a reader owns a
//! Welcome mailbox ([`welcome_read`]) and the size limits both sides enforce.
//!
//! It holds nothing of MLS: the service depends on this crate and not on atmls or openmls, so
//! the compiler checks that the service never sees a group's secrets (spec/ds.md DS-2).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(unreachable_pub)]

pub mod api;
pub mod blob_api;
pub mod stamp;
pub mod welcome_read;

pub use welcome_read::{
    welcome_mailbox_of, WelcomeReadError, WelcomeReadProof, WELCOME_READ_WINDOW_SECS,
};

use sha2::{Digest, Sha256};

/// Largest application message a transport must accept (1 MiB); larger ones are refused.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Largest commit a transport must accept (16 MiB). A commit with an update path (every remove,
/// every self-update) encrypts a path secret to each node of the committer's copath
/// resolution: on a tree whose parent nodes are blank (a group built by adds) that is about
/// every member, about 85 bytes each, 8.2 MB at 100,000 members (spec/large-groups.md
/// LG-13). 16 MiB fits about 190,000 members.
pub const MAX_COMMIT_PAYLOAD: usize = 16 << 20;

/// Largest Welcome a transport must accept (16 MiB). A Welcome carries the whole ratchet tree
/// (about 550 bytes per member), so it needs more room than other messages: 16 MiB fits
/// groups of about 30,000 members.
pub const MAX_WELCOME_PAYLOAD: usize = 16 << 20;

/// Largest ratchet-tree blob a transport must accept (64 MiB): a Welcome's tree travels out of
/// band (spec/large-groups.md LG-T-3), about 550 bytes per member, so this fits groups of
/// about 100,000 members.
pub const MAX_TREE_BLOB: usize = 64 << 20;

/// How long a transport keeps a ratchet-tree blob (7 days): as long as a joiner may take to
/// process its Welcome (LG-T-4).
pub const TREE_TTL_SECS: u64 = 7 * 24 * 3600;

/// Opaque id of a mailbox (a group's, or a device's Welcome mailbox).
///
/// ```
/// use atmls_ds_wire::{api::parse_hex, MailboxId};
/// let id = MailboxId::for_capability(&[1; 32]);
/// // On the wire (paths, subscriptions) a mailbox id is 64 hex digits.
/// let hex_id = hex::encode(id.0);
/// assert_eq!(hex_id.len(), 64);
/// assert_eq!(parse_hex::<32>(&hex_id).map(MailboxId), Some(id));
/// ```
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct MailboxId(pub [u8; 32]);

impl MailboxId {
    /// The id of the group mailbox whose posting capability is `secret`: a one-way hash of it,
    /// so whoever holds the capability can prove it and whoever sees the id cannot post
    /// (spec/ds.md DS-3).
    ///
    /// ```
    /// use atmls_ds_wire::MailboxId;
    /// let id = MailboxId::for_capability(&[7; 32]);
    /// assert_ne!(id, MailboxId::for_capability(&[8; 32]));
    /// ```
    pub fn for_capability(secret: &[u8; 32]) -> MailboxId {
        MailboxId(tagged_hash(b"atmls/v1/mailbox-id", secret))
    }
}

/// Opaque per-epoch ordering key: equal for all members in the same epoch of a group,
/// unpredictable to anyone else.
///
/// ```
/// use atmls_ds_wire::{api::{parse_hex, H_EPOCH}, EpochTag};
/// let tag = EpochTag([0x5a; 32]);
/// // It travels in the `atmls-epoch` header as 64 hex digits.
/// let value = hex::encode(tag.0);
/// assert_eq!(H_EPOCH, "atmls-epoch");
/// assert_eq!(parse_hex::<32>(&value).map(EpochTag), Some(tag));
/// assert_eq!(parse_hex::<32>(&value[2..]), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EpochTag(pub [u8; 32]);

/// What kind of message a delivered item is.
///
/// ```
/// use atmls_ds_wire::{api::WireKind, Kind};
/// let kinds = [Kind::Commit, Kind::Message, Kind::Welcome];
/// for k in kinds {
///     assert_eq!(Kind::from(WireKind::from(k)), k);
/// }
/// assert_eq!(WireKind::from(Kind::Welcome), WireKind::Welcome);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A commit, ordered per epoch.
    Commit,
    /// An application message or proposal.
    Message,
    /// A Welcome, in a device's Welcome mailbox.
    Welcome,
}

/// `H(label, data)` of spec/group.md: SHA-256 of the 4-byte big-endian length of the label,
/// the label and the data. Mailbox ids and every other labelled hash of atmls use it.
///
/// ```
/// let h = atmls_ds_wire::tagged_hash(b"label", b"data");
/// assert_ne!(h, atmls_ds_wire::tagged_hash(b"label", b"other"));
/// ```
pub fn tagged_hash(label: &[u8], data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((label.len() as u32).to_be_bytes());
    h.update(label);
    h.update(data);
    h.finalize().into()
}
