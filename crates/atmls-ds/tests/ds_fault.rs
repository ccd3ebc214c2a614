//! Faults: the DS is killed (SIGKILL) and restarted twice during a conversation under load. No
//! acknowledged message is lost or duplicated; clients reconnect and catch up (DS-5, DS-6).
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmls::transport::*;
use common::texts;
use ds_support::*;

/// Acknowledged and unacknowledged sends of one task.
#[derive(Default)]
struct Ledger {
    acked: Vec<(u64, Vec<u8>)>,
    failed: Vec<Vec<u8>>,
}

async fn fault_under_load(backend: Backend, dir: tempfile::TempDir) {
    let mut ds = Ds::start(
        &backend,
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        NO_LIMITS,
    );
    let addr = ds.addr.clone();
    let url = ds.url.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // Raw load: 4 writers on 4 mailboxes, unique payloads.
    let mut load = Vec::new();
    for w in 0..4u8 {
        let (url, stop) = (url.clone(), Arc::clone(&stop));
        load.push(tokio::spawn(async move {
            let t = HttpTransport::new(&url).unwrap();
            let mb = Mailbox::from_capability([w + 1; 32]);
            t.submit_commit(
                &mb,
                &EpochTag([0; 32]),
                0,
                b"genesis",
                &IdempotencyKey::random(),
            )
            .await
            .unwrap();
            let mut ledger = Ledger::default();
            let mut i = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let payload = format!("load {w} {i}").into_bytes();
                i += 1;
                match t
                    .send_message(
                        &mb,
                        &EpochTag([1; 32]),
                        0,
                        &payload,
                        &IdempotencyKey::random(),
                    )
                    .await
                {
                    Ok(SendOutcome::Accepted { seq }) => ledger.acked.push((seq, payload)),
                    Ok(SendOutcome::StaleEpoch) => panic!("stale"),
                    Err(e) => {
                        assert!(e.is_retryable(), "{e:?}");
                        ledger.failed.push(payload);
                    }
                }
            }
            (mb, ledger)
        }));
    }

    // A conversation: three accounts in a group, each sending.
    let w = DsWorld::new();
    let (alice, _) = w.account(&url, "alice").await;
    let (bob, _) = w.account(&url, "bob").await;
    let (carol, _) = w.account(&url, "carol").await;
    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    let acked_texts = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut talkers = Vec::new();
    for (name, c) in [("alice", alice), ("bob", bob)] {
        let (g, acked, stop) = (g.clone(), Arc::clone(&acked_texts), Arc::clone(&stop));
        talkers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let text = format!("{name} says {i}");
                i += 1;
                match c.conversation(&g).send_text(&text).await {
                    Ok(_) => acked.lock().unwrap().push(text),
                    Err(e) => assert!(e.is_retryable(), "{e:?}"),
                }
                // Other members' messages are processed as we go.
                let _ = c.sync().await;
            }
        }));
    }

    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        ds.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        ds = Ds::start(
            &backend,
            &addr,
            dir.path().join(format!("ds-{round}.log")),
            NO_LIMITS,
        );
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in talkers {
        t.await.unwrap();
    }

    // Every acknowledged raw post is stored once at its position; unacknowledged at most once.
    let t = HttpTransport::new(&url).unwrap();
    let mut total_acked = 0;
    for l in load {
        let (mb, ledger) = l.await.unwrap();
        let mut stored: HashMap<Vec<u8>, Vec<u64>> = HashMap::new();
        let mut after = 0;
        loop {
            let p = t.fetch(&mb.id, after, 1000).await.unwrap();
            for d in p.items {
                after = d.seq;
                stored.entry(d.payload).or_default().push(d.seq);
            }
            if !p.more {
                break;
            }
        }
        for (seq, payload) in &ledger.acked {
            assert_eq!(
                stored.get(payload),
                Some(&vec![*seq]),
                "acked post lost or moved"
            );
        }
        assert!(stored.values().all(|v| v.len() == 1), "a post stored twice");
        total_acked += ledger.acked.len();
    }
    assert!(total_acked > 100, "too little load: {total_acked}");

    // Carol catches up: every acknowledged message exactly once.
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(texts(&carol.sync().await.unwrap()));
    }
    let acked = acked_texts.lock().unwrap().clone();
    assert!(acked.len() > 10, "too few messages: {}", acked.len());
    for a in &acked {
        assert_eq!(seen.iter().filter(|s| *s == a).count(), 1, "{a}");
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len(), "a message delivered twice");
    eprintln!(
        "fault test: {total_acked} raw posts and {} messages acknowledged across two SIGKILLs",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_5_sigkill_restart_under_load_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite_in(&dir);
    fault_under_load(b, dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_5_sigkill_restart_under_load_postgres() {
    let Some(b) = pg_fresh() else { return };
    fault_under_load(b, tempfile::tempdir().unwrap()).await;
}
