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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let group = Mailbox::from_capability([7; 32]);
/// let epoch = EpochTag([1; 32]);
/// let sent = t.send_message(&group, &epoch, 0, b"hi", &IdempotencyKey::random()).await?;
/// assert_eq!(sent, SendOutcome::Accepted { seq: 1 });
/// // The same mailbox without its capability: refused.
/// let forged = Mailbox { id: group.id, post_secret: Some([8; 32]) };
/// let refused = t.send_message(&forged, &epoch, 0, b"spam", &IdempotencyKey::random()).await;
/// assert_eq!(refused, Err(TransportError::Forbidden));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::{MemoryTransport, Transport, TreeLocator};
/// let t = MemoryTransport::new();
/// let locator = TreeLocator(rand::random());
/// t.put_tree(&locator, b"ratchet tree").await?;
/// assert_eq!(t.fetch_tree(&locator).await?, b"ratchet tree");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TreeLocator(pub [u8; 32]);

/// Client-chosen key making a send idempotent: a retried send is stored and delivered once.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let mb = Mailbox::from_capability([7; 32]);
/// let key = IdempotencyKey::random();
/// let first = t.send_message(&mb, &EpochTag([1; 32]), 0, b"hi", &key).await?;
/// let retry = t.send_message(&mb, &EpochTag([1; 32]), 0, b"hi", &key).await?;
/// assert_eq!(first, retry);
/// assert_eq!(t.fetch(&mb.id, 0, 10).await?.items.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IdempotencyKey(pub [u8; 16]);

impl IdempotencyKey {
    /// A fresh random key.
    ///
    /// ```
    /// use atmls::transport::IdempotencyKey;
    /// let key = IdempotencyKey::random();
    /// assert_ne!(key, IdempotencyKey::random()); // one per send, kept for its retries
    /// ```
    pub fn random() -> Self {
        IdempotencyKey(rand::random())
    }
}

/// One stored item of a mailbox.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let mb = Mailbox::from_capability([7; 32]);
/// t.send_message(&mb, &EpochTag([1; 32]), 0, b"hi", &IdempotencyKey::random()).await?;
/// let page = t.fetch(&mb.id, 0, 10).await?;
/// assert_eq!(page.items, [Delivered { seq: 1, kind: Kind::Message, payload: b"hi".to_vec() }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let mb = Mailbox::from_capability([7; 32]);
/// let epoch = EpochTag([1; 32]);
/// let ours = t.submit_commit(&mb, &epoch, 0, b"ours", &IdempotencyKey::random()).await?;
/// assert_eq!(ours, CommitOutcome::Accepted { seq: 1 });
/// // A rival commit for the same epoch, from a member that had not seen ours.
/// match t.submit_commit(&mb, &epoch, 0, b"rival", &IdempotencyKey::random()).await? {
///     CommitOutcome::Rejected { winner } => assert_eq!(winner.payload, b"ours"),
///     CommitOutcome::Accepted { .. } => panic!("two commits for one epoch"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let mb = Mailbox::from_capability([7; 32]);
/// let epoch = EpochTag([1; 32]);
/// t.submit_commit(&mb, &epoch, 0, b"commit", &IdempotencyKey::random()).await?;
/// // Encrypted in `epoch` by a member that has not read the commit (cursor 0).
/// let late = t.send_message(&mb, &epoch, 0, b"hi", &IdempotencyKey::random()).await?;
/// assert_eq!(late, SendOutcome::StaleEpoch);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let mb = Mailbox::from_capability([7; 32]);
/// for text in [&b"one"[..], b"two"] {
///     t.send_message(&mb, &EpochTag([1; 32]), 0, text, &IdempotencyKey::random()).await?;
/// }
/// let page = t.fetch(&mb.id, 0, 1).await?;
/// assert_eq!((page.items.len(), page.more), (1, true));
/// let rest = t.fetch(&mb.id, page.items[0].seq, 1).await?;
/// assert_eq!((rest.items[0].payload.as_slice(), rest.more), (&b"two"[..], false));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Page {
    /// Items in order.
    pub items: Vec<Delivered>,
    /// Whether more items follow the last one.
    pub more: bool,
}

