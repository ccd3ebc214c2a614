//! Configuration by flags and environment (DS-13), and the process lifecycle: open the store,
//! serve, prune on a timer, shut down gracefully on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::listen::{serve, ConnLimits};
use super::server::{metrics_router, router, Limits, Service};
use super::store::{SqliteStore, Store};

/// atmls-ds: the atmls delivery service.
///
/// ```
/// use atmls_ds::Config;
/// use clap::Parser as _;
/// let cfg = Config::parse_from(["atmls-ds", "--listen", "127.0.0.1:0", "--stamp-bits", "12"]);
/// assert_eq!(cfg.stamp_bits, 12);
/// assert_eq!(cfg.max_payload, atmls_ds_wire::MAX_PAYLOAD);
/// assert_eq!(cfg.database, "atmls-ds.db");
/// // More work than a client pays for is refused, and so is a certificate without its key.
/// assert!(Config::try_parse_from(["atmls-ds", "--stamp-bits", "29"]).is_err());
/// assert!(Config::try_parse_from(["atmls-ds", "--tls-cert", "cert.pem"]).is_err());
/// ```
#[derive(clap::Parser, Debug, Clone)]
#[command(name = "atmls-ds", version, about)]
pub struct Config {
    /// Address to listen on (port 0: any free port; the bound address is printed on stdout).
    #[arg(long, env = "ATMLS_DS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Storage: a SQLite file path (or `sqlite:PATH`), or a `postgres://` URL.
    #[arg(long, env = "ATMLS_DS_DATABASE", default_value = "atmls-ds.db")]
    pub database: String,
    /// Largest application message or Welcome in bytes.
    #[arg(long, env = "ATMLS_DS_MAX_PAYLOAD", default_value_t = atmls_ds_wire::MAX_PAYLOAD)]
    pub max_payload: usize,
    /// Largest commit in bytes (update paths grow with the group, LG-13).
    #[arg(long, env = "ATMLS_DS_MAX_COMMIT", default_value_t = atmls_ds_wire::MAX_COMMIT_PAYLOAD)]
    pub max_commit: usize,
    /// Largest ratchet-tree blob in bytes (LG-T-3).
    #[arg(long, env = "ATMLS_DS_MAX_TREE", default_value_t = atmls_ds_wire::MAX_TREE_BLOB)]
    pub max_tree: usize,
    /// Seconds a ratchet-tree blob is kept (LG-T-4).
    #[arg(long, env = "ATMLS_DS_TREE_RETENTION", default_value_t = atmls_ds_wire::TREE_TTL_SECS)]
    pub tree_retention: u64,
    /// Posts per second per group mailbox and epoch tag (bursts of twice that); 0 disables.
    #[arg(long, env = "ATMLS_DS_RATE_MAILBOX", default_value_t = 50)]
    pub rate_mailbox: u32,
    /// Proof-of-work bits a post to a Welcome mailbox carries at least (DS-17), at most 28.
    #[arg(long, env = "ATMLS_DS_STAMP_BITS", default_value_t = 8,
          value_parser = clap::value_parser!(u8).range(0..=28))]
    pub stamp_bits: u8,
    /// Posts per second to one Welcome mailbox above which its price rises by a bit per
    /// doubling (DS-17); 0: never rises.
    #[arg(long, env = "ATMLS_DS_RATE_WELCOME", default_value_t = 10)]
    pub rate_welcome: u32,
    /// Requests per second per client address (bursts of twice that); 0 disables.
    #[arg(long, env = "ATMLS_DS_RATE_ADDRESS", default_value_t = 500)]
    pub rate_address: u32,
    /// Seconds application messages and Welcomes are kept.
    #[arg(long, env = "ATMLS_DS_MESSAGE_RETENTION", default_value_t = 30 * 24 * 3600)]
    pub message_retention: u64,
    /// Seconds after its last post a whole mailbox (commits included) is deleted.
    #[arg(long, env = "ATMLS_DS_MAILBOX_IDLE", default_value_t = 400 * 24 * 3600)]
    pub mailbox_idle: u64,
    /// Seconds between pruning runs.
    #[arg(long, env = "ATMLS_DS_PRUNE_INTERVAL", default_value_t = 3600)]
    pub prune_interval: u64,
    /// Connections served at once; more wait in the kernel's backlog (DS-15). 0 disables.
    #[arg(long, env = "ATMLS_DS_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Requests worked on at once (long polls and subscriptions aside); more are answered
    /// `503 busy` (DS-15). 0 disables.
    #[arg(long, env = "ATMLS_DS_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Subscriptions open at once; more are answered `503 busy` (DS-15). 0 disables.
    #[arg(long, env = "ATMLS_DS_MAX_SUBSCRIPTIONS", default_value_t = 10_000)]
    pub max_subscriptions: usize,
    /// Tree uploads and downloads at once; more wait for a turn, up to the body timeout, then
    /// are answered `503 busy` (DS-15). 0 disables.
    #[arg(long, env = "ATMLS_DS_MAX_TREE_TRANSFERS", default_value_t = 4)]
    pub max_tree_transfers: usize,
    /// Bytes of attachment blobs (padded sizes, uploads in progress included) one group
    /// mailbox may hold; more is answered `413 over_budget` (CONTENT-25h).
    #[arg(long, env = "ATMLS_DS_BLOB_BUDGET", default_value_t = atmls_ds_wire::blob_api::BLOB_BUDGET)]
    pub blob_budget: u64,
    /// Seconds to receive a request's headers; a slower connection is closed (DS-15).
    #[arg(long, env = "ATMLS_DS_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds to receive a request's body; slower is `408 request_timeout` (DS-15).
    #[arg(long, env = "ATMLS_DS_BODY_TIMEOUT", default_value_t = 60)]
    pub body_timeout: u64,
    /// Serve TLS (DS-16) with this certificate chain (PEM: the server's certificate first, then
    /// any intermediates); needs `--tls-key`.
    #[arg(long, env = "ATMLS_DS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1); needs `--tls-cert`.
    #[arg(long, env = "ATMLS_DS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Address to serve `/metrics` on (DS-12); without it metrics are not served.
    #[arg(long, env = "ATMLS_DS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "ATMLS_DS_LOG", default_value = "info")]
    pub log: String,
}

