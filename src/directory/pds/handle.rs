//! Handle → DID as the ATProto handle specification defines it (spec/records.md REC-6): the
//! DNS TXT record `_atproto.<handle>`, then `https://<handle>/.well-known/atproto-did`. The
//! caller checks the DID document's `alsoKnownAs` (the other direction).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

use super::resolve::is_internal;
use super::xrpc::client_builder;
use super::PdsError;
use crate::identity::Did;

/// Longest well-known body read: a DID (at most 2 KiB) with room for whitespace around it.
pub(crate) const MAX_WELL_KNOWN_BYTES: usize = 4096;

/// Redirects followed from the well-known URL (the handle spec allows "a reasonable number").
const MAX_REDIRECTS: usize = 3;

/// Top-level domains the handle spec says must fail resolution.
const DISALLOWED_TLDS: [&str; 6] = ["local", "arpa", "invalid", "localhost", "internal", "onion"];

/// The handle in normal form (lowercase, no leading `@`), if its syntax is a handle's and its
/// top-level domain may be resolved; otherwise `PdsError::Handle`.
pub(crate) fn normalize_handle(input: &str) -> Result<String, PdsError> {
    let handle = input
        .strip_prefix('@')
        .unwrap_or(input)
        .to_ascii_lowercase();
    let bad = || PdsError::Handle(handle.chars().take(256).collect());
    if handle.len() > 253 {
        return Err(bad());
    }
    let labels: Vec<&str> = handle.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld = labels.last().copied().unwrap_or_default();
    if labels.len() < 2
        || !labels.iter().all(label_ok)
        || tld.starts_with(|c: char| c.is_ascii_digit())
        || DISALLOWED_TLDS.contains(&tld)
    {
        return Err(bad());
    }
    Ok(handle)
}

/// The DID named by the TXT records of `_atproto.<handle>` (each record's character-strings
/// joined): records not starting with `did=` are ignored; `None` if no record does. A `did=`
/// record whose value is not a DID, or records naming different DIDs, refuse the handle.
pub(crate) fn txt_did(handle: &str, records: &[Vec<u8>]) -> Result<Option<Did>, PdsError> {
    let mut found: Option<Did> = None;
    for r in records {
        let Some(value) = r.strip_prefix(b"did=") else {
            continue;
        };
        let did = std::str::from_utf8(value)
            .ok()
            .and_then(|v| Did::new(v).ok())
            .ok_or_else(|| PdsError::Handle(handle.to_owned()))?;
        match &found {
            Some(f) if *f != did => return Err(PdsError::Handle(handle.to_owned())),
            _ => found = Some(did),
        }
    }
    Ok(found)
}

/// What one method says about a handle.
enum Step {
    /// The DID the handle names.
    Did(Did),
    /// Nothing: no record, no such name, not found.
    Absent,
    /// The method could not be completed (time-out, server failure); retrying may help.
    Unavailable(String),
}

/// Why the well-known host's name was not resolved (found again in reqwest's error chain).
#[derive(Debug, thiserror::Error)]
enum HostError {
    /// An internal address, or a redirect that is not followed: the handle is refused.
    #[error("{0}")]
    Refused(String),
    #[error("{0} has no address")]
    NotFound(String),
    #[error("resolving {0}: {1}")]
    Unavailable(String, String),
}

/// Whether a failed lookup means "no such record" (NXDOMAIN, or the name exists without
/// records of the type) rather than a failure (time-out, SERVFAIL, refused, network).
fn is_absent(e: &ResolveError) -> bool {
    e.proto().is_some_and(|p| {
        matches!(
            p.kind(),
            ProtoErrorKind::NoRecordsFound {
                response_code: ResponseCode::NXDomain | ResponseCode::NoError,
                ..
            }
        )
    })
}

/// The hostname resolver of the well-known client: the handle's DNS servers, and no internal
/// address unless allowed. Checking here, where the connection's addresses are chosen,
/// leaves no window for a second, different answer (DNS rebinding), redirects included.
struct GuardedDns {
    dns: Arc<TokioResolver>,
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dns = self.dns.clone();
        let allow_private = self.allow_private;
        let host = name.as_str().trim_end_matches('.').to_owned();
        Box::pin(async move {
            let ips = dns.lookup_ip(format!("{host}.")).await.map_err(|e| {
                if is_absent(&e) {
                    HostError::NotFound(host.clone())
                } else {
                    HostError::Unavailable(host.clone(), e.to_string())
                }
            })?;
            let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            if addrs.is_empty() {
                return Err(HostError::NotFound(host).into());
            }
            if !allow_private && addrs.iter().any(|a| is_internal(a.ip())) {
                return Err(
                    HostError::Refused(format!("{host} resolves to an internal address")).into(),
                );
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Redirects: at most [`MAX_REDIRECTS`], https only, and no IP literal that is internal
/// (unless allowed; names go through [`GuardedDns`]).
fn redirect_policy(allow_private: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let url = attempt.url();
        let internal_ip = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<std::net::IpAddr>().ok())
            .is_some_and(is_internal);
        let refused = if attempt.previous().len() > MAX_REDIRECTS {
            Some("too many redirects")
        } else if url.scheme() != "https" {
            Some("redirect to plain http")
        } else if internal_ip && !allow_private {
            Some("redirect to an internal address")
        } else {
            None
        };
        match refused {
            Some(why) => {
                let e = HostError::Refused(format!("{why}: {url}"));
                attempt.error(e)
            }
            None => attempt.follow(),
        }
    })
}

/// Where and how long handles are resolved (from `PdsConfig`).
pub(crate) struct HandleSettings<'a> {
    pub(crate) dns_servers: &'a [SocketAddr],
    pub(crate) well_known_port: Option<u16>,
    pub(crate) allow_private_hosts: bool,
    pub(crate) timeout: Duration,
    pub(crate) roots: &'a [reqwest::Certificate],
}

