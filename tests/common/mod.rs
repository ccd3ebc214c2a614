//! Shared set-up for scenario tests: accounts and devices on one in-memory directory and
//! in-process transport.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use atmls::transport::*;

use std::collections::HashSet;
use std::sync::Mutex;

use atmls::directory::{
    AccountRecord, DeviceRecord, Directory, DirectoryError, KeyPackageRecord, MemoryDirectory,
};
use atmls::identity::{unix_now, DeviceIdentity, Did, IdentityKeyPair, InstallationKeyPair};
use atmls::identity::{IdentityDeclaration, PublicKey};
use atmls::storage::Store;
use atmls::{Client, Event, GroupId};

pub struct World {
    pub dir: Arc<MemoryDirectory>,
    pub net: Arc<MemoryTransport>,
}

/// `did:plc:` ids need 24 base32 characters.
pub fn did(name: &str) -> Did {
    let mut s: String = name.chars().filter(|c| c.is_ascii_lowercase()).collect();
    while s.len() < 24 {
        s.push('a');
    }
    Did::new(&format!("did:plc:{}", &s[..24])).unwrap()
}

impl World {
    pub fn new() -> Self {
        World {
            dir: Arc::new(MemoryDirectory::new()),
            net: Arc::new(MemoryTransport::new()),
        }
    }

    /// A device of a test world, where every account knows the others: conversations are
    /// shown at once (message requests off; tests/consent.rs covers them).
    pub async fn client(&self, identity: DeviceIdentity, store: Store) -> Client {
        Client::builder(self.dir.clone(), self.net.clone(), store)
            .identity(identity)
            .message_requests(false)
            .build()
            .await
            .unwrap()
    }

    /// A new account with its first device (which holds the identity key).
    pub async fn account(&self, name: &str) -> (Client, IdentityKeyPair) {
        let dev = DeviceIdentity::new_account(did(name));
        let key = IdentityKeyPair::from_secret_bytes(
            &dev.identity_key.as_ref().unwrap().secret_bytes()[..],
        )
        .unwrap();
        (self.client(dev, Store::in_memory().unwrap()).await, key)
    }

    /// A further device of an account, certified by its identity key.
    pub async fn device(&self, name: &str, key: &IdentityKeyPair) -> Client {
        self.device_in(name, key, Store::in_memory().unwrap()).await
    }

    pub async fn device_in(&self, name: &str, key: &IdentityKeyPair, store: Store) -> Client {
        let inst = InstallationKeyPair::generate();
        let now = unix_now();
        let cert = key.certify(&did(name), &inst.public(), now, now + 86_400);
        self.client(DeviceIdentity::linked(inst, cert).unwrap(), store)
            .await
    }
}

pub fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.decoded().display_text().map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// The ids of the conversations `client` shows ([`Client::groups`]).
pub async fn group_ids(client: &Client) -> Vec<GroupId> {
    client
        .groups()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

/// The display texts of the messages `client` has stored in `group`, oldest first.
pub async fn stored_texts(client: &Client, group: &GroupId) -> Vec<String> {
    client
        .conversation(group)
        .messages()
        .await
        .unwrap()
        .iter()
        .filter_map(|m| m.decoded().display_text().map(str::to_owned))
        .collect()
}

pub fn joined(events: &[Event]) -> Vec<GroupId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Joined { group, .. } => Some(group.clone()),
            _ => None,
        })
        .collect()
}

/// The in-process transport with two test knobs, delegating everything else:
/// - `racing`: the next `n` commits wait for each other before reaching the transport, so
///   they are all built against the same epoch and all but one must lose;
/// - `careless`: application messages are stored whatever their epoch tag, as a careless or
///   hostile delivery service might (lets a removed member's stale message through);
/// - a gate: fetches of one mailbox wait until the test opens it, as a slow network would
///   hold them ([`hold_fetches`](Self::hold_fetches)).
pub struct TestTransport {
    inner: Arc<MemoryTransport>,
    barrier: tokio::sync::Barrier,
    waiting: AtomicUsize,
    careless: bool,
    held: Mutex<Option<MailboxId>>,
    /// Notified when a fetch of the held mailbox waits at the gate.
    pub fetch_held: tokio::sync::Notify,
    gate: tokio::sync::Semaphore,
}

