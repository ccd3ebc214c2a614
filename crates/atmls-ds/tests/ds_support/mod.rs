//! Shared set-up of the atmls-ds tests: the real `atmls-ds` binary on loopback, over SQLite or
//! a PostgreSQL started by scripts/postgres.sh (URL in `ATMLS_TEST_DATABASE_URL`).
#![allow(dead_code)]

pub mod raw;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use atmls::directory::MemoryDirectory;
use atmls::identity::{unix_now, DeviceIdentity, IdentityKeyPair, InstallationKeyPair};
use atmls::storage::Store;
use atmls::transport::HttpTransport;
use atmls::Client;

use crate::common::did;

/// Env var naming the PostgreSQL server for tests (a URL of a database we may create
/// databases from, e.g. `postgres://atmls@127.0.0.1:25432/postgres`).
pub const PG_ENV: &str = "ATMLS_TEST_DATABASE_URL";

/// A storage backend under test.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file in a temp dir.
    Sqlite(PathBuf),
    /// A fresh PostgreSQL database.
    Postgres(String),
}

impl Backend {
    pub fn database_arg(&self) -> String {
        match self {
            Backend::Sqlite(p) => p.display().to_string(),
            Backend::Postgres(u) => u.clone(),
        }
    }

    /// Every byte the backend holds, for blindness checks: the raw SQLite files (database and
    /// WAL), or a full `pg_dump`.
    pub fn dump(&self) -> Vec<u8> {
        match self {
            Backend::Sqlite(p) => {
                let mut out = Vec::new();
                // The mailboxes' file, and the trees' and the attachment blobs' beside it
                // (`ds.trees.db`, DS-11; `ds.blobs.db`, spec/content.md CONTENT-25h).
                for db in [
                    p.clone(),
                    p.with_extension("trees.db"),
                    p.with_extension("blobs.db"),
                ] {
                    for suffix in ["", "-wal"] {
                        let f = PathBuf::from(format!("{}{suffix}", db.display()));
                        if let Ok(b) = std::fs::read(&f) {
                            out.extend(b);
                        }
                    }
                }
                assert!(!out.is_empty(), "empty SQLite dump");
                out
            }
            Backend::Postgres(u) => {
                let out = Command::new(pg_bin("pg_dump"))
                    .arg("--inserts")
                    .arg(u)
                    .output()
                    .expect("pg_dump");
                assert!(out.status.success(), "pg_dump failed: {out:?}");
                out.stdout
            }
        }
    }
}

fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin").join(name))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| PathBuf::from(name))
}

/// The PostgreSQL server URL, if the test command started one. Under CI a missing one is a
/// failure, not a skip.
pub fn pg_url() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{PG_ENV} is not set under CI: run the tests through scripts/test.sh");
            }
            eprintln!("{PG_ENV} not set: skipping the PostgreSQL part (scripts/test.sh sets it)");
            None
        }
    }
}

/// A fresh PostgreSQL database on the test server.
pub fn pg_fresh() -> Option<Backend> {
    let base = pg_url()?;
    let name = format!("atmls_t_{}", hex::encode(rand::random::<[u8; 6]>()));
    let out = Command::new("psql")
        .arg(&base)
        .arg("-qc")
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql");
    assert!(out.status.success(), "create database: {out:?}");
    let (prefix, _) = base.rsplit_once('/').expect("database URL with a path");
    Some(Backend::Postgres(format!("{prefix}/{name}")))
}

/// A fresh SQLite backend in `dir`.
pub fn sqlite_in(dir: &tempfile::TempDir) -> Backend {
    Backend::Sqlite(dir.path().join("ds.db"))
}

/// A running `atmls-ds`.
pub struct Ds {
    pub child: Child,
    pub url: String,
    pub addr: String,
    /// Where `/metrics` is served (its own listen address, DS-12).
    pub metrics_url: String,
    pub log: PathBuf,
}

/// Flags that turn off rate limits (tests of limits set their own).
pub const NO_LIMITS: &[&str] = &["--rate-mailbox", "0", "--rate-address", "0"];

impl Ds {
    /// Starts the binary on `listen` (use `127.0.0.1:0` for any port), logging at debug level
    /// into `log`.
    pub fn start(backend: &Backend, listen: &str, log: PathBuf, extra: &[&str]) -> Ds {
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_atmls-ds"))
            .args(["--listen", listen, "--database", &backend.database_arg()])
            .args(["--log", "debug", "--metrics-listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(logf)
            .spawn()
            .expect("spawn atmls-ds");
        let stdout = child.stdout.take().expect("stdout");
        let mut out = BufReader::new(stdout);
        let mut read = |prefix: &str| {
            let mut line = String::new();
            out.read_line(&mut line).expect("read address");
            line.trim()
                .strip_prefix(prefix)
                .unwrap_or_else(|| {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let tail: String = text.chars().rev().take(2000).collect::<String>();
                    let tail: String = tail.chars().rev().collect();
                    panic!("atmls-ds did not start: {line:?}, log {log:?}:\n{tail}")
                })
                .to_owned()
        };
        let url = read("atmls-ds listening on ");
        let metrics_url = read("atmls-ds metrics on ");
        // `https://` when the service was started with --tls-cert (DS-16).
        let addr = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(&url)
            .to_owned();
        Ds {
            child,
            url,
            addr,
            metrics_url,
            log,
        }
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!("atmls-ds did not stop on SIGTERM");
    }

    pub fn transport(&self) -> Arc<HttpTransport> {
        Arc::new(HttpTransport::new(&self.url).expect("transport"))
    }
}

impl Drop for Ds {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Accounts and devices on one in-memory directory, each device on a chosen DS.
pub struct DsWorld {
    pub dir: Arc<MemoryDirectory>,
}

impl DsWorld {
    pub fn new() -> Self {
        DsWorld {
            dir: Arc::new(MemoryDirectory::new()),
        }
    }

    pub async fn client(&self, ds: &str, identity: DeviceIdentity) -> Client {
        Client::builder(
            self.dir.clone(),
            Arc::new(HttpTransport::new(ds).expect("transport")),
            Store::in_memory().expect("store"),
        )
        .identity(identity)
        // Accounts of a test world know each other (message requests: tests/consent.rs).
        .message_requests(false)
        .build()
        .await
        .expect("client")
    }

    pub async fn account(&self, ds: &str, name: &str) -> (Client, IdentityKeyPair) {
        let dev = DeviceIdentity::new_account(did(name));
        let key = IdentityKeyPair::from_secret_bytes(
            &dev.identity_key.as_ref().expect("key").secret_bytes()[..],
        )
        .expect("key");
        (self.client(ds, dev).await, key)
    }

    pub async fn device(&self, ds: &str, name: &str, key: &IdentityKeyPair) -> Client {
        let inst = InstallationKeyPair::generate();
        let now = unix_now();
        let cert = key.certify(&did(name), &inst.public(), now, now + 86_400);
        self.client(ds, DeviceIdentity::linked(inst, cert).expect("linked"))
            .await
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
