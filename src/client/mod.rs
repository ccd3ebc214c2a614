//! The client: one device of one account, with its store, a directory and a transport.
//! Every public call is async and changes state only through single SQLite transactions. It
//! holds the client's state lock only while it works on state, never while it waits on the
//! network; ordering locks per group and for the account keep calls that touch the same
//! thing in sequence (`Locks`). SQLite and openmls work runs where it does not hold up the
//! runtime's other tasks (`state::blocking`).

mod attachments;
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
mod state;
mod trust;
mod upkeep;
mod verify;

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

use openmls::prelude::Ciphersuite;
use tokio::sync::{mpsc, Mutex};

use crate::blob::BlobStore;
use crate::clock::{Clock, SystemClock};
use crate::content::{Content, EncodedContent};
use crate::directory::Directory;
use crate::group::{GroupId, GroupKind, GroupStatus, Member};
use crate::identity::{DeviceIdentity, Did, PublicKey};
use crate::keypackage::{KeyPackagePolicy, DEFAULT_CIPHERSUITE};
use crate::storage::{tables, Store};
use crate::transport::{Mailbox, Transport, WelcomeReadProof};

use outgoing::Intent;
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

/// Builds a [`Client`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use std::sync::Arc;
/// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
/// # use atmls::identity::DeviceIdentity;
/// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// use atmls::keypackage::KeyPackagePolicy;
/// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
///     .key_package_policy(KeyPackagePolicy::default())
///     .leaf_rotation(None)
///     .build()
///     .await?;
/// assert_eq!(alice.did().as_str(), "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct ClientBuilder {
    directory: Arc<dyn Directory>,
    transport: Arc<dyn Transport>,
    store: Store,
    identity: Option<DeviceIdentity>,
    policy: KeyPackagePolicy,
    ciphersuite: Ciphersuite,
    blob_store: Option<Arc<dyn BlobStore>>,
    moderation: Option<Arc<dyn ModerationPolicy>>,
    trust_interval: std::time::Duration,
    clock: Arc<dyn Clock>,
    upkeep: upkeep::Upkeep,
}

/// How often [`Client::watch`] re-checks contacts' keys and runs the self-check by default.
pub const DEFAULT_TRUST_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

impl ClientBuilder {
    /// How often [`Client::watch`] re-reads contacts' declarations and runs the self-check
    /// (TRUST-10); default [`DEFAULT_TRUST_CHECK_INTERVAL`].
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use std::time::Duration;
    /// let alice = Arc::new(Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .trust_check_interval(Duration::from_secs(60))
    ///     .build()
    ///     .await?);
    /// // `watch` now re-checks contacts every minute as well as syncing on news.
    /// let events = alice.watch(Duration::from_secs(30));
    /// drop(events); // dropping the receiver ends the background task
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn trust_check_interval(mut self, every: std::time::Duration) -> Self {
        self.trust_interval = every;
        self
    }

