//! Identity resolution (spec/records.md REC-6): handle → DID (DNS then HTTPS, or a configured
//! XRPC service; checked both ways), DID → DID
//! document (did:plc from a PLC directory, did:web from `/.well-known/did.json`), and the
//! account's PDS from the document's `#atproto_pds` service.

use atrium_api::did_doc::DidDocument;
use serde::Deserialize;

use super::handle::{normalize_handle, Handles};
use super::xrpc::Http;
use super::PdsError;
use crate::identity::Did;

/// Where resolution looks things up.
#[derive(Clone, Debug)]
pub(crate) struct Resolver {
    pub(crate) plc_url: String,
    /// An XRPC service trusted to resolve handles instead of DNS and HTTPS.
    pub(crate) handle_resolver: Option<String>,
    /// DNS and HTTPS handle resolution.
    pub(crate) handles: Handles,
    pub(crate) did_web_scheme: String,
    pub(crate) allow_private_did_web: bool,
}

/// Whether an address is one a did:web host must not resolve to: loopback, private,
/// link-local, unspecified, broadcast, shared (CGNAT) or IPv6 unique-local (REC-6).
pub(crate) fn is_internal(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => {
            a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || (a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64)
        }
        std::net::IpAddr::V6(a) => {
            let first = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped().is_some_and(|v4| is_internal(v4.into()))
        }
    }
}

