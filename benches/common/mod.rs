//! Helpers shared by the group benchmarks (`groups`, `large_group`): DIDs, the bench
//! transport that discards Welcomes for filler accounts, cheap filler accounts, and the raw
//! openmls side (providers, configs, a member that adds, removes, updates and processes).
#![allow(dead_code)] // each bench uses a subset

// The raw side is the unpatched openmls 0.9.2 release (atmls links the patched one).
use openmls_upstream as openmls;

use std::rc::Rc;
use std::sync::Arc;

use openmls::prelude::{
    tls_codec::{Deserialize as _, Serialize as _},
    BasicCredential, Ciphersuite, CredentialWithKey, KeyPackage, KeyPackageIn, LeafNodeParameters,
    MlsGroup, MlsGroupCreateConfig, MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn,
    NewSignerBundle, ProcessedMessageContent, ProtocolVersion, SenderRatchetConfiguration,
    StagedWelcome, PURE_CIPHERTEXT_WIRE_FORMAT_POLICY,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::{Codec, Connection, SqliteStorageProvider};
use openmls_traits::OpenMlsProvider;

use atmls::directory::MemoryDirectory;
use atmls::identity::{DeviceIdentity, Did};
use atmls::keypackage::KeyPackagePolicy;
use atmls::storage::Store;
use atmls::transport::{
    CommitOutcome, EpochTag, IdempotencyKey, Mailbox, MailboxId, MemoryTransport, Page,
    SendOutcome, Subscription, Transport, TransportError, TreeLocator,
};
use atmls::Client;

pub const CS: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
pub const TEXT_LEN: usize = 1024;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A `did:plc:` id: a tag letter and 23 base-26 digits of `i`.
pub fn did(tag: u8, i: u64) -> Did {
    let mut s = [b'a'; 24];
    s[0] = tag;
    let mut x = i;
    for d in s[1..].iter_mut().rev() {
        *d = b'a' + (x % 26) as u8;
        x /= 26;
    }
    Did::new(&format!(
        "did:plc:{}",
        std::str::from_utf8(&s).expect("ascii")
    ))
    .expect("valid did")
}

pub fn text_1k() -> String {
    "0123456789abcdef".repeat(TEXT_LEN / 16)
}

pub fn current_thread_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

// ---------------------------------------------------------------------------------------------
// atmls side
// ---------------------------------------------------------------------------------------------

/// The in-process transport, except that Welcomes for the set-up's filler accounts (dropped
/// clients that never join) are accepted and discarded: at N = 10,000 storing one large
/// Welcome copy per filler would take tens of GB. Everything else is the real
/// `MemoryTransport`.
#[derive(Default)]
pub struct BenchNet {
    pub inner: MemoryTransport,
    sinks: std::sync::RwLock<std::collections::HashSet<MailboxId>>,
    /// A simulated round trip (µs) added to every request; zero unless a bench sets it.
    rtt_us: std::sync::atomic::AtomicU64,
}

impl BenchNet {
    /// Every later request waits `rtt` before it is answered, like one over a network.
    pub fn set_rtt(&self, rtt: std::time::Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.rtt_us.store(us, std::sync::atomic::Ordering::Relaxed);
    }

    async fn round_trip(&self) {
        let us = self.rtt_us.load(std::sync::atomic::Ordering::Relaxed);
        if us > 0 {
            tokio::time::sleep(std::time::Duration::from_micros(us)).await;
        }
    }

    pub fn sink(&self, mailbox: MailboxId) {
        if let Ok(mut s) = self.sinks.write() {
            s.insert(mailbox);
        }
    }
}

#[async_trait::async_trait]
impl Transport for BenchNet {
    async fn submit_commit(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError> {
        self.round_trip().await;
        self.inner
            .submit_commit(mailbox, epoch, after, payload, key)
            .await
    }

    async fn send_message(
        &self,
        mailbox: &Mailbox,
        epoch: &EpochTag,
        after: u64,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<SendOutcome, TransportError> {
        self.round_trip().await;
        self.inner
            .send_message(mailbox, epoch, after, payload, key)
            .await
    }

    async fn send_welcome(
        &self,
        mailbox: &MailboxId,
        payload: &[u8],
        key: &IdempotencyKey,
    ) -> Result<u64, TransportError> {
        self.round_trip().await;
        if self.sinks.read().is_ok_and(|s| s.contains(mailbox)) {
            return Ok(1);
        }
        self.inner.send_welcome(mailbox, payload, key).await
    }

    async fn fetch(
        &self,
        mailbox: &MailboxId,
        after: u64,
        limit: u32,
    ) -> Result<Page, TransportError> {
        self.round_trip().await;
        self.inner.fetch(mailbox, after, limit).await
    }

    async fn subscribe(&self, mailboxes: &[MailboxId]) -> Result<Subscription, TransportError> {
        self.inner.subscribe(mailboxes).await
    }

    async fn put_tree(&self, locator: &TreeLocator, blob: &[u8]) -> Result<(), TransportError> {
        self.round_trip().await;
        self.inner.put_tree(locator, blob).await
    }

    async fn fetch_tree(&self, locator: &TreeLocator) -> Result<Vec<u8>, TransportError> {
        self.round_trip().await;
        self.inner.fetch_tree(locator).await
    }
}

/// Members per add commit in the set-up (each adds about 550 bytes of inline KeyPackage to
/// the commit): the same chunks for every size and both sides, so the build rows compare.
pub const SETUP_CHUNK: usize = 1000;

/// Accounts that never process anything: one last-resort KeyPackage each.
pub fn last_resort_only() -> KeyPackagePolicy {
    KeyPackagePolicy {
        single_use: 0,
        replenish_below: 0,
        lifetime_secs: 86_400,
    }
}

/// A joiner: one single-use KeyPackage (so that joining does not trigger the last-resort
/// rotation commit), replenished on sync as usual.
pub fn joiner_policy() -> KeyPackagePolicy {
    KeyPackagePolicy {
        single_use: 1,
        replenish_below: 1,
        lifetime_secs: 86_400,
    }
}

pub async fn atmls_account(
    dir: &Arc<MemoryDirectory>,
    net: &Arc<BenchNet>,
    did: Did,
    policy: KeyPackagePolicy,
) -> Result<Client, BoxError> {
    atmls_account_in(dir, net, did, policy, Store::in_memory()?).await
}

/// [`atmls_account`] on a given store (a file, an encrypted file).
pub async fn atmls_account_in(
    dir: &Arc<MemoryDirectory>,
    net: &Arc<BenchNet>,
    did: Did,
    policy: KeyPackagePolicy,
    store: Store,
) -> Result<Client, BoxError> {
    Ok(Client::builder(dir.clone(), net.clone(), store)
        .identity(DeviceIdentity::new_account(did))
        .key_package_policy(policy)
        // The benchmark's accounts know each other: no message requests.
        .message_requests(false)
        .build()
        .await?)
}

/// Accounts `did(b'm', i)` for `i` in `0..count` except `skip`, that publish one last-resort
/// KeyPackage and are dropped (their Welcomes are sunk), built on all cores (each thread with
/// its own runtime). Returned in index order, with their index.
pub fn atmls_cheap_accounts(
    dir: &Arc<MemoryDirectory>,
    net: &Arc<BenchNet>,
    count: usize,
    skip: &[usize],
    progress: bool,
) -> Result<Vec<(usize, Did)>, BoxError> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let parts: Vec<Result<Vec<(usize, Did)>, BoxError>> = std::thread::scope(|s| {
        let done = &done;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    current_thread_rt().block_on(async move {
                        let mut out = Vec::new();
                        for i in (t..count).step_by(threads) {
                            if skip.contains(&i) {
                                continue;
                            }
                            let d = did(b'm', i as u64);
                            let c = atmls_account(dir, net, d.clone(), last_resort_only()).await?;
                            net.sink(atmls::group::welcome_mailbox(c.installation()));
                            out.push((i, d));
                            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                            if progress && k % 10_000 == 0 {
                                eprintln!("  … {k} accounts");
                            }
                        }
                        Ok(out)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("set-up thread panicked"))
            .collect()
    });
    let mut dids = Vec::with_capacity(count);
    for p in parts {
        dids.extend(p?);
    }
    dids.sort_by_key(|(i, _)| *i);
    Ok(dids)
}

// ---------------------------------------------------------------------------------------------
// raw openmls side: openmls_rust_crypto + openmls_sqlite_storage (JSON codec, in-memory
// rusqlite connection), like atmls before its compact codec.
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    type Error = serde_json::Error;

    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        serde_json::to_vec(value)
    }

    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        serde_json::from_slice(slice)
    }
}

