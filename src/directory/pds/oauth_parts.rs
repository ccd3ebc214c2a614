//! What atrium-oauth's client is generic over, from the directory's own parts: its stores on
//! the SQLite [`Store`] (REC-14, REC-15), DID and handle resolution through the directory's
//! resolver (REC-6), and HTTP through its client (timeouts, rustls).

use std::sync::{Arc, Mutex};

use atrium_api::did_doc::DidDocument;
use atrium_api::types::string::{Did as ADid, Handle};
use atrium_common::resolver::Resolver as AResolver;
use atrium_common::store::Store as AStore;
use atrium_oauth::store::session::{Session, SessionStore};
use atrium_oauth::store::state::{InternalStateData, StateStore};

use super::resolve::Resolver;
use super::xrpc::Http;
use super::PdsError;
use crate::identity::{unix_now, Did};
use crate::storage::{oauth as table, StorageError, Store};

/// The store the OAuth parts share (a connection of its own to the client's database).
pub(crate) type Shared = Arc<Mutex<Store>>;

pub(crate) fn with<T>(
    store: &Shared,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let g = store.lock().unwrap_or_else(|p| p.into_inner());
    f(&g.conn)
}

/// Authorization requests under way, by `state` (REC-14).
pub(crate) struct Requests(pub(crate) Shared);

impl AStore<String, InternalStateData> for Requests {
    type Error = StorageError;

    async fn get(&self, key: &String) -> Result<Option<InternalStateData>, StorageError> {
        let Some(v) = with(&self.0, |c| table::request_get(c, key, unix_now()))? else {
            return Ok(None);
        };
        if !p256_key(&v, "dpop_key") {
            return Err(StorageError::Corrupt("OAuth request"));
        }
        serde_json::from_slice(&v)
            .map(Some)
            .map_err(|_| StorageError::Corrupt("OAuth request"))
    }

    async fn set(&self, key: String, value: InternalStateData) -> Result<(), StorageError> {
        let v = serde_json::to_vec(&value).map_err(|_| StorageError::Corrupt("OAuth request"))?;
        with(&self.0, |c| table::request_set(c, &key, &v, unix_now()))
    }

    async fn del(&self, key: &String) -> Result<(), StorageError> {
        with(&self.0, |c| table::request_delete(c, key))
    }

    async fn clear(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

impl StateStore for Requests {}

/// Sessions, by account (REC-15), written with the redirect URI of the client that holds them
/// (its loopback client id names it: a resumed session needs the same client).
pub(crate) struct Sessions {
    pub(crate) store: Shared,
    pub(crate) redirect_uri: String,
}

impl AStore<ADid, Session> for Sessions {
    type Error = StorageError;

    async fn get(&self, key: &ADid) -> Result<Option<Session>, StorageError> {
        let Some((_, v)) = with(&self.store, |c| table::session_get(c, key.as_str()))? else {
            return Ok(None);
        };
        decode_session(&v).map(Some)
    }

    async fn set(&self, key: ADid, value: Session) -> Result<(), StorageError> {
        let v = serde_json::to_vec(&value).map_err(|_| StorageError::Corrupt("OAuth session"))?;
        with(&self.store, |c| {
            table::session_set(c, key.as_str(), &self.redirect_uri, &v, unix_now())
        })
    }

    async fn del(&self, key: &ADid) -> Result<(), StorageError> {
        with(&self.store, |c| table::session_delete(c, key.as_str()))
    }

    async fn clear(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

impl SessionStore for Sessions {}

/// A stored session, refused unless its DPoP key is an EC P-256 key (atrium-oauth 0.2 panics
/// on any other key type).
pub(crate) fn decode_session(v: &[u8]) -> Result<Session, StorageError> {
    if !p256_key(v, "dpop_key") {
        return Err(StorageError::Corrupt("OAuth session"));
    }
    serde_json::from_slice(v).map_err(|_| StorageError::Corrupt("OAuth session"))
}

/// Whether the JSON object `v` has under `field` an EC key on P-256.
fn p256_key(v: &[u8], field: &str) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(v) else {
        return false;
    };
    let key = &json[field];
    key["kty"] == "EC" && key["crv"] == "P-256"
}

/// DID documents through the directory's resolver (did:plc from its PLC, did:web with its
/// address checks, REC-6).
pub(crate) struct DidDocs {
    pub(crate) http: Http,
    pub(crate) resolver: Resolver,
}

/// Keeps a directory error inside atrium's error, so that its kind (retryable or not) can be
/// read back ([`super::oauth::classify`]).
fn identity_error(e: PdsError) -> atrium_identity::Error {
    atrium_identity::Error::HttpClient(Box::new(e))
}

impl AResolver for DidDocs {
    type Input = ADid;
    type Output = DidDocument;
    type Error = atrium_identity::Error;

    async fn resolve(&self, did: &ADid) -> Result<DidDocument, atrium_identity::Error> {
        let did = Did::new(did.as_str())
            .map_err(|e| identity_error(PdsError::InvalidResponse(e.to_string())))?;
        self.resolver
            .did_document(&self.http, &did)
            .await
            .map_err(identity_error)
    }
}

/// Handles through the directory's resolver: DNS, then HTTPS, checked both ways (REC-6).
pub(crate) struct Handles {
    pub(crate) http: Http,
    pub(crate) resolver: Resolver,
}

impl AResolver for Handles {
    type Input = Handle;
    type Output = ADid;
    type Error = atrium_identity::Error;

    async fn resolve(&self, handle: &Handle) -> Result<ADid, atrium_identity::Error> {
        let did = self
            .resolver
            .resolve_handle(&self.http, handle.as_str())
            .await
            .map_err(identity_error)?;
        ADid::new(did.as_str().to_owned())
            .map_err(|e| identity_error(PdsError::InvalidResponse(e.to_owned())))
    }
}
