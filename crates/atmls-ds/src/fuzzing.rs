//! Fuzz targets of the atmls-ds service (feature `fuzzing`, not a stable API), called by
//! `fuzz/` and replayed by atmls's `tests/fuzz_corpus.rs` like atmls's own (`atmls::fuzzing`).
//!
//! `ds_request`: the service (spec/ds.md DS-API-*): an HTTP request, as text, through
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

use atmls_ds_wire::api::ErrorBody;
use atmls_ds_wire::MailboxId;

use crate::server::{router, Limits, Service};
use crate::store::SqliteStore;

/// A fuzz target: bytes in, panic only on a broken invariant.
pub type Target = fn(&[u8]);

/// Every target of the service, by the name of its directory in `fuzz/corpus/` and of its
/// binary in `fuzz/`.
pub const TARGETS: &[(&str, Target)] = &[("ds_request", request_target)];

/// Runs the target `name` on `data` (what each libFuzzer target does). An unknown name is a
/// bug of the fuzz crate, not an input: it panics.
pub fn run(name: &str, data: &[u8]) {
    match TARGETS.iter().find(|(n, _)| *n == name) {
        Some((_, t)) => t(data),
        None => panic!("no fuzz target {name}"),
    }
}

/// Every target's seeds, by target name.
pub fn seeds() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    vec![("ds_request", request_seeds())]
}

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
fn request_target(data: &[u8]) {
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

/// Requests as the client transport sends them (spec/ds.md DS-API-*), and a few it never does.
fn request_seeds() -> Vec<Vec<u8>> {
    let cap = [4u8; 32];
    let mailbox = hex::encode(MailboxId::for_capability(&cap).0);
    let group_post = |what: &str, idem: u8, body: &str| {
        format!(
            "POST /v1/mailboxes/{mailbox}/{what}\nidempotency-key: {}\natmls-epoch: {}\n\
             atmls-after: {}\nauthorization: Bearer {}\n\n{body}",
            hex::encode([idem; 16]),
            hex::encode([5u8; 32]),
            idem - 1,
            hex::encode(cap),
        )
    };
    let welcome = format!(
        "POST /v1/mailboxes/{}/welcomes\nidempotency-key: {}\n\nwelcome",
        hex::encode([6u8; 32]),
        hex::encode([3u8; 16])
    );
    let tree = hex::encode([7u8; 32]);
    let subscribe = format!("{{\"mailboxes\":[\"{mailbox}\"]}}");
    [
        group_post("commits", 1, "commit"),
        group_post("messages", 2, "message"),
        welcome,
        format!("GET /v1/mailboxes/{mailbox}/items?after=0&limit=10&wait_ms=100"),
        format!("PUT /v1/trees/{tree}\ncontent-type: application/octet-stream\n\ntree"),
        format!("GET /v1/trees/{tree}"),
        format!("POST /v1/subscribe\ncontent-type: application/json\n\n{subscribe}"),
        "GET /health".into(),
        "DELETE /v1/nothing".into(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}
