//! Groups that live for years: device certificates renewed before they expire
//! (spec/identity.md ID-7), leaf keys rotated on a schedule (spec/group.md GROUP-10), and
//! application messages kept in a durable outbox until the transport accepted them, each
//! ciphertext under one idempotency key (spec/group.md GROUP-11, spec/transport.md
//! TRANSPORT-2).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls::clock::Clock;
use atmls::directory::Directory as _;
use atmls::group::mailbox_for;
use atmls::identity::{
    unix_now, DeviceIdentity, IdentityKeyPair, InstallationCertificate, InstallationKeyPair,
};
use atmls::storage::Store;
use atmls::transport::*;
use atmls::trust::MemberStatus;
use atmls::{Client, Event, GroupId};
use common::*;

/// A clock the test moves.
struct TestClock(AtomicU64);

impl TestClock {
    fn new() -> Arc<Self> {
        Arc::new(TestClock(AtomicU64::new(unix_now())))
    }
    fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The in-process transport with faults on application messages, and the idempotency rule of
/// atmls-ds: a key already used with other bytes is refused (an `IdempotencyConflict`), and
/// counted.
struct LossyTransport {
    inner: Arc<MemoryTransport>,
    /// The next sends are stored, then answered `Unavailable` (the answer is lost).
    lose_answers: AtomicUsize,
    /// The next sends fail before reaching the transport.
    fail_sends: AtomicUsize,
    /// The next sends are stored, then never answered (the client stops meanwhile).
    hang_after: AtomicUsize,
    /// Payload of every key the transport saw.
    keys: Mutex<HashMap<[u8; 16], Vec<u8>>>,
    conflicts: AtomicUsize,
}

impl LossyTransport {
    fn new(inner: Arc<MemoryTransport>) -> Arc<Self> {
        Arc::new(LossyTransport {
            inner,
            lose_answers: AtomicUsize::new(0),
            fail_sends: AtomicUsize::new(0),
            hang_after: AtomicUsize::new(0),
            keys: Mutex::new(HashMap::new()),
            conflicts: AtomicUsize::new(0),
        })
    }

    fn take(n: &AtomicUsize) -> bool {
        n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn keys_seen(&self) -> usize {
        self.keys.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl Transport for LossyTransport {
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
        if Self::take(&self.fail_sends) {
            return Err(TransportError::Unavailable("send failed".into()));
        }
        {
            let mut keys = self.keys.lock().unwrap();
            match keys.get(&k.0) {
                Some(seen) if seen.as_slice() != p => {
                    self.conflicts.fetch_add(1, Ordering::SeqCst);
                    return Err(TransportError::Refused("idempotency conflict".into()));
                }
                Some(_) => {}
                None => {
                    keys.insert(k.0, p.to_vec());
                }
            }
        }
        let answer = self.inner.send_message(m, e, after, p, k).await;
        if Self::take(&self.lose_answers) {
            return Err(TransportError::Unavailable("answer lost".into()));
        }
        if Self::take(&self.hang_after) {
            std::future::pending::<()>().await;
        }
        answer
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
        self.inner.put_tree(l, b).await
    }
    async fn fetch_tree(&self, l: &TreeLocator) -> Result<Vec<u8>, TransportError> {
        self.inner.fetch_tree(l).await
    }
}

/// Application messages (and proposals) stored in the group's mailbox.
async fn stored_messages(w: &World, g: &GroupId) -> usize {
    let page = w
        .net
        .fetch(&mailbox_for(g.as_bytes()).id, 0, 10_000)
        .await
        .unwrap();
    page.items
        .iter()
        .filter(|i| i.kind == Kind::Message)
        .count()
}

fn sent_texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Sent(m) => m.decoded().display_text().map(str::to_owned),
            _ => None,
        })
        .collect()
}

async fn own_texts(c: &Client, g: &GroupId) -> Vec<String> {
    c.conversation(g)
        .messages()
        .await
        .unwrap()
        .iter()
        .filter(|m| m.outgoing)
        .filter_map(|m| m.decoded().display_text().map(str::to_owned))
        .collect()
}

/// A certificate valid for an hour that began 50 minutes ago: within its renewal window (a
/// third of its lifetime is left at most).
fn expiring(
    key: &IdentityKeyPair,
    name: &str,
    inst: &InstallationKeyPair,
) -> InstallationCertificate {
    let now = unix_now();
    key.certify(&did(name), &inst.public(), now - 3000, now + 600)
}

