//! The accept loop (spec/ds.md DS-15): at most `max_connections` connections are served at
//! once (the next waits in the kernel's backlog until one closes), a connection that does not
//! finish sending a request's headers within `header_timeout` is closed, and on shutdown the
//! loop stops accepting and lets the connections in flight finish. With TLS (DS-16) each
//! connection's handshake runs in its own task, holding its connection slot, and must end
//! within `header_timeout` too.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// How connections are bounded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    /// Connections served at once (0: unbounded).
    pub max_connections: usize,
    /// Time to receive a request's headers (also bounds an idle keep-alive connection, and a
    /// TLS handshake).
    pub header_timeout: Duration,
}

/// How long shutdown waits for connections in flight (subscriptions and long polls end on
/// their own when shutdown is signalled).
const DRAIN: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `stop` resolves; over TLS with `tls`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(match limits.max_connections {
        0 => Semaphore::MAX_PERMITS,
        n => n,
    }));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let svc = app
            .clone()
            .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                req
            });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        let svc = TowerToHyperService::new(svc);
        match &tls {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let (acceptor, watcher) = (acceptor.clone(), graceful.watcher());
                let handshake_timeout = limits.header_timeout;
                tokio::spawn(async move {
                    // A client that stalls its handshake holds its slot this long at most.
                    let stream = match tokio::time::timeout(
                        handshake_timeout,
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = watcher.watch(http.serve_connection(TokioIo::new(stream), svc));
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; exiting");
    }
}
