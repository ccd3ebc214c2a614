//! The client transport's protection (spec/transport.md TRANSPORT-8) and atmls-ds serving TLS
//! (spec/ds.md DS-16), on the real binary over loopback and on fake services: two clients chat
//! over https with a test root; a client without that root fails with a TLS error; plain http
//! to a remote host is refused before anything is sent; a service that never answers makes a
//! request time out; oversized answers, and pages with more items than asked for, are refused.
//!
//! Only loopback addresses are ever contacted: 192.0.2.1 (TEST-NET-1) appears in URLs that
//! the transport refuses, or accepts without being asked to send anything.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use std::future::Future;
use std::io::Read as _;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls::directory::MemoryDirectory;
use atmls::identity::DeviceIdentity;
use atmls::storage::Store;
use atmls::transport::*;
use atmls::Client;
use common::{did, joined, texts};
use ds_support::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// How long any one step may take before the test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(60);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer in {PATIENCE:?} (hung)"))
}

/// A test certificate authority and a certificate it issued for 127.0.0.1 and localhost,
/// written as PEM files.
struct TestPki {
    dir: tempfile::TempDir,
    root_pem: Vec<u8>,
}

impl TestPki {
    fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "atmls test root");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "atmls-ds test");
        let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        TestPki {
            dir,
            root_pem: ca.pem().into_bytes(),
        }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// A transport to `url` that trusts the test root.
    fn transport(&self, url: &str) -> Arc<HttpTransport> {
        Arc::new(
            HttpTransport::builder(url)
                .add_root_certificate_pem(&self.root_pem)
                .build()
                .expect("transport"),
        )
    }
}

/// atmls-ds over TLS with the test certificate, on SQLite, without rate limits.
fn start_tls(pki: &TestPki, extra: &[&str]) -> (Ds, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (pki.cert(), pki.key());
    let mut args = NO_LIMITS.to_vec();
    args.extend_from_slice(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    let ds = Ds::start(
        &sqlite_in(&dir),
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        &args,
    );
    (ds, dir)
}

async fn client(dir: &Arc<MemoryDirectory>, t: Arc<HttpTransport>, name: &str) -> Client {
    Client::builder(dir.clone(), t, Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did(name)))
        // Accounts of a test world know each other (message requests: tests/consent.rs).
        .message_requests(false)
        .build()
        .await
        .expect("client")
}

/// DS-16, TRANSPORT-8: atmls-ds serves https with --tls-cert and --tls-key (the first line
/// of its stdout says `https://`), and two clients that trust the test root chat through it:
/// a DM both ways, and a subscription over TLS hears of a new item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_16_two_clients_chat_over_https_with_the_test_root() {
    let pki = TestPki::new();
    let (ds, _d) = start_tls(&pki, &[]);
    assert!(ds.url.starts_with("https://127.0.0.1:"), "{}", ds.url);
    let dir = Arc::new(MemoryDirectory::new());
    let alice = client(&dir, pki.transport(&ds.url), "alice").await;
    let bob_transport = pki.transport(&ds.url);
    let bob = client(&dir, bob_transport.clone(), "bob").await;

    let dm = bounded("dm", alice.dm(bob.did())).await.unwrap();
    let ev = bounded("bob joins", bob.sync()).await.unwrap();
    assert_eq!(joined(&ev), vec![dm.clone()]);

    let mailbox = atmls::group::mailbox_for(dm.as_bytes()).id;
    let mut sub = bounded("subscribe", bob_transport.subscribe(&[mailbox]))
        .await
        .unwrap();
    bounded(
        "alice sends",
        alice.conversation(&dm).send_text("hello over tls"),
    )
    .await
    .unwrap();
    assert_eq!(bounded("notification", sub.next()).await, Some(mailbox));
    let ev = bounded("bob reads", bob.sync()).await.unwrap();
    assert_eq!(texts(&ev), vec!["hello over tls"]);

    bounded("bob answers", bob.conversation(&dm).send_text("and back"))
        .await
        .unwrap();
    let ev = bounded("alice reads", alice.sync()).await.unwrap();
    assert_eq!(texts(&ev), vec!["and back"]);
}

