//! Target of the atmls-ds service (spec/ds.md DS-API-*): an HTTP request, as text, through
//! the service's router over a SQLite store. Paths, headers, queries and bodies are the
//! fuzzer's; the store lives for the process, so inputs also meet the mailboxes and trees
//! earlier ones made.
//!
//! Input: `METHOD TARGET\n` then `name: value\n` lines, a blank line, and the body. Invariant:
//! every request is answered, and every error answer is a JSON [`ErrorBody`] (DS-API-9).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use tokio::sync::{broadcast, watch};
use tower::ServiceExt as _;

use crate::ds::api::ErrorBody;
use crate::ds::server::{router, Limits, Service};
use crate::ds::store::SqliteStore;

struct Harness {
    rt: tokio::runtime::Runtime,
    app: Router,
    // Kept for the process: the store's file, and the shutdown signal (already given, so that
    // long polls and subscriptions answer at once instead of holding the fuzzer).
    _dir: tempfile::TempDir,
    _stop: watch::Sender<bool>,
}

fn limits() -> Limits {
    Limits {
        max_payload: 64 << 10,
        max_commit: 256 << 10,
        rate_mailbox: 0,
        stamp_bits: 0,
        rate_welcome: 0,
        rate_address: 0,
        max_tree: 1 << 20,
        tree_retention: 3600,
        body_timeout: Duration::from_secs(5),
        max_subscriptions: 16,
        max_tree_transfers: 4,
        blob_budget: 4 << 20,
    }
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let store = rt
            .block_on(async { SqliteStore::open(dir.path().join("ds.db")) })
            .unwrap_or_else(|e| panic!("store: {e}"));
        let (hub, _) = broadcast::channel(1024);
        let (stop, stopped) = watch::channel(true);
        let svc = Service::new(Arc::new(store), hub, limits(), stopped);
        Harness {
            rt,
            app: router(Arc::new(svc), 0),
            _dir: dir,
            _stop: stop,
        }
    })
}

/// The request the input describes, if it is one `http` can represent.
fn request(data: &[u8]) -> Option<Request<Body>> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, target) = lines.next()?.split_once(' ')?;
    let mut b = Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        b = b.header(name.trim(), value.trim());
    }
    let mut req = b.body(Body::from(body.to_vec())).ok()?;
    let peer = SocketAddr::from(([127, 0, 0, 1], 40_000));
    req.extensions_mut().insert(ConnectInfo(peer));
    Some(req)
}

/// DS-API-*: one request through the router.
pub(super) fn request_target(data: &[u8]) {
    let Some(req) = request(data) else {
        return;
    };
    let h = harness();
    // A HEAD answer has the headers of a GET answer and never a body (RFC 9110 §9.3.2).
    let head = req.method() == axum::http::Method::HEAD;
    h.rt.block_on(async {
        let Ok(resp) = h.app.clone().oneshot(req).await;
        let status = resp.status();
        let json = resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        // Bounded: with shutdown given, subscriptions end after their first comment.
        let body =
            tokio::time::timeout(Duration::from_secs(5), to_bytes(resp.into_body(), 8 << 20))
                .await
                .unwrap_or_else(|_| panic!("answer to a {status} request never ended"))
                .unwrap_or_else(|e| panic!("answer body: {e}"));
        if !(status.is_client_error() || status.is_server_error()) {
            return;
        }
        if head {
            assert!(body.is_empty(), "{status} to HEAD answered with a body");
            assert!(
                json,
                "{status} to HEAD answered without a JSON error's type"
            );
        } else {
            let e = serde_json::from_slice::<ErrorBody>(&body);
            assert!(
                e.is_ok(),
                "{status} answered without a JSON error: {body:?}"
            );
        }
    });
}
