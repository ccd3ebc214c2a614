//! Transport: how MLS messages travel between clients. A trait, implemented in-process here
//! ([`MemoryTransport`]) and by the `atmls-ds` delivery service client.
//!
//! The transport sees only opaque values: a [`MailboxId`] derived from group secrets, an
//! [`EpochTag`] derived from the MLS exporter, and payload bytes. It orders commits: per
//! mailbox, a commit for an epoch tag is refused, together with the earliest one, when a commit
//! for that tag follows the poster's cursor (spec/transport.md TRANSPORT-1). Which commit wins
//! an epoch is decided by the members: the first valid one in mailbox order (AGREE-1).

#[cfg(feature = "ds-client")]
mod http;
mod memory;

#[cfg(feature = "ds-client")]
pub use http::{HttpTransport, HttpTransportBuilder};
pub use memory::MemoryTransport;
// The wire contract with the delivery service lives in its own crate, shared with atmls-ds
// (which must not depend on atmls): these are its types, named here where clients use them.
pub use atmls_ds_wire::stamp;
pub use atmls_ds_wire::{
    welcome_mailbox_of, EpochTag, Kind, MailboxId, WelcomeReadError, WelcomeReadProof,
    MAX_COMMIT_PAYLOAD, MAX_PAYLOAD, MAX_TREE_BLOB, MAX_WELCOME_PAYLOAD, TREE_TTL_SECS,
    WELCOME_READ_WINDOW_SECS,
};

use async_trait::async_trait;
use tokio::sync::mpsc;

/// A mailbox and the capability to post to it. Group mailboxes carry a secret only members
/// can derive; a transport that authenticates posts derives its proof from it. Welcome
/// mailboxes have none: anyone may invite.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Mailbox {
    /// The routing id.
    pub id: MailboxId,
    /// Members-only posting capability, if the mailbox has one.
    pub post_secret: Option<[u8; 32]>,
}

impl Mailbox {
    /// The group mailbox whose posting capability is `secret`.
    ///
    /// ```
    /// use atmls::transport::{Mailbox, MailboxId};
    /// let m = Mailbox::from_capability([7; 32]);
    /// assert_eq!(m.id, MailboxId::for_capability(&[7; 32]));
    /// ```
    pub fn from_capability(secret: [u8; 32]) -> Mailbox {
        Mailbox {
            id: MailboxId::for_capability(&secret),
            post_secret: Some(secret),
        }
    }
}

/// Unguessable name of a stored ratchet-tree blob: 32 random bytes chosen by the committer and
/// told only to the joiners (inside their encrypted Welcome). Knowing it is the right to read
/// the blob (a capability, LG-T-3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TreeLocator(pub [u8; 32]);

/// Client-chosen key making a send idempotent: a retried send is stored and delivered once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IdempotencyKey(pub [u8; 16]);

impl IdempotencyKey {
    /// A fresh random key.
    pub fn random() -> Self {
        IdempotencyKey(rand::random())
    }
}

/// One stored item of a mailbox.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Delivered {
    /// Position in the mailbox, strictly increasing from 1.
    pub seq: u64,
    /// Its kind.
    pub kind: Kind,
    /// The opaque payload.
    pub payload: Vec<u8>,
}

/// The transport's answer to a commit.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CommitOutcome {
    /// Stored at `seq`: it is the commit of its epoch.
    Accepted {
        /// Its position.
        seq: u64,
    },
    /// Another commit already holds this epoch.
    Rejected {
        /// The winning commit.
        winner: Delivered,
    },
}

/// The transport's answer to an application message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SendOutcome {
    /// Stored at `seq`.
    Accepted {
        /// Its position.
        seq: u64,
    },
    /// The epoch it was encrypted in has already been committed away: the sender must catch
    /// up and re-send, or no member could read it.
    StaleEpoch,
}

/// A page of a mailbox.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Page {
    /// Items in order.
    pub items: Vec<Delivered>,
    /// Whether more items follow the last one.
    pub more: bool,
}

/// Notifications that mailboxes have new items (fetch them by cursor: nothing is carried in the
/// notification, so a missed notification loses nothing).
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<MailboxId>,
}

impl Subscription {
    /// Wraps a receiver; for transport implementations.
    pub fn new(rx: mpsc::UnboundedReceiver<MailboxId>) -> Self {
        Subscription { rx }
    }

    /// The next mailbox with new items, or `None` when the transport closed the subscription.
    pub async fn next(&mut self) -> Option<MailboxId> {
        self.rx.recv().await
    }
}

