//! Large ratchet-tree transfers against small posts on atmls-ds (spec/ds.md DS-15): a load
//! generator, not criterion. Starts the real binary on loopback and measures
//! - uploads: four clients upload 64 MiB trees in a loop (a fresh locator each time, so every
//!   upload is stored; trees expire after a second and are pruned) while one poster sends
//!   1 KiB messages one at a time, every 5 ms: the posts' p50/p99/max latency, the uploads'
//!   throughput, the service's peak RSS (VmHWM) and the largest write-ahead log seen
//!   (SQLite: the sum of the `-wal` files, sampled every 50 ms; PostgreSQL: WAL bytes written);
//! - downloads: 24 clients fetch one 32 MiB tree at once: the service's peak RSS before and
//!   after.
//!
//! `cargo bench -p atmls-ds --features postgres --bench ds_trees` runs SQLite, and
//! PostgreSQL too when `ATMLS_TEST_DATABASE_URL` names a server (scripts/postgres.sh start).
//! `ATMLS_BENCH_SECS` (default 20) is how long the uploads run; `ATMLS_BENCH_DS_ARGS` adds
//! flags to the service (e.g. `--max-tree-transfers 2`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls::transport::{EpochTag, HttpTransport, IdempotencyKey, Mailbox, SendOutcome, Transport};
use support::{ms, percentile, pg_database, start, vm_mib};

const BIG: usize = 64 << 20;
const GET_TREE: usize = 32 << 20;
const UPLOADERS: usize = 4;
const GETTERS: usize = 24;
const POST_EVERY: Duration = Duration::from_millis(5);