async fn open_store(
    cfg: &Config,
    hub: &broadcast::Sender<super::store::Note>,
) -> Result<Arc<dyn Store>, Box<dyn std::error::Error + Send + Sync>> {
    let db = cfg.database.as_str();
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let s = super::store::PgStore::connect(db, hub.clone()).await?;
            tracing::info!("storage: postgresql");
            return Ok(Arc::new(s));
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = hub;
            return Err("this atmls-ds was built without the postgres feature".into());
        }
    }
    let path = db.strip_prefix("sqlite:").unwrap_or(db);
    let s = SqliteStore::open(path)?;
    tracing::info!("storage: sqlite");
    Ok(Arc::new(s))
}

/// The TLS acceptor of `--tls-cert` and `--tls-key` (DS-16): rustls on the ring provider,
/// TLS 1.2 and 1.3, HTTP/1.1 only.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no CERTIFICATE in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("--tls-key {}: {e}", key.display()))?;
    // ring, like the client (reqwest's rustls): aws-lc-rs, rustls's provider with post-quantum
    // key exchange, needs cmake and clang to build. rustls 0.23.48 deprecates the ring provider
    // for that lack (no X25519MLKEM768); TLS 1.3 with X25519 and P-256 stays.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("--tls-cert and --tls-key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Runs the service until SIGTERM or SIGINT.
///
/// ```no_run
/// use atmls_ds::Config;
/// use clap::Parser as _;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// // What the `atmls-ds` binary does: flags and environment, then serve until SIGTERM.
/// let cfg = Config::parse_from(["atmls-ds", "--listen", "0.0.0.0:8080", "--database", "/var/lib/atmls-ds/ds.db"]);
/// atmls_ds::run(cfg).await?;
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// # }).unwrap();
/// ```
pub async fn run(cfg: Config) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    run_on(cfg, listener, signal()).await
}