pub struct RawProvider {
    crypto: RustCrypto,
    conn: Rc<Connection>,
    storage: SqliteStorageProvider<JsonCodec, Rc<Connection>>,
}

impl Default for RawProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl RawProvider {
    pub fn new() -> Self {
        let mut conn = Connection::open_in_memory().expect("sqlite in memory");
        SqliteStorageProvider::<JsonCodec, &mut Connection>::new(&mut conn)
            .run_migrations()
            .expect("openmls migrations");
        let conn = Rc::new(conn);
        RawProvider {
            crypto: RustCrypto::default(),
            storage: SqliteStorageProvider::new(conn.clone()),
            conn,
        }
    }

    /// Bytes of the database (used pages).
    pub fn stored_bytes(&self) -> u64 {
        let q = |p: &str| -> u64 {
            self.conn
                .pragma_query_value(None, p, |r| r.get::<_, i64>(0))
                .map(|v| v.max(0) as u64)
                .unwrap_or(0)
        };
        (q("page_count") - q("freelist_count")) * q("page_size")
    }
}

impl OpenMlsProvider for RawProvider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = SqliteStorageProvider<JsonCodec, Rc<Connection>>;

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

pub fn raw_create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CS)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(0)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
        .build()
}

pub fn raw_join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(0)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(20, 1000))
        .build()
}