    /// How long before its end this device's certificate is renewed by `sync` (at most a
    /// third of its lifetime; spec/identity.md ID-7); default
    /// [`DEFAULT_CERT_RENEWAL_WINDOW`]. Zero: never.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use std::time::Duration;
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .certificate_renewal(Duration::from_secs(7 * 86_400))
    ///     .build()
    ///     .await?;
    /// // Renewed by a sync within a week of its end: not yet.
    /// let before = alice.certificate().await;
    /// alice.sync().await?;
    /// assert_eq!(alice.certificate().await, before);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn certificate_renewal(mut self, window: std::time::Duration) -> Self {
        self.upkeep.renewal_window = window;
        self
    }

    /// How often `sync` rotates this device's leaf keys in each group, varied by ±15% per
    /// group (spec/group.md GROUP-10); default [`DEFAULT_LEAF_ROTATION_INTERVAL`]. `None`:
    /// never (only [`Conversation::self_update`] and re-credentialing rotate them).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use std::time::Duration;
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .leaf_rotation(Some(Duration::from_secs(3 * 86_400)))
    ///     .build()
    ///     .await?;
    /// let g = alice.create_group(&[]).await?;
    /// let epoch = alice.groups().await?[0].epoch;
    /// alice.sync().await?; // not due yet: the epoch stays
    /// assert_eq!(alice.groups().await?[0].epoch, epoch);
    /// # let _ = g;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn leaf_rotation(mut self, every: Option<std::time::Duration>) -> Self {
        self.upkeep.leaf_rotation = every;
        self
    }

    /// Where attachments larger than [`MAX_INLINE_ATTACHMENT`](crate::content::MAX_INLINE_ATTACHMENT)
    /// are stored, encrypted (CONTENT-25). Without one, only inline attachments can be sent
    /// or downloaded.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// let blobs = Arc::new(atmls::blob::MemoryBlobStore::new());
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .blob_store(blobs)
    ///     .build()
    ///     .await?;
    /// let g = alice.create_group(&[]).await?;
    /// let big = vec![1u8; 300_000]; // over the inline limit: encrypted into the blob store
    /// alice.conversation(&g).attach("big.bin", "application/octet-stream", &big).await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn blob_store(mut self, store: Arc<dyn BlobStore>) -> Self {
        self.blob_store = Some(store);
        self
    }

    /// Who may delete other members' messages; the default is [`AuthorOnly`] (CONTENT-26).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use atmls::client::AuthorOnly;
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .moderation(Arc::new(AuthorOnly)) // the default, spelled out
    ///     .build()
    ///     .await?;
    /// # let _ = alice;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn moderation(mut self, policy: Arc<dyn ModerationPolicy>) -> Self {
        self.moderation = Some(policy);
        self
    }

    /// The identity of a new device (required when the store is new; ignored with a check
    /// when the store already holds this identity).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use atmls::identity::{InstallationKeyPair, unix_now};
    /// // A first device holds the account's identity key ...
    /// let first = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
    /// let key = first.identity_key.as_ref().expect("a first device holds it");
    /// // ... and certifies a second device's installation key.
    /// let inst = InstallationKeyPair::generate();
    /// let cert = key.certify(&first.did, &inst.public(), unix_now(), unix_now() + 86_400);
    /// let second = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::linked(inst, cert)?)
    ///     .build()
    ///     .await?;
    /// assert_eq!(second.did(), &first.did);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn identity(mut self, identity: DeviceIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The clock the client reads (default [`SystemClock`]): KeyPackage lifetimes,
    /// certificate periods, disappearing messages, grace periods and invite expiry follow it
    /// (a simulation gives each device its own).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use atmls::clock::Clock;
    /// struct Fixed(u64);
    /// impl Clock for Fixed {
    ///     fn now(&self) -> u64 { self.0 }
    /// }
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .clock(Arc::new(Fixed(atmls::identity::unix_now() + 60)))
    ///     .build()
    ///     .await?;
    /// let g = alice.create_group(&[]).await?;
    /// let sent = alice.conversation(&g).send_text("from the future").await?;
    /// assert_eq!(sent.received, atmls::identity::unix_now() + 60);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many KeyPackages to keep published.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use atmls::directory::Directory;
    /// use atmls::keypackage::KeyPackagePolicy;
    /// let policy = KeyPackagePolicy { single_use: 3, replenish_below: 1, ..KeyPackagePolicy::default() };
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .key_package_policy(policy)
    ///     .build()
    ///     .await?;
    /// // Three single-use KeyPackages and the last-resort one.
    /// assert_eq!(dir.key_packages(alice.did()).await?.len(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn key_package_policy(mut self, policy: KeyPackagePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Opens the client: loads or saves the identity, publishes the declaration (if this device
    /// holds the identity key), the device record and KeyPackages.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use atmls::directory::Directory;
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .build()
    ///     .await?;
    /// // Its declaration, device and KeyPackages are in the directory.
    /// let account = dir.account(alice.did()).await?.expect("published");
    /// assert_eq!(account.devices.len(), 1);
    /// assert!(!dir.key_packages(alice.did()).await?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn build(self) -> Result<Client, Error> {
        let clock = self.clock;
        let mut inner = Inner::open(
            self.store,
            self.identity,
            self.ciphersuite,
            self.policy,
            clock.clone(),
        )?;
        if let Some(m) = self.moderation {
            inner.moderation = m;
        }
        inner.upkeep = self.upkeep;
        let client = Client {
            blob_store: self.blob_store,
            trust_interval: self.trust_interval,
            did: inner.device.did.clone(),
            installation: inner.device.installation.public(),
            inner: Mutex::new(inner),
            locks: Locks::default(),
            directory: self.directory,
            transport: self.transport,
            clock,
        };
        client.account_session().await.publish_identity().await?;
        Ok(client)
    }
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
/// assert!(events.iter().any(|e| matches!(e, atmls::Event::Message(m) if m.decoded().display_text() == Some("hi bob"))));
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