/// Notifications that mailboxes have new items (fetch them by cursor: nothing is carried in the
/// notification, so a missed notification loses nothing).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let mb = Mailbox::from_capability([7; 32]);
/// let mut sub = t.subscribe(&[mb.id]).await?;
/// t.send_message(&mb, &EpochTag([1; 32]), 0, b"hi", &IdempotencyKey::random()).await?;
/// let woken = sub.next().await.ok_or("subscription closed")?;
/// assert_eq!(woken, mb.id);
/// assert_eq!(t.fetch(&woken, 0, 10).await?.items[0].payload, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<MailboxId>,
}

impl Subscription {
    /// Wraps a receiver; for transport implementations.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::transport::{MailboxId, Subscription};
    /// let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    /// let mut sub = Subscription::new(rx);
    /// tx.send(MailboxId([3; 32]))?;
    /// drop(tx); // the transport closes the subscription
    /// assert_eq!(sub.next().await, Some(MailboxId([3; 32])));
    /// assert_eq!(sub.next().await, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn new(rx: mpsc::UnboundedReceiver<MailboxId>) -> Self {
        Subscription { rx }
    }

    /// The next mailbox with new items, or `None` when the transport closed the subscription.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let mb = Mailbox::from_capability([7; 32]);
    /// let mut sub = t.subscribe(&[mb.id]).await?;
    /// t.send_message(&mb, &EpochTag([1; 32]), 0, b"hi", &IdempotencyKey::random()).await?;
    /// assert_eq!(sub.next().await, Some(mb.id));
    /// drop(t);
    /// assert_eq!(sub.next().await, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn next(&mut self) -> Option<MailboxId> {
        self.rx.recv().await
    }
}

/// Errors of a transport.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// let t = MemoryTransport::new();
/// let mb = Mailbox::from_capability([7; 32]);
/// let big = vec![0; MAX_PAYLOAD + 1];
/// match t.send_message(&mb, &EpochTag([1; 32]), 0, &big, &IdempotencyKey::random()).await {
///     Err(e @ TransportError::PayloadTooLarge { .. }) => assert!(!e.is_retryable()),
///     other => panic!("expected PayloadTooLarge, got {other:?}"),
/// }
/// let missing = t.fetch_tree(&TreeLocator([0; 32])).await;
/// assert_eq!(missing, Err(TransportError::NotFound));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
    ///
    /// ```
    /// use atmls::transport::TransportError;
    /// assert!(TransportError::RateLimited.is_retryable());
    /// assert!(TransportError::Timeout("no answer in 30 s".into()).is_retryable());
    /// assert!(!TransportError::Forbidden.is_retryable());
    /// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use atmls::transport::*;