/// Errors of a transport.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// Unreachable or failed; retrying (with the same idempotency key) may help.
    #[error("transport unavailable: {0}")]
    Unavailable(String),
    /// The payload is over the limit; nothing was stored.
    #[error("payload of {size} bytes exceeds the limit of {limit}")]
    PayloadTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Posting without the mailbox's capability.
    #[error("not allowed to post to this mailbox")]
    Forbidden,
    /// Rate limited; retry later.
    #[error("rate limited")]
    RateLimited,
    /// Nothing is stored under this name (never stored, or expired).
    #[error("not found (never stored or expired)")]
    NotFound,
    /// Any other refusal.
    #[error("transport refused: {0}")]
    Refused(String),
    /// No answer within the configured time (connecting, or the whole request: TRANSPORT-8).
    /// The request may or may not have been carried out; retrying with the same idempotency
    /// key is safe and may help.
    #[error("transport timed out: {0}")]
    Timeout(String),
    /// The TLS connection failed: the service's certificate was not accepted (unknown issuer,
    /// wrong name, expired) or the handshake failed; or a root certificate given to the
    /// transport is not PEM. Retrying does not help.
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The service's answer is larger than the client reads (TRANSPORT-8); none of it was used.
    #[error("answer from the service over the limit of {limit} bytes")]
    ResponseTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The service's answer breaks the protocol (a page with more items than asked for, out
    /// of order, or not the expected JSON); none of it was used.
    #[error("invalid answer from the service: {0}")]
    InvalidResponse(String),
    /// The service URL cannot be used (not `https://` or `http://`, no host, a query or
    /// credentials in it). Found before any request is sent.
    #[error("invalid service URL: {0}")]
    InvalidUrl(String),
    /// A plain `http://` URL to a host that is not loopback, without the explicit option that
    /// allows it: the posting capability and epoch tags would travel in clear (TRANSPORT-8).
    /// Found before any request is sent.
    #[error("plain http to the remote host {0} refused (use https)")]
    PlainHttpToRemoteHost(String),
    /// The service asks more proof of work for a post to this Welcome mailbox than a client
    /// pays (spec/ds.md DS-17): the mailbox is under a flood. Retrying later may help, once the
    /// price has fallen.
    #[error("the service asks a stamp of {bits} bits, over the {max} a client pays")]
    StampTooDear {
        /// The price asked.
        bits: u64,
        /// The most this client pays ([`stamp::MAX_STAMP_BITS`]).
        max: u8,
    },
}

impl TransportError {
    /// Whether retrying can help.
    pub fn is_retryable(&self) -> bool {
        // No catch-all: a new variant needs a decision.
        match self {
            TransportError::Unavailable(_)
            | TransportError::RateLimited
            | TransportError::StampTooDear { .. }
            | TransportError::Timeout(_) => true,
            TransportError::PayloadTooLarge { .. }
            | TransportError::Forbidden
            | TransportError::NotFound
            | TransportError::Refused(_)
            | TransportError::Tls(_)
            | TransportError::ResponseTooLarge { .. }
            | TransportError::InvalidResponse(_)
            | TransportError::InvalidUrl(_)
            | TransportError::PlainHttpToRemoteHost(_) => false,
        }
    }
}

/// Carries MLS messages between clients.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Submits a commit for the epoch `epoch` by a member that has processed the mailbox up to
    /// position `after` (its cursor): stored unless a commit for `epoch` is stored after
    /// `after`, else rejected with the first such commit (TRANSPORT-1). Commits for `epoch` at
    /// or before `after` were seen by the poster and found invalid (it is still in `epoch`),
    /// so they hold nothing.
    async fn submit_commit(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError>;

    /// Sends an application message or proposal encrypted in epoch `epoch` by a member whose
    /// cursor is `after`: `StaleEpoch` if a commit for `epoch` is stored after `after`
    /// (TRANSPORT-3).
    async fn send_message(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<SendOutcome, TransportError>;

    /// Sends a Welcome to a device's Welcome mailbox; returns its position there.
    async fn send_welcome(
        &self,
        mailbox: &MailboxId,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<u64, TransportError>;

    /// Items after position `after`, at most `limit`, in order.
    async fn fetch(
        &self,
        mailbox: &MailboxId,
        after: u64,
        limit: u32,
    ) -> Result<Page, TransportError>;

    /// Notifications of new items in any of `mailboxes` (group mailboxes: a Welcome mailbox
    /// is heard of only through [`Transport::subscribe_welcomes`]).
    async fn subscribe(&self, mailboxes: &[MailboxId]) -> Result<Subscription, TransportError>;

    /// Items of the Welcome mailbox `proof` is for, after position `after`, at most `limit`.
    /// A transport that serves other parties checks the proof (spec/ds.md DS-W-1): only the
    /// device may read its Welcomes. In process there is no one else, so by default this is
    /// [`Transport::fetch`] of that mailbox.
    async fn fetch_welcomes(
        &self,
        proof: &WelcomeReadProof,
        after: u64,
        limit: u32,
    ) -> Result<Page, TransportError> {
        self.fetch(&proof.mailbox, after, limit).await
    }

    /// Notifications of new items in the Welcome mailbox `proof` is for, on a subscription of
    /// its own (never together with group mailboxes, DS-W-3). By default
    /// [`Transport::subscribe`] of that one mailbox.
    async fn subscribe_welcomes(
        &self,
        proof: &WelcomeReadProof,
    ) -> Result<Subscription, TransportError> {
        self.subscribe(&[proof.mailbox]).await
    }

    /// Stores an opaque ratchet-tree blob under `locator` for [`TREE_TTL_SECS`] (LG-T-3).
    /// Idempotent: storing the same bytes again under the same locator succeeds and stores
    /// nothing new; other bytes under a stored locator are refused. Blobs over
    /// [`MAX_TREE_BLOB`] are refused with `PayloadTooLarge`.
    async fn put_tree(&self, locator: &TreeLocator, blob: &[u8]) -> Result<(), TransportError>;

    /// The blob stored under `locator`; `NotFound` if there is none or it expired.
    async fn fetch_tree(&self, locator: &TreeLocator) -> Result<Vec<u8>, TransportError>;
}