/// The SQLite write-ahead logs in `dir`: (file name, bytes).
fn wals(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with("-wal"))
                .filter_map(|e| {
                    Some((
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().ok()?.len(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn mib(b: u64) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// WAL bytes a PostgreSQL server has written so far.
fn pg_wal_position(url: &str) -> Option<u64> {
    let out = Command::new("psql")
        .arg(url)
        .arg("-tAc")
        .arg("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn random_bytes(n: usize) -> axum::body::Bytes {
    let mut v = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut v);
    axum::body::Bytes::from(v)
}

async fn put(http: &reqwest::Client, url: &str, body: axum::body::Bytes) -> u16 {
    let locator = hex::encode(rand::random::<[u8; 32]>());
    match http
        .put(format!("{url}/v1/trees/{locator}"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s
        }
        Err(_) => 0,
    }
}

/// Posts 1 KiB messages to one mailbox every `POST_EVERY` until `stop`; the latencies (of
/// failed posts too, until they failed: the client's retries included) and the failures.
async fn poster(t: Arc<HttpTransport>, m: Mailbox, stop: Arc<AtomicBool>) -> (Vec<Duration>, u64) {
    let payload = vec![0x5a_u8; 1024];
    let mut lat = Vec::new();
    let mut failed = 0;
    let mut next = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let r = t
            .send_message(
                &m,
                &EpochTag([1; 32]),
                0,
                &payload,
                &IdempotencyKey::random(),
            )
            .await;
        if !matches!(r, Ok(SendOutcome::Accepted { .. })) {
            failed += 1;
        }
        lat.push(t0.elapsed());
        next += POST_EVERY;
        tokio::time::sleep_until(next.max(tokio::time::Instant::now())).await;
    }
    (lat, failed)
}

fn report_posts(label: &str, what: &str, (mut lat, failed): (Vec<Duration>, u64)) {
    lat.sort();
    println!(
        "{label:>10} {what}: {} posts ({failed} failed), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
    );
}

async fn uploads(label: &str, database: &str, dir: Option<&Path>, pg: Option<&str>) {
    let secs = std::env::var("ATMLS_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20u64);
    // Trees go after a second, so that the loop's uploads do not fill the disk.
    let server = start(
        database,
        &[
            "--tree-retention",
            "1",
            "--prune-interval",
            "1",
            "--rate-mailbox",
            "0",
            "--rate-address",
            "0",
        ],
    );
    let pid = server.pid();
    let t = Arc::new(HttpTransport::new(&server.1).expect("transport"));
    let m = Mailbox::from_capability(rand::random());
    support::genesis(&t, &m).await;

    // Small posts alone.
    let stop = Arc::new(AtomicBool::new(false));
    let p = tokio::spawn(poster(Arc::clone(&t), m.clone(), Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    report_posts(label, "posts alone", p.await.expect("poster"));
    let rss0 = vm_mib(pid, "VmRSS");

    // Four uploaders and the poster.
    let trees: Vec<axum::body::Bytes> = (0..UPLOADERS).map(|_| random_bytes(BIG)).collect();
    let http = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let wal_max = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        String,
        u64,
    >::new()));
    let pg_wal0 = pg.and_then(pg_wal_position);
    let started = Instant::now();
    let mut ups = Vec::new();
    for tree in trees {
        let (http, url, stop, ok, failed) = (
            http.clone(),
            server.1.clone(),
            Arc::clone(&stop),
            Arc::clone(&ok),
            Arc::clone(&failed),
        );
        ups.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match put(&http, &url, tree.clone()).await {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let sampler = {
        let (stop, wal_max, dir) = (
            Arc::clone(&stop),
            Arc::clone(&wal_max),
            dir.map(Path::to_path_buf),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(d) = &dir {
                    let mut m = wal_max.lock().expect("lock");
                    for (name, n) in wals(d) {
                        let e = m.entry(name).or_default();
                        *e = (*e).max(n);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Let the uploads get going before measuring the posts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let p = tokio::spawn(poster(Arc::clone(&t), m.clone(), Arc::clone(&stop)));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let lat = p.await.expect("poster");
    for u in ups {
        u.await.expect("uploader");
    }
    sampler.await.expect("sampler");
    let elapsed = started.elapsed().as_secs_f64();
    let n = ok.load(Ordering::Relaxed);
    report_posts(
        label,
        &format!("posts while {UPLOADERS} clients upload 64 MiB trees"),
        lat,
    );
    println!(
        "{label:>10} uploads: {n} stored ({} failed) in {elapsed:.1} s, {:.0} MiB/s; \
         service RSS {rss0:.0} MiB before, peak (VmHWM) {:.0} MiB",
        failed.load(Ordering::Relaxed),
        (n as f64 * BIG as f64) / elapsed / (1 << 20) as f64,
        vm_mib(pid, "VmHWM"),
    );
    if let Some(d) = dir {
        let largest = wal_max.lock().expect("lock").clone();
        let end: std::collections::BTreeMap<String, u64> = wals(d).into_iter().collect();
        for (name, max) in largest {
            println!(
                "{label:>10} write-ahead log {name}: largest seen {:.1} MiB, at the end {:.1} MiB",
                mib(max),
                mib(end.get(&name).copied().unwrap_or(0)),
            );
        }
    }
    if let (Some(a), Some(b)) = (pg_wal0, pg.and_then(pg_wal_position)) {
        println!(
            "{label:>10} PostgreSQL WAL written during the uploads: {:.0} MiB",
            (b.saturating_sub(a)) as f64 / (1 << 20) as f64
        );
    }
}

async fn downloads(label: &str, database: &str) {
    let server = start(database, support::NO_LIMITS);
    let pid = server.pid();
    let http = reqwest::Client::new();
    let locator = hex::encode(rand::random::<[u8; 32]>());
    let url = format!("{}/v1/trees/{locator}", server.1);
    let tree = random_bytes(GET_TREE);
    let r = http.put(&url).body(tree.clone()).send().await.expect("put");
    assert_eq!(r.status().as_u16(), 200);
    let (rss0, hwm0) = (vm_mib(pid, "VmRSS"), vm_mib(pid, "VmHWM"));
    let started = Instant::now();
    let mut gets = Vec::new();
    for _ in 0..GETTERS {
        let (http, url, tree) = (http.clone(), url.clone(), tree.clone());
        gets.push(tokio::spawn(async move {
            let r = http.get(&url).send().await.expect("get");
            assert_eq!(r.status().as_u16(), 200);
            r.bytes().await.expect("body") == tree
        }));
    }
    for g in gets {
        assert!(g.await.expect("get"), "the tree comes back byte for byte");
    }
    println!(
        "{label:>10} downloads: {GETTERS} clients fetch one 32 MiB tree at once in {:.1} s; \
         service RSS {rss0:.0} MiB (peak {hwm0:.0}) after the upload, peak (VmHWM) {:.0} MiB after",
        started.elapsed().as_secs_f64(),
        vm_mib(pid, "VmHWM"),
    );
}

async fn run(label: &str, database: &str, dir: Option<&Path>, pg: Option<&str>) {
    uploads(label, database, dir, pg).await;
}

fn main() {
    // `cargo test --benches` runs benches with `--test`-like flags: keep it quick there.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    support::runtime().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let db: PathBuf = dir.path().join("bench.db");
        run("sqlite", &db.display().to_string(), Some(dir.path()), None).await;
        let dir2 = tempfile::tempdir().expect("tempdir");
        downloads("sqlite", &dir2.path().join("get.db").display().to_string()).await;
        drop((dir, dir2));
        match std::env::var("ATMLS_TEST_DATABASE_URL") {
            Ok(base) => match (pg_database(&base), pg_database(&base)) {
                (Some(a), Some(b)) => {
                    run("postgresql", &a, None, Some(&a)).await;
                    downloads("postgresql", &b).await;
                }
                _ => eprintln!("could not create a PostgreSQL database; skipped"),
            },
            Err(_) => eprintln!("ATMLS_TEST_DATABASE_URL not set: PostgreSQL skipped"),
        }
    });
}