/// The two methods of the handle spec, with their DNS resolver and HTTPS client. Either may
/// have failed to set up (no system DNS configuration); resolution then says so.
#[derive(Clone)]
pub(crate) struct Handles {
    dns: Result<Arc<TokioResolver>, String>,
    web: Result<reqwest::Client, String>,
    well_known_port: Option<u16>,
    timeout: Duration,
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Handles(port {:?})", self.well_known_port)
    }
}

fn dns_resolver(servers: &[SocketAddr], timeout: Duration) -> Result<TokioResolver, String> {
    let provider = TokioConnectionProvider::default();
    let mut builder = if servers.is_empty() {
        TokioResolver::builder(provider).map_err(|e| format!("system DNS configuration: {e}"))?
    } else {
        let group: Vec<NameServerConfig> = servers
            .iter()
            .flat_map(|a| [Protocol::Udp, Protocol::Tcp].map(|p| NameServerConfig::new(*a, p)))
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, vec![], group),
            provider,
        )
    };
    let opts = builder.options_mut();
    opts.timeout = opts.timeout.min(timeout);
    Ok(builder.build())
}

impl Handles {
    pub(crate) fn new(s: &HandleSettings<'_>) -> Handles {
        let dns = dns_resolver(s.dns_servers, s.timeout).map(Arc::new);
        let web = match &dns {
            Ok(d) => client_builder(s.roots)
                .https_only(true)
                // Direct connections only: through a proxy, the proxy would pick the address
                // and the internal-address check would see nothing.
                .no_proxy()
                .timeout(s.timeout)
                .redirect(redirect_policy(s.allow_private_hosts))
                .dns_resolver(Arc::new(GuardedDns {
                    dns: d.clone(),
                    allow_private: s.allow_private_hosts,
                }))
                .build()
                .map_err(|e| format!("HTTPS client: {e}")),
            Err(e) => Err(e.clone()),
        };
        Handles {
            dns,
            web,
            well_known_port: s.well_known_port,
            timeout: s.timeout,
        }
    }

    /// The DID `handle` (normalized) names: the DNS method, then, if it found nothing or
    /// failed, the HTTPS method. Not yet checked against the DID document.
    pub(crate) async fn did_of(&self, handle: &str) -> Result<Did, PdsError> {
        let dns_failure = match self.dns_step(handle).await? {
            Step::Did(d) => return Ok(d),
            Step::Absent => None,
            Step::Unavailable(why) => Some(why),
        };
        match self.https_step(handle).await? {
            Step::Did(d) => Ok(d),
            Step::Absent => Err(match dns_failure {
                None => PdsError::Handle(handle.to_owned()),
                Some(why) => PdsError::Unavailable(why),
            }),
            Step::Unavailable(why) => Err(PdsError::Unavailable(why)),
        }
    }

    async fn dns_step(&self, handle: &str) -> Result<Step, PdsError> {
        let name = format!("_atproto.{handle}.");
        // A handle too long for the prefix can only use the HTTPS method.
        if name.len() > 254 {
            return Ok(Step::Absent);
        }
        let dns = match &self.dns {
            Ok(d) => d,
            Err(e) => return Ok(Step::Unavailable(e.clone())),
        };
        let txt = match tokio::time::timeout(self.timeout, dns.txt_lookup(name)).await {
            Err(_) => return Ok(Step::Unavailable(format!("DNS TXT of {handle} timed out"))),
            Ok(Err(e)) if is_absent(&e) => return Ok(Step::Absent),
            Ok(Err(e)) => return Ok(Step::Unavailable(format!("DNS TXT of {handle}: {e}"))),
            Ok(Ok(t)) => t,
        };
        let records: Vec<Vec<u8>> = txt.iter().map(|t| t.txt_data().concat()).collect();
        Ok(match txt_did(handle, &records)? {
            Some(d) => Step::Did(d),
            None => Step::Absent,
        })
    }

