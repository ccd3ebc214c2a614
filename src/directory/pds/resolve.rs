//! Identity resolution (spec/records.md REC-6): handle → DID (checked both ways), DID → DID
//! document (did:plc from a PLC directory, did:web from `/.well-known/did.json`), and the
//! account's PDS from the document's `#atproto_pds` service.

use atrium_api::did_doc::DidDocument;
use serde::Deserialize;

use super::xrpc::Http;
use super::PdsError;
use crate::identity::Did;

/// Where resolution looks things up.
#[derive(Clone, Debug)]
pub(crate) struct Resolver {
    pub(crate) plc_url: String,
    pub(crate) handle_resolver: String,
    pub(crate) did_web_scheme: String,
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
            _ => did_web_url(did, &self.did_web_scheme)?,
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
        let handle = handle.trim_start_matches('@').to_ascii_lowercase();
        if handle.is_empty() || handle.len() > 253 || !handle.contains('.') {
            return Err(PdsError::Handle(handle));
        }
        let out: ResolveHandleOut = http
            .query(
                &self.handle_resolver,
                "com.atproto.identity.resolveHandle",
                [("handle", handle.as_str())],
                None,
            )
            .await
            .map_err(|e| match e {
                PdsError::Refused { .. } => PdsError::Handle(handle.clone()),
                other => other,
            })?;
        let did = Did::new(&out.did).map_err(|_| PdsError::Handle(handle.clone()))?;
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
}
