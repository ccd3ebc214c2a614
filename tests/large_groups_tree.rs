//! The ratchet tree out of band (spec/large-groups.md LG-T-*): small Welcomes, one upload per
//! commit, one fetch per joiner, and every bad tree (missing, expired, truncated, tampered,
//! another commit's) a typed refusal that changes nothing but the Welcome cursor, while a
//! transient fetch failure leaves the Welcome to be retried.
mod common;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls::group::{welcome_mailbox, GroupError, TreeError};
use atmls::storage::Store;
use atmls::transport::*;
use atmls::{Client, Error, Event, GroupId};
use common::*;

/// What the delivery service does to tree fetches: an honest one, or a faulty or hostile one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Unavailable,
    Missing,
    Truncate,
    FlipByte,
    /// Serve the blob of another locator (another commit's or group's tree).
    Swap,
}

/// The in-process transport, counting tree uploads and fetches and applying a [`Fault`] to
/// fetches.
struct TreeNet {
    inner: MemoryTransport,
    fault: Mutex<Fault>,
    puts: AtomicUsize,
    fetches: AtomicUsize,
    locators: Mutex<Vec<TreeLocator>>,
    sizes: Mutex<Vec<usize>>,
}

impl TreeNet {
    fn new(inner: MemoryTransport) -> Self {
        TreeNet {
            inner,
            fault: Mutex::new(Fault::None),
            puts: AtomicUsize::new(0),
            fetches: AtomicUsize::new(0),
            locators: Mutex::new(Vec::new()),
            sizes: Mutex::new(Vec::new()),
        }
    }

    fn set(&self, f: Fault) {
        *self.fault.lock().unwrap() = f;
    }
}

#[async_trait::async_trait]
impl Transport for TreeNet {
    async fn submit_commit(
        &self,
        m: &Mailbox,
        e: &EpochTag,
        after: u64,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError> {
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
        self.inner.send_message(m, e, after, p, k).await
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
        self.inner.fetch(m, after, limit).await
    }
    async fn subscribe(&self, m: &[MailboxId]) -> Result<Subscription, TransportError> {
        self.inner.subscribe(m).await
    }
    async fn put_tree(&self, l: &TreeLocator, b: &[u8]) -> Result<(), TransportError> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.locators.lock().unwrap().push(*l);
        self.sizes.lock().unwrap().push(b.len());
        self.inner.put_tree(l, b).await
    }
    async fn fetch_tree(&self, l: &TreeLocator) -> Result<Vec<u8>, TransportError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let fault = *self.fault.lock().unwrap();
        match fault {
            Fault::None => self.inner.fetch_tree(l).await,
            Fault::Unavailable => Err(TransportError::Unavailable("down".into())),
            Fault::Missing => Err(TransportError::NotFound),
            Fault::Truncate => {
                let b = self.inner.fetch_tree(l).await?;
                Ok(b[..b.len() / 2].to_vec())
            }
            Fault::FlipByte => {
                let mut b = self.inner.fetch_tree(l).await?;
                let i = b.len() / 3;
                b[i] ^= 0x40;
                Ok(b)
            }
            Fault::Swap => {
                let other = self
                    .locators
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|o| *o != l)
                    .copied()
                    .expect("another tree stored");
                self.inner.fetch_tree(&other).await
            }
        }
    }
}

struct Net {
    dir: Arc<atmls::directory::MemoryDirectory>,
    net: Arc<TreeNet>,
}

impl Net {
    fn new(inner: MemoryTransport) -> Self {
        Net {
            dir: Arc::new(atmls::directory::MemoryDirectory::new()),
            net: Arc::new(TreeNet::new(inner)),
        }
    }

    async fn account(&self, name: &str) -> Client {
        Client::builder(
            self.dir.clone(),
            self.net.clone(),
            Store::in_memory().unwrap(),
        )
        .identity(atmls::identity::DeviceIdentity::new_account(did(name)))
        .message_requests(false)
        .build()
        .await
        .unwrap()
    }

