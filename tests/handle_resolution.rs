//! Handle resolution as the ATProto handle spec defines it (spec/records.md REC-6), against a
//! DNS server and an HTTPS host started by each test on loopback (tests/handle_support): the
//! DNS TXT record, then the HTTPS well-known, then the DID document's `alsoKnownAs`; and the
//! refusals: a DID that does not point back, nothing published, conflicting or malformed TXT
//! records, bad well-known bodies, servers that never answer, an internal well-known host.
mod handle_support;

use std::future::Future;
use std::net::Ipv4Addr;
use std::time::Duration;

use atmls::directory::pds::{PdsDirectory, PdsError};
use atmls::identity::Did;
use handle_support::*;

const ALICE: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
const BOB: &str = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb";
const MALLORY: &str = "did:plc:mmmmmmmmmmmmmmmmmmmmmmmm";
const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// A bound on each resolution, far above the configured time-outs: a hang fails the test
/// instead of stalling it.
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("resolution hung")
}

fn is_handle_error(r: &Result<Did, PdsError>) -> bool {
    matches!(r, Err(PdsError::Handle(_)))
}

/// REC-6: the DNS TXT record names the DID, whose document claims the handle; the handle is
/// normalized first; DNS is asked before HTTPS (whose different answer is never fetched).
#[tokio::test]
async fn rec_6_handle_resolves_through_dns_txt() {
    let web = web_host(
        Routes::default()
            .doc(ALICE, &["alice.example.test"])
            .well_known("alice.example.test", Reply::Body(200, MALLORY.into()))
            .0,
    )
    .await;
    let zone = Zone::default()
        .txt("alice.example.test", "v=spf1 -all")
        .txt("alice.example.test", &format!("did={ALICE}"))
        .a("alice.example.test", LOCAL);
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    let did = bounded(dir.resolve("@Alice.Example.TEST")).await.unwrap();
    assert_eq!(did.as_str(), ALICE);
    assert_eq!(web.well_known_hits(), 0, "DNS answered: HTTPS is not asked");
    assert_eq!(web.hits("127.0.0.1", &format!("/{ALICE}")), 1);
}

/// REC-6: a TXT record split into several character-strings is read joined.
#[tokio::test]
async fn rec_6_txt_record_in_several_strings() {
    let web = web_host(Routes::default().doc(ALICE, &["alice.example.test"]).0).await;
    let (head, tail) = ALICE.split_at(12);
    let zone = Zone::default().txt_chunks("alice.example.test", &[&format!("did={head}"), tail]);
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    let did = bounded(dir.resolve("alice.example.test")).await.unwrap();
    assert_eq!(did.as_str(), ALICE);
}

/// REC-6: without a TXT record, the well-known body (whitespace around it stripped) names
/// the DID, whose document claims the handle.
#[tokio::test]
async fn rec_6_handle_resolves_through_https_well_known() {
    let body = format!("  {BOB}\r\n").into_bytes();
    let web = web_host(
        Routes::default()
            .doc(BOB, &["bob.example.test"])
            .well_known("bob.example.test", Reply::Body(200, body))
            .0,
    )
    .await;
    let zone = Zone::default().a("bob.example.test", LOCAL);
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    let did = bounded(dir.resolve("bob.example.test")).await.unwrap();
    assert_eq!(did.as_str(), BOB);
    assert_eq!(web.hits("bob.example.test", "/.well-known/atproto-did"), 1);
}

/// REC-6: a DID whose document does not list the handle is refused, whichever method named
/// it (anyone can point a name at someone else's DID).
#[tokio::test]
async fn rec_6_did_that_does_not_point_back_refused() {
    let web = web_host(
        Routes::default()
            .doc(ALICE, &["alice.example.test"])
            .doc(BOB, &[])
            .well_known("fan.example.test", Reply::Body(200, ALICE.into()))
            .0,
    )
    .await;
    let zone = Zone::default()
        .txt("impostor.example.test", &format!("did={ALICE}"))
        .txt("empty.example.test", &format!("did={BOB}"))
        .a("fan.example.test", LOCAL);
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    for handle in [
        "impostor.example.test",
        "empty.example.test",
        "fan.example.test",
    ] {
        let r = bounded(dir.resolve(handle)).await;
        assert!(is_handle_error(&r), "{handle}: {r:?}");
        assert!(!r.unwrap_err().is_retryable());
    }
    assert_eq!(web.hits("fan.example.test", "/.well-known/atproto-did"), 1);
}