/// TRANSPORT-8: a client that does not trust the service's root fails with a TLS error, at
/// once (not retried), whatever it asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_8_a_client_without_the_root_fails_with_a_tls_error() {
    let pki = TestPki::new();
    let (ds, _d) = start_tls(&pki, &[]);
    let t = HttpTransport::new(&ds.url).unwrap();
    let mb = Mailbox::from_capability(rand::random());
    let e = bounded("fetch", t.fetch(&mb.id, 0, 10)).await.unwrap_err();
    assert!(matches!(e, TransportError::Tls(_)), "{e:?}");
    assert!(!e.is_retryable());
    let e = bounded(
        "commit",
        t.submit_commit(&mb, &EpochTag([1; 32]), 0, b"x", &IdempotencyKey::random()),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, TransportError::Tls(_)), "{e:?}");
    let e = bounded("subscribe", t.subscribe(&[mb.id]))
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Tls(_)), "{e:?}");
    // Another root is no better.
    let other = TestPki::new();
    let e = bounded("fetch", other.transport(&ds.url).fetch(&mb.id, 0, 10))
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Tls(_)), "{e:?}");
    // Nothing was stored by the refused commit: the right client reads an empty mailbox.
    let page = bounded("fetch", pki.transport(&ds.url).fetch(&mb.id, 0, 10))
        .await
        .unwrap();
    assert!(page.items.is_empty());
}

/// DS-16: a client that opens a connection and never finishes its TLS handshake is cut off
/// after the header timeout; others are served meanwhile and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_16_stalled_tls_handshake_is_cut_off() {
    let pki = TestPki::new();
    let (ds, _d) = start_tls(&pki, &["--header-timeout", "1"]);
    let addr = ds.addr.clone();
    let stalled = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // Half a ClientHello's record header, then silence.
        std::io::Write::write_all(&mut s, &[0x16, 0x03, 0x01]).unwrap();
        let mut out = Vec::new();
        let closed = s.read_to_end(&mut out).is_ok();
        (closed, t.elapsed())
    });
    let mb = Mailbox::from_capability(rand::random());
    let t = pki.transport(&ds.url);
    bounded("fetch", t.fetch(&mb.id, 0, 10)).await.unwrap();
    let (closed, took) = stalled.await.unwrap();
    assert!(closed, "the stalled handshake was never cut off");
    assert!(took < Duration::from_secs(30), "{took:?}");
    bounded("fetch", t.fetch(&mb.id, 0, 10)).await.unwrap();
}

/// TRANSPORT-8: plain http to a host that is not loopback is refused when the transport is
/// built, before any request, unless explicitly allowed; loopback http and any https are
/// accepted. (192.0.2.1 is never contacted: nothing is asked of these transports.)
#[test]
fn transport_8_plain_http_to_a_remote_host_is_refused_unless_allowed() {
    assert_eq!(
        HttpTransport::new("http://192.0.2.1:1").unwrap_err(),
        TransportError::PlainHttpToRemoteHost("192.0.2.1".into())
    );
    assert!(matches!(
        HttpTransport::builder("http://192.0.2.1:1")
            .add_root_certificate_pem(&TestPki::new().root_pem)
            .build(),
        Err(TransportError::PlainHttpToRemoteHost(_))
    ));
    let allowed = HttpTransport::builder("http://192.0.2.1:1")
        .allow_plain_http_to_remote_hosts(true)
        .build()
        .unwrap();
    assert_eq!(allowed.base_url(), "http://192.0.2.1:1");
    HttpTransport::new("https://192.0.2.1:1").unwrap();
    HttpTransport::new("http://127.0.0.1:1").unwrap();
    HttpTransport::new("http://localhost:1").unwrap();
    HttpTransport::new("http://[::1]:1").unwrap();
}

/// A service on loopback that accepts connections, reads what is sent and never answers.
async fn silent_service() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn short_timeouts(url: &str) -> HttpTransport {
    HttpTransport::builder(url)
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_millis(500))
        .tree_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

fn assert_timeout<T: std::fmt::Debug>(what: &str, r: Result<T, TransportError>) {
    let e = r.expect_err(what);
    assert!(matches!(e, TransportError::Timeout(_)), "{what}: {e:?}");
    assert!(e.is_retryable(), "{what}");
}

