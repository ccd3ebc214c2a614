//! atmls-ds against clients that hold on to its resources or probe it (spec/ds.md DS-15,
//! DS-7, DS-9, DS-12, DS-API-9), on the real binary over SQLite: a trickled header or body
//! holds no connection for long, the connection, in-flight and subscription bounds hold and
//! let honest requests through afterwards, every error is JSON, and an absent mailbox reads
//! like an empty one.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use atmls::transport::*;
use ds_support::*;

fn start(extra: &[&str]) -> (Ds, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut args = NO_LIMITS.to_vec();
    args.extend_from_slice(extra);
    let ds = Ds::start(
        &sqlite_in(&dir),
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        &args,
    );
    (ds, dir)
}

/// Sends `head` and returns everything the service answers until it closes the connection
/// (or `patience` runs out: then `None`).
fn raw(addr: &str, head: &[u8], patience: Duration) -> Option<String> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(patience)).unwrap();
    s.write_all(head).unwrap();
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

fn status_and_code(answer: &str) -> (u16, String) {
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let code = serde_json::from_str::<atmls_ds_wire::api::ErrorBody>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| format!("not JSON: {body:?}"));
    (status, code)
}

/// DS-15: a client that sends half a request header and stops is cut off after the header
/// timeout; the service goes on answering others.
#[test]
fn ds_15_trickled_header_is_cut_off() {
    let (ds, _d) = start(&["--header-timeout", "1"]);
    let t = Instant::now();
    let answer = raw(
        &ds.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\n",
        Duration::from_secs(30),
    );
    assert!(answer.is_some(), "the connection was never closed");
    assert!(t.elapsed() < Duration::from_secs(30));
    let ok = raw(
        &ds.addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// DS-15: a body that stops arriving is `408 request_timeout` (JSON), and nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_trickled_body_is_refused_and_stores_nothing() {
    let (ds, _d) = start(&["--body-timeout", "1"]);
    let mb = Mailbox::from_capability(rand::random());
    let head = format!(
        "POST /v1/mailboxes/{}/commits HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         atmls-epoch: {}\r\nidempotency-key: {}\r\nContent-Length: 1000\r\n\
         Connection: close\r\n\r\npartial",
        hex::encode(mb.id.0),
        hex::encode(mb.post_secret.unwrap()),
        hex::encode([0u8; 32]),
        hex::encode([1u8; 16]),
    );
    let addr = ds.addr.clone();
    let answer =
        tokio::task::spawn_blocking(move || raw(&addr, head.as_bytes(), Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("answered");
    assert_eq!(status_and_code(&answer), (408, "request_timeout".into()));
    let page = ds.transport().fetch(&mb.id, 0, 10).await.unwrap();
    assert!(page.items.is_empty());
}

/// DS-15: with room for two connections, two idle ones hold the service; a third client is
/// served as soon as one of them goes.
#[test]
fn ds_15_connection_bound_holds_and_frees() {
    let (ds, _d) = start(&["--max-connections", "2", "--header-timeout", "30"]);
    let a = TcpStream::connect(&ds.addr).unwrap();
    let b = TcpStream::connect(&ds.addr).unwrap();
    // Let the service accept both.
    std::thread::sleep(Duration::from_millis(300));
    let health = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let addr = ds.addr.clone();
    let third = std::thread::spawn(move || raw(&addr, health, Duration::from_secs(1)));
    assert!(
        third.join().unwrap().is_none_or(|a| a.is_empty()),
        "served beyond the bound"
    );
    drop(a);
    let ok = raw(&ds.addr, health, Duration::from_secs(30)).unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    drop(b);
}

/// DS-15: with room for one request in flight, a slow upload holds it and a second request
/// gets `503 busy` at once (JSON, `Retry-After`); the honest client's transport retries
/// once the upload is done. Long polls do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_in_flight_bound_answers_busy() {
    let (ds, _d) = start(&["--max-in-flight", "1", "--body-timeout", "3"]);
    let addr = ds.addr.clone();
    // A tree upload whose body trickles: it holds the one slot until the body timeout.
    let slow = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        let head = format!(
            "PUT /v1/trees/{} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\nab",
            hex::encode([7u8; 32])
        );
        s.write_all(head.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let busy = reqwest::get(format!("{}/health", ds.url)).await.unwrap();
    assert_eq!(busy.status().as_u16(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    let body: atmls_ds_wire::api::ErrorBody =
        serde_json::from_slice(&busy.bytes().await.unwrap()).unwrap();
    assert_eq!(body.error, "busy");
    // A long poll is not work: it is answered (empty, after its wait) though the slot is held.
    let mb = Mailbox::from_capability(rand::random());
    let poll = reqwest::get(format!(
        "{}/v1/mailboxes/{}/items?wait_ms=100",
        ds.url,
        hex::encode(mb.id.0)
    ))
    .await
    .unwrap();
    assert_eq!(poll.status().as_u16(), 200);
    assert_eq!(status_and_code(&slow.join().unwrap()).0, 408);
    // The slot is free again: an honest commit goes through.
    let t = ds.transport();
    let out = t
        .submit_commit(&mb, &EpochTag([1; 32]), 0, b"c", &IdempotencyKey::random())
        .await
        .unwrap();
    assert!(matches!(out, CommitOutcome::Accepted { .. }));
}

/// DS-15: subscriptions beyond the bound are `503 busy`; closing one makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_subscription_bound() {
    let (ds, _d) = start(&["--max-subscriptions", "2"]);
    let t = ds.transport();
    let mb = Mailbox::from_capability(rand::random());
    let s1 = t.subscribe(&[mb.id]).await.unwrap();
    let _s2 = t.subscribe(&[mb.id]).await.unwrap();
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "mailboxes": [hex::encode(mb.id.0)] }).to_string();
    let third = http
        .post(format!("{}/v1/subscribe", ds.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(third.status().as_u16(), 503);
    let e: atmls_ds_wire::api::ErrorBody =
        serde_json::from_slice(&third.bytes().await.unwrap()).unwrap();
    assert_eq!(e.error, "busy");
    drop(s1);
    // The service notices the closed stream when it writes to it: post items it must announce.
    let mut freed = false;
    for n in 0..50u8 {
        t.submit_commit(
            &mb,
            &EpochTag([n; 32]),
            u64::MAX >> 1,
            b"c",
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
        let r = http
            .post(format!("{}/v1/subscribe", ds.url))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the closed subscription's room was never freed");
}

/// DS-API-9: every error is a JSON body, whatever refused the request.
#[test]
fn ds_api_9_every_error_is_json() {
    let (ds, _d) = start(&[]);
    let cases: &[(&[u8], u16, &str)] = &[
        (
            b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            404,
            "not_found",
        ),
        (
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            404,
            "not_found",
        ),
        (
            b"DELETE /v1/subscribe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            405,
            "method_not_allowed",
        ),
        (
            b"GET /v1/mailboxes/%FF%FE/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            400,
            "malformed",
        ),
        (
            b"GET /v1/mailboxes/00/items?after=x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            400,
            "malformed",
        ),
    ];
    for (req, status, code) in cases {
        let answer = raw(&ds.addr, req, Duration::from_secs(30)).unwrap();
        assert_eq!(
            status_and_code(&answer),
            (*status, code.to_string()),
            "{}",
            String::from_utf8_lossy(req)
        );
    }
}

/// DS-7: an absent mailbox and a cursor past the end of a present one read alike, so no one
/// learns which mailboxes exist by asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_7_absent_mailbox_and_cursor_past_the_end_read_alike() {
    let (ds, _d) = start(&[]);
    let t = ds.transport();
    let present = Mailbox::from_capability(rand::random());
    t.submit_commit(
        &present,
        &EpochTag([1; 32]),
        0,
        b"c",
        &IdempotencyKey::random(),
    )
    .await
    .unwrap();
    let absent = Mailbox::from_capability(rand::random());
    let http = reqwest::Client::new();
    let mut answers = Vec::new();
    for (mb, after) in [(&present, 5), (&absent, 5), (&absent, 1), (&present, 1)] {
        let r = http
            .get(format!(
                "{}/v1/mailboxes/{}/items?after={after}",
                ds.url,
                hex::encode(mb.id.0)
            ))
            .send()
            .await
            .unwrap();
        answers.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 200);
}

/// DS-9: an IPv6 client is rate limited by its /64, an IPv4 one by its address.
#[test]
fn ds_9_ipv6_clients_are_limited_per_64() {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let key = atmls_ds::server::address_key;
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(key(a), key(b));
    assert_ne!(key(a), key(c));
    assert_eq!(
        key(a),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 0))
    );
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(key(v4), v4);
    assert_ne!(key(v4), key(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))));
}