impl TestTransport {
    pub fn racing(inner: Arc<MemoryTransport>) -> Self {
        TestTransport {
            inner,
            barrier: tokio::sync::Barrier::new(2),
            waiting: AtomicUsize::new(0),
            careless: false,
            held: Mutex::new(None),
            fetch_held: tokio::sync::Notify::new(),
            gate: tokio::sync::Semaphore::new(0),
        }
    }

    /// The next fetches of `mailbox` wait until [`open_fetches`](Self::open_fetches).
    pub fn hold_fetches(&self, mailbox: MailboxId) {
        *self.held.lock().unwrap() = Some(mailbox);
    }

    /// Lets the held fetches (and every later one) through.
    pub fn open_fetches(&self) {
        *self.held.lock().unwrap() = None;
        self.gate.close();
    }

    pub fn careless(inner: Arc<MemoryTransport>) -> Self {
        TestTransport {
            careless: true,
            ..Self::racing(inner)
        }
    }

    /// Holds the next two commits until both have arrived.
    pub fn hold_next_commits(&self, n: usize) {
        assert_eq!(n, 2, "the barrier is sized for two commits");
        self.waiting.store(n, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl Transport for TestTransport {
    async fn submit_commit(
        &self,
        m: &Mailbox,
        e: &EpochTag,
        after: u64,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError> {
        if self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.barrier.wait().await;
        }
        self.inner.submit_commit(m, e, after, p, k).await
    }
    async fn send_message(
        &self,
        m: &Mailbox,
        e: &EpochTag,
        after: u64,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<SendOutcome, TransportError> {
        // A fresh tag is never a committed one: the epoch check cannot fire.
        let fresh = EpochTag(rand::random());
        self.inner
            .send_message(m, if self.careless { &fresh } else { e }, after, p, k)
            .await
    }
    async fn send_welcome(
        &self,
        m: &MailboxId,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<u64, TransportError> {
        self.inner.send_welcome(m, p, k).await
    }
    async fn fetch(&self, m: &MailboxId, after: u64, limit: u32) -> Result<Page, TransportError> {
        if self.held.lock().unwrap().as_ref() == Some(m) {
            self.fetch_held.notify_one();
            // A closed semaphore is the open gate: acquire fails at once, for every waiter.
            let _ = self.gate.acquire().await;
        }
        self.inner.fetch(m, after, limit).await
    }
    async fn subscribe(&self, m: &[MailboxId]) -> Result<Subscription, TransportError> {
        self.inner.subscribe(m).await
    }
    async fn put_tree(&self, l: &TreeLocator, b: &[u8]) -> Result<(), TransportError> {
        self.inner.put_tree(l, b).await
    }
    async fn fetch_tree(&self, l: &TreeLocator) -> Result<Vec<u8>, TransportError> {
        self.inner.fetch_tree(l).await
    }
}

/// openmls over a client's SQLite file (in atmls's codec), as a hostile device would drive
/// it directly: for commits our API refuses to build.
pub struct RawProvider {
    pub crypto: openmls_rust_crypto::RustCrypto,
    pub storage: openmls_sqlite_storage::SqliteStorageProvider<
        atmls::storage::StorageCodec,
        rusqlite::Connection,
    >,
}

impl RawProvider {
    /// The group `g` as stored in the client database at `path`, with the signer of the
    /// device's own leaf: what a modified client would commit with.
    pub fn open_group(
        path: &std::path::Path,
        g: &GroupId,
    ) -> (
        Self,
        openmls::prelude::MlsGroup,
        openmls_basic_credential::SignatureKeyPair,
    ) {
        use openmls_traits::OpenMlsProvider as _;
        let p = Self::open(path);
        let group = openmls::prelude::MlsGroup::load(
            p.storage(),
            &openmls::group::GroupId::from_slice(g.as_bytes()),
        )
        .unwrap()
        .unwrap();
        let key = group
            .own_leaf_node()
            .unwrap()
            .signature_key()
            .as_slice()
            .to_vec();
        let signer = openmls_basic_credential::SignatureKeyPair::read(
            p.storage(),
            &key,
            group.ciphersuite().signature_algorithm(),
        )
        .unwrap();
        (p, group, signer)
    }

    /// Opens the client database at `path`.
    pub fn open(path: &std::path::Path) -> Self {
        RawProvider {
            crypto: Default::default(),
            storage: openmls_sqlite_storage::SqliteStorageProvider::new(
                rusqlite::Connection::open(path).unwrap(),
            ),
        }
    }
}

impl openmls_traits::OpenMlsProvider for RawProvider {
    type CryptoProvider = openmls_rust_crypto::RustCrypto;
    type RandProvider = openmls_rust_crypto::RustCrypto;
    type StorageProvider = openmls_sqlite_storage::SqliteStorageProvider<
        atmls::storage::StorageCodec,
        rusqlite::Connection,
    >;
    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }
    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }
    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}

/// A directory that is unreachable for each listed account's first lookup, knows nothing of
/// the `dead` accounts (their records are gone), and records every account lookup.
pub struct FlakyDirectory {
    pub inner: Arc<MemoryDirectory>,
    pub fail_once: Mutex<HashSet<Did>>,
    pub dead: Mutex<HashSet<Did>>,
    pub asked: Mutex<Vec<Did>>,
}

impl FlakyDirectory {
    pub fn new(inner: Arc<MemoryDirectory>) -> Arc<Self> {
        Arc::new(FlakyDirectory {
            inner,
            fail_once: Mutex::new(HashSet::new()),
            dead: Mutex::new(HashSet::new()),
            asked: Mutex::new(Vec::new()),
        })
    }
    pub fn asked(&self) -> Vec<Did> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Directory for FlakyDirectory {
    async fn account(&self, did: &Did) -> Result<Option<AccountRecord>, DirectoryError> {
        self.asked.lock().unwrap().push(did.clone());
        if self.fail_once.lock().unwrap().remove(did) {
            return Err(DirectoryError::Unavailable("first lookup fails".into()));
        }
        if self.dead.lock().unwrap().contains(did) {
            return Ok(None);
        }
        self.inner.account(did).await
    }
    async fn key_packages(&self, did: &Did) -> Result<Vec<KeyPackageRecord>, DirectoryError> {
        self.inner.key_packages(did).await
    }
    async fn follows(&self, did: &Did) -> Result<Option<Vec<Did>>, DirectoryError> {
        self.inner.follows(did).await
    }
    async fn publish_declaration(&self, d: &IdentityDeclaration) -> Result<(), DirectoryError> {
        self.inner.publish_declaration(d).await
    }
    async fn publish_device(&self, d: &DeviceRecord) -> Result<(), DirectoryError> {
        self.inner.publish_device(d).await
    }
    async fn remove_device(&self, did: &Did, i: &PublicKey) -> Result<(), DirectoryError> {
        self.inner.remove_device(did, i).await
    }
    async fn publish_key_package(&self, r: &KeyPackageRecord) -> Result<(), DirectoryError> {
        self.inner.publish_key_package(r).await
    }
    async fn delete_key_package(&self, did: &Did, r: &[u8]) -> Result<(), DirectoryError> {
        self.inner.delete_key_package(did, r).await
    }
}

impl World {
    /// A new account whose device reads the directory through `dir`.
    pub async fn account_on(&self, dir: Arc<dyn Directory>, name: &str) -> Client {
        Client::builder(dir, self.net.clone(), Store::in_memory().unwrap())
            .identity(DeviceIdentity::new_account(did(name)))
            .message_requests(false)
            .build()
            .await
            .unwrap()
    }
}

/// What an atmls leaf needs to support, less the `drop`ped extension type.
pub fn capabilities_without(drop: Option<u16>) -> openmls::prelude::Capabilities {
    let ext: Vec<openmls::prelude::ExtensionType> = [
        atmls::group::GROUP_DATA_EXTENSION,
        atmls::credential::LEAF_PROOF_EXTENSION,
        atmls::group::DISAPPEARING_EXTENSION,
        atmls::group::ROLES_EXTENSION,
        atmls::group::POLICIES_EXTENSION,
        atmls::group::METADATA_EXTENSION,
        atmls::group::INVITES_EXTENSION,
    ]
    .into_iter()
    .filter(|t| Some(*t) != drop)
    .map(openmls::prelude::ExtensionType::Unknown)
    .chain([openmls::prelude::ExtensionType::LastResort])
    .filter(|t| drop != Some(u16::from(*t)))
    .collect();
    openmls::prelude::Capabilities::new(
        None,
        Some(&[atmls::keypackage::DEFAULT_CIPHERSUITE]),
        Some(&ext),
        None,
        Some(&[openmls::prelude::CredentialType::Basic]),
    )
}
