//! Unit tests of the HTTP transport (TRANSPORT-8 and the answer caps).
//!
//! Test code: `unwrap`/`expect` only on values the tests build themselves.

use super::*;

fn url_error(base: &str) -> TransportError {
    HttpTransport::new(base).expect_err(base)
}

#[test]
fn transport_8_https_is_always_accepted() {
    for base in [
        "https://ds.example.com",
        "https://ds.example.com/",
        "https://192.0.2.1:8443",
        "https://[2001:db8::1]/atmls-ds/",
        "https://127.0.0.1:1",
    ] {
        let t = HttpTransport::new(base).expect(base);
        assert!(!t.base_url().ends_with('/'), "{}", t.base_url());
    }
    assert_eq!(
        HttpTransport::new("https://ds.example.com/prefix//")
            .unwrap()
            .base_url(),
        "https://ds.example.com/prefix"
    );
}

#[test]
fn transport_8_plain_http_only_to_loopback() {
    for base in [
        "http://127.0.0.1:8080",
        "http://127.0.0.1:8080/",
        "http://127.45.6.7",
        "http://127.1:80",
        "http://[::1]:8080",
        "http://localhost:8080",
        "http://LocalHost",
    ] {
        HttpTransport::new(base).expect(base);
    }
    for (base, host) in [
        ("http://192.0.2.1:1", "192.0.2.1"),
        ("http://ds.example.com", "ds.example.com"),
        ("http://localhost.example.com:8080", "localhost.example.com"),
        ("http://[2001:db8::1]:8080", "[2001:db8::1]"),
        ("http://10.0.0.1", "10.0.0.1"),
        ("http://128.0.0.1", "128.0.0.1"),
        ("http://0.0.0.0:8080", "0.0.0.0"),
        ("http://[::ffff:192.0.2.1]", "[::ffff:c000:201]"),
    ] {
        assert_eq!(
            url_error(base),
            TransportError::PlainHttpToRemoteHost(host.into()),
            "{base}"
        );
        assert!(!url_error(base).is_retryable());
    }
}

#[test]
fn transport_8_plain_http_to_a_remote_host_only_when_explicitly_allowed() {
    let t = HttpTransport::builder("http://192.0.2.1:1/")
        .allow_plain_http_to_remote_hosts(true)
        .build()
        .unwrap();
    assert_eq!(t.base_url(), "http://192.0.2.1:1");
    assert!(matches!(
        HttpTransport::builder("http://192.0.2.1:1")
            .allow_plain_http_to_remote_hosts(false)
            .build(),
        Err(TransportError::PlainHttpToRemoteHost(_))
    ));
}

#[test]
fn transport_8_unusable_urls_are_refused() {
    for base in [
        "",
        "127.0.0.1:8080",
        "ds.example.com",
        "ftp://ds.example.com",
        "ws://127.0.0.1:8080",
        "file:///tmp/ds",
        "unix:/tmp/ds.sock",
        "https://",
        "https://ds.example.com/?x=1",
        "https://ds.example.com/#top",
        "https://user:secret@ds.example.com",
    ] {
        assert!(
            matches!(url_error(base), TransportError::InvalidUrl(_)),
            "{base}: {:?}",
            url_error(base)
        );
    }
}

#[test]
fn transport_8_a_root_certificate_that_is_not_pem_is_refused() {
    for pem in [
        &b""[..],
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\nzz\n",
    ] {
        let e = HttpTransport::builder("https://ds.example.com")
            .add_root_certificate_pem(pem)
            .build()
            .expect_err("bad root accepted");
        assert!(matches!(e, TransportError::Tls(_)), "{e:?}");
    }
}

/// The largest answers atmls-ds sends fit the caps: a page of payloads just under
/// `MAX_PAGE_BYTES` followed by one commit of the largest size, a page of 1,000 items, and
/// an `epoch_taken` refusal carrying the largest commit.
#[test]
fn transport_8_the_largest_answers_fit_the_caps() {
    let item = |seq: u64, n: usize| Item {
        seq,
        kind: api::WireKind::Welcome,
        payload: base64::engine::general_purpose::STANDARD.encode(vec![0xa5; n]),
    };
    let big = PageBody {
        items: vec![
            item(i64::MAX as u64 - 1, api::MAX_PAGE_BYTES - 1),
            item(i64::MAX as u64, MAX_ITEM),
        ],
        more: true,
    };
    assert!(serde_json::to_vec(&big).unwrap().len() <= MAX_PAGE_ANSWER);
    let many = PageBody {
        items: (0..u64::from(api::MAX_PAGE_ITEMS))
            .map(|i| item(i64::MAX as u64 - i, api::MAX_PAGE_BYTES / 1000))
            .collect(),
        more: true,
    };
    assert!(serde_json::to_vec(&many).unwrap().len() <= MAX_PAGE_ANSWER);
    let taken = ErrorBody {
        error: code::EPOCH_TAKEN.into(),
        message: "a commit for this epoch follows your cursor".into(),
        winner: Some(Item {
            kind: api::WireKind::Commit,
            ..item(i64::MAX as u64, MAX_COMMIT_PAYLOAD)
        }),
        limit: None,
    };
    assert!(serde_json::to_vec(&taken).unwrap().len() <= MAX_POST_ANSWER);
}

#[test]
fn transport_8_timeouts_are_retryable_tls_and_caps_are_not() {
    assert!(TransportError::Timeout("x".into()).is_retryable());
    assert!(!retry_here(&TransportError::Timeout("x".into())));
    assert!(retry_here(&TransportError::Unavailable("x".into())));
    assert!(!TransportError::Tls("x".into()).is_retryable());
    assert!(!TransportError::ResponseTooLarge { limit: 1 }.is_retryable());
    assert!(!TransportError::InvalidResponse("x".into()).is_retryable());
}