/// A signer (stored in `provider`) and its Basic credential naming `did`.
pub fn raw_identity(provider: &RawProvider, did: &Did) -> (SignatureKeyPair, CredentialWithKey) {
    let signer = SignatureKeyPair::new(CS.signature_algorithm()).expect("signer");
    signer.store(provider.storage()).expect("store signer");
    let cwk = CredentialWithKey {
        credential: BasicCredential::new(did.as_str().as_bytes().to_vec()).into(),
        signature_key: signer.public().into(),
    };
    (signer, cwk)
}

/// A serialized KeyPackage (as it would come from a directory); private parts in `provider`.
pub fn raw_key_package(provider: &RawProvider, did: &Did) -> Vec<u8> {
    let (signer, cwk) = raw_identity(provider, did);
    KeyPackage::builder()
        .build(CS, provider, &signer, cwk)
        .expect("key package")
        .key_package()
        .tls_serialize_detached()
        .expect("serialize key package")
}

/// A member's provider, signer and serialized KeyPackage.
pub fn raw_joiner(did: &Did) -> (RawProvider, SignatureKeyPair, Vec<u8>) {
    let provider = RawProvider::new();
    let (signer, cwk) = raw_identity(&provider, did);
    let kp = KeyPackage::builder()
        .build(CS, &provider, &signer, cwk)
        .expect("key package")
        .key_package()
        .tls_serialize_detached()
        .expect("kp bytes");
    (provider, signer, kp)
}

pub fn raw_validate_kp(provider: &RawProvider, bytes: &[u8]) -> KeyPackage {
    KeyPackageIn::tls_deserialize_exact(bytes)
        .expect("key package bytes")
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .expect("valid key package")
}