/// Runs the service on a bound `listener` (its `listen` address is not used) until `shutdown`
/// completes, then finishes the requests in flight: for an app or a test that embeds the
/// service in its own process.
///
/// ```
/// use atmls_ds::{run_on, Config};
/// use clap::Parser as _;
/// use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("ds.db").to_string_lossy().into_owned();
/// let cfg = Config::parse_from(["atmls-ds", "--database", db.as_str()]);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let service = tokio::spawn(run_on(cfg, listener, async {
///     let _ = stopped.await;
/// }));
/// let mut conn = tokio::net::TcpStream::connect(addr).await?;
/// conn.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
///     .await?;
/// let mut answer = String::new();
/// conn.read_to_string(&mut answer).await?;
/// assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
/// assert!(answer.ends_with("ok\n"), "{answer}");
/// // Stop it: it finishes the requests in flight and returns.
/// let _ = stop.send(());
/// service.await??;
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// # }).unwrap();
/// ```
pub async fn run_on(
    cfg: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Read the certificate before anything else, so a bad one stops the start-up at once.
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let (hub, _) = broadcast::channel(8192);
    let store = open_store(&cfg, &hub).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let svc = Arc::new(Service::new(
        Arc::clone(&store),
        hub,
        Limits {
            max_payload: cfg.max_payload,
            max_commit: cfg.max_commit,
            rate_mailbox: cfg.rate_mailbox,
            stamp_bits: cfg.stamp_bits,
            rate_welcome: cfg.rate_welcome,
            rate_address: cfg.rate_address,
            max_tree: cfg.max_tree,
            tree_retention: cfg.tree_retention,
            body_timeout: Duration::from_secs(cfg.body_timeout.max(1)),
            max_subscriptions: cfg.max_subscriptions,
            max_tree_transfers: cfg.max_tree_transfers,
            blob_budget: cfg.blob_budget,
        },
        stop_rx,
    ));
    let addr = listener.local_addr()?;
    // The first line on stdout: scripts and tests read the bound address from it.
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("atmls-ds listening on {scheme}://{addr}");
    tracing::info!(%addr, tls = tls.is_some(), "listening");
    let metrics = match cfg.metrics_listen {
        Some(at) => {
            let l = tokio::net::TcpListener::bind(at).await?;
            println!("atmls-ds metrics on http://{}", l.local_addr()?);
            let app = metrics_router(Arc::clone(&svc));
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(l, app).await {
                    tracing::warn!(error = %e, "metrics listener failed");
                }
            }))
        }
        None => None,
    };

    let pruner = {
        let (store, svc) = (Arc::clone(&store), Arc::clone(&svc));
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(cfg.prune_interval.max(1)));
            loop {
                tick.tick().await;
                let now = super::store::unix_now();
                let secs = |s: u64| now.saturating_sub(i64::try_from(s).unwrap_or(i64::MAX));
                match store
                    .prune(secs(cfg.message_retention), secs(cfg.mailbox_idle))
                    .await
                {
                    Ok(n) => {
                        svc.metrics.pruned(n);
                        tracing::info!(items = n, "pruned expired items");
                    }
                    Err(e) => tracing::warn!(error = %e, "pruning failed"),
                }
                match store.prune_trees(now).await {
                    Ok(n) => {
                        svc.metrics.pruned(n);
                        tracing::info!(trees = n, "pruned expired trees");
                    }
                    Err(e) => tracing::warn!(error = %e, "pruning trees failed"),
                }
            }
        })
    };

    let app = router(svc, cfg.max_in_flight);
    let limits = ConnLimits {
        max_connections: cfg.max_connections,
        header_timeout: Duration::from_secs(cfg.header_timeout.max(1)),
    };
    serve(listener, app, limits, tls, async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
    })
    .await;
    pruner.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    tracing::info!("stopped");
    Ok(())
}
