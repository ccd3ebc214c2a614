//! The client: one device of one account, with its store, a directory and a transport.
//! Every public call is async and changes state only through single SQLite transactions. It
//! holds the client's state lock only while it works on state, never while it waits on the
//! network; ordering locks per group and for the account keep calls that touch the same
//! thing in sequence (`Locks`). SQLite and openmls work runs where it does not hold up the
//! runtime's other tasks (`state::blocking`).

mod attachments;
mod builder;
mod consent;
mod consent_sync;
mod content_api;
mod conversation;
mod error;
mod events;
mod governance;
mod history;
mod incoming;
mod invites;
mod keys;
mod listen;
mod outbox;
mod outgoing;
mod receive;
mod resync;
mod rotation;
mod session;
mod state;
mod trust;
mod upkeep;
mod verify;

pub use builder::{ClientBuilder, DEFAULT_TRUST_CHECK_INTERVAL};
pub use consent::MessageRequest;
pub use conversation::Conversation;
pub use error::Error;
pub use events::{Event, Message};
pub use history::{
    AuthorOnly, HistoryCursor, HistoryError, HistoryItem, HistoryPage, ModerationPolicy,
    ReactionCount, ReadPosition, Revision, Tombstone,
};
pub use invites::{
    InviteError, InviteLink, InviteOptions, JoinOutcome, JoinRequest, PendingJoin, RequestId,
};
pub use upkeep::{DEFAULT_CERT_RENEWAL_WINDOW, DEFAULT_LEAF_ROTATION_INTERVAL};

use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

use crate::blob::BlobStore;
use crate::clock::Clock;
use crate::content::{Content, EncodedContent};
use crate::directory::Directory;
use crate::group::{GroupId, GroupKind, GroupStatus, Member};
use crate::identity::{Did, PublicKey};
use crate::storage::tables;
use crate::transport::{Mailbox, Transport, WelcomeReadProof};

use outgoing::Intent;
pub(crate) use session::Session;
use session::{Held, Locks};
use state::Inner;

/// A conversation as this device sees it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use std::sync::Arc;
/// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
/// # use atmls::identity::DeviceIdentity;
/// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
/// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
/// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
/// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
/// use atmls::group::{GroupKind, GroupStatus};
/// let dm = alice.dm(bob.did()).await?;
/// let info = &alice.groups().await?[0];
/// assert_eq!((&info.id, info.kind, info.dm_peer.as_ref()), (&dm, GroupKind::Dm, Some(bob.did())));
/// assert_eq!(info.status, GroupStatus::Active);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// Its id.
    pub id: GroupId,
    /// DM or group.
    pub kind: GroupKind,
    /// For a DM, the other account.
    pub dm_peer: Option<Did>,
    /// Whether this device is still a member.
    pub status: GroupStatus,
    /// The current MLS epoch (0 before the first commit).
    pub epoch: u64,
}

/// One device of an account: creates and joins conversations, sends and receives.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
/// use atmls::identity::DeviceIdentity;
/// let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
///     .build().await?;
/// let bob = Client::builder(dir, net, Store::in_memory()?)
///     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?))
///     .build().await?;
/// let dm = alice.dm(bob.did()).await?;
/// alice.conversation(&dm).send_text("hi bob").await?;
/// let events = bob.sync().await?;
/// // A conversation from an account bob never talked to is a message request.
/// assert!(events.iter().any(|e| matches!(e, atmls::Event::MessageRequest { group, .. } if *group == dm)));
/// bob.conversation(&dm).accept().await?;
/// let messages = bob.conversation(&dm).messages().await?;
/// assert_eq!(messages[0].decoded().display_text(), Some("hi bob"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Client {
    did: Did,
    installation: PublicKey,
    inner: Mutex<Inner>,
    locks: Locks,
    directory: Arc<dyn Directory>,
    transport: Arc<dyn Transport>,
    blob_store: Option<Arc<dyn BlobStore>>,
    trust_interval: std::time::Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}, {:?})", self.did, self.installation)
    }
}

