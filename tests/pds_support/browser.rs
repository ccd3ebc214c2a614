//! A browser at the HTTP level, for the PDS's OAuth sign-in page (REC-13): it opens the
//! authorization page, signs in and consents (or rejects) through the page's own JSON API
//! with the CSRF and device cookies, and follows the redirect back to the app's loopback
//! listener. No Chromium: the page's script calls are what the provider checks.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::{json, Value};

use super::Account;

/// The accounts' password (pds_support::create_account): the one typed on the PDS's page.
pub const PASSWORD: &str = "main-password-not-used-by-atmls";
const API: &str = "/@atproto/oauth-provider/~api";

/// A browser at the HTTP level: a cookie jar, and requests with a browser's headers.
#[derive(Default)]
pub struct Browser {
    cookies: BTreeMap<String, String>,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl Browser {
    fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let rest = url.strip_prefix("http://").expect("http url");
        let (hostport, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut s = TcpStream::connect(hostport).expect("connect");
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut req =
            format!("{method} {target} HTTP/1.0\r\nHost: {hostport}\r\nUser-Agent: atmls-test\r\n");
        if !cookie.is_empty() {
            req += &format!("Cookie: {}\r\n", cookie.join("; "));
        }
        for (k, v) in headers {
            req += &format!("{k}: {v}\r\n");
        }
        req += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap_or_default();
                if let Some((name, value)) = pair.split_once('=') {
                    self.cookies
                        .insert(name.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
        Response {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    /// Opens the authorization page (a top-level navigation from the app).
    fn open(&mut self, url: &str) -> Response {
        let nav = [
            ("Sec-Fetch-Site", "none"),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Dest", "document"),
        ];
        self.request("GET", url, &nav, "")
    }

    /// A call of the page's script to the provider's API, from the page at `page`.
    fn api(&mut self, page: &str, endpoint: &str, token: Option<&str>, body: &Value) -> Response {
        let origin = origin(page);
        let csrf = self.cookies.get("csrf-token").cloned().unwrap_or_default();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("Origin", origin.as_str()),
            ("Referer", page),
            ("Sec-Fetch-Site", "same-origin"),
            ("Sec-Fetch-Mode", "same-origin"),
            ("Sec-Fetch-Dest", "empty"),
            ("x-csrf-token", csrf.as_str()),
            ("Content-Type", "application/json"),
        ];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let url = format!("{origin}{API}{endpoint}");
        self.request("POST", &url, &headers, &body.to_string())
    }

    /// Follows the page's redirect URL (a navigation from the page at `page`), then the 303
    /// to the app; returns where the app's listener was sent.
    fn follow(&mut self, page: &str, url: &str) {
        let nav = [
            ("Sec-Fetch-Site", "same-origin"),
            ("Sec-Fetch-Mode", "navigate"),
            ("Sec-Fetch-Dest", "document"),
            ("Referer", page),
        ];
        let r = self.request("GET", url, &nav, "");
        assert_eq!(r.status, 303, "redirect page: {}", r.body);
        let location = r.header("location").expect("Location").to_owned();
        assert!(location.starts_with("http://127.0.0.1:"), "{location}");
        let back = self.request("GET", &location, &[], "");
        assert_eq!(back.status, 200, "the app's listener: {}", back.body);
    }
}

pub fn origin(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    format!("http://{}", rest.split('/').next().unwrap())
}

/// Signs in at the authorization page as `a` and approves (or rejects) the request.
pub fn user_at_page(url: &str, a: &Account, approve: bool) {
    let mut b = Browser::default();
    let page = b.open(url);
    assert_eq!(page.status, 200, "authorization page: {}", page.body);
    assert!(b.cookies.contains_key("csrf-token"), "{:?}", b.cookies);
    if !approve {
        let r = b.api(url, "/reject", None, &json!({}));
        assert_eq!(r.status, 200, "reject: {}", r.body);
        return b.follow(url, r.json()["url"].as_str().unwrap());
    }
    let signed = b.api(
        url,
        "/sign-in",
        None,
        &json!({"locale": "en", "username": a.handle, "password": PASSWORD}),
    );
    assert_eq!(signed.status, 200, "sign-in: {}", signed.body);
    let signed = signed.json();
    assert_eq!(signed["account"]["sub"], a.did.as_str());
    let token = signed["ephemeralToken"].as_str().expect("ephemeral token");
    let consent = b.api(
        url,
        "/consent",
        Some(token),
        &json!({"sub": a.did.as_str()}),
    );
    assert_eq!(consent.status, 200, "consent: {}", consent.body);
    b.follow(url, consent.json()["url"].as_str().unwrap());
}
