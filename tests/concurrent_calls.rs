//! Calls of one client at the same time (spec/storage.md STORE-5): the state lock is never held
//! while a call waits on the network, so a call on one group goes on while another waits;
//! calls on the same group, and two syncs, still happen one after the other.
//!
//! The transport is the in-process one with a gate (`TestTransport::hold_fetches`): a fetch of
//! one chosen mailbox waits until the test opens it, as a slow network would hold it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use atmls::{Client, GroupId};
use common::{did, texts, TestTransport, World};

/// How long a call that must not wait is given (far more than it needs: a liveness check,
/// not a speed one).
const LIVE: Duration = Duration::from_secs(60);

/// alice (on the gated transport) with a DM with bob and a group with bob and carol; bob has
/// posted one message in the DM, which alice has not read yet.
struct Setup {
    gate: Arc<TestTransport>,
    alice: Arc<Client>,
    bob: Client,
    dm: GroupId,
    group: GroupId,
}

async fn setup() -> Setup {
    let w = World::new();
    let gate = Arc::new(TestTransport::racing(w.net.clone()));
    let alice = Client::builder(
        w.dir.clone(),
        gate.clone(),
        atmls::storage::Store::in_memory().unwrap(),
    )
    .identity(atmls::identity::DeviceIdentity::new_account(did("alice")))
    .build()
    .await
    .unwrap();
    let (bob, _) = w.account("bob").await;
    let (carol, _) = w.account("carol").await;
    let dm = alice.dm(bob.did()).await.unwrap();
    let group = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    bob.conversation(&dm).send_text("unread").await.unwrap();
    Setup {
        gate,
        alice: Arc::new(alice),
        bob,
        dm,
        group,
    }
}

/// Starts alice's sync and returns once it waits at the gate on the DM's mailbox.
async fn sync_held_at_dm(s: &Setup) -> tokio::task::JoinHandle<Vec<atmls::Event>> {
    let mailbox = s.alice.mailbox_for_test(&s.dm).await.unwrap().id;
    s.gate.hold_fetches(mailbox);
    let alice = s.alice.clone();
    let sync = tokio::spawn(async move { alice.sync().await.unwrap() });
    tokio::time::timeout(LIVE, s.gate.fetch_held.notified())
        .await
        .expect("the sync reaches the DM's mailbox");
    sync
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_5_a_send_goes_on_while_a_sync_waits_on_the_network_for_another_group() {
    let s = setup().await;
    let sync = sync_held_at_dm(&s).await;
    // The sync is held at the network: a send in another group does not wait for it.
    tokio::time::timeout(LIVE, s.alice.conversation(&s.group).send_text("meanwhile"))
        .await
        .expect("the send does not wait for the held sync")
        .unwrap();
    assert!(!sync.is_finished());
    s.gate.open_fetches();
    let events = sync.await.unwrap();
    assert_eq!(texts(&events), ["unread"]);
    assert_eq!(texts(&s.bob.sync().await.unwrap()), ["meanwhile"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_5_calls_on_one_group_wait_for_each_other() {
    let s = setup().await;
    let sync = sync_held_at_dm(&s).await;
    // A send in the group the sync is reading waits for it (its ordering lock).
    let alice = s.alice.clone();
    let dm = s.dm.clone();
    let send =
        tokio::spawn(async move { alice.conversation(&dm).send_text("reply").await.unwrap() });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!send.is_finished(), "a send overtook the sync of its group");
    s.gate.open_fetches();
    assert_eq!(texts(&sync.await.unwrap()), ["unread"]);
    send.await.unwrap();
    assert_eq!(texts(&s.bob.sync().await.unwrap()), ["reply"]);
    let stored = common::stored_texts(&s.alice, &s.dm).await;
    assert_eq!(stored, ["unread", "reply"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_5_two_syncs_at_once_read_each_item_once() {
    let s = setup().await;
    for i in 0..3 {
        s.bob
            .conversation(&s.group)
            .send_text(&format!("in group {i}"))
            .await
            .unwrap();
    }
    let (a, b) = tokio::join!(s.alice.sync(), s.alice.sync());
    let mut all = texts(&a.unwrap());
    all.extend(texts(&b.unwrap()));
    all.sort();
    assert_eq!(all, ["in group 0", "in group 1", "in group 2", "unread"]);
}

/// The same calls on a current-thread runtime (no thread to hand work to: it runs in place).
#[tokio::test]
async fn store_5_current_thread_runtime_works_in_place() {
    let s = setup().await;
    let (synced, sent) = tokio::join!(
        s.alice.sync(),
        s.alice.conversation(&s.group).send_text("both")
    );
    assert_eq!(texts(&synced.unwrap()), ["unread"]);
    sent.unwrap();
    assert_eq!(texts(&s.bob.sync().await.unwrap()), ["both"]);
}
