//! Configuration by flags and environment (DS-13), and the process lifecycle: open the store,
//! serve, prune on a timer, shut down gracefully on SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::listen::{serve, ConnLimits};
use super::server::{metrics_router, router, Limits, Service};
use super::store::{SqliteStore, Store};

/// atmls-ds: the atmls delivery service.
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
    #[arg(long, env = "ATMLS_DS_MAX_PAYLOAD", default_value_t = crate::transport::MAX_PAYLOAD)]
    pub max_payload: usize,
    /// Largest commit in bytes (update paths grow with the group, LG-13).
    #[arg(long, env = "ATMLS_DS_MAX_COMMIT", default_value_t = crate::transport::MAX_COMMIT_PAYLOAD)]
    pub max_commit: usize,
    /// Largest ratchet-tree blob in bytes (LG-T-3).
    #[arg(long, env = "ATMLS_DS_MAX_TREE", default_value_t = crate::transport::MAX_TREE_BLOB)]
    pub max_tree: usize,
    /// Seconds a ratchet-tree blob is kept (LG-T-4).
    #[arg(long, env = "ATMLS_DS_TREE_RETENTION", default_value_t = crate::transport::TREE_TTL_SECS)]
    pub tree_retention: u64,
    /// Posts per second per mailbox (bursts of twice that); 0 disables.
    #[arg(long, env = "ATMLS_DS_RATE_MAILBOX", default_value_t = 50)]
    pub rate_mailbox: u32,
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
    #[arg(long, env = "ATMLS_DS_MAX_TREE_TRANSFERS", default_value_t = 8)]
    pub max_tree_transfers: usize,
    /// Seconds to receive a request's headers; a slower connection is closed (DS-15).
    #[arg(long, env = "ATMLS_DS_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds to receive a request's body; slower is `408 request_timeout` (DS-15).
    #[arg(long, env = "ATMLS_DS_BODY_TIMEOUT", default_value_t = 60)]
    pub body_timeout: u64,
    /// Address to serve `/metrics` on (DS-12); without it metrics are not served.
    #[arg(long, env = "ATMLS_DS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "ATMLS_DS_LOG", default_value = "info")]
    pub log: String,
}

async fn open_store(
    cfg: &Config,
    hub: &broadcast::Sender<[u8; 32]>,
) -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> {
    let db = cfg.database.as_str();
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        #[cfg(feature = "ds-postgres")]
        {
            let s = super::store::PgStore::connect(db, hub.clone()).await?;
            tracing::info!("storage: postgresql");
            return Ok(Arc::new(s));
        }
        #[cfg(not(feature = "ds-postgres"))]
        {
            let _ = hub;
            return Err("this atmls-ds was built without the ds-postgres feature".into());
        }
    }
    let path = db.strip_prefix("sqlite:").unwrap_or(db);
    let s = SqliteStore::open(path)?;
    tracing::info!("storage: sqlite");
    Ok(Arc::new(s))
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
pub async fn run(cfg: Config) -> Result<(), Box<dyn std::error::Error>> {
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
            rate_address: cfg.rate_address,
            max_tree: cfg.max_tree,
            tree_retention: cfg.tree_retention,
            body_timeout: Duration::from_secs(cfg.body_timeout.max(1)),
            max_subscriptions: cfg.max_subscriptions,
            max_tree_transfers: cfg.max_tree_transfers,
        },
        stop_rx,
    ));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    // The first line on stdout: scripts and tests read the bound address from it.
    println!("atmls-ds listening on http://{addr}");
    tracing::info!(%addr, "listening");
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
    serve(listener, app, limits, async move {
        signal().await;
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
