//! Setting up the connections of an [`HttpTransport`]: its options, the check of the
//! service's URL (TRANSPORT-8), and one connection pool per mailbox (DS-W-3).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;

use super::HttpTransport;
use crate::transport::TransportError;

/// Options of an [`HttpTransport`] ([`HttpTransport::builder`]).
#[derive(Clone, Debug)]
pub struct HttpTransportBuilder {
    pub(super) base: String,
    pub(super) roots: Vec<Vec<u8>>,
    pub(super) allow_plain_http_to_remote_hosts: bool,
    pub(super) connect_timeout: Duration,
    pub(super) request_timeout: Duration,
    pub(super) tree_timeout: Duration,
    pub(super) subscription_idle_timeout: Duration,
}

/// Connection pools by scope: a mailbox id, or a tree locator (DS-W-3).
#[derive(Debug)]
pub(super) struct Pools {
    pub(super) options: HttpTransportBuilder,
    by_scope: Mutex<HashMap<[u8; 32], reqwest::Client>>,
}

/// Most pools kept; past it they are all dropped (idle connections close; requests under way
/// keep theirs) and made again as needed.
const MAX_POOLS: usize = 4096;

impl Pools {
    pub(super) fn get(&self, scope: &[u8; 32]) -> Result<reqwest::Client, TransportError> {
        let mut map = self
            .by_scope
            .lock()
            .map_err(|_| TransportError::Unavailable("transport lock poisoned".into()))?;
        if let Some(c) = map.get(scope) {
            return Ok(c.clone());
        }
        if map.len() >= MAX_POOLS {
            map.clear();
        }
        let c = self.options.client()?;
        map.insert(*scope, c.clone());
        Ok(c)
    }
}

impl HttpTransportBuilder {
    /// Trusts the root certificate(s) in `pem` (one or more `CERTIFICATE` blocks) besides the
    /// built-in roots: for a private deployment or a test service with its own certificate
    /// authority. A bad PEM makes [`build`](Self::build) fail with [`TransportError::Tls`].
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        self.roots.push(pem.to_vec());
        self
    }

    /// Accepts a plain `http://` URL to a host that is not loopback. The posting capability,
    /// epoch tags, mailbox ids and sealed payloads then travel unencrypted and unauthenticated
    /// over the network: only for a network the caller trusts entirely (TRANSPORT-8).
    pub fn allow_plain_http_to_remote_hosts(mut self, allow: bool) -> Self {
        self.allow_plain_http_to_remote_hosts = allow;
        self
    }

    /// Time to open a connection, TCP and TLS handshake (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time for one request, from sending it to the end of its answer (default 60 s). A long
    /// poll ([`HttpTransport::fetch_wait`]) gets its wait on top.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Time for one tree-blob upload or download, up to 64 MiB (default 300 s).
    pub fn tree_timeout(mut self, timeout: Duration) -> Self {
        self.tree_timeout = timeout;
        self
    }

    /// Longest silence on a subscription stream before the subscription is ended (default
    /// 45 s; the service sends a keep-alive every 15 s). The stream has no total timeout.
    pub fn subscription_idle_timeout(mut self, timeout: Duration) -> Self {
        self.subscription_idle_timeout = timeout;
        self
    }

    /// A client (with its own connection pool) with these options.
    pub(super) fn client(&self) -> Result<reqwest::Client, TransportError> {
        let mut http = reqwest::Client::builder()
            // rustls even when another feature (`pds`, through atrium) compiled native-tls in.
            .use_rustls_tls()
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            // atmls-ds never redirects; following one could carry the capability elsewhere,
            // or to plain http.
            .redirect(reqwest::redirect::Policy::none());
        for pem in &self.roots {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TransportError::Tls(format!("root certificate: {e}")))?;
            if certs.is_empty() {
                return Err(TransportError::Tls(
                    "root certificate: no CERTIFICATE in the PEM".into(),
                ));
            }
            for c in certs {
                http = http.add_root_certificate(c);
            }
        }
        http.build()
            .map_err(|e| TransportError::Tls(format!("TLS set-up: {e}")))
    }

    /// The transport; refuses the URL ([`TransportError::InvalidUrl`],
    /// [`TransportError::PlainHttpToRemoteHost`]) before any request is sent.
    pub fn build(self) -> Result<HttpTransport, TransportError> {
        let base = check_base_url(&self.base, self.allow_plain_http_to_remote_hosts)?;
        // Built once here so that a bad root certificate fails now, not at the first request.
        let first = self.client()?;
        Ok(HttpTransport {
            base,
            pools: Arc::new(Pools {
                options: self.clone(),
                by_scope: Mutex::new(HashMap::from([([0u8; 32], first)])),
            }),
            request_timeout: self.request_timeout,
            tree_timeout: self.tree_timeout,
            subscription_idle_timeout: self.subscription_idle_timeout,
            stamp_bits: Arc::new(AtomicU8::new(0)),
        })
    }
}

/// Whether `url`'s host is loopback: `127.0.0.0/8`, `::1` or `localhost` (the URL parser
/// has already normalized other spellings of these addresses, such as `127.1`).
fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The base URL without its trailing slashes, if the transport may use it (TRANSPORT-8).
fn check_base_url(base: &str, allow_plain_http: bool) -> Result<String, TransportError> {
    let url = Url::parse(base).map_err(|e| TransportError::InvalidUrl(format!("{base}: {e}")))?;
    if url.host().is_none() {
        return Err(TransportError::InvalidUrl(format!("{base}: no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(TransportError::InvalidUrl(format!(
            "{base}: a query or fragment has no place in the service's base URL"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TransportError::InvalidUrl(format!(
            "{base}: credentials have no place in the service's base URL"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_plain_http || is_loopback(&url) => {}
        "http" => {
            return Err(TransportError::PlainHttpToRemoteHost(
                url.host_str().unwrap_or_default().to_owned(),
            ))
        }
        other => {
            return Err(TransportError::InvalidUrl(format!(
                "{base}: scheme {other} (https, or http to loopback)"
            )))
        }
    }
    Ok(base.trim_end_matches('/').to_owned())
}