/// TRANSPORT-8: a service that takes the connection and never answers makes every request
/// fail with the retryable `Timeout` (not retried by the transport itself), over http and
/// over https (a handshake never answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_8_a_silent_service_times_out() {
    let addr = silent_service().await;
    let mb = Mailbox::from_capability(rand::random());
    for url in [format!("http://{addr}"), format!("https://{addr}")] {
        let t = short_timeouts(&url);
        assert_timeout("fetch", bounded("fetch", t.fetch(&mb.id, 0, 10)).await);
        assert_timeout(
            "message",
            bounded(
                "message",
                t.send_message(&mb, &EpochTag([2; 32]), 0, b"x", &IdempotencyKey::random()),
            )
            .await,
        );
        assert_timeout(
            "welcome",
            bounded(
                "welcome",
                t.send_welcome(&mb.id, b"x", &IdempotencyKey::random()),
            )
            .await,
        );
        assert_timeout(
            "tree",
            bounded("tree", t.fetch_tree(&TreeLocator([3; 32]))).await,
        );
        assert_timeout(
            "subscribe",
            bounded("subscribe", t.subscribe(&[mb.id])).await,
        );
    }
}

/// TRANSPORT-8: a long poll's timeout is its wait plus the request timeout: a wait longer
/// than the request timeout on an empty mailbox ends in an empty page, not a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_8_a_long_poll_gets_its_wait_on_top_of_the_timeout() {
    let pki = TestPki::new();
    let (ds, _d) = start_tls(&pki, &[]);
    let t = HttpTransport::builder(&ds.url)
        .add_root_certificate_pem(&pki.root_pem)
        .request_timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let mb = Mailbox::from_capability(rand::random());
    let started = Instant::now();
    let page = bounded(
        "long poll",
        t.fetch_wait(&mb.id, 0, 10, Duration::from_millis(2000)),
    )
    .await
    .unwrap();
    assert!(page.items.is_empty());
    // The service did hold the answer past the request timeout.
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

/// What a fake service answers to one request.
enum Fake {
    /// These bytes (head and body), then close.
    Bytes(Vec<u8>),
    /// This head, then a chunked body of `fill` bytes without end (until the client goes, or
    /// 256 MiB at most).
    Endless(String, u8),
}