fn copy(key: &IdentityKeyPair) -> IdentityKeyPair {
    IdentityKeyPair::from_secret_bytes(&key.secret_bytes()[..]).unwrap()
}

/// ID-7, CRED-8, TRUST-20: alice's first device (holding the identity key) and her linked
/// second device both have certificates about to expire. At her next sync the first device
/// renews both in the directory and re-credentials its leaves; the linked device takes its
/// renewal at its next sync and does the same. bob merges both updates, sees both devices
/// `Verified` with the new certificates in every group, new KeyPackages carry them, and
/// messages keep flowing.
#[tokio::test]
async fn id_7_expiring_certificates_are_renewed_in_every_group() {
    let w = World::new();
    let key = IdentityKeyPair::generate();
    let inst = InstallationKeyPair::generate();
    let cert = expiring(&key, "alice", &inst);
    let alice = w
        .client(
            DeviceIdentity {
                did: did("alice"),
                installation: inst,
                certificate: cert.clone(),
                identity_key: Some(copy(&key)),
            },
            Store::in_memory().unwrap(),
        )
        .await;
    let inst2 = InstallationKeyPair::generate();
    let cert2 = expiring(&key, "alice", &inst2);
    let alice2 = w
        .client(
            DeviceIdentity::linked(inst2, cert2.clone()).unwrap(),
            Store::in_memory().unwrap(),
        )
        .await;
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let dm = alice.dm(bob.did()).await.unwrap();
    bob.sync().await.unwrap();
    // alice2 joins both; its own renewal is not published yet.
    assert_eq!(joined(&alice2.sync().await.unwrap()).len(), 2);
    assert_eq!(alice2.certificate().await, cert2);
    let epoch = alice2.epoch_fingerprint(&g).await.unwrap().0;

    alice.sync().await.unwrap();
    let new1 = alice.certificate().await;
    assert_ne!(new1, cert);
    assert_eq!(new1.installation_key, cert.installation_key);
    assert_eq!(new1.identity_key, key.public());
    assert!(new1.expires > unix_now() + 300 * 24 * 3600);
    alice2.sync().await.unwrap();
    let new2 = alice2.certificate().await;
    assert_ne!(new2, cert2);
    assert!(new2.expires > unix_now() + 300 * 24 * 3600);

    // The directory lists the renewed certificates.
    let record = w.dir.account(&did("alice")).await.unwrap().unwrap();
    let mut published: Vec<_> = record
        .devices
        .iter()
        .map(|d| d.certificate.clone())
        .collect();
    published.sort_by_key(|c| c.installation_key);
    let mut expected = vec![new1.clone(), new2.clone()];
    expected.sort_by_key(|c| c.installation_key);
    assert_eq!(published, expected);

    let ev = bob.sync().await.unwrap();
    assert!(
        !ev.iter().any(
            |e| matches!(e, Event::MemberTrust { status, .. } if *status != MemberStatus::Verified)
        ),
        "{ev:?}"
    );
    alice.sync().await.unwrap();
    alice2.sync().await.unwrap();
    // One update per device in each group.
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap().0, epoch + 2);
    for c in [&alice, &alice2, &bob] {
        for group in [&g, &dm] {
            let leaves = c.leaf_certificates(group).await.unwrap();
            assert!(leaves.contains(&new1), "{c:?}");
            assert!(leaves.contains(&new2), "{c:?}");
            assert!(!leaves.contains(&cert) && !leaves.contains(&cert2));
            assert_eq!(
                c.epoch_fingerprint(group).await.unwrap(),
                bob.epoch_fingerprint(group).await.unwrap()
            );
        }
    }
    for group in [&g, &dm] {
        assert!(bob
            .conversation(group)
            .member_trust()
            .await
            .unwrap()
            .iter()
            .all(|(_, s)| *s == MemberStatus::Verified));
    }

    // Messages keep flowing, both ways.
    bob.conversation(&g).send_text("still here").await.unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["still here"]);
    assert_eq!(texts(&alice2.sync().await.unwrap()), vec!["still here"]);
    alice2.conversation(&dm).send_text("renewed").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["renewed"]);

    // New KeyPackages carry the new certificates: a new group gets them in its leaves.
    let g2 = bob.create_group(&[alice.did().clone()]).await.unwrap();
    alice.sync().await.unwrap();
    let leaves = bob.leaf_certificates(&g2).await.unwrap();
    assert!(
        leaves.contains(&new1) && leaves.contains(&new2),
        "{leaves:?}"
    );

    // Renewed once: the next syncs change nothing.
    let before = bob.epoch_fingerprint(&g).await.unwrap();
    alice.sync().await.unwrap();
    alice2.sync().await.unwrap();
    bob.sync().await.unwrap();
    assert_eq!(alice.certificate().await, new1);
    assert_eq!(alice2.certificate().await, new2);
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), before);
}