/// /// Posts `text` and reads the mailbox back, on any transport.
/// async fn echo(t: &dyn Transport, mb: &Mailbox, text: &[u8]) -> Result<Vec<u8>, TransportError> {
///     t.send_message(mb, &EpochTag([1; 32]), 0, text, &IdempotencyKey::random()).await?;
///     let page = t.fetch(&mb.id, 0, 1).await?;
///     Ok(page.items.into_iter().next().map(|d| d.payload).unwrap_or_default())
/// }
/// let t = MemoryTransport::new();
/// assert_eq!(echo(&t, &Mailbox::from_capability([7; 32]), b"hi").await?, b"hi");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Submits a commit for the epoch `epoch` by a member that has processed the mailbox up to
    /// position `after` (its cursor): stored unless a commit for `epoch` is stored after
    /// `after`, else rejected with the first such commit (TRANSPORT-1). Commits for `epoch` at
    /// or before `after` were seen by the poster and found invalid (it is still in `epoch`),
    /// so they hold nothing.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let mb = Mailbox::from_capability([7; 32]);
    /// let epoch = EpochTag([1; 32]);
    /// let junk = t.submit_commit(&mb, &epoch, 0, b"junk", &IdempotencyKey::random()).await?;
    /// assert_eq!(junk, CommitOutcome::Accepted { seq: 1 });
    /// // After reading it (cursor 1) and finding it invalid, a member's commit is stored.
    /// let ours = t.submit_commit(&mb, &epoch, 1, b"ours", &IdempotencyKey::random()).await?;
    /// assert_eq!(ours, CommitOutcome::Accepted { seq: 2 });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let mb = Mailbox::from_capability([7; 32]);
    /// let epoch = EpochTag([1; 32]);
    /// let sent = t.send_message(&mb, &epoch, 0, b"hi", &IdempotencyKey::random()).await?;
    /// assert_eq!(sent, SendOutcome::Accepted { seq: 1 });
    /// t.submit_commit(&mb, &epoch, 1, b"commit", &IdempotencyKey::random()).await?;
    /// let late = t.send_message(&mb, &epoch, 1, b"again", &IdempotencyKey::random()).await?;
    /// assert_eq!(late, SendOutcome::StaleEpoch);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn send_message(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<SendOutcome, TransportError>;

    /// Sends a Welcome to a device's Welcome mailbox; returns its position there.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::identity::InstallationKeyPair;
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let invitee = InstallationKeyPair::generate().public();
    /// let mailbox = welcome_mailbox_of(invitee.as_bytes());
    /// assert_eq!(t.send_welcome(&mailbox, b"welcome", &IdempotencyKey::random()).await?, 1);
    /// assert_eq!(t.fetch(&mailbox, 0, 10).await?.items[0].kind, Kind::Welcome);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn send_welcome(
        &self,
        mailbox: &MailboxId,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<u64, TransportError>;

    /// Items after position `after`, at most `limit`, in order.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let mb = Mailbox::from_capability([7; 32]);
    /// for text in [&b"one"[..], b"two", b"three"] {
    ///     t.send_message(&mb, &EpochTag([1; 32]), 0, text, &IdempotencyKey::random()).await?;
    /// }
    /// let page = t.fetch(&mb.id, 1, 10).await?; // after the first item
    /// let seqs: Vec<u64> = page.items.iter().map(|d| d.seq).collect();
    /// assert_eq!((seqs, page.more), (vec![2, 3], false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn fetch(
        &self,
        mailbox: &MailboxId,
        after: u64,
        limit: u32,
    ) -> Result<Page, TransportError>;

    /// Notifications of new items in any of `mailboxes` (group mailboxes: a Welcome mailbox
    /// is heard of only through [`Transport::subscribe_welcomes`]).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let (a, b) = (Mailbox::from_capability([1; 32]), Mailbox::from_capability([2; 32]));
    /// let mut sub = t.subscribe(&[a.id, b.id]).await?;
    /// t.send_message(&b, &EpochTag([1; 32]), 0, b"hi", &IdempotencyKey::random()).await?;
    /// assert_eq!(sub.next().await, Some(b.id));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn subscribe(&self, mailboxes: &[MailboxId]) -> Result<Subscription, TransportError>;

    /// Items of the Welcome mailbox `proof` is for, after position `after`, at most `limit`.
    /// A transport that serves other parties checks the proof (spec/ds.md DS-W-1): only the
    /// device may read its Welcomes. In process there is no one else, so by default this is
    /// [`Transport::fetch`] of that mailbox.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::identity::{unix_now, InstallationKeyPair};
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let device = InstallationKeyPair::generate();
    /// let proof = WelcomeReadProof::sign(&device.secret_bytes(), unix_now());
    /// assert_eq!(proof.mailbox, welcome_mailbox_of(device.public().as_bytes()));
    /// t.send_welcome(&proof.mailbox, b"welcome", &IdempotencyKey::random()).await?;
    /// let page = t.fetch_welcomes(&proof, 0, 10).await?;
    /// assert_eq!(page.items[0].payload, b"welcome");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::identity::{unix_now, InstallationKeyPair};
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let device = InstallationKeyPair::generate();
    /// let proof = WelcomeReadProof::sign(&device.secret_bytes(), unix_now());
    /// let mut sub = t.subscribe_welcomes(&proof).await?;
    /// t.send_welcome(&proof.mailbox, b"welcome", &IdempotencyKey::random()).await?;
    /// assert_eq!(sub.next().await, Some(proof.mailbox));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
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
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let locator = TreeLocator(rand::random());
    /// t.put_tree(&locator, b"tree").await?;
    /// t.put_tree(&locator, b"tree").await?; // the same again: fine
    /// let other = t.put_tree(&locator, b"another tree").await;
    /// assert!(matches!(other, Err(TransportError::Refused(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn put_tree(&self, locator: &TreeLocator, blob: &[u8]) -> Result<(), TransportError>;

    /// The blob stored under `locator`; `NotFound` if there is none or it expired.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::transport::*;
    /// let t = MemoryTransport::new();
    /// let locator = TreeLocator(rand::random());
    /// assert_eq!(t.fetch_tree(&locator).await, Err(TransportError::NotFound));
    /// t.put_tree(&locator, b"tree").await?;
    /// assert_eq!(t.fetch_tree(&locator).await?, b"tree");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn fetch_tree(&self, locator: &TreeLocator) -> Result<Vec<u8>, TransportError>;
}