impl Client {
    /// A session for a call that reads state, or works on groups (each primitive takes its
    /// group's lock, see [`Locks`]).
    pub(crate) async fn session(&self) -> Session<'_> {
        Session {
            inner: Held::lock(&self.inner).await,
            directory: &*self.directory,
            transport: &*self.transport,
            lookups: 0,
            locks: &self.locks,
            groups: Vec::new(),
            account: None,
        }
    }

    /// A session for account-wide work: holds the account lock for the whole call.
    pub(crate) async fn account_session(&self) -> Session<'_> {
        let account = self.locks.account.lock().await;
        let mut s = self.session().await;
        s.account = Some(account);
        s
    }

    /// The group's current mailbox (spec/group.md GROUP-4a): where its posts and blobs go.
    pub(crate) async fn current_mailbox(&self, group: &GroupId) -> Result<Mailbox, Error> {
        self.session().await.mailbox(group)
    }

    /// The group's current mailbox and its capability, for tests that play a member's part
    /// against the transport (GROUP-4a).
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn mailbox_for_test(&self, group: &GroupId) -> Result<Mailbox, Error> {
        self.current_mailbox(group).await
    }

    /// The time on this client's clock (unix seconds).
    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// This device's account.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// assert_eq!(alice.did().as_str(), "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn did(&self) -> &Did {
        &self.did
    }

    /// This device's installation key (its id).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// assert_eq!(alice.installation(), &alice.certificate().await.installation_key);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn installation(&self) -> &PublicKey {
        &self.installation
    }

    /// Creates a group with every current device of `members` (and this account's other
    /// devices), this account as owner and the *all members* policy preset
    /// ([`create_group_with`](Self::create_group_with) chooses). Returns once the first commit
    /// is accepted and the Welcomes are sent (or, if sending them failed, queued for the next
    /// sync). On error no group is left behind (GROUP-1).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// bob.sync().await?; // joins from the Welcome
    /// let members = bob.conversation(&g).members().await?;
    /// assert_eq!(members.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn create_group(&self, members: &[Did]) -> Result<GroupId, Error> {
        self.account_session()
            .await
            .create(GroupKind::Group, members)
            .await
    }

    /// The DM with `peer`: the existing one if there is one, else a new one.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// assert_eq!(alice.dm(bob.did()).await?, dm); // the same DM again
    /// assert!(alice.dm(alice.did()).await.is_err()); // not with oneself
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn dm(&self, peer: &Did) -> Result<GroupId, Error> {
        if peer == &self.did {
            return Err(Error::InvalidArgument("a DM needs another account"));
        }
        // The account lock: two calls at once must not make two DMs.
        let mut s = self.account_session().await;
        if let Some(g) = s.inner.read(|c| tables::dm_for(c, peer))? {
            return Ok(GroupId(g));
        }
        s.create(GroupKind::Dm, std::slice::from_ref(peer)).await
    }

    /// Behind [`Conversation::add_members`].
    pub(crate) async fn add_members(&self, group: &GroupId, members: &[Did]) -> Result<(), Error> {
        self.session()
            .await
            .run_commit(group, Intent::Add(members.to_vec()))
            .await
    }

    /// Behind [`Conversation::remove_members`].
    pub(crate) async fn remove_members(
        &self,
        group: &GroupId,
        members: &[Did],
    ) -> Result<(), Error> {
        if members.contains(&self.did) {
            return Err(Error::InvalidArgument(
                "use leave() to remove your own account",
            ));
        }
        self.session()
            .await
            .run_commit(group, Intent::Remove(members.to_vec()))
            .await
    }

    /// Behind [`Conversation::self_update`].
    pub(crate) async fn self_update(&self, group: &GroupId) -> Result<(), Error> {
        self.session().await.run_commit(group, Intent::Update).await
    }

    /// Behind [`Conversation::leave`].
    pub(crate) async fn leave(&self, group: &GroupId) -> Result<(), Error> {
        self.session().await.leave(group).await
    }

    /// Behind [`Conversation::send`].
    pub(crate) async fn send(
        &self,
        group: &GroupId,
        content: &EncodedContent,
    ) -> Result<Message, Error> {
        self.session().await.send(group, content, true).await
    }

    /// Behind [`Conversation::send_text`].
    pub(crate) async fn send_text(&self, group: &GroupId, text: &str) -> Result<Message, Error> {
        self.send(group, &Content::text(text)).await
    }

    /// Fetches and processes everything new: Welcomes, then every group's mailbox. Also
    /// commits pending leave requests, delivers queued messages (GROUP-11), renews this
    /// device's certificate (ID-7) and rotates its leaf keys (GROUP-10) when due, keeps
    /// KeyPackages published, and deletes expired disappearing messages (CONTENT-28).
    ///
    /// Returns every event since the last `sync`, in order, including those of messages
    /// read while committing or sending. If it fails part-way (retryable transport errors),
    /// what was already processed stays processed and its events come with the next call.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::Event;
    /// let dm = bob.dm(alice.did()).await?; // bob starts it: alice's messages are welcome
    /// alice.sync().await?;
    /// alice.conversation(&dm).accept().await?; // for alice, a message request
    /// alice.conversation(&dm).send_text("hi").await?;
    /// let events = bob.sync().await?;
    /// assert!(events.iter().any(|e| matches!(e, Event::Message(m) if m.decoded().display_text() == Some("hi"))));
    /// assert!(bob.sync().await?.is_empty()); // nothing new
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn sync(&self) -> Result<Vec<Event>, Error> {
        let events = {
            let mut s = self.account_session().await;
            let now = s.inner.now();
            s.purge_expired(now)?;
            s.sync_all().await?
        };
        // Blobs of messages deleted or expired above (CONTENT-25k); an unreachable store
        // keeps them queued for the next sync, and does not fail this one.
        if let Err(e) = self.erase_deleted_blobs().await {
            tracing::warn!(error = %e, "erasing blobs of deleted messages failed");
        }
        Ok(events)
    }

    /// This device's conversations.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// let g = alice.create_group(&[bob.did().clone()]).await?;
    /// let ids: Vec<_> = alice.groups().await?.into_iter().map(|i| i.id).collect();
    /// assert!(ids.contains(&dm) && ids.contains(&g));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn groups(&self) -> Result<Vec<GroupInfo>, Error> {
        self.session().await.inner.group_infos()
    }

    /// Behind [`Conversation::members`].
    pub(crate) async fn members(&self, group: &GroupId) -> Result<Vec<Member>, Error> {
        self.session().await.inner.members(group)
    }

    /// Behind [`Conversation::messages`].
    pub(crate) async fn messages(&self, group: &GroupId) -> Result<Vec<Message>, Error> {
        self.session().await.inner.messages(group)
    }

    /// Behind [`Conversation::process_incoming`].
    pub(crate) async fn process_incoming(
        &self,
        group: &GroupId,
        payload: &[u8],
    ) -> Result<Vec<Event>, Error> {
        self.session().await.process_raw(group, payload).await
    }

    /// A stream of events: a background task syncs whenever the transport signals news (and
    /// at least every `poll`). Ends when the receiver is dropped.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use std::time::Duration;
    /// let alice = Arc::new(alice);
    /// let mut events = alice.watch(Duration::from_secs(1));
    /// let dm = bob.dm(alice.did()).await?;
    /// bob.conversation(&dm).send_text("ping").await?;
    /// // The first events come from the background task's syncs: a conversation from an
    /// // account alice never talked to is a message request.
    /// loop {
    ///     match events.recv().await.expect("the task runs")? {
    ///         atmls::Event::MessageRequest { group, .. } => break assert_eq!(group, dm),
    ///         _ => continue,
    ///     }
    /// }
    /// alice.conversation(&dm).accept().await?;
    /// let got = alice.conversation(&dm).messages().await?;
    /// assert_eq!(got[0].decoded().display_text(), Some("ping"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn watch(
        self: &Arc<Self>,
        poll: std::time::Duration,
    ) -> mpsc::Receiver<Result<Event, Error>> {
        let (tx, rx) = mpsc::channel(256);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut last_trust_check: Option<std::time::Instant> = None;
            let mut reported = Vec::new();
            let mut listener = listen::Listener::new();
            loop {
                if last_trust_check.is_none_or(|t| t.elapsed() >= me.trust_interval) {
                    last_trust_check = Some(std::time::Instant::now());
                    let events = me.trust_round(&mut reported).await;
                    for e in events {
                        if tx.send(e).await.is_err() {
                            return;
                        }
                    }
                }
                // Group mailboxes, each on its own subscription; the Welcome mailbox and the
                // invite request mailboxes (so a join request wakes us, INV-4) on others, with
                // proofs (DS-W-1, DS-W-3).
                let listed = {
                    let mut s = me.session().await;
                    let proof = WelcomeReadProof::sign(
                        &s.inner.device.installation.secret_bytes(),
                        s.inner.now(),
                    );
                    s.inner.group_mailboxes().and_then(|m| {
                        let mut proofs = vec![proof];
                        proofs.extend(s.inner.invite_mailboxes()?);
                        Ok((proofs, m))
                    })
                };
                let subscribed = match listed {
                    Ok((proofs, m)) => {
                        listener.refresh(&me.transport, &proofs, &m).await;
                        m
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                match me.sync().await {
                    Ok(events) => {
                        for e in events {
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        if tx.send(Err(e)).await.is_err() {
                            return;
                        }
                    }
                }
                // A group joined, left or moved to a new mailbox (GROUP-4a) during the sync:
                // subscribe to the new list, then sync again, before waiting on it.
                let now = me.session().await.inner.group_mailboxes();
                if now.is_ok_and(|n| n != subscribed) {
                    continue;
                }
                tokio::select! {
                    _ = listener.next() => {}
                    _ = tokio::time::sleep(poll.min(me.trust_interval)) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        rx
    }

    /// The underlying store (for inspection in tests).
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn store_snapshot(&self) -> Result<Vec<(String, Vec<String>)>, Error> {
        Ok(self.session().await.inner.store.snapshot()?)
    }

    /// Opens a Welcome envelope as this device's sync would (GROUP-12; for tests inspecting
    /// what they captured at the transport): the adding commit's position and the MLS
    /// Welcome message. Changes nothing.
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn open_welcome_envelope(&self, payload: &[u8]) -> Result<(u64, Vec<u8>), Error> {
        let mut s = self.session().await;
        let env = s
            .inner
            .ctx_read(|cx| Ok(incoming::open_envelope(cx, payload)?))??;
        Ok((env.commit_seq, env.welcome))
    }

    /// Bytes the client's database uses (for benchmarks of state size).
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn store_bytes(&self) -> Result<u64, Error> {
        Ok(self.session().await.inner.store.used_bytes()?)
    }

    /// The group's current epoch and an exporter value (for tests asserting unchanged state).
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn epoch_fingerprint(&self, group: &GroupId) -> Result<(u64, Vec<u8>), Error> {
        self.session().await.inner.epoch_fingerprint(group)
    }
}