/// ID-7: a certificate far from its end is not renewed, nor is a short-lived one with more
/// than a third of its lifetime left; a window of zero turns renewal off.
#[tokio::test]
async fn id_7_certificates_not_due_are_kept() {
    let w = World::new();
    let (alice, key) = w.account("alice").await;
    let alice2 = w.device("alice", &key).await; // certified for a day
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice2.sync().await.unwrap();
    let (c1, c2) = (alice.certificate().await, alice2.certificate().await);
    let epoch = bob.epoch_fingerprint(&g).await.unwrap();
    alice.sync().await.unwrap();
    alice2.sync().await.unwrap();
    bob.sync().await.unwrap();
    assert_eq!(alice.certificate().await, c1);
    assert_eq!(alice2.certificate().await, c2);
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap(), epoch);

    // Renewal off: an expiring certificate stays.
    let inst = InstallationKeyPair::generate();
    let carol_key = IdentityKeyPair::generate();
    let cert = expiring(&carol_key, "carol", &inst);
    let carol = Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity {
            did: did("carol"),
            installation: inst,
            certificate: cert.clone(),
            identity_key: Some(carol_key),
        })
        .certificate_renewal(Duration::ZERO)
        .build()
        .await
        .unwrap();
    carol.sync().await.unwrap();
    assert_eq!(carol.certificate().await, cert);
}

/// GROUP-10: with a one-hour schedule, nothing rotates before it is due; once due each
/// device commits one self-update in each group, the schedule starts again, and messages
/// keep flowing.
#[tokio::test]
async fn group_10_leaf_keys_rotate_on_schedule() {
    let w = World::new();
    let clock = TestClock::new();
    let hour = Duration::from_secs(3600);
    let build = |name: &str| {
        Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
            .identity(DeviceIdentity::new_account(did(name)))
            .clock(clock.clone())
            .leaf_rotation(Some(hour))
            .build()
    };
    let alice = build("alice").await.unwrap();
    let bob = build("bob").await.unwrap();
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice.sync().await.unwrap();
    let start = alice.epoch_fingerprint(&g).await.unwrap().0;

    // 45 minutes: under the earliest due time (1 h − 15%).
    clock.advance(45 * 60);
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap().0, start);

    // 80 minutes: past the latest due time (1 h + 15%): one self-update each.
    clock.advance(35 * 60);
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap().0, start + 2);
    assert_eq!(
        alice.epoch_fingerprint(&g).await.unwrap(),
        bob.epoch_fingerprint(&g).await.unwrap()
    );
    // Started again: nothing more until the next period.
    clock.advance(30 * 60);
    bob.sync().await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap().0, start + 2);
    clock.advance(60 * 60);
    alice.sync().await.unwrap();
    bob.sync().await.unwrap();
    alice.sync().await.unwrap();
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap().0, start + 4);

    bob.conversation(&g).send_text("rotated").await.unwrap();
    assert_eq!(texts(&alice.sync().await.unwrap()), vec!["rotated"]);
}

/// GROUP-10: rotation off means no scheduled commits, however long it has been.
#[tokio::test]
async fn group_10_rotation_can_be_turned_off() {
    let w = World::new();
    let clock = TestClock::new();
    let alice = Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("alice")))
        .clock(clock.clone())
        .leaf_rotation(None)
        .build()
        .await
        .unwrap();
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    alice.sync().await.unwrap();
    let epoch = alice.epoch_fingerprint(&g).await.unwrap();
    clock.advance(30 * 24 * 3600);
    alice.sync().await.unwrap();
    assert_eq!(alice.epoch_fingerprint(&g).await.unwrap(), epoch);
}

