//! Shared set-up of the AT Messaging Proto draft conformance tests
//! (tests/draft_conformance*.rs; the table is spec/draft-conformance.md): clients on the
//! in-memory directory and transport, a transport that can be switched off and records what
//! the delivery service would see, and readers for what travels (Welcome envelopes, sealed
//! payloads, raw openmls state).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls::clock::Clock;
use atmls::directory::Directory as _;
use atmls::group::{mailbox_for, welcome_mailbox};
use atmls::identity::{unix_now, DeviceIdentity, Did, PublicKey};
use atmls::keypackage::KeyPackagePolicy;
use atmls::storage::Store;
use atmls::transport::*;
use atmls::{Client, GroupId};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{MlsGroup, MlsMessageBodyIn, MlsMessageIn, ProtocolMessage};
use openmls_traits::crypto::OpenMlsCrypto as _;
use openmls_traits::types::AeadType;
use openmls_traits::OpenMlsProvider as _;

use crate::common::{did, RawProvider, World};

/// A clock the test moves.
pub struct TestClock(AtomicU64);

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(TestClock(AtomicU64::new(unix_now())))
    }
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the delivery service sees of one post besides its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub kind: Kind,
    pub mailbox: MailboxId,
    pub epoch: Option<EpochTag>,
    pub after: Option<u64>,
}

/// The in-memory transport behind a switch: while `down`, every post fails `Unavailable`
/// before reaching it (reads still work), as a delivery service that cannot be reached. It
/// records every post that went through, as the service would see it.
pub struct Switch {
    pub inner: Arc<MemoryTransport>,
    pub down: AtomicBool,
    pub seen: Mutex<Vec<Seen>>,
    pub welcomes: AtomicUsize,
}

impl Switch {
    pub fn new(inner: Arc<MemoryTransport>) -> Arc<Self> {
        Arc::new(Switch {
            inner,
            down: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
            welcomes: AtomicUsize::new(0),
        })
    }