pub fn raw_join(provider: &RawProvider, welcome: &[u8]) -> MlsGroup {
    let msg = MlsMessageIn::tls_deserialize_exact(welcome).expect("welcome bytes");
    let MlsMessageBodyIn::Welcome(w) = msg.extract() else {
        panic!("not a Welcome")
    };
    StagedWelcome::new_from_welcome(provider, &raw_join_config(), w, None)
        .expect("stage welcome")
        .into_group(provider)
        .expect("join")
}

pub struct RawMember {
    pub provider: RawProvider,
    pub signer: SignatureKeyPair,
    pub group: MlsGroup,
}

impl RawMember {
    /// Adds the members of these serialized KeyPackages; returns (commit, Welcome). Built like
    /// atmls builds it: the commit builder without a forced path (`MlsGroup::add_members`
    /// would force a self-update path into every add commit).
    pub fn add(&mut self, kps: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let kps: Vec<KeyPackage> = kps
            .iter()
            .map(|k| raw_validate_kp(&self.provider, k))
            .collect();
        let bundle = self
            .group
            .commit_builder()
            .propose_adds(kps)
            .consume_proposal_store(true)
            .load_psks(self.provider.storage())
            .expect("psks")
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .expect("build commit")
            .stage_commit(&self.provider)
            .expect("stage commit");
        let out = (
            bundle
                .commit()
                .tls_serialize_detached()
                .expect("commit bytes"),
            bundle
                .to_welcome_msg()
                .expect("welcome")
                .tls_serialize_detached()
                .expect("welcome bytes"),
        );
        self.group
            .merge_pending_commit(&self.provider)
            .expect("merge");
        out
    }

    pub fn remove(&mut self, did: &Did) -> Vec<u8> {
        let idx = self
            .group
            .members()
            .find(|m| m.credential.serialized_content() == did.as_str().as_bytes())
            .expect("member to remove")
            .index;
        let (commit, _, _) = self
            .group
            .remove_members(&self.provider, &self.signer, &[idx])
            .expect("remove");
        let out = commit.tls_serialize_detached().expect("commit bytes");
        self.group
            .merge_pending_commit(&self.provider)
            .expect("merge");
        out
    }

    pub fn self_update(&mut self) -> Vec<u8> {
        let new_signer = SignatureKeyPair::new(CS.signature_algorithm()).expect("signer");
        new_signer.store(self.provider.storage()).expect("store");
        let cwk = CredentialWithKey {
            credential: self
                .group
                .own_leaf_node()
                .expect("own leaf")
                .credential()
                .clone(),
            signature_key: new_signer.public().into(),
        };
        let params = LeafNodeParameters::builder()
            .with_credential_with_key(cwk.clone())
            .build();
        let bundle = self
            .group
            .self_update_with_new_signer(
                &self.provider,
                &self.signer,
                NewSignerBundle {
                    signer: &new_signer,
                    credential_with_key: cwk,
                },
                params,
            )
            .expect("self update");
        let out = bundle.commit().tls_serialize_detached().expect("commit");
        self.group
            .merge_pending_commit(&self.provider)
            .expect("merge");
        self.signer = new_signer;
        out
    }

    pub fn send(&mut self, msg: &[u8]) -> Vec<u8> {
        self.group
            .create_message(&self.provider, &self.signer, msg)
            .expect("encrypt")
            .tls_serialize_detached()
            .expect("message bytes")
    }

    /// Processes a commit or application message; returns the application bytes, if any.
    pub fn process(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let msg = MlsMessageIn::tls_deserialize_exact(bytes).expect("message bytes");
        let pm = msg.try_into_protocol_message().expect("protocol message");
        let processed = self
            .group
            .process_message(&self.provider, pm)
            .expect("process");
        match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                self.group
                    .merge_staged_commit(&self.provider, *staged)
                    .expect("merge staged");
                None
            }
            ProcessedMessageContent::ApplicationMessage(am) => Some(am.into_bytes()),
            _ => panic!("unexpected message"),
        }
    }
}
