//! Load benchmark of atmls-ds (a load generator, not criterion: it measures a service under
//! concurrent load). Starts the real binary on loopback, creates 1,000 group mailboxes, then:
//! - accept: concurrent clients post 1 KiB application messages round-robin over the
//!   mailboxes; messages per second and p50/p99 post latency;
//! - fetch: concurrent clients read every mailbox back in pages of 100; messages per second
//!   and p50/p99 latency per fetch request.
//!
//! `cargo bench -p atmls-ds --features postgres --bench ds_load` runs SQLite, and
//! PostgreSQL too when `ATMLS_TEST_DATABASE_URL` names a server (scripts/postgres.sh start).
//! `ATMLS_BENCH_MESSAGES` (default 100,000), `ATMLS_BENCH_CONCURRENCY` (default 64) and
//! `ATMLS_BENCH_MAILBOXES` (default 1,000) tune it.
//!
//! The transport keeps one connection pool per mailbox (spec/ds.md DS-W-3: no connection
//! carries two mailboxes, so the service cannot link them), so one generator posting over
//! 1,000 mailboxes holds 1,000 connections to the service, each used once in 1,000 posts: the
//! service's view of many devices, and dearer per message than a few busy connections. The
//! bench prints the sockets the service holds; `ATMLS_BENCH_MAILBOXES=64` gives the other end.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use atmls::transport::{EpochTag, HttpTransport, IdempotencyKey, Mailbox, SendOutcome, Transport};
use support::{cpu_secs, env_usize, percentile, postgres_cpu_secs, sockets, start};

const PAYLOAD: usize = 1024;

async fn run(label: &str, database: &str) {
    let total = env_usize("ATMLS_BENCH_MESSAGES", 100_000);
    let conc = env_usize("ATMLS_BENCH_CONCURRENCY", 64);
    let mailboxes = env_usize("ATMLS_BENCH_MAILBOXES", 1000).max(1);
    let server = start(database, support::NO_LIMITS);
    let t = Arc::new(HttpTransport::new(&server.1).expect("transport"));
    let boxes: Arc<Vec<Mailbox>> = Arc::new(
        (0..mailboxes)
            .map(|i| {
                let mut cap = [0u8; 32];
                cap[..8].copy_from_slice(&(i as u64).to_be_bytes());
                cap[8..16].copy_from_slice(&rand::random::<[u8; 8]>());
                Mailbox::from_capability(cap)
            })
            .collect(),
    );
    // Each mailbox starts with a commit (epoch 0); messages go in epoch 1.
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (t, boxes, next) = (Arc::clone(&t), Arc::clone(&boxes), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(m) = boxes.get(i) else { return };
                support::genesis(&t, m).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }

    let server_pid = server.0.id().to_string();
    let cpu = || (cpu_secs(&server_pid), cpu_secs("self"), postgres_cpu_secs());
    // Accept.
    let cpu0 = cpu();
    let payload = Arc::new(vec![0x5a_u8; PAYLOAD]);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (t, boxes, next, payload) = (
            Arc::clone(&t),
            Arc::clone(&boxes),
            Arc::clone(&next),
            Arc::clone(&payload),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return lat;
                }
                let m = &boxes[i % mailboxes];
                let t0 = Instant::now();
                let r = t
                    .send_message(
                        m,
                        &EpochTag([1; 32]),
                        0,
                        &payload,
                        &IdempotencyKey::random(),
                    )
                    .await
                    .expect("send");
                assert!(matches!(r, SendOutcome::Accepted { .. }));
                lat.push(t0.elapsed());
            }
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await.expect("task"));
    }
    let accept_secs = started.elapsed().as_secs_f64();
    let cpu1 = cpu();
    let open = sockets(&server_pid);
    lat.sort();
    println!(
        "{label:>10} accept: {total} msgs of {PAYLOAD} B over {mailboxes} mailboxes, {conc} clients, \
         {open} sockets at the service: {:.0} msg/s, p50 {:.2} ms, p99 {:.2} ms",
        total as f64 / accept_secs,
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "{label:>10}         CPU per message: server {:.1} us, load generator {:.1} us, postgres processes {:.1} us",
        (cpu1.0 - cpu0.0) / total as f64 * 1e6,
        (cpu1.1 - cpu0.1) / total as f64 * 1e6,
        (cpu1.2 - cpu0.2) / total as f64 * 1e6,
    );

    // Fetch: every mailbox read back in pages of 100.
    let next = Arc::new(AtomicUsize::new(0));
    let fetched = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (t, boxes, next, fetched) = (
            Arc::clone(&t),
            Arc::clone(&boxes),
            Arc::clone(&next),
            Arc::clone(&fetched),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(m) = boxes.get(i) else { return lat };
                let mut after = 0;
                loop {
                    let t0 = Instant::now();
                    let p = t.fetch(&m.id, after, 100).await.expect("fetch");
                    lat.push(t0.elapsed());
                    fetched.fetch_add(p.items.len(), Ordering::Relaxed);
                    after = p.items.last().map(|d| d.seq).unwrap_or(after);
                    if !p.more {
                        break;
                    }
                }
            }
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await.expect("task"));
    }
    let fetch_secs = started.elapsed().as_secs_f64();
    let cpu2 = cpu();
    let n = fetched.load(Ordering::Relaxed);
    assert_eq!(n, total + mailboxes, "everything comes back");
    lat.sort();
    println!(
        "{label:>10} fetch: {n} msgs in {} requests of up to 100: {:.0} msg/s, p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        n as f64 / fetch_secs,
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
    println!(
        "{label:>10}         CPU per fetched message: server {:.1} us, load generator {:.1} us",
        (cpu2.0 - cpu1.0) / n as f64 * 1e6,
        (cpu2.1 - cpu1.1) / n as f64 * 1e6,
    );

    // Latency when not saturated: one client fetching one 100-message page at a time.
    let mut lat = Vec::new();
    for m in boxes.iter().take(300) {
        let t0 = Instant::now();
        let p = t.fetch(&m.id, 0, 100).await.expect("fetch");
        lat.push(t0.elapsed());
        assert!(!p.items.is_empty());
    }
    lat.sort();
    println!(
        "{label:>10} fetch, one client: p50 {:.2} ms, p99 {:.2} ms per page of 100",
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    // `cargo test --benches` runs benches with `--test`-like flags: keep it quick there.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    support::on_both(|label, db| async move { run(label, &db).await });
}