/// What one call of a [`Client`] runs on: the client's state, locked while the call works on
/// it and released while it waits on the network ([`Held::io`]), and the ordering locks it
/// took ([`Locks`]).
pub(crate) struct Session<'a> {
    pub(crate) inner: Held<'a>,
    pub(crate) directory: &'a dyn Directory,
    pub(crate) transport: &'a dyn Transport,
    /// Directory lookups of members made by this call (TRUST-23's budget).
    pub(crate) lookups: usize,
    locks: &'a Locks,
    /// The groups this call works on, each locked once however deep the calls nest.
    groups: Vec<(GroupId, tokio::sync::OwnedMutexGuard<()>)>,
    _account: Option<tokio::sync::MutexGuard<'a, ()>>,
}

/// The client's state behind its lock. A call holds it only while it reads or changes state:
/// [`io`](Self::io) releases it for each network request, so other calls (a message sent in
/// one group while a sync waits on the delivery service or processes another group) go on
/// meanwhile.
pub(crate) struct Held<'a> {
    lock: &'a Mutex<Inner>,
    /// `None` only inside `io`, which holds `&mut self` throughout: nothing else observes it.
    guard: Option<tokio::sync::MutexGuard<'a, Inner>>,
}

impl<'a> Held<'a> {
    async fn lock(lock: &'a Mutex<Inner>) -> Held<'a> {
        Held {
            lock,
            guard: Some(lock.lock().await),
        }
    }

    /// Awaits `request` (a network request, or a wait for an ordering lock) with the state
    /// unlocked, and locks it again. State read before may have changed when it returns, except
    /// what the caller's ordering locks ([`Locks`]) protect.
    pub(crate) async fn io<F: std::future::Future>(&mut self, request: F) -> F::Output {
        self.guard = None;
        let out = request.await;
        self.guard = Some(self.lock.lock().await);
        out
    }
}

impl std::ops::Deref for Held<'_> {
    type Target = Inner;

    #[allow(clippy::expect_used)]
    fn deref(&self) -> &Inner {
        // `io` empties the guard and fills it again before it returns, with `&mut self`
        // borrowed throughout: no caller can observe it empty.
        self.guard
            .as_deref()
            .expect("state locked outside Held::io")
    }
}

impl std::ops::DerefMut for Held<'_> {
    #[allow(clippy::expect_used)]
    fn deref_mut(&mut self) -> &mut Inner {
        // As in `deref`.
        self.guard
            .as_deref_mut()
            .expect("state locked outside Held::io")
    }
}