    fn gate(&self, seen: Seen) -> Result<(), TransportError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(TransportError::Unavailable("switched off".into()));
        }
        self.seen.lock().unwrap().push(seen);
        Ok(())
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Transport for Switch {
    async fn submit_commit(
        &self,
        m: &Mailbox,
        e: &EpochTag,
        after: u64,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError> {
        self.gate(Seen {
            kind: Kind::Commit,
            mailbox: m.id,
            epoch: Some(*e),
            after: Some(after),
        })?;
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
        self.gate(Seen {
            kind: Kind::Message,
            mailbox: m.id,
            epoch: Some(*e),
            after: Some(after),
        })?;
        self.inner.send_message(m, e, after, p, k).await
    }
    async fn send_welcome(
        &self,
        m: &MailboxId,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<u64, TransportError> {
        self.gate(Seen {
            kind: Kind::Welcome,
            mailbox: *m,
            epoch: None,
            after: None,
        })?;
        self.welcomes.fetch_add(1, Ordering::SeqCst);
        self.inner.send_welcome(m, p, k).await
    }
    async fn fetch(&self, m: &MailboxId, after: u64, limit: u32) -> Result<Page, TransportError> {
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

/// A new account's first device on `w`'s directory, over `net`, in `store`.
pub async fn account_over(
    w: &World,
    net: Arc<dyn Transport>,
    name: &str,
    store: Store,
    policy: KeyPackagePolicy,
) -> Client {
    Client::builder(w.dir.clone(), net, store)
        .identity(DeviceIdentity::new_account(did(name)))
        .key_package_policy(policy)
        .message_requests(false)
        .build()
        .await
        .unwrap()
}

/// A new account whose store is a SQLite file in `dir` (so the test can read its openmls
/// state as a modified client would), and the file's path.
pub async fn file_account(w: &World, name: &str, dir: &Path) -> (Client, PathBuf) {
    let path = dir.join(format!("{name}.sqlite"));
    let c = account_over(
        w,
        w.net.clone(),
        name,
        Store::open(&path).unwrap(),
        KeyPackagePolicy::default(),
    )
    .await;
    (c, path)
}

/// alice (on a file store) and bob, in a group alice created; bob has joined.
pub async fn pair(w: &World, dir: &Path) -> (Client, PathBuf, Client, GroupId) {
    let (alice, path) = file_account(w, "alice", dir).await;
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    (alice, path, bob, g)
}

/// Every item of a mailbox.
pub async fn items(net: &dyn Transport, mailbox: &MailboxId) -> Vec<Delivered> {
    net.fetch(mailbox, 0, 1000).await.unwrap().items
}

/// Every item of a group's mailbox.
pub async fn group_items(w: &World, g: &GroupId) -> Vec<Delivered> {
    items(w.net.as_ref(), &mailbox_for(g.as_bytes()).id).await
}

/// Every item of the mailbox `member` reads the group in now (GROUP-4a: the group moves at
/// each removal).
pub async fn current_items(w: &World, member: &Client, g: &GroupId) -> Vec<Delivered> {
    let mailbox = member.mailbox_for_test(g).await.unwrap();
    items(w.net.as_ref(), &mailbox.id).await
}

/// Every item of a device's Welcome mailbox.
pub async fn welcome_items(net: &dyn Transport, installation: &PublicKey) -> Vec<Delivered> {
    items(net, &welcome_mailbox(installation)).await
}

/// Opens a Welcome envelope with its recipient's keys (GROUP-8, GROUP-12: sealed to one of
/// the recipient's KeyPackages) into the position of the adding commit and the MLS Welcome
/// message.
pub async fn envelope(recipient: &Client, payload: &[u8]) -> (u64, Vec<u8>) {
    assert_eq!(payload[0], 2, "a sealed envelope (GROUP-12)");
    recipient.open_welcome_envelope(payload).await.unwrap()
}

/// An RFC 9420 §2.1.2 variable-length integer at the start of `b`: (value, its size). The
/// top two bits of the first byte give the size.
fn varint(b: &[u8]) -> (usize, usize) {
    match b[0] >> 6 {
        0 => (usize::from(b[0] & 0x3f), 1),
        1 => (usize::from(u16::from_be_bytes([b[0] & 0x3f, b[1]])), 2),
        _ => (
            u32::from_be_bytes([b[0] & 0x3f, b[1], b[2], b[3]]) as usize,
            4,
        ),
    }
}

/// The encrypted GroupInfo of an envelope's Welcome, opened by its recipient (RFC 9420
/// §12.4.3.1: after the version, wire format, ciphersuite and the `secrets<V>` vector), with
/// its length prefix.
pub async fn encrypted_group_info(recipient: &Client, payload: &[u8]) -> Vec<u8> {
    let (_, mls) = envelope(recipient, payload).await;
    let rest = &mls[6..];
    let (len, skip) = varint(rest);
    rest[skip + len..].to_vec()
}

/// The MLS Welcome of an envelope, opened by its recipient and decoded.
pub async fn welcome_of(recipient: &Client, payload: &[u8]) -> openmls::prelude::Welcome {
    let (_, mls) = envelope(recipient, payload).await;
    match MlsMessageIn::tls_deserialize_exact(mls).unwrap().extract() {
        MlsMessageBodyIn::Welcome(w) => w,
        other => panic!("not a Welcome: {other:?}"),
    }
}

/// The published KeyPackage records of `did`: (KeyPackageRef, last-resort flag).
pub async fn kp_refs(w: &World, who: &Did) -> Vec<(Vec<u8>, bool)> {
    w.dir
        .key_packages(who)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.key_package_ref, r.last_resort))
        .collect()
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The openmls group `g` as stored in the client database at `path`.
pub fn raw_group(path: &Path, g: &GroupId) -> MlsGroup {
    RawProvider::open_group(path, g).1
}

/// Opens a group payload as a member in `group`'s epoch would (spec/ds.md DS-2: version byte,
/// nonce, ChaCha20-Poly1305 under the epoch's exported outer key; inside, a length-prefixed
/// MLS message and zero padding), and decodes the MLS message's framing.
pub fn unseal(group: &MlsGroup, payload: &[u8]) -> ProtocolMessage {
    let crypto = openmls_rust_crypto::RustCrypto::default();
    let key = group
        .export_secret(&crypto, "atmls/v1/outer-key", &[], 32)
        .unwrap();
    assert_eq!(payload[0], 1, "sealed payload version");
    let plain = crypto
        .aead_decrypt(
            AeadType::ChaCha20Poly1305,
            &key,
            &payload[13..],
            &payload[1..13],
            b"atmls/v1/outer",
        )
        .unwrap();
    let len = u32::from_be_bytes(plain[..4].try_into().unwrap()) as usize;
    let msg = MlsMessageIn::tls_deserialize_exact(&plain[4..4 + len]).unwrap();
    msg.try_into_protocol_message().unwrap()
}

/// The provider over a client's SQLite file, for raw reads.
pub fn provider(path: &Path) -> RawProvider {
    RawProvider::open(path)
}

/// `RawProvider`'s crypto, for callers that only need the trait.
pub fn crypto_of(p: &RawProvider) -> &openmls_rust_crypto::RustCrypto {
    p.crypto()
}