/// GROUP-11, TRANSPORT-2: the transport stores alice's message but the answer is lost. The
/// message stays queued; the next sync sends the same ciphertext under the same key: one
/// copy in the mailbox, one message for bob, one in alice's history, raised as `Sent`. A
/// later send delivers what is queued before it.
#[tokio::test]
async fn group_11_lost_answer_is_stored_once() {
    let w = World::new();
    let lossy = LossyTransport::new(w.net.clone());
    let alice = Client::builder(w.dir.clone(), lossy.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("alice")))
        .build()
        .await
        .unwrap();
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();

    lossy.lose_answers.store(1, Ordering::SeqCst);
    let e = alice.conversation(&g).send_text("once").await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(stored_messages(&w, &g).await, 1);
    assert_eq!(
        alice
            .conversation(&g)
            .queued_messages()
            .await
            .unwrap()
            .len(),
        1
    );
    let ev = alice.sync().await.unwrap();
    assert_eq!(sent_texts(&ev), vec!["once"]);
    assert_eq!(stored_messages(&w, &g).await, 1);
    assert!(alice
        .conversation(&g)
        .queued_messages()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["once"]);
    assert_eq!(own_texts(&alice, &g).await, vec!["once"]);

    // Lost again; the next send delivers it first, each once, in order.
    lossy.lose_answers.store(1, Ordering::SeqCst);
    alice.conversation(&g).send_text("a").await.unwrap_err();
    let m = alice.conversation(&g).send_text("b").await.unwrap();
    assert_eq!(m.decoded().display_text(), Some("b"));
    assert_eq!(stored_messages(&w, &g).await, 3);
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["a", "b"]);
    assert_eq!(sent_texts(&alice.sync().await.unwrap()), vec!["a"]);
    assert_eq!(own_texts(&alice, &g).await, vec!["once", "a", "b"]);
    assert_eq!(lossy.conflicts.load(Ordering::SeqCst), 0);
    // One key per message.
    assert_eq!(lossy.keys_seen(), 3);
}

/// GROUP-11: alice's client stops after the message was stored but before the answer came.
/// Started again on the same database, its first sync delivers the message once.
#[tokio::test]
async fn group_11_queued_message_survives_a_restart() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let lossy = LossyTransport::new(w.net.clone());
    let alice = Client::builder(w.dir.clone(), lossy.clone(), Store::open(&path).unwrap())
        .identity(DeviceIdentity::new_account(did("alice")))
        .build()
        .await
        .unwrap();
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();

    lossy.hang_after.store(1, Ordering::SeqCst);
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        alice.conversation(&g).send_text("crash"),
    )
    .await;
    assert!(r.is_err(), "the answer never comes");
    drop(alice);
    assert_eq!(stored_messages(&w, &g).await, 1);

    let alice = Client::builder(w.dir.clone(), lossy.clone(), Store::open(&path).unwrap())
        .build()
        .await
        .unwrap();
    assert_eq!(
        alice
            .conversation(&g)
            .queued_messages()
            .await
            .unwrap()
            .len(),
        1
    );
    let ev = alice.sync().await.unwrap();
    assert_eq!(sent_texts(&ev), vec!["crash"]);
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(stored_messages(&w, &g).await, 1);
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["crash"]);
    assert_eq!(own_texts(&alice, &g).await, vec!["crash"]);
    assert_eq!(lossy.conflicts.load(Ordering::SeqCst), 0);
}

/// GROUP-11, TRANSPORT-3: alice's send never reached the transport, and bob committed
/// meanwhile. Her next sync sends the queued ciphertext again, is told `StaleEpoch`, and
/// encrypts the message again in the new epoch under a new key (the old key with other
/// bytes would be an idempotency conflict): bob reads it once.
#[tokio::test]
async fn group_11_stale_ciphertext_is_encrypted_again_under_a_new_key() {
    let w = World::new();
    let lossy = LossyTransport::new(w.net.clone());
    let alice = Client::builder(w.dir.clone(), lossy.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("alice")))
        .build()
        .await
        .unwrap();
    let (bob, _) = w.account("bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();

    // The send fails before reaching the transport; then bob commits.
    lossy.fail_sends.store(1, Ordering::SeqCst);
    alice.conversation(&g).send_text("late").await.unwrap_err();
    assert_eq!(
        alice
            .conversation(&g)
            .queued_messages()
            .await
            .unwrap()
            .len(),
        1
    );
    bob.sync().await.unwrap();
    bob.conversation(&g).self_update().await.unwrap();

    let ev = alice.sync().await.unwrap();
    assert_eq!(sent_texts(&ev), vec!["late"]);
    assert_eq!(lossy.conflicts.load(Ordering::SeqCst), 0);
    // A key for the stale ciphertext (refused as stale, never stored) and one for the new
    // one.
    assert_eq!(lossy.keys_seen(), 2);
    assert_eq!(stored_messages(&w, &g).await, 1);
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["late"]);
    assert_eq!(own_texts(&alice, &g).await, vec!["late"]);
}
