//! An application message's latency while the same client syncs a commit of a large group
//! (issue 23, item 5: work off the async thread, no lock held across network I/O).
//!
//! ```text
//! cargo bench --bench sync_latency                          # N = 10,000, 20 ms round trip
//! ATMLS_BENCH_N=1000 ATMLS_BENCH_RTT_MS=50 cargo bench --bench sync_latency
//! ```
//!
//! Set-up: alice creates a group of N members (bob and fillers, in commits of 1,000); bob
//! also has a DM with carol. Then every request to the in-process transport waits a
//! simulated round trip (`ATMLS_BENCH_RTT_MS`, default 20). Each round, alice commits a
//! self-update in the large group; bob starts `sync()` (which fetches and processes that
//! commit) on a two-worker multi-thread runtime and, `offset` ms later, sends a 1 KiB text in
//! the DM. Offsets step through the sync's duration so that the send lands in each of its
//! phases (fetches, processing the commit, upkeep).
//!
//! Rows: `send_idle_ms` (the send with no sync running), `send_during_sync_ms` (median and
//! max over the rounds), `sync_ms` (bob's sync of the commit, median), `ticker_gap_ms` (the
//! longest gap of a 1 ms ticker task on the same runtime during the rounds: how long the
//! runtime's threads were kept from other tasks).
//!
//! Numbers only, no assertions: speed is checked here, never in tests.

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls::directory::MemoryDirectory;
use atmls::identity::Did;
use atmls::keypackage::KeyPackagePolicy;
use atmls::{Client, GroupId};
use common::{atmls_account, atmls_cheap_accounts, did, text_1k, BenchNet, BoxError, SETUP_CHUNK};

const ROUNDS: usize = 12;

struct Setup {
    net: Arc<BenchNet>,
    alice: Client,
    bob: Arc<Client>,
    carol: Client,
    large: GroupId,
    dm: GroupId,
}

fn env_num(name: &str, default: u64) -> Result<u64, BoxError> {
    match std::env::var(name) {
        Ok(v) => Ok(v.parse()?),
        Err(_) => Ok(default),
    }
}

async fn setup(n: usize) -> Result<Setup, BoxError> {
    let dir = Arc::new(MemoryDirectory::new());
    let net = Arc::new(BenchNet::default());
    eprintln!("set-up: {n} members");
    let fillers = atmls_cheap_accounts(&dir, &net, n.saturating_sub(2), &[], true)?;
    let policy = KeyPackagePolicy::default();
    let alice = atmls_account(&dir, &net, did(b'a', 0), policy.clone()).await?;
    let bob = atmls_account(&dir, &net, did(b'b', 0), policy.clone()).await?;
    let carol = atmls_account(&dir, &net, did(b'c', 0), policy).await?;
    let mut members: Vec<Did> = vec![bob.did().clone()];
    members.extend(fillers.into_iter().map(|(_, d)| d));
    let mut chunks = members.chunks(SETUP_CHUNK);
    let large = alice
        .create_group(chunks.next().unwrap_or_default())
        .await?;
    for chunk in chunks {
        alice.conversation(&large).add_members(chunk).await?;
    }
    bob.sync().await?;
    let dm = bob.dm(carol.did()).await?;
    carol.sync().await?;
    Ok(Setup {
        net,
        alice,
        bob: Arc::new(bob),
        carol,
        large,
        dm,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A task that wakes every millisecond and records the longest gap between two wakes.
fn ticker(stop: Arc<AtomicBool>, worst_us: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let gap = u64::try_from(last.elapsed().as_micros()).unwrap_or(u64::MAX);
            worst_us.fetch_max(gap, Ordering::Relaxed);
            last = Instant::now();
        }
    })
}

async fn measure(s: &Setup, rtt: Duration) -> Result<(), BoxError> {
    let text = text_1k();
    let mut idle = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        s.bob.conversation(&s.dm).send_text(&text).await?;
        idle.push(ms(t.elapsed()));
    }
    // One round without a send, to learn how long the sync takes (the offsets span it).
    s.alice.conversation(&s.large).self_update().await?;
    let t = Instant::now();
    s.bob.sync().await?;
    let sync_alone = t.elapsed();
    let stop = Arc::new(AtomicBool::new(false));
    let worst = Arc::new(AtomicU64::new(0));
    let tick = ticker(stop.clone(), worst.clone());
    let (mut during, mut syncs) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        s.alice.conversation(&s.large).self_update().await?;
        let offset = sync_alone.mul_f64(round as f64 / ROUNDS as f64);
        let bob = s.bob.clone();
        let sync = tokio::spawn(async move {
            let t = Instant::now();
            bob.sync().await.map(|_| t.elapsed())
        });
        tokio::time::sleep(offset).await;
        let t = Instant::now();
        s.bob.conversation(&s.dm).send_text(&text).await?;
        let latency = ms(t.elapsed());
        let took = sync.await??;
        eprintln!(
            "  round {round}: offset {:.1} ms, send {latency:.1} ms, sync {:.1} ms",
            ms(offset),
            ms(took)
        );
        during.push(latency);
        syncs.push(ms(took));
    }
    stop.store(true, Ordering::Relaxed);
    tick.await?;
    s.carol.sync().await?;
    let max = during.iter().copied().fold(0.0, f64::max);
    println!("rtt_ms                 {:.0}", ms(rtt));
    println!("send_idle_ms           {:.1}", median(idle));
    println!(
        "send_during_sync_ms    median {:.1}  max {max:.1}",
        median(during)
    );
    println!("sync_ms                {:.1}", median(syncs));
    println!(
        "ticker_gap_ms          {:.1}",
        worst.load(Ordering::Relaxed) as f64 / 1000.0
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    // `cargo test --benches` runs bench binaries without `--bench`: nothing to check here.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let n = usize::try_from(env_num("ATMLS_BENCH_N", 10_000)?)?;
    let rtt = Duration::from_millis(env_num("ATMLS_BENCH_RTT_MS", 20)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let s = setup(n).await?;
        s.net.set_rtt(rtt);
        measure(&s, rtt).await
    })
}
