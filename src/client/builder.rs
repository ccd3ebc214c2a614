//! Building a [`Client`]: its directory, transport and store, and the settings a device
//! may change (identity, KeyPackage policy, clock, blob store, moderation, schedules).

use std::sync::Arc;

use openmls::prelude::Ciphersuite;
use tokio::sync::Mutex;

use super::history::ModerationPolicy;
use super::state::Inner;
use super::{upkeep, Client, Error, Locks};
use crate::blob::BlobStore;
use crate::clock::{Clock, SystemClock};
use crate::directory::Directory;
use crate::identity::DeviceIdentity;
use crate::keypackage::{KeyPackagePolicy, DEFAULT_CIPHERSUITE};
use crate::storage::Store;
use crate::transport::Transport;

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
    message_requests: Option<bool>,
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
    /// [`DEFAULT_CERT_RENEWAL_WINDOW`](super::DEFAULT_CERT_RENEWAL_WINDOW). Zero: never.
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
    /// group (spec/group.md GROUP-10); default [`DEFAULT_LEAF_ROTATION_INTERVAL`](super::DEFAULT_LEAF_ROTATION_INTERVAL). `None`:
    /// never (only [`Conversation::self_update`](super::Conversation::self_update) and re-credentialing rotate them).
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

    /// Who may delete other members' messages; the default is [`AuthorOnly`](super::AuthorOnly) (CONTENT-26).
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

    /// Whether conversations started by accounts this one never allowed are held back as
    /// message requests (spec/consent.md CONSENT-3) under the incoming policy `everyone`;
    /// kept in the store. On by default: a stranger's conversation waits in
    /// [`Client::requests`] until the user accepts it. Off, such conversations are shown at
    /// once (an app for a closed team, or a test world). The policies `none` and `following`
    /// and blocks apply either way.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// let bob = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?))
    ///     .message_requests(false)
    ///     .build().await?;
    /// let dm = alice.dm(bob.did()).await?;
    /// bob.sync().await?;
    /// assert!(bob.requests().await?.is_empty()); // shown at once
    /// assert_eq!(bob.groups().await?[0].id, dm);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn message_requests(mut self, on: bool) -> Self {
        self.message_requests = Some(on);
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
        if let Some(on) = self.message_requests {
            inner.atomic(|cx| crate::storage::consent::set_requests(cx.c, on))?;
        }
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
            message_requests: None,
        }
    }
}