/// Ordering locks, held across network requests (unlike the state's lock), so that the calls
/// that change one thing happen one after another:
/// - one per group: a call that reads a group, talks to the network and then changes the
///   group (fetching its mailbox, a commit, a send) holds it, so two such calls on one group
///   never interleave;
/// - `account`: account-wide work (syncs, joins from Welcomes, KeyPackages, identity and
///   trust changes, creating groups), one call at a time;
/// - `welcomes_out`: sending the queued Welcomes.
///
/// Order, so that no two calls wait on each other: `account` before any group lock; at most
/// one group lock at a time (nested calls on the same group reuse it); `welcomes_out` last,
/// with nothing taken after it. The state's lock is never held while waiting for these.
#[derive(Default)]
pub(crate) struct Locks {
    account: Mutex<()>,
    welcomes_out: Arc<Mutex<()>>,
    groups: std::sync::Mutex<std::collections::HashMap<GroupId, Arc<Mutex<()>>>>,
}

impl Locks {
    fn group(&self, group: &GroupId) -> Arc<Mutex<()>> {
        // A poisoned map only means a thread panicked while inserting: the map is still
        // whole.
        let mut map = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(group.clone()).or_default().clone()
    }
}

impl Session<'_> {
    /// Takes `group`'s ordering lock unless this call already holds it; returns whether it
    /// took it (pass that to [`leave_group`](Self::leave_group)). The state is unlocked
    /// while waiting, so read the group only after this.
    pub(crate) async fn enter_group(&mut self, group: &GroupId) -> bool {
        if self.groups.iter().any(|(g, _)| g == group) {
            return false;
        }
        // Two calls each holding one group and waiting for the other's would wait forever.
        debug_assert!(
            self.groups.is_empty(),
            "a call holds one group's lock at a time"
        );
        let lock = self.locks.group(group);
        let guard = self.inner.io(lock.lock_owned()).await;
        self.groups.push((group.clone(), guard));
        true
    }

    /// Releases `group`'s ordering lock if [`enter_group`](Self::enter_group) took it.
    pub(crate) fn leave_group(&mut self, entered: bool, group: &GroupId) {
        if entered {
            self.groups.retain(|(g, _)| g != group);
        }
    }

    /// Sends the queued Welcomes one call at a time (see [`Locks`]).
    pub(crate) async fn welcomes_out_lock(&mut self) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self.locks.welcomes_out.clone();
        self.inner.io(lock.lock_owned()).await
    }
}

impl Client {
    /// Starts building a client over a directory, a transport and a store.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// use atmls::keypackage::KeyPackagePolicy;
    /// let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .key_package_policy(KeyPackagePolicy::default())
    ///     .leaf_rotation(None)
    ///     .build()
    ///     .await?;
    /// assert_eq!(alice.did().as_str(), "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn builder(
        directory: Arc<dyn Directory>,
        transport: Arc<dyn Transport>,
        store: Store,
    ) -> ClientBuilder {
        ClientBuilder {
            directory,
            transport,
            store,
            identity: None,
            policy: KeyPackagePolicy::default(),
            ciphersuite: DEFAULT_CIPHERSUITE,
            blob_store: None,
            moderation: None,
            trust_interval: DEFAULT_TRUST_CHECK_INTERVAL,
            clock: Arc::new(SystemClock),
            upkeep: upkeep::Upkeep::default(),
        }
    }

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
            _account: None,
        }
    }

    /// A session for account-wide work: holds the account lock for the whole call.
    pub(crate) async fn account_session(&self) -> Session<'_> {
        let account = self.locks.account.lock().await;
        let mut s = self.session().await;
        s._account = Some(account);
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
    /// let dm = alice.dm(bob.did()).await?;
    /// alice.conversation(&dm).send_text("hi").await?;
    /// let events = bob.sync().await?;
    /// assert!(events.iter().any(|e| matches!(e, Event::Joined { group, .. } if *group == dm)));
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
    /// // The first events come from the background task's syncs.
    /// loop {
    ///     match events.recv().await.expect("the task runs")? {
    ///         atmls::Event::Message(m) => break assert_eq!(m.decoded().display_text(), Some("ping")),
    ///         _ => continue,
    ///     }
    /// }
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
