//! The atmls-ds API against the real binary, on SQLite and on PostgreSQL: ordering,
//! idempotency, paging, bad input (each a clear error, nothing stored), limits, retention,
//! health, metrics, subscriptions and graceful shutdown.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use std::sync::Arc;
use std::time::Duration;

use atmls::transport::*;
use ds_support::raw::*;
use ds_support::*;

/// A backend and a running service on it, for each backend available.
fn services(extra: &[&str]) -> Vec<(Ds, tempfile::TempDir)> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite_in(&dir);
    let mut args = NO_LIMITS.to_vec();
    args.extend_from_slice(extra);
    out.push((
        Ds::start(&b, "127.0.0.1:0", dir.path().join("ds.log"), &args),
        dir,
    ));
    if let Some(pg) = pg_fresh() {
        let dir = tempfile::tempdir().unwrap();
        out.push((
            Ds::start(&pg, "127.0.0.1:0", dir.path().join("ds.log"), &args),
            dir,
        ));
    }
    out
}

fn group_mailbox() -> Mailbox {
    Mailbox::from_capability(rand::random())
}

fn key() -> IdempotencyKey {
    IdempotencyKey::random()
}

async fn all_items(t: &HttpTransport, m: &MailboxId) -> Vec<Delivered> {
    let mut out = Vec::new();
    loop {
        let p = t
            .fetch(m, out.last().map(|d: &Delivered| d.seq).unwrap_or(0), 1000)
            .await
            .unwrap();
        out.extend(p.items);
        if !p.more {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_4_first_commit_wins_among_50_concurrent() {
    for (ds, _d) in services(&[]) {
        let t = ds.transport();
        let mb = group_mailbox();
        let epoch = EpochTag(rand::random());
        let mut tasks = Vec::new();
        for i in 0..50u8 {
            let (t, mb) = (Arc::clone(&t), mb.clone());
            tasks.push(tokio::spawn(async move {
                t.submit_commit(&mb, &epoch, 0, &[i; 100], &key())
                    .await
                    .unwrap()
            }));
        }
        let mut accepted = Vec::new();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                CommitOutcome::Accepted { seq } => accepted.push(seq),
                CommitOutcome::Rejected { winner } => winners.push(winner),
            }
        }
        assert_eq!(accepted, vec![1], "exactly one commit wins");
        assert_eq!(winners.len(), 49);
        let stored = all_items(&t, &mb.id).await;
        assert_eq!(stored.len(), 1);
        assert!(winners.iter().all(|w| *w == stored[0]));
        // Messages of the committed epoch are stale; of the next one, accepted.
        assert_eq!(
            t.send_message(&mb, &epoch, 0, b"late", &key())
                .await
                .unwrap(),
            SendOutcome::StaleEpoch
        );
        let next = EpochTag(rand::random());
        assert_eq!(
            t.send_message(&mb, &next, 0, b"m", &key()).await.unwrap(),
            SendOutcome::Accepted { seq: 2 }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_4_junk_commit_does_not_hold_the_epoch() {
    for (ds, _d) in services(&[]) {
        let t = ds.transport();
        let raw = Raw::new(&ds);
        let mb = group_mailbox();
        let tag = EpochTag(rand::random());
        let junk = vec![0x13u8; 19];
        // A member posts junk under the current tag: stored at 1.
        assert_eq!(
            t.submit_commit(&mb, &tag, 0, &junk, &key()).await.unwrap(),
            CommitOutcome::Accepted { seq: 1 }
        );
        // A member that has processed it (cursor 1), found it invalid and is still in the
        // epoch commits: stored at 2.
        let ck = key();
        assert_eq!(
            t.submit_commit(&mb, &tag, 1, b"commit", &ck).await.unwrap(),
            CommitOutcome::Accepted { seq: 2 }
        );
        // A member that has not seen the junk (cursor 0) gets it to process first; one that
        // has seen the junk but not the commit at 2 gets that one.
        assert_eq!(
            t.submit_commit(&mb, &tag, 0, b"other", &key())
                .await
                .unwrap(),
            CommitOutcome::Rejected {
                winner: Delivered {
                    seq: 1,
                    kind: Kind::Commit,
                    payload: junk.clone()
                }
            }
        );
        assert_eq!(
            t.submit_commit(&mb, &tag, 1, b"other", &key())
                .await
                .unwrap(),
            CommitOutcome::Rejected {
                winner: Delivered {
                    seq: 2,
                    kind: Kind::Commit,
                    payload: b"commit".to_vec()
                }
            }
        );
        // Messages of the tag: stale while a commit for it follows the cursor.
        for after in [0, 1] {
            assert_eq!(
                t.send_message(&mb, &tag, after, b"m", &key())
                    .await
                    .unwrap(),
                SendOutcome::StaleEpoch,
                "cursor {after}"
            );
        }
        let mk = key();
        assert_eq!(
            t.send_message(&mb, &tag, 2, b"m", &mk).await.unwrap(),
            SendOutcome::Accepted { seq: 3 }
        );
        // Idempotency comes first: retries answer as before, whatever their cursor.
        assert_eq!(
            t.submit_commit(&mb, &tag, 0, b"commit", &ck).await.unwrap(),
            CommitOutcome::Accepted { seq: 2 }
        );
        assert_eq!(
            t.send_message(&mb, &tag, 0, b"m", &mk).await.unwrap(),
            SendOutcome::Accepted { seq: 3 }
        );
        // A client that does not send its cursor gets the rule of cursor 0.
        let path = |kind: &str| format!("/v1/mailboxes/{}/{kind}", hex::encode(mb.id.0));
        let (s, b) = raw
            .post(
                &path("commits"),
                &group_headers(&mb, tag.0, [1; 16]),
                b"old".to_vec(),
            )
            .await;
        assert_eq!(s, 409);
        let b = b.unwrap();
        assert_eq!(b.error, "epoch_taken");
        assert_eq!(b.winner.unwrap().seq, 1);
        assert_error(
            raw.post(
                &path("messages"),
                &group_headers(&mb, tag.0, [2; 16]),
                b"old".to_vec(),
            )
            .await,
            409,
            "stale_epoch",
        );
        let items = all_items(&t, &mb.id).await;
        assert_eq!(
            items.iter().map(|d| d.payload.clone()).collect::<Vec<_>>(),
            vec![junk, b"commit".to_vec(), b"m".to_vec()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_14_superseded_commits_expire_like_messages() {
    for (ds, _d) in services(&["--message-retention", "0", "--prune-interval", "1"]) {
        let t = ds.transport();
        let mb = group_mailbox();
        let (t5, t6) = (EpochTag(rand::random()), EpochTag(rand::random()));
        let commit = |tag, after, payload: &'static [u8]| {
            let (t, mb) = (Arc::clone(&t), mb.clone());
            async move {
                t.submit_commit(&mb, &tag, after, payload, &key())
                    .await
                    .unwrap()
            }
        };
        // Junk at 1, superseded by the epoch's commit at 2 (cursor 1); junk at 3 under the
        // next tag, superseded by a message at 4 (cursor 3); that epoch's commit at 5.
        assert_eq!(
            commit(t5, 0, b"junk").await,
            CommitOutcome::Accepted { seq: 1 }
        );
        assert_eq!(
            commit(t5, 1, b"c5").await,
            CommitOutcome::Accepted { seq: 2 }
        );
        assert_eq!(
            commit(t6, 2, b"junk").await,
            CommitOutcome::Accepted { seq: 3 }
        );
        assert_eq!(
            t.send_message(&mb, &t6, 3, b"m", &key()).await.unwrap(),
            SendOutcome::Accepted { seq: 4 }
        );
        assert_eq!(
            commit(t6, 4, b"c6").await,
            CommitOutcome::Accepted { seq: 5 }
        );
        // Retention 0: the superseded commits go with the message; the others stay.
        let mut left = Vec::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = all_items(&t, &mb.id).await;
            if left.len() == 2 {
                break;
            }
        }
        assert_eq!(
            left.iter()
                .map(|d| (d.seq, d.kind, d.payload.clone()))
                .collect::<Vec<_>>(),
            vec![
                (2, Kind::Commit, b"c5".to_vec()),
                (5, Kind::Commit, b"c6".to_vec())
            ]
        );
        // Positions are never reused.
        assert_eq!(
            t.send_message(&mb, &EpochTag(rand::random()), 5, b"m2", &key())
                .await
                .unwrap(),
            SendOutcome::Accepted { seq: 6 }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_6_retried_sends_are_stored_once() {
    for (ds, _d) in services(&[]) {
        let t = ds.transport();
        let mb = group_mailbox();
        let (e0, e1) = (EpochTag(rand::random()), EpochTag(rand::random()));
        let ck = key();
        for _ in 0..3 {
            assert_eq!(
                t.submit_commit(&mb, &e0, 0, b"c0", &ck).await.unwrap(),
                CommitOutcome::Accepted { seq: 1 }
            );
        }
        let mk = key();
        for _ in 0..3 {
            assert_eq!(
                t.send_message(&mb, &e1, 0, b"m1", &mk).await.unwrap(),
                SendOutcome::Accepted { seq: 2 }
            );
        }
        // After the epoch is committed away, the retried message still gets its answer.
        t.submit_commit(&mb, &e1, 0, b"c1", &key()).await.unwrap();
        assert_eq!(
            t.send_message(&mb, &e1, 0, b"m1", &mk).await.unwrap(),
            SendOutcome::Accepted { seq: 2 }
        );
        // A device's Welcome mailbox, read by the device with its proof (DS-W-1).
        let device = atmls::identity::InstallationKeyPair::generate();
        let proof = WelcomeReadProof::sign(&device.secret_bytes(), atmls::identity::unix_now());
        let w = proof.mailbox;
        let wk = key();
        assert_eq!(t.send_welcome(&w, b"w", &wk).await.unwrap(), 1);
        assert_eq!(t.send_welcome(&w, b"w", &wk).await.unwrap(), 1);
        assert_eq!(all_items(&t, &mb.id).await.len(), 3);
        assert_eq!(
            t.fetch_welcomes(&proof, 0, 100).await.unwrap().items.len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_7_fetch_pages_in_order_without_truncation() {
    for (ds, _d) in services(&[]) {
        let t = ds.transport();
        let mb = group_mailbox();
        t.submit_commit(&mb, &EpochTag([0; 32]), 0, b"c", &key())
            .await
            .unwrap();
        let e = EpochTag([1; 32]);
        for i in 0..250u32 {
            t.send_message(&mb, &e, 0, &i.to_be_bytes(), &key())
                .await
                .unwrap();
        }
        let mut after = 0;
        let mut got = Vec::new();
        loop {
            let p = t.fetch(&mb.id, after, 7).await.unwrap();
            assert!(p.items.len() <= 7);
            for d in &p.items {
                assert_eq!(d.seq, after + 1, "no gap, no reordering");
                after = d.seq;
                got.push(d.clone());
            }
            if !p.more {
                break;
            }
        }
        assert_eq!(got.len(), 251);
        assert_eq!(got[0].kind, Kind::Commit);
        for (i, d) in got[1..].iter().enumerate() {
            assert_eq!(d.payload, (i as u32).to_be_bytes());
            assert_eq!(d.kind, Kind::Message);
        }
        // Unknown mailbox: an empty page.
        let p = t.fetch(&MailboxId(rand::random()), 0, 10).await.unwrap();
        assert!(p.items.is_empty() && !p.more);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_api_9_bad_input_is_a_clear_error_and_stores_nothing() {
    for (ds, _d) in services(&["--max-payload", "4096", "--max-commit", "8192"]) {
        let t = ds.transport();
        let raw = Raw::new(&ds);
        let mb = group_mailbox();
        let e0 = [1u8; 32];
        t.submit_commit(&mb, &EpochTag(e0), 0, b"first", &key())
            .await
            .unwrap();
        let e1 = [2u8; 32];
        let path = |kind: &str| format!("/v1/mailboxes/{}/{kind}", hex::encode(mb.id.0));

        // Malformed: bad mailbox id, missing or bad headers, empty body.
        assert_error(
            raw.post(
                "/v1/mailboxes/xyz/messages",
                &group_headers(&mb, e1, [3; 16]),
                b"m".to_vec(),
            )
            .await,
            400,
            "malformed",
        );
        let mut h = group_headers(&mb, e1, [3; 16]);
        h.retain(|(k, _)| *k != "idempotency-key");
        assert_error(
            raw.post(&path("messages"), &h, b"m".to_vec()).await,
            400,
            "malformed",
        );
        let mut h = group_headers(&mb, e1, [3; 16]);
        h[1].1 = "00".into();
        assert_error(
            raw.post(&path("messages"), &h, b"m".to_vec()).await,
            400,
            "malformed",
        );
        assert_error(
            raw.post(&path("messages"), &group_headers(&mb, e1, [3; 16]), vec![])
                .await,
            400,
            "malformed",
        );
        // A cursor that is not a decimal integer up to 2^63-1 (DS-4).
        for (kind, bad) in [
            ("messages", "x"),
            ("messages", "-1"),
            ("messages", ""),
            ("commits", "1.5"),
            ("commits", "9223372036854775808"),
        ] {
            let mut h = group_headers(&mb, e1, [3; 16]);
            h.push(("atmls-after", bad.into()));
            assert_error(
                raw.post(&path(kind), &h, b"m".to_vec()).await,
                400,
                "malformed",
            );
        }
        assert_error(
            raw.post("/v1/subscribe", &[], b"{not json".to_vec()).await,
            400,
            "malformed",
        );
        // Oversized: refused with the limit, via the client transport too.
        let big = vec![7u8; 4097];
        let (status, body) = raw
            .post(
                &path("messages"),
                &group_headers(&mb, e1, [4; 16]),
                big.clone(),
            )
            .await;
        assert_eq!(status, 413);
        assert_eq!(body.unwrap().limit, Some(4096));
        assert!(matches!(
            t.send_message(&mb, &EpochTag(e1), 0, &big, &key()).await,
            Err(TransportError::PayloadTooLarge { limit: 4096, .. })
        ));
        // Commits have their own, larger limit (LG-13): over the message limit is fine,
        // over the commit limit is refused with it, and nothing is stored.
        let fresh = group_mailbox();
        assert!(matches!(
            t.submit_commit(&fresh, &EpochTag(e0), 0, &vec![8u8; 8193], &key())
                .await,
            Err(TransportError::PayloadTooLarge { limit: 8192, .. })
        ));
        assert!(t.fetch(&fresh.id, 0, 100).await.unwrap().items.is_empty());
        assert!(matches!(
            t.submit_commit(&fresh, &EpochTag(e0), 0, &vec![8u8; 6000], &key())
                .await,
            Ok(CommitOutcome::Accepted { .. })
        ));
        assert_eq!(t.fetch(&fresh.id, 0, 100).await.unwrap().items.len(), 1);
        // A message may start a group mailbox too (spec/group.md GROUP-4a: a group that moved
        // goes on in a mailbox nothing was posted to yet).
        let moved = group_mailbox();
        let (s, b) = raw
            .post(
                &format!("/v1/mailboxes/{}/messages", hex::encode(moved.id.0)),
                &group_headers(&moved, e1, [5; 16]),
                b"m".to_vec(),
            )
            .await;
        assert_eq!(s, 200, "{b:?}");
        assert_eq!(t.fetch(&moved.id, 0, 100).await.unwrap().items.len(), 1);
        // Wrong or missing capability.
        let wrong = Mailbox {
            id: mb.id,
            post_secret: Some([9; 32]),
        };
        assert_eq!(
            t.send_message(&wrong, &EpochTag(e1), 0, b"m", &key()).await,
            Err(TransportError::Forbidden)
        );
        assert_eq!(
            t.submit_commit(&wrong, &EpochTag(e1), 0, b"c", &key())
                .await,
            Err(TransportError::Forbidden)
        );
        let mut h = group_headers(&mb, e1, [6; 16]);
        h.remove(0);
        assert_error(
            raw.post(&path("messages"), &h, b"m".to_vec()).await,
            403,
            "forbidden",
        );
        // A Welcome to a group mailbox (paid for, DS-17: the stamp is checked first).
        let stamp = stamp::make_stamp(&mb.id, &[7; 16], b"w", 8).unwrap();
        assert_error(
            raw.post(
                &path("welcomes"),
                &[
                    ("idempotency-key", hex::encode([7u8; 16])),
                    (stamp::STAMP_HEADER, stamp::stamp_header(stamp)),
                ],
                b"w".to_vec(),
            )
            .await,
            409,
            "wrong_mailbox_kind",
        );
        // A replayed idempotency key with another request.
        let k = key();
        t.send_message(&mb, &EpochTag(e1), 0, b"original", &k)
            .await
            .unwrap();
        assert_error(
            raw.post(
                &path("messages"),
                &group_headers(&mb, e1, k.0),
                b"changed".to_vec(),
            )
            .await,
            422,
            "idempotency_conflict",
        );
        // A commit for a past epoch: refused with the winner.
        let (s, b) = raw
            .post(
                &path("commits"),
                &group_headers(&mb, e0, [8; 16]),
                b"late".to_vec(),
            )
            .await;
        assert_eq!(s, 409);
        let b = b.unwrap();
        assert_eq!(b.error, "epoch_taken");
        assert_eq!(b.winner.unwrap().seq, 1);
        // Huge cursors (a cursor past the end reads as an empty page: ds_hardening.rs).
        for after in [
            u64::MAX.to_string(),
            (1u64 << 63).to_string(),
            "-1".into(),
            "x".into(),
        ] {
            assert_error(
                raw.get(&format!(
                    "/v1/mailboxes/{}/items?after={after}",
                    hex::encode(mb.id.0)
                ))
                .await,
                400,
                "cursor_out_of_range",
            );
        }
        assert_error(
            raw.get(&format!(
                "/v1/mailboxes/{}/items?limit=lots",
                hex::encode(mb.id.0)
            ))
            .await,
            400,
            "malformed",
        );
        // Nothing of the above was stored: the first commit and the one good message.
        let items = all_items(&t, &mb.id).await;
        assert_eq!(
            items.iter().map(|d| d.payload.clone()).collect::<Vec<_>>(),
            vec![b"first".to_vec(), b"original".to_vec()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_9_rate_limits_per_mailbox_and_address() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite_in(&dir);
    let ds = Ds::start(
        &b,
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        &["--rate-mailbox", "5", "--rate-address", "1000"],
    );
    let raw = Raw::new(&ds);
    let mb = group_mailbox();
    let path = format!("/v1/mailboxes/{}/commits", hex::encode(mb.id.0));
    // The budget is per epoch tag (DS-9): 30 posts under one tag.
    let mut codes = Vec::new();
    for i in 0..30u8 {
        codes.push(
            raw.post(&path, &group_headers(&mb, [7; 32], [i; 16]), b"c".to_vec())
                .await
                .0,
        );
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert!(
        codes.iter().filter(|c| **c != 429).count() <= 12,
        "{codes:?}"
    );
    // Another mailbox is not affected by the first one's limit.
    let other = group_mailbox();
    let p2 = format!("/v1/mailboxes/{}/commits", hex::encode(other.id.0));
    assert_eq!(
        raw.post(&p2, &group_headers(&other, [0; 32], [0; 16]), b"c".to_vec())
            .await
            .0,
        200
    );
    drop(ds);
    let ds = Ds::start(
        &b,
        "127.0.0.1:0",
        dir.path().join("ds2.log"),
        &["--rate-mailbox", "0", "--rate-address", "5"],
    );
    let raw = Raw::new(&ds);
    let mut codes = Vec::new();
    for _ in 0..30 {
        codes.push(
            raw.get(&format!("/v1/mailboxes/{}/items", hex::encode(mb.id.0)))
                .await
                .0,
        );
    }
    assert!(codes.contains(&429), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_10_retention_drops_messages_and_keeps_commits() {
    for (ds, _d) in services(&["--message-retention", "0", "--prune-interval", "1"]) {
        let t = ds.transport();
        let mb = group_mailbox();
        t.submit_commit(&mb, &EpochTag([0; 32]), 0, b"c", &key())
            .await
            .unwrap();
        t.send_message(&mb, &EpochTag([1; 32]), 0, b"m", &key())
            .await
            .unwrap();
        // Items created before "now - 0 s" go at the next run (unix seconds: wait for 2 s).
        let mut left = Vec::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = all_items(&t, &mb.id).await;
            if left.len() == 1 {
                break;
            }
        }
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].kind, Kind::Commit);
        // Positions are never reused.
        assert_eq!(
            t.send_message(&mb, &EpochTag([1; 32]), 0, b"m2", &key())
                .await
                .unwrap(),
            SendOutcome::Accepted { seq: 3 }
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_12_health_metrics_subscription_and_graceful_shutdown() {
    for (mut ds, _d) in services(&[]) {
        let http = reqwest::Client::new();
        let h = http.get(format!("{}/health", ds.url)).send().await.unwrap();
        assert_eq!(h.status().as_u16(), 200);
        let t = ds.transport();
        let mb = group_mailbox();
        let mut sub = t.subscribe(&[mb.id]).await.unwrap();
        t.submit_commit(&mb, &EpochTag([0; 32]), 0, b"c", &key())
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap();
        assert_eq!(got, Some(mb.id));
        // Not on the API's address (DS-12): a JSON 404 like any unknown route.
        let hidden = http
            .get(format!("{}/metrics", ds.url))
            .send()
            .await
            .unwrap();
        assert_eq!(hidden.status().as_u16(), 404);
        assert!(hidden.text().await.unwrap().contains("\"not_found\""));
        let m = http
            .get(format!("{}/metrics", ds.metrics_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            m.contains("atmls_ds_posts_total{kind=\"commit\",outcome=\"accepted\"} 1"),
            "{m}"
        );
        assert!(m.contains("atmls_ds_subscriptions 1"), "{m}");
        assert!(!m.contains(&hex::encode(mb.id.0)));
        // SIGTERM: open subscriptions end, the process exits cleanly.
        let status = ds.terminate();
        assert!(status.success(), "{status:?}");
        // (Notifications may repeat, TRANSPORT-6: on PostgreSQL the local one and the one
        // relayed by LISTEN/NOTIFY.)
        while let Some(id) = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap()
        {
            assert_eq!(id, mb.id);
        }
        let log = std::fs::read_to_string(&ds.log).unwrap();
        assert!(log.contains("stopped"), "{log}");
        assert!(!log.contains(&hex::encode(mb.id.0)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_8_long_poll_and_subscriptions_across_processes() {
    // Long poll: an empty fetch waits for the next item.
    for (ds, _d) in services(&[]) {
        let t = ds.transport();
        let mb = group_mailbox();
        t.submit_commit(&mb, &EpochTag([0; 32]), 0, b"c", &key())
            .await
            .unwrap();
        let url = format!(
            "{}/v1/mailboxes/{}/items?after=1&wait_ms=10000",
            ds.url,
            hex::encode(mb.id.0)
        );
        let poll = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let body: atmls_ds_wire::api::PageBody =
                reqwest::get(url).await.unwrap().json_or_panic().await;
            (body, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        t.send_message(&mb, &EpochTag([1; 32]), 0, b"m", &key())
            .await
            .unwrap();
        let (body, waited) = poll.await.unwrap();
        assert_eq!(body.items.len(), 1);
        assert_eq!(body.items[0].seq, 2);
        assert!(waited < Duration::from_secs(9), "{waited:?}");
    }
    // Two processes on one PostgreSQL: a subscriber on one hears of a post made through the
    // other (LISTEN/NOTIFY).
    let Some(pg) = pg_fresh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let a = Ds::start(&pg, "127.0.0.1:0", dir.path().join("a.log"), NO_LIMITS);
    let b = Ds::start(&pg, "127.0.0.1:0", dir.path().join("b.log"), NO_LIMITS);
    let mb = group_mailbox();
    let mut sub = a.transport().subscribe(&[mb.id]).await.unwrap();
    b.transport()
        .submit_commit(&mb, &EpochTag([0; 32]), 0, b"c", &key())
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .unwrap();
    assert_eq!(got, Some(mb.id));
}

trait JsonOrPanic {
    async fn json_or_panic<T: serde::de::DeserializeOwned>(self) -> T;
}

impl JsonOrPanic for reqwest::Response {
    async fn json_or_panic<T: serde::de::DeserializeOwned>(self) -> T {
        let status = self.status();
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{status}: {e}: {}", String::from_utf8_lossy(&bytes)))
    }
}