/// REC-6: no TXT record and no well-known answer (404, or a name without an address):
/// refused, not retryable.
#[tokio::test]
async fn rec_6_no_txt_and_no_well_known_refused() {
    let web = web_host(Routes::default().doc(ALICE, &["nothing.example.test"]).0).await;
    let zone = Zone::default().a("nothing.example.test", LOCAL);
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    for handle in ["nothing.example.test", "nowhere.example.test"] {
        let r = bounded(dir.resolve(handle)).await;
        assert!(is_handle_error(&r), "{handle}: {r:?}");
    }
    assert_eq!(
        web.hits("nothing.example.test", "/.well-known/atproto-did"),
        1
    );
}

/// REC-6: TXT records naming two different DIDs refuse the handle, even though both
/// documents claim it and the well-known would answer: no fall-through to HTTPS.
#[tokio::test]
async fn rec_6_conflicting_txt_records_refused() {
    let web = web_host(
        Routes::default()
            .doc(ALICE, &["twice.example.test"])
            .doc(MALLORY, &["twice.example.test"])
            .well_known("twice.example.test", Reply::Body(200, ALICE.into()))
            .0,
    )
    .await;
    let zone = Zone::default()
        .txt("twice.example.test", &format!("did={ALICE}"))
        .txt("twice.example.test", &format!("did={MALLORY}"))
        .a("twice.example.test", LOCAL);
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    let r = bounded(dir.resolve("twice.example.test")).await;
    assert!(is_handle_error(&r), "{r:?}");
    assert_eq!(web.well_known_hits(), 0);
    assert_eq!(web.connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// REC-6: a `did=` record whose value is not a DID refuses the handle (no fall-through).
#[tokio::test]
async fn rec_6_malformed_txt_value_refused() {
    let web = web_host(
        Routes::default()
            .doc(
                ALICE,
                &["a.example.test", "b.example.test", "c.example.test"],
            )
            .well_known("a.example.test", Reply::Body(200, ALICE.into()))
            .0,
    )
    .await;
    let zone = Zone::default()
        .txt("a.example.test", "did=did:plc:NOT-BASE32")
        .txt("b.example.test", &format!("did= {ALICE}"))
        .txt("c.example.test", "did=https://example.test/")
        .a("a.example.test", LOCAL);
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    for handle in ["a.example.test", "b.example.test", "c.example.test"] {
        let r = bounded(dir.resolve(handle)).await;
        assert!(is_handle_error(&r), "{handle}: {r:?}");
    }
    assert_eq!(web.well_known_hits(), 0);
}

/// REC-6: a well-known body that is too large (read no further than the cap), or is not a
/// DID, refuses the handle.
#[tokio::test]
async fn rec_6_well_known_body_too_large_or_not_a_did_refused() {
    let huge = vec![b'a'; 1 << 20];
    let mut padded = vec![b' '; 5000];
    padded.extend_from_slice(ALICE.as_bytes());
    let json = format!("{{\"did\":\"{ALICE}\"}}").into_bytes();
    let bodies = [
        ("huge", huge),
        ("padded", padded),
        ("json", json),
        ("words", b"hello world".to_vec()),
        ("empty", Vec::new()),
        ("two", format!("{ALICE}\n{BOB}").into_bytes()),
    ];
    let mut routes = Routes::default().doc(ALICE, &[]);
    let mut zone = Zone::default();
    for (name, body) in &bodies {
        let handle = format!("{name}.example.test");
        routes = routes.well_known(&handle, Reply::Body(200, body.clone()));
        zone = zone.a(&handle, LOCAL);
    }
    let web = web_host(routes.0).await;
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    for (name, _) in &bodies {
        let r = bounded(dir.resolve(&format!("{name}.example.test"))).await;
        assert!(is_handle_error(&r), "{name}: {r:?}");
    }
    // No body named a DID: no document was fetched.
    assert_eq!(web.hits("127.0.0.1", &format!("/{ALICE}")), 0);
}

/// REC-6: a DNS server that never answers: the TXT lookup and the well-known host's address
/// time out; the error says retrying may help.
#[tokio::test]
async fn rec_6_silent_dns_server_times_out() {
    let web = web_host(Routes::default().doc(ALICE, &["alice.example.test"]).0).await;
    let mut c = config(silent_dns_server().await, &web);
    c.timeout = Duration::from_millis(500);
    let dir = PdsDirectory::new(c);
    let r = bounded(dir.resolve("alice.example.test")).await;
    assert!(matches!(r, Err(PdsError::Unavailable(_))), "{r:?}");
    assert!(r.unwrap_err().is_retryable());
    assert_eq!(web.connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// REC-6: a well-known host that never answers, or trickles its body, is cut off by the
/// time-out: unavailable, retryable.
#[tokio::test]
async fn rec_6_silent_or_trickling_well_known_times_out() {
    let web = web_host(
        Routes::default()
            .well_known("silent.example.test", Reply::Silent)
            .well_known("trickle.example.test", Reply::Trickle)
            .0,
    )
    .await;
    let zone = Zone::default()
        .a("silent.example.test", LOCAL)
        .a("trickle.example.test", LOCAL);
    let mut c = config(dns_server(zone).await, &web);
    c.timeout = Duration::from_secs(1);
    let dir = PdsDirectory::new(c);
    for handle in ["silent.example.test", "trickle.example.test"] {
        let r = bounded(dir.resolve(handle)).await;
        assert!(
            matches!(r, Err(PdsError::Unavailable(_))),
            "{handle}: {r:?}"
        );
    }
    assert_eq!(web.well_known_hits(), 2);
}

/// REC-6: with private hosts not allowed (the default), a well-known host whose name
/// resolves to an internal address is refused before any connection, and so is a redirect
/// to an internal address literal.
#[tokio::test]
async fn rec_6_well_known_host_on_internal_address_refused() {
    let web = web_host(
        Routes::default()
            .doc(ALICE, &["inside.example.test"])
            .well_known("inside.example.test", Reply::Body(200, ALICE.into()))
            .0,
    )
    .await;
    let zone = Zone::default()
        .a("inside.example.test", LOCAL)
        .a("lan.example.test", Ipv4Addr::new(10, 1, 2, 3))
        .a("meta.example.test", Ipv4Addr::new(169, 254, 169, 254));
    let mut c = config(dns_server(zone).await, &web);
    c.allow_private_handle_hosts = false;
    let dir = PdsDirectory::new(c);
    for handle in [
        "inside.example.test",
        "lan.example.test",
        "meta.example.test",
    ] {
        let r = bounded(dir.resolve(handle)).await;
        assert!(is_handle_error(&r), "{handle}: {r:?}");
    }
    assert_eq!(web.connections.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// REC-6: redirects are followed (the handle spec allows them), to https only and a few
/// hops at most: a redirect to plain http, or a loop, refuses the handle.
#[tokio::test]
async fn rec_6_well_known_redirects() {
    let web = web_host(
        Routes::default()
            .doc(BOB, &["moved.example.test"])
            .well_known("moved.example.test", Reply::Redirect("/elsewhere".into()))
            .route(
                "moved.example.test",
                "/elsewhere",
                Reply::Body(200, BOB.into()),
            )
            .well_known(
                "plain.example.test",
                Reply::Redirect("http://moved.example.test/elsewhere".into()),
            )
            .well_known(
                "loop.example.test",
                Reply::Redirect("/.well-known/atproto-did".into()),
            )
            .0,
    )
    .await;
    let zone = Zone::default()
        .a("moved.example.test", LOCAL)
        .a("plain.example.test", LOCAL)
        .a("loop.example.test", LOCAL);
    let dir = PdsDirectory::new(config(dns_server(zone).await, &web));
    let did = bounded(dir.resolve("moved.example.test")).await.unwrap();
    assert_eq!(did.as_str(), BOB);
    for handle in ["plain.example.test", "loop.example.test"] {
        let r = bounded(dir.resolve(handle)).await;
        assert!(is_handle_error(&r), "{handle}: {r:?}");
    }
    assert_eq!(web.hits("loop.example.test", "/.well-known/atproto-did"), 4);
}
