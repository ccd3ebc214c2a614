//! Conformance with the AT Messaging Proto draft's delivery-service clauses
//! (reference/atmessaging-proto-SPECIFICATION.md, "Delivery Service Network", "Commit Message
//! race conditions", "Creating groups"), on the real `atmls-ds` over HTTP with SQLite. Each
//! test is named after its clause in spec/draft-conformance.md and quotes it; the in-memory
//! clauses are in tests/draft_conformance*.rs.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use atmls::transport::*;
use common::{joined, texts};
use ds_support::*;

/// A running atmls-ds on a fresh SQLite file, without rate limits.
fn start(dir: &tempfile::TempDir) -> (Ds, Backend) {
    let backend = sqlite_in(dir);
    let ds = Ds::start(
        &backend,
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        NO_LIMITS,
    );
    (ds, backend)
}

/// D-DSN-1: "Clients that adhere to this specification can connect to any Delivery Service
/// Network that also adheres to this specification." The same client runs over any atmls-ds
/// by its URL (`HttpTransport`): two services, two conversations, both work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_dsn_1_the_same_client_runs_over_any_atmls_ds() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ((one, _), (two, _)) = (start(&d1), start(&d2));
    let w = DsWorld::new();
    for (ds, a, b) in [(&one, "alice", "bob"), (&two, "carol", "dave")] {
        let (x, _) = w.account(&ds.url, a).await;
        let (y, _) = w.account(&ds.url, b).await;
        let g = x.create_group(&[y.did().clone()]).await.unwrap();
        assert_eq!(joined(&y.sync().await.unwrap()), vec![g.clone()]);
        x.conversation(&g).send_text("over HTTP").await.unwrap();
        assert_eq!(texts(&y.sync().await.unwrap()), vec!["over HTTP"]);
    }
}

/// D-DSN-2: "this Delivery Service Network cannot require authentication that identifies
/// users in order to send messages on the network." atmls-ds has no accounts and no login
/// (DS-1): a Welcome needs nothing, a group post only the mailbox's capability (DS-3), a
/// secret of the group that names nobody; a wrong one is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_dsn_2_posting_needs_no_identifying_login() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, _) = start(&dir);
    let t = ds.transport();
    let invitee = MailboxId(rand::random());
    let seq = t
        .send_welcome(&invitee, b"a welcome", &IdempotencyKey::random())
        .await
        .unwrap();
    assert_eq!(seq, 1);
    let group = Mailbox::from_capability(rand::random());
    let tag = EpochTag(rand::random());
    let out = t
        .submit_commit(&group, &tag, 0, b"a commit", &IdempotencyKey::random())
        .await
        .unwrap();
    assert_eq!(out, CommitOutcome::Accepted { seq: 1 });
    let forged = Mailbox {
        id: group.id,
        post_secret: Some(rand::random()),
    };
    let next = EpochTag(rand::random());
    let e = t
        .send_message(&forged, &next, 1, b"spam", &IdempotencyKey::random())
        .await
        .unwrap_err();
    assert_eq!(e, TransportError::Forbidden);
    assert_eq!(t.fetch(&group.id, 0, 10).await.unwrap().items.len(), 1);
}

/// D-GRP-10 on atmls-ds: "Delivery Services Networks conforming to this specification must
/// provide an ordering mechanism to ensure proper group state." Of two commits for one epoch
/// from the same cursor the service stores the first and answers the second with it (DS-4);
/// a commit whose poster has read past the first is stored after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_grp_10_atmls_ds_orders_commits_after_the_posters_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, _) = start(&dir);
    let t = ds.transport();
    let group = Mailbox::from_capability(rand::random());
    let tag = EpochTag(rand::random());
    let post = |body: &'static [u8], after| {
        let (t, group) = (t.clone(), group.clone());
        async move {
            t.submit_commit(&group, &tag, after, body, &IdempotencyKey::random())
                .await
                .unwrap()
        }
    };
    assert_eq!(post(b"first", 0).await, CommitOutcome::Accepted { seq: 1 });
    let CommitOutcome::Rejected { winner } = post(b"second", 0).await else {
        panic!("the second commit from the same cursor is refused");
    };
    assert_eq!((winner.seq, winner.payload.as_slice()), (1, &b"first"[..]));
    // The first was junk to this poster (it read and refused it): its commit follows.
    assert_eq!(post(b"third", 1).await, CommitOutcome::Accepted { seq: 2 });
}

/// D-GRP-3 on atmls-ds: "This ID should be treated as private to the group and MUST not be
/// published outside the members of the group in any form." After a group's life on the
/// service, its SQLite files hold the group's mailbox id but not its group id, raw or hex
/// (DS-1; the full scenario: `ds_1_e2e_sqlite_three_users_five_devices_and_blindness`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d_grp_3_the_group_id_never_reaches_atmls_ds() {
    let dir = tempfile::tempdir().unwrap();
    let (ds, backend) = start(&dir);
    let w = DsWorld::new();
    let (alice, _) = w.account(&ds.url, "alice").await;
    let (bob, _) = w.account(&ds.url, "bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice.conversation(&g).send_text("hi").await.unwrap();
    bob.conversation(&g).self_update().await.unwrap();
    let dump = backend.dump();
    assert!(contains(
        &dump,
        &atmls::group::mailbox_for(g.as_bytes()).id.0
    ));
    assert!(!contains(&dump, g.as_bytes()));
    assert!(!contains(&dump, hex::encode(g.as_bytes()).as_bytes()));
}