    async fn https_step(&self, handle: &str) -> Result<Step, PdsError> {
        let web = match &self.web {
            Ok(w) => w,
            Err(e) => return Ok(Step::Unavailable(e.clone())),
        };
        let port = self
            .well_known_port
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        let url = format!("https://{handle}{port}/.well-known/atproto-did");
        match tokio::time::timeout(self.timeout, fetch_well_known(web, &url)).await {
            Err(_) => Ok(Step::Unavailable(format!("{url}: timed out"))),
            Ok(Err(e)) => well_known_error(handle, &url, &e),
            Ok(Ok(None)) => Ok(Step::Absent),
            Ok(Ok(Some(body))) => {
                let did = std::str::from_utf8(&body)
                    .ok()
                    .and_then(|b| Did::new(b.trim()).ok())
                    .ok_or_else(|| PdsError::Handle(handle.to_owned()))?;
                Ok(Step::Did(did))
            }
        }
    }
}

/// The body of a 2xx answer (`None` for another status but 5xx and 429), read up to
/// [`MAX_WELL_KNOWN_BYTES`]: a longer one is refused without reading on.
async fn fetch_well_known(web: &reqwest::Client, url: &str) -> Result<Option<Vec<u8>>, WebError> {
    let mut resp = web.get(url).send().await.map_err(WebError::Http)?;
    let status = resp.status().as_u16();
    if status >= 500 || status == 429 {
        return Err(WebError::Status(status));
    }
    if !(200..300).contains(&status) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(WebError::Http)? {
        if body.len() + chunk.len() > MAX_WELL_KNOWN_BYTES {
            return Err(WebError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

enum WebError {
    Http(reqwest::Error),
    Status(u16),
    TooLarge,
}

/// A failed well-known request as a step: refused (an internal host, a body too large),
/// absent (the host has no address) or unavailable (anything else).
fn well_known_error(handle: &str, url: &str, e: &WebError) -> Result<Step, PdsError> {
    let e = match e {
        WebError::TooLarge => return Err(PdsError::Handle(handle.to_owned())),
        WebError::Status(s) => return Ok(Step::Unavailable(format!("{url}: status {s}"))),
        WebError::Http(e) => e,
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        match s.downcast_ref::<HostError>() {
            Some(HostError::Refused(why)) => {
                tracing::info!(%handle, %why, "well-known host refused");
                return Err(PdsError::Handle(handle.to_owned()));
            }
            Some(HostError::NotFound(_)) => return Ok(Step::Absent),
            Some(HostError::Unavailable(..)) | None => source = s.source(),
        }
    }
    Ok(Step::Unavailable(format!("{url}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rec_6_handle_syntax_and_normal_form() {
        assert_eq!(
            normalize_handle("@Alice.Example.COM").unwrap(),
            "alice.example.com"
        );
        for ok in [
            "a.co",
            "8.cn",
            "xn--ls8h.test",
            "name.t--t",
            "x-1.example.org",
        ] {
            assert!(normalize_handle(ok).is_ok(), "{ok}");
        }
        let long = format!("{}.com", "a.".repeat(125));
        for bad in [
            "org",
            "name.org.",
            ".name.org",
            "john..test",
            "jo@hn.test",
            "john.0",
            "cn.8",
            "-a.com",
            "a-.com",
            "laptop.local",
            "blah.arpa",
            "x.onion",
            "a.localhost",
            "a.internal",
            "a.invalid",
            "a b.com",
            "",
            &long,
        ] {
            assert!(
                matches!(normalize_handle(bad), Err(PdsError::Handle(_))),
                "{bad}"
            );
        }
        assert!(normalize_handle(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn rec_6_txt_records() {
        let plc = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        let other = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
        let r = |v: &[&str]| -> Vec<Vec<u8>> { v.iter().map(|s| s.as_bytes().to_vec()).collect() };
        let did = |v: &[&str]| txt_did("h.test", &r(v));
        assert_eq!(
            did(&[&format!("did={plc}")]).unwrap().unwrap().as_str(),
            plc
        );
        // Other records are ignored; the same DID twice is one answer.
        let same = did(&["v=spf1 -all", &format!("did={plc}"), &format!("did={plc}")]);
        assert_eq!(same.unwrap().unwrap().as_str(), plc);
        assert!(did(&["v=spf1 -all", "DID=x"]).unwrap().is_none());
        assert!(did(&[]).unwrap().is_none());
        for refused in [
            vec![format!("did={plc}"), format!("did={other}")],
            vec![format!("did= {plc}")],
            vec!["did=not-a-did".into()],
            vec!["did=".into()],
            vec![format!("did={plc}"), "did=did:example:x".into()],
        ] {
            let refs: Vec<&str> = refused.iter().map(String::as_str).collect();
            assert!(
                matches!(did(&refs), Err(PdsError::Handle(_))),
                "{refused:?}"
            );
        }
        assert!(txt_did("h.test", &[b"did=\xff".to_vec()]).is_err());
    }
}