/// Refuses a did:web host (`host` or `host:port`) that is, or resolves to, an internal
/// address (REC-6), unless allowed.
async fn check_did_web_host(host_port: &str, https: bool) -> Result<(), PdsError> {
    let refused = || PdsError::InvalidResponse(format!("did:web host {host_port} is internal"));
    let with_port = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:{}", if https { 443 } else { 80 })
    };
    let host = with_port
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or_default();
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return Err(refused());
    }
    let addrs = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::lookup_host(with_port.clone()),
    )
    .await
    .map_err(|_| PdsError::Unavailable(format!("resolving {host_port} timed out")))?
    .map_err(|e| PdsError::Unavailable(format!("resolving {host_port}: {e}")))?;
    let mut any = false;
    for a in addrs {
        any = true;
        if is_internal(a.ip()) {
            return Err(refused());
        }
    }
    if !any {
        return Err(PdsError::Unavailable(format!("{host_port} has no address")));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ResolveHandleOut {
    did: String,
}

/// The URL of a did:web document: `did:web:host%3Aport:a:b` → `scheme://host:port/a/b/did.json`,
/// `did:web:host` → `scheme://host/.well-known/did.json`.
pub(crate) fn did_web_url(did: &Did, scheme: &str) -> Result<String, PdsError> {
    let id = did
        .as_str()
        .strip_prefix("did:web:")
        .ok_or_else(|| PdsError::InvalidResponse(format!("{did} is not did:web")))?;
    let mut parts = id.split(':');
    let host = parts
        .next()
        .unwrap_or_default()
        .replace("%3A", ":")
        .replace("%3a", ":");
    if host.is_empty() || host.contains(['/', '@', '?', '#', '%']) {
        return Err(PdsError::InvalidResponse(format!(
            "bad did:web host in {did}"
        )));
    }
    let path: Vec<&str> = parts.collect();
    Ok(if path.is_empty() {
        format!("{scheme}://{host}/.well-known/did.json")
    } else {
        format!("{scheme}://{host}/{}/did.json", path.join("/"))
    })
}

impl Resolver {
    /// The DID document of `did`; its `id` must be `did`.
    pub(crate) async fn did_document(
        &self,
        http: &Http,
        did: &Did,
    ) -> Result<DidDocument, PdsError> {
        let url = match did.method() {
            "plc" => format!("{}/{}", self.plc_url.trim_end_matches('/'), did),
            _ => {
                let url = did_web_url(did, &self.did_web_scheme)?;
                if !self.allow_private_did_web {
                    let host = url
                        .split_once("://")
                        .and_then(|(_, rest)| rest.split('/').next())
                        .unwrap_or_default();
                    check_did_web_host(host, self.did_web_scheme == "https").await?;
                }
                url
            }
        };
        let doc: DidDocument = http.get_json(&url).await.map_err(|e| match e {
            PdsError::Refused { .. } => {
                PdsError::InvalidResponse(format!("no DID document for {did}"))
            }
            other => other,
        })?;
        if doc.id != did.as_str() {
            return Err(PdsError::InvalidResponse(format!(
                "DID document of {did} names {}",
                doc.id.chars().take(128).collect::<String>()
            )));
        }
        Ok(doc)
    }

    /// The PDS endpoint of `did` (its `#atproto_pds` service, an http(s) URL).
    pub(crate) async fn pds_endpoint(&self, http: &Http, did: &Did) -> Result<String, PdsError> {
        let doc = self.did_document(http, did).await?;
        doc.get_pds_endpoint()
            .map(|s| s.trim_end_matches('/').to_owned())
            .ok_or_else(|| PdsError::NoPdsEndpoint(did.clone()))
    }

    /// The DID of `handle`, accepted only if the DID document claims the handle back
    /// (`alsoKnownAs` contains `at://<handle>`).
    pub(crate) async fn resolve_handle(&self, http: &Http, handle: &str) -> Result<Did, PdsError> {
        let handle = normalize_handle(handle)?;
        let did = match &self.handle_resolver {
            Some(service) => xrpc_handle(http, service, &handle).await?,
            None => self.handles.did_of(&handle).await?,
        };
        let doc = self.did_document(http, &did).await?;
        let claimed = doc.also_known_as.unwrap_or_default().iter().any(|a| {
            a.strip_prefix("at://")
                .is_some_and(|h| h.eq_ignore_ascii_case(&handle))
        });
        if !claimed {
            return Err(PdsError::Handle(handle));
        }
        Ok(did)
    }
}

/// The DID a configured XRPC service gives for `handle` (`com.atproto.identity.resolveHandle`).
async fn xrpc_handle(http: &Http, service: &str, handle: &str) -> Result<Did, PdsError> {
    let out: ResolveHandleOut = http
        .query(
            service,
            "com.atproto.identity.resolveHandle",
            [("handle", handle)],
            None,
        )
        .await
        .map_err(|e| match e {
            PdsError::Refused { .. } => PdsError::Handle(handle.to_owned()),
            other => other,
        })?;
    Did::new(&out.did).map_err(|_| PdsError::Handle(handle.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rec_6_did_web_urls() {
        let d = |s: &str| Did::new(s).unwrap();
        assert_eq!(
            did_web_url(&d("did:web:example.com"), "https").unwrap(),
            "https://example.com/.well-known/did.json"
        );
        assert_eq!(
            did_web_url(&d("did:web:localhost%3A8080"), "http").unwrap(),
            "http://localhost:8080/.well-known/did.json"
        );
        assert_eq!(
            did_web_url(&d("did:web:example.com:u:alice"), "https").unwrap(),
            "https://example.com/u/alice/did.json"
        );
        assert!(did_web_url(&d("did:web:evil%40host"), "https").is_err());
    }

    #[test]
    fn rec_6_internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_internal(a.parse().unwrap()), "{a}");
        }
    }

    /// REC-6: a did:web DID naming a loopback host is refused before anything is fetched.
    #[tokio::test]
    async fn rec_6_did_web_on_loopback_refused_unless_allowed() {
        let timeout = std::time::Duration::from_secs(2);
        let r = Resolver {
            plc_url: "http://127.0.0.1:1".into(),
            handle_resolver: None,
            handles: Handles::new(&super::super::handle::HandleSettings {
                dns_servers: &["127.0.0.1:1".parse().unwrap()],
                well_known_port: None,
                allow_private_hosts: false,
                timeout,
                roots: &[],
            }),
            did_web_scheme: "http".into(),
            allow_private_did_web: false,
        };
        let http = Http::new(timeout, &[]);
        for did in [
            "did:web:localhost%3A9",
            "did:web:127.0.0.1%3A9",
            "did:web:10.0.0.1",
        ] {
            let e = r
                .did_document(&http, &Did::new(did).unwrap())
                .await
                .unwrap_err();
            assert!(e.to_string().contains("internal"), "{did}: {e}");
        }
    }
}