/// A fake atmls-ds on loopback: `answer` gets each request's head.
async fn fake_service(answer: fn(&str) -> Fake) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                match answer(&String::from_utf8_lossy(&head)) {
                    Fake::Bytes(b) => {
                        let _ = s.write_all(&b).await;
                    }
                    Fake::Endless(h, fill) => {
                        if s.write_all(h.as_bytes()).await.is_err() {
                            return;
                        }
                        let chunk = [
                            format!("{:x}\r\n", 1 << 16).into_bytes(),
                            vec![fill; 1 << 16],
                            b"\r\n".to_vec(),
                        ]
                        .concat();
                        for _ in 0..4096 {
                            if s.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn json_answer(status: &str, body: &str) -> Fake {
    Fake::Bytes(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn assert_too_large<T: std::fmt::Debug>(what: &str, r: Result<T, TransportError>, cap: usize) {
    match r {
        Err(TransportError::ResponseTooLarge { limit }) => assert_eq!(limit, cap, "{what}"),
        other => panic!("{what}: {other:?}"),
    }
}

/// TRANSPORT-8: a page whose `Content-Length` is over the cap is refused before its body is
/// read; so is an error answer over the error cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_8_an_answer_announced_over_the_cap_is_refused() {
    let url = fake_service(|head| {
        let (status, len) = if head.contains("/v1/trees/") {
            ("200 OK", HttpTransport::MAX_TREE_ANSWER + 1)
        } else if head.starts_with("GET") {
            ("200 OK", HttpTransport::MAX_PAGE_ANSWER + 1)
        } else {
            ("409 Conflict", HttpTransport::MAX_POST_ANSWER + 1)
        };
        Fake::Bytes(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {len}\r\nConnection: close\r\n\r\n{{"
            )
            .into_bytes(),
        )
    })
    .await;
    let t = HttpTransport::new(&url).unwrap();
    let mb = Mailbox::from_capability(rand::random());
    assert_too_large(
        "page",
        bounded("fetch", t.fetch(&mb.id, 0, 10)).await,
        HttpTransport::MAX_PAGE_ANSWER,
    );
    assert_too_large(
        "tree",
        bounded("tree", t.fetch_tree(&TreeLocator([4; 32]))).await,
        HttpTransport::MAX_TREE_ANSWER,
    );
    assert_too_large(
        "commit refusal",
        bounded(
            "commit",
            t.submit_commit(&mb, &EpochTag([5; 32]), 0, b"x", &IdempotencyKey::random()),
        )
        .await,
        HttpTransport::MAX_POST_ANSWER,
    );
}

/// TRANSPORT-8: an answer without a length that streams on past the cap is refused once the
/// cap is passed (a page, a tree blob, an error body): the client stops reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_8_an_endless_answer_is_cut_at_the_cap() {
    let url = fake_service(|head| {
        let status = if head.contains("/v1/trees/") || head.contains("after=0") {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        Fake::Endless(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            ),
            b' ',
        )
    })
    .await;
    let t = HttpTransport::new(&url).unwrap();
    let mb = Mailbox::from_capability(rand::random());
    assert_too_large(
        "page",
        bounded("fetch", t.fetch(&mb.id, 0, 10)).await,
        HttpTransport::MAX_PAGE_ANSWER,
    );
    assert_too_large(
        "tree",
        bounded("tree", t.fetch_tree(&TreeLocator([6; 32]))).await,
        HttpTransport::MAX_TREE_ANSWER,
    );
    assert_too_large(
        "error body",
        bounded("fetch", t.fetch(&mb.id, 1, 10)).await,
        HttpTransport::MAX_ERROR_ANSWER,
    );
}

/// TRANSPORT-8, TRANSPORT-5: a page with more items than asked for is refused, and so is one
/// that does not continue the cursor in order; a well-formed page from the same fake is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_8_a_page_with_more_items_than_asked_is_refused() {
    let url = fake_service(|head| {
        let item = |seq: u64| format!(r#"{{"seq":{seq},"kind":"message","payload":"eA=="}}"#);
        let items: Vec<String> = if head.contains("after=100") {
            vec![item(99)]
        } else {
            (1..=3).map(item).collect()
        };
        json_answer(
            "200 OK",
            &format!(r#"{{"items":[{}],"more":false}}"#, items.join(",")),
        )
    })
    .await;
    let t = HttpTransport::new(&url).unwrap();
    let mb = Mailbox::from_capability(rand::random());
    let e = bounded("fetch 2", t.fetch(&mb.id, 0, 2)).await.unwrap_err();
    assert!(matches!(e, TransportError::InvalidResponse(_)), "{e:?}");
    assert!(!e.is_retryable());
    let e = bounded("fetch 1", t.fetch(&mb.id, 0, 1)).await.unwrap_err();
    assert!(matches!(e, TransportError::InvalidResponse(_)), "{e:?}");
    let e = bounded("behind", t.fetch(&mb.id, 100, 10))
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::InvalidResponse(_)), "{e:?}");
    let page = bounded("fetch 3", t.fetch(&mb.id, 0, 3)).await.unwrap();
    assert_eq!(
        page.items.iter().map(|i| i.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

/// Requests the price-gouging service below was sent.
static GOUGED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// DS-17: a service that asks more work than `MAX_STAMP_BITS` (28 bits) for a Welcome is
/// refused at once with the retryable `StampTooDear`: the client does no work and asks once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_17_a_price_over_28_bits_is_refused_without_working() {
    let url = fake_service(|_| {
        GOUGED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        json_answer(
            "428 Precondition Required",
            r#"{"error":"stamp_required","message":"pay 40 bits","limit":40}"#,
        )
    })
    .await;
    let t = HttpTransport::new(&url).unwrap();
    // Paying 2^40 hashes would take hours: an answer in time means no work was done.
    let r = bounded(
        "a 40-bit price",
        t.send_welcome(&MailboxId([7; 32]), b"sealed", &IdempotencyKey::random()),
    )
    .await;
    match r {
        Err(e @ TransportError::StampTooDear { bits: 40, max: 28 }) => assert!(e.is_retryable()),
        other => panic!("{other:?}"),
    }
    assert_eq!(GOUGED.load(std::sync::atomic::Ordering::SeqCst), 1);
}
