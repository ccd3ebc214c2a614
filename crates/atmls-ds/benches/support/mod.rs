//! What the atmls-ds load generators share: starting the real binary on loopback, a fresh
//! PostgreSQL database, percentiles, and CPU and memory figures from /proc (Linux).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Flags that turn the rate limits off.
pub const NO_LIMITS: &[&str] = &["--rate-mailbox", "0", "--rate-address", "0"];

/// A running atmls-ds and its base URL; killed when dropped.
pub struct Server(pub Child, pub String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// Starts atmls-ds on `database` with the flags `extra` and those in `ATMLS_BENCH_DS_ARGS`.
pub fn start(database: &str, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atmls-ds"))
        .args(["--listen", "127.0.0.1:0", "--database", database])
        .args(["--log", "warn"])
        .args(extra)
        .args(
            std::env::var("ATMLS_BENCH_DS_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn atmls-ds");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address");
    let url = line
        .trim()
        .strip_prefix("atmls-ds listening on ")
        .expect("atmls-ds did not start")
        .to_owned();
    Server(child, url)
}

/// A fresh database on the server of `base` (a PostgreSQL URL); its URL.
pub fn pg_database(base: &str) -> Option<String> {
    let name = format!("atmls_bench_{}", hex::encode(rand::random::<[u8; 4]>()));
    let ok = Command::new("psql")
        .arg(base)
        .arg("-qc")
        .arg(format!("CREATE DATABASE {name}"))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let (prefix, _) = base.rsplit_once('/')?;
    ok.then(|| format!("{prefix}/{name}"))
}

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// User + system CPU seconds of a process, from /proc (Linux).
pub fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (get(11) + get(12)) / tick
}

/// Sockets open in process `pid` (connections, and its listeners).
pub fn sockets(pid: &str) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// CPU seconds of every `postgres` process (the database's share of the work).
pub fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim() == "postgres")
                .unwrap_or(false)
        })
        .map(|pid| cpu_secs(&pid))
        .sum()
}

/// A `/proc/<pid>/status` field in MiB (VmHWM: peak RSS; VmRSS: current).
pub fn vm_mib(pid: u32, field: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Runs `run` on SQLite (in a temporary directory) and, when `ATMLS_TEST_DATABASE_URL` names a
/// server, on a fresh PostgreSQL database.
pub fn on_both<F, Fut>(run: F)
where
    F: Fn(&'static str, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        run("sqlite", dir.path().join("bench.db").display().to_string()).await;
        match std::env::var("ATMLS_TEST_DATABASE_URL") {
            Ok(base) => match pg_database(&base) {
                Some(db) => run("postgresql", db).await,
                None => eprintln!("could not create a PostgreSQL database; skipped"),
            },
            Err(_) => eprintln!("ATMLS_TEST_DATABASE_URL not set: PostgreSQL skipped"),
        }
    });
}

/// The load generators' runtime: two worker threads, like the machine they are measured on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Starts the group mailbox `m` with a commit under the all-zero tag (a group mailbox starts
/// with a commit, DS-API).
pub async fn genesis(t: &atmls::transport::HttpTransport, m: &atmls::transport::Mailbox) {
    use atmls::transport::{EpochTag, IdempotencyKey, Transport as _};
    t.submit_commit(
        m,
        &EpochTag([0; 32]),
        0,
        b"genesis",
        &IdempotencyKey::random(),
    )
    .await
    .expect("genesis commit");
}