    async fn welcome_sizes(&self, c: &Client) -> Vec<usize> {
        self.net
            .fetch(&welcome_mailbox(c.installation()), 0, 100)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|d| d.payload.len())
            .collect()
    }
}

fn refusal(events: &[Event]) -> Option<GroupError> {
    events.iter().find_map(|e| match e {
        Event::Refused {
            group: None, error, ..
        } => Some(error.clone()),
        _ => None,
    })
}

/// The stored rows, but for the Welcome cursor (the one thing a refused Welcome moves).
async fn rows_but_cursor(c: &Client) -> Vec<(String, Vec<String>)> {
    let mut s = c.store_snapshot().await.unwrap();
    for (table, rows) in &mut s {
        if table == "atmls_account" {
            rows.retain(|r| !r.contains("welcome_cursor"));
        }
    }
    s
}

#[tokio::test]
async fn lg_t_1_lg_t_3_small_welcomes_one_upload_per_commit_one_fetch_per_joiner() {
    let w = Net::new(MemoryTransport::new());
    let alice = w.account("alice").await;
    let mut joiners = Vec::new();
    for name in ["bob", "carol", "dave", "erin"] {
        joiners.push(w.account(name).await);
    }
    let dids: Vec<_> = joiners.iter().map(|c| c.did().clone()).collect();
    let g = alice.create_group(&dids).await.unwrap();
    // LG-T-3: one tree upload for the commit, whatever the number of joiners.
    assert_eq!(w.net.puts.load(Ordering::SeqCst), 1);
    for j in &joiners {
        // LG-T-1: the Welcome carries no tree (4 joiners' secrets, a signed GroupInfo).
        let sizes = w.welcome_sizes(j).await;
        assert_eq!(sizes.len(), 1);
        // Sealed and padded (GROUP-12): the smallest bucket.
        assert_eq!(sizes[0], 1024, "Welcome of {} bytes", sizes[0]);
        assert_eq!(joined(&j.sync().await.unwrap()), vec![g.clone()]);
    }
    // LG-T-5: each joiner fetched the tree once.
    assert_eq!(w.net.fetches.load(Ordering::SeqCst), 4);
    // Everyone is in the same epoch, and the group works.
    alice.conversation(&g).send_text("hi all").await.unwrap();
    for j in &joiners {
        assert_eq!(texts(&j.sync().await.unwrap()), vec!["hi all"]);
        assert_eq!(
            j.epoch_fingerprint(&g).await.unwrap(),
            alice.epoch_fingerprint(&g).await.unwrap()
        );
    }
    // A commit without an add uploads nothing.
    alice.conversation(&g).self_update().await.unwrap();
    assert_eq!(w.net.puts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn lg_t_5_transient_fetch_failure_keeps_the_welcome_for_the_next_sync() {
    let w = Net::new(MemoryTransport::new());
    let alice = w.account("alice").await;
    let bob = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    w.net.set(Fault::Unavailable);
    let before = bob.store_snapshot().await.unwrap();
    let e = bob.sync().await.unwrap_err();
    assert!(
        matches!(e, Error::Transport(TransportError::Unavailable(_))),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(
        bob.store_snapshot().await.unwrap(),
        before,
        "nothing changed"
    );
    w.net.set(Fault::None);
    assert_eq!(joined(&bob.sync().await.unwrap()), vec![g]);
}

/// A fresh joiner added to `g` by `alice`, then refused its Welcome under `fault`.
async fn refused_under(
    w: &Net,
    alice: &Client,
    g: &GroupId,
    name: &str,
    fault: Fault,
) -> GroupError {
    let j = w.account(name).await;
    alice
        .conversation(g)
        .add_members(&[j.did().clone()])
        .await
        .unwrap();
    let before = rows_but_cursor(&j).await;
    w.net.set(fault);
    let events = j.sync().await.unwrap();
    w.net.set(Fault::None);
    assert!(joined(&events).is_empty(), "{fault:?}: joined anyway");
    assert!(j.groups().await.unwrap().is_empty());
    // The refused Welcome changed nothing but the cursor past it: the KeyPackage is kept
    // (KP-6), no group, no key material.
    assert_eq!(
        rows_but_cursor(&j).await,
        before,
        "{fault:?}: state changed"
    );
    // A permanent refusal: the next sync does not try again.
    let fetched = w.net.fetches.load(Ordering::SeqCst);
    assert!(j.sync().await.unwrap().is_empty());
    assert_eq!(w.net.fetches.load(Ordering::SeqCst), fetched);
    let e = refusal(&events).unwrap_or_else(|| panic!("{fault:?}: no refusal in {events:?}"));
    assert!(!e.is_retryable());
    e
}

#[tokio::test]
async fn lg_t_5_missing_truncated_tampered_or_foreign_trees_are_refused() {
    let w = Net::new(MemoryTransport::new());
    let alice = w.account("alice").await;
    let bob = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    for (name, fault, want) in [
        ("carol", Fault::Missing, TreeError::Missing),
        ("dave", Fault::Truncate, TreeError::Undecryptable),
        ("erin", Fault::FlipByte, TreeError::Undecryptable),
        ("frank", Fault::Swap, TreeError::Undecryptable),
    ] {
        assert_eq!(
            refused_under(&w, &alice, &g, name, fault).await,
            GroupError::WelcomeTree(want),
            "{fault:?}"
        );
    }
    // The group went on meanwhile: bob still follows it.
    alice
        .conversation(&g)
        .send_text("still here")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["still here"]);
}

#[tokio::test]
async fn lg_t_4_an_expired_tree_is_missing() {
    let w = Net::new(MemoryTransport::with_tree_ttl(Duration::from_millis(300)));
    let alice = w.account("alice").await;
    let bob = w.account("bob").await;
    let carol = w.account("carol").await;
    alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    // bob joins in time; carol after the tree expired.
    assert_eq!(joined(&bob.sync().await.unwrap()).len(), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let events = carol.sync().await.unwrap();
    assert!(joined(&events).is_empty());
    assert_eq!(
        refusal(&events),
        Some(GroupError::WelcomeTree(TreeError::Missing))
    );
}

/// LG-T-1 at 1,000 members: adding one device sends a Welcome of the same size as in a group of
/// five, and the tree (about 550 bytes per member) is uploaded once. Prints both sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lg_t_1_welcome_size_does_not_grow_with_the_group() {
    let w = Net::new(MemoryTransport::new());
    let alice = w.account("alice").await;
    let policy = atmls::keypackage::KeyPackagePolicy {
        single_use: 0,
        replenish_below: 0,
        lifetime_secs: 86_400,
    };
    let mut dids = Vec::new();
    for i in 0..998u32 {
        let name: String = format!("{:0>6}", i)
            .chars()
            .map(|c| (b'a' + (c as u8 - b'0')) as char)
            .collect();
        let d = did(&format!("m{name}"));
        Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
            .identity(atmls::identity::DeviceIdentity::new_account(d.clone()))
            .key_package_policy(policy.clone())
            .message_requests(false)
            .build()
            .await
            .unwrap();
        dids.push(d);
    }
    let g = alice.create_group(&dids).await.unwrap();
    let carol = w.account("carol").await;
    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    assert_eq!(alice.conversation(&g).members().await.unwrap().len(), 1000);
    let welcome = w.welcome_sizes(&carol).await;
    let tree = *w.net.sizes.lock().unwrap().last().unwrap();
    let sealed = w
        .net
        .fetch(&welcome_mailbox(carol.installation()), 0, 1)
        .await
        .unwrap()
        .items
        .remove(0)
        .payload;
    let (_, inner) = carol.open_welcome_envelope(&sealed).await.unwrap();
    eprintln!(
        "1,000 members: Welcome {} bytes ({} sealed and padded, GROUP-12); tree blob {tree} bytes, uploaded once",
        inner.len(),
        welcome[0]
    );
    assert!(
        inner.len() < 1024 - 49 - 12,
        "Welcome of {} bytes",
        inner.len()
    );
    assert_eq!(welcome[0], 1024);
    assert!(tree > 400 * 1000, "tree blob of {tree} bytes");
    assert_eq!(joined(&carol.sync().await.unwrap()), vec![g]);
}
