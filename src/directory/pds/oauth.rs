//! Signing in with OAuth (spec/records.md REC-13 … REC-16), the default way for the PDS
//! directory to write to the account's repository: atrium-oauth's client as the ATProto
//! loopback client (`client_id` `http://localhost?redirect_uri=…&scope=…`), with PAR, PKCE,
//! DPoP-bound tokens refreshed when the PDS says they expired, and the session (DPoP key and
//! tokens) kept in the SQLite [`Store`]. App passwords ([`PdsDirectory::login`]) stay as the
//! fallback.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use atrium_api::types::string::Did as ADid;
use atrium_oauth::{
    AtprotoLocalhostClientMetadata, AuthorizeOptions, CallbackParams, KnownScope, OAuthClient,
    OAuthClientConfig, OAuthResolverConfig, OAuthSession, Scope,
};
use futures_util::FutureExt;

use super::directory::PdsDirectory;
use super::oauth_parts::{with, DidDocs, Handles, Requests, Sessions, Shared};
use super::PdsError;
use crate::identity::Did;
use crate::storage::{oauth as table, Store};

type Client = OAuthClient<Requests, Sessions, DidDocs, Handles, super::xrpc::Http>;

/// An OAuth session's XRPC client: DPoP proofs, and a refresh when the PDS says the access
/// token expired.
pub(crate) type OAuthXrpc = OAuthSession<super::xrpc::Http, DidDocs, Handles, Sessions>;

/// The scopes asked for: `atproto`, and `transition:generic` for writes to the repository's
/// `dev.atmls.*` collections (REC-13).
fn scopes() -> Vec<Scope> {
    vec![
        Scope::Known(KnownScope::Atproto),
        Scope::Known(KnownScope::TransitionGeneric),
    ]
}

/// The signed-in OAuth account.
#[derive(Clone)]
pub(crate) struct Active {
    pub(crate) did: Did,
    pub(crate) handle: String,
    pub(crate) pds: String,
    pub(crate) xrpc: Arc<OAuthXrpc>,
}

/// The session a write is made with.
pub(crate) enum Writer {
    /// Logged in with an app password.
    Password(super::session::Session),
    /// Signed in with OAuth.
    OAuth(Active),
}

impl Writer {
    pub(crate) fn did(&self) -> &Did {
        match self {
            Writer::Password(s) => &s.did,
            Writer::OAuth(a) => &a.did,
        }
    }

    pub(crate) fn pds(&self) -> &str {
        match self {
            Writer::Password(s) => &s.pds,
            Writer::OAuth(a) => &a.pds,
        }
    }

    pub(crate) fn auth(&self) -> super::xrpc::Auth<'_> {
        match self {
            Writer::Password(s) => super::xrpc::Auth::Bearer(&s.access),
            Writer::OAuth(a) => super::xrpc::Auth::OAuth(&a.xrpc),
        }
    }

    /// Whether the directory refreshes it (an OAuth session refreshes itself).
    pub(crate) fn is_password(&self) -> bool {
        matches!(self, Writer::Password(_))
    }
}

/// The directory's OAuth state: where sessions are kept, and the signed-in account.
pub(crate) struct OAuthState {
    store: Mutex<Option<Shared>>,
    pub(crate) active: tokio::sync::Mutex<Option<Active>>,
}

impl OAuthState {
    pub(crate) fn new() -> Self {
        OAuthState {
            store: Mutex::new(None),
            active: tokio::sync::Mutex::new(None),
        }
    }

    /// The store; an in-memory one until [`PdsDirectory::with_oauth_store`] gives one.
    fn store(&self) -> Result<Shared, PdsError> {
        let mut g = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = g.as_ref() {
            return Ok(s.clone());
        }
        let s = Arc::new(Mutex::new(Store::in_memory().map_err(PdsError::Storage)?));
        *g = Some(s.clone());
        Ok(s)
    }
}

/// What a redirect to the loopback client carried back (RFC 6749 §4.1.2, RFC 9207).
#[derive(Debug, Default)]
struct Redirect {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Reads the query of a redirect URL (or the query alone).
fn parse_redirect(url: &str) -> Redirect {
    let query = url.split_once('?').map_or(url, |(_, q)| q);
    let query = query.split('#').next().unwrap_or_default();
    let mut r = Redirect::default();
    let pairs: Vec<(String, String)> = serde_html_form::from_str(query).unwrap_or_default();
    for (k, v) in pairs {
        let slot = match k.as_str() {
            "code" => &mut r.code,
            "state" => &mut r.state,
            "iss" => &mut r.iss,
            "error" => &mut r.error,
            "error_description" => &mut r.error_description,
            _ => continue,
        };
        slot.get_or_insert(v);
    }
    r
}

/// Runs an atrium-oauth future, turning a panic inside it into an error: atrium-oauth 0.2
/// has `todo!()` and `unwrap()` on paths a server's answer can reach (a refused code
/// exchange, an endpoint URL without a host), and no panic may come from untrusted input.
pub(crate) async fn contained<T>(
    f: impl std::future::Future<Output = Result<T, atrium_oauth::Error>>,
) -> Result<T, PdsError> {
    match AssertUnwindSafe(f).catch_unwind().await {
        Ok(r) => r.map_err(classify),
        Err(_) => Err(PdsError::OAuth {
            error: "client_failure".into(),
            description: "the OAuth client failed on the server's answer".into(),
        }),
    }
}

/// Sorts atrium-oauth's errors into retryable or not (REC-16).
pub(crate) fn classify(e: atrium_oauth::Error) -> PdsError {
    use atrium_oauth::Error as E;
    match e {
        E::Identity(atrium_identity::Error::HttpClient(b)) => match b.downcast::<PdsError>() {
            Ok(p) => *p,
            Err(b) => PdsError::Unavailable(b.to_string()),
        },
        E::StateStore(b) | E::SessionStore(b) => match b.downcast::<crate::storage::StorageError>()
        {
            Ok(s) => PdsError::Storage(*s),
            Err(b) => PdsError::InvalidResponse(b.to_string()),
        },
        E::Callback(m) | E::Authorize(m) => PdsError::Auth(m),
        other => from_text(&other.to_string()),
    }
}

/// atrium-oauth's inner error types are private: their text tells a network failure or a
/// server error (retryable) from a refusal.
fn from_text(text: &str) -> PdsError {
    if text.contains("http client error") {
        return PdsError::Unavailable(text.to_owned());
    }
    if text.contains("session does not exist") {
        return PdsError::NotLoggedIn;
    }
    let status = text
        .split_once("http status: ")
        .and_then(|(_, rest)| rest.get(..3))
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(s) if s >= 500 || s == 429 => PdsError::Unavailable(text.to_owned()),
        Some(_) => PdsError::OAuth {
            error: "refused".into(),
            description: text.chars().take(512).collect(),
        },
        None => PdsError::InvalidResponse(text.chars().take(512).collect()),
    }
}

/// atrium-oauth 0.2 expects `204` from the revocation endpoint; the reference PDS answers
/// `200`, as RFC 7009 §2.2 says: both are a revocation.
fn accept_200(r: Result<(), PdsError>) -> Result<(), PdsError> {
    match r {
        Err(PdsError::OAuth { description, .. }) if description.starts_with("http status: 200") => {
            Ok(())
        }
        r => r,
    }
}

impl PdsDirectory {
    /// Keeps OAuth sessions and authorization requests in `store` (REC-15): open a second
    /// connection to the client's database with [`Store::open`]. Without one they live in
    /// memory and are lost with the directory.
    ///
    /// ```
    /// use atmls::directory::pds::{PdsConfig, PdsDirectory};
    /// use atmls::storage::Store;
    /// let tmp = tempfile::tempdir()?;
    /// let store = Store::open(tmp.path().join("atmls.db"))?;
    /// let dir = PdsDirectory::new(PdsConfig::new()).with_oauth_store(store);
    /// # drop(dir);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_oauth_store(self, store: Store) -> Self {
        *self.oauth.store.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Arc::new(Mutex::new(store)));
        self
    }

    fn oauth_client(&self, redirect_uri: &str) -> Result<Client, PdsError> {
        let store = self.oauth.store()?;
        let config = OAuthClientConfig {
            client_metadata: AtprotoLocalhostClientMetadata {
                redirect_uris: Some(vec![redirect_uri.to_owned()]),
                scopes: Some(scopes()),
            },
            keys: None,
            state_store: Requests(store.clone()),
            session_store: Sessions {
                store,
                redirect_uri: redirect_uri.to_owned(),
            },
            resolver: OAuthResolverConfig {
                did_resolver: DidDocs {
                    http: self.http.clone(),
                    resolver: self.resolver.clone(),
                },
                handle_resolver: Handles {
                    http: self.http.clone(),
                    resolver: self.resolver.clone(),
                },
                authorization_server_metadata: Default::default(),
                protected_resource_metadata: Default::default(),
            },
            http_client: self.http.clone(),
        };
        OAuthClient::new(config).map_err(|e| PdsError::Config(format!("OAuth client: {e}")))
    }

    /// Starts signing in with OAuth (REC-13): resolves `identifier` (handle or DID) to its
    /// PDS and authorization server, pushes the authorization request (PAR, PKCE, a new DPoP
    /// key, kept in the store with its `state`, REC-14), and returns the URL to open in the
    /// user's browser. `redirect_uri` is where the browser comes back: a loopback URL
    /// (`http://127.0.0.1:<port>/<path>` or `http://[::1]:<port>/<path>`) that the app
    /// listens on; the redirect's URL then goes to [`oauth_complete`](Self::oauth_complete).
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), atmls::directory::pds::PdsError> {
    /// use atmls::directory::pds::{PdsConfig, PdsDirectory};
    /// let dir = PdsDirectory::new(PdsConfig::new());
    /// let url = dir.oauth_begin("alice.example.com", "http://127.0.0.1:8631/callback").await?;
    /// println!("open {url}");
    /// // … the browser comes back to http://127.0.0.1:8631/callback?code=…&state=…&iss=…
    /// # let redirected = String::new();
    /// let did = dir.oauth_complete(&redirected).await?;
    /// # Ok(()) }
    /// ```
    pub async fn oauth_begin(
        &self,
        identifier: &str,
        redirect_uri: &str,
    ) -> Result<String, PdsError> {
        let client = self.oauth_client(redirect_uri)?;
        let options = AuthorizeOptions {
            redirect_uri: Some(redirect_uri.to_owned()),
            scopes: scopes(),
            prompt: None,
            // Given back by the stored request: the client of the redirect is built with it.
            state: Some(redirect_uri.to_owned()),
        };
        contained(client.authorize(identifier, options)).await
    }

    /// Completes signing in with the URL the browser was redirected to (or its query):
    /// exchanges the code for DPoP-bound tokens, checks that the account's DID document
    /// names this authorization server's PDS, keeps the session in the store (REC-15) and
    /// makes it the directory's session. Returns the account's DID. A refusal (the user
    /// denied, the server refused the code) is [`PdsError::OAuth`], not retryable; a
    /// `state` that is unknown, used or expired is [`PdsError::Auth`] (REC-14).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::directory::pds::{PdsConfig, PdsDirectory, PdsError};
    /// let dir = PdsDirectory::new(PdsConfig::new());
    /// // The user denied access at the authorization server.
    /// let denied = "http://127.0.0.1:8631/callback?error=access_denied&state=x&iss=y";
    /// let e = dir.oauth_complete(denied).await.unwrap_err();
    /// assert!(matches!(&e, PdsError::OAuth { error, .. } if error == "access_denied"));
    /// assert!(!e.is_retryable());
    /// // A code for a request this directory never made.
    /// let forged = "http://127.0.0.1:8631/callback?code=c&state=never-made&iss=y";
    /// assert!(matches!(dir.oauth_complete(forged).await, Err(PdsError::Auth(_))));
    /// # });
    /// ```
    pub async fn oauth_complete(&self, redirect: &str) -> Result<Did, PdsError> {
        let r = parse_redirect(redirect);
        let store = self.oauth.store()?;
        let state = r
            .state
            .clone()
            .ok_or_else(|| PdsError::Auth("redirect without state".into()))?;
        if let Some(error) = r.error {
            // The request is over (REC-14): its verifier and key are dropped.
            with(&store, |c| table::request_delete(c, &state)).map_err(PdsError::Storage)?;
            return Err(PdsError::OAuth {
                error,
                description: r.error_description.unwrap_or_default(),
            });
        }
        let code = r
            .code
            .ok_or_else(|| PdsError::Auth("redirect without code".into()))?;
        let redirect_uri = self.request_redirect_uri(&store, &state).await?;
        let client = self.oauth_client(&redirect_uri)?;
        let params = CallbackParams {
            code,
            state: Some(state),
            iss: r.iss,
        };
        let (session, _) = contained(client.callback(params)).await?;
        self.activate(session).await
    }

    /// The redirect URI an authorization request under way was made with.
    async fn request_redirect_uri(&self, store: &Shared, state: &str) -> Result<String, PdsError> {
        use atrium_common::store::Store as _;
        let request = Requests(store.clone())
            .get(&state.to_owned())
            .await
            .map_err(PdsError::Storage)?
            .ok_or_else(|| PdsError::Auth("unknown, used or expired OAuth state".into()))?;
        request
            .app_state
            .ok_or_else(|| PdsError::Auth("OAuth request without its redirect URI".into()))
    }

    /// Makes a session the directory's: its account, handle and PDS from the DID document.
    async fn activate(&self, session: OAuthXrpc) -> Result<Did, PdsError> {
        use atrium_api::agent::SessionManager;
        let sub = session.did().await.ok_or(PdsError::NotLoggedIn)?;
        let did = Did::new(sub.as_str()).map_err(|e| PdsError::InvalidResponse(e.to_string()))?;
        let doc = self.resolver.did_document(&self.http, &did).await?;
        let handle = doc
            .also_known_as
            .unwrap_or_default()
            .iter()
            .find_map(|a| a.strip_prefix("at://").map(str::to_owned))
            .unwrap_or_default();
        let pds = self.pds_of(&did).await?;
        *self.oauth.active.lock().await = Some(Active {
            did: did.clone(),
            handle,
            pds,
            xrpc: Arc::new(session),
        });
        self.forget_password_session().await;
        Ok(did)
    }

    /// Resumes the session of `did` kept in the store (after a restart): no browser, no
    /// password (REC-15). Its tokens are refreshed when the PDS says they expired; a session
    /// the PDS no longer accepts (revoked, expired refresh token) fails the first write with
    /// [`PdsError::Auth`] (REC-16).
    ///
    /// ```no_run
    /// # async fn f(dir: atmls::directory::pds::PdsDirectory, did: atmls::identity::Did)
    /// # -> Result<(), atmls::directory::pds::PdsError> {
    /// dir.oauth_resume(&did).await?;
    /// assert_eq!(dir.logged_in().await.map(|(d, _)| d), Some(did));
    /// # Ok(()) }
    /// ```
    pub async fn oauth_resume(&self, did: &Did) -> Result<(), PdsError> {
        let store = self.oauth.store()?;
        let (redirect_uri, _) = with(&store, |c| table::session_get(c, did.as_str()))
            .map_err(PdsError::Storage)?
            .ok_or(PdsError::NotLoggedIn)?;
        let client = self.oauth_client(&redirect_uri)?;
        let sub = ADid::new(did.as_str().to_owned())
            .map_err(|e| PdsError::InvalidResponse(e.to_owned()))?;
        let session = contained(client.restore(&sub)).await?;
        self.activate(session).await.map(|_| ())
    }

    /// The accounts whose OAuth session is kept in the store.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::directory::pds::{PdsConfig, PdsDirectory};
    /// let dir = PdsDirectory::new(PdsConfig::new());
    /// assert!(dir.oauth_accounts()?.is_empty());
    /// # Ok::<(), atmls::directory::pds::PdsError>(())
    /// # }).unwrap();
    /// ```
    pub fn oauth_accounts(&self) -> Result<Vec<Did>, PdsError> {
        let store = self.oauth.store()?;
        let dids = with(&store, table::session_dids).map_err(PdsError::Storage)?;
        Ok(dids.iter().filter_map(|d| Did::new(d).ok()).collect())
    }

    /// Signs out of the OAuth session: revokes its tokens at the authorization server and
    /// forgets it (the store's copy too, even when the server cannot be reached: the error
    /// is returned then).
    ///
    /// ```no_run
    /// # async fn f(dir: atmls::directory::pds::PdsDirectory) -> Result<(), atmls::directory::pds::PdsError> {
    /// dir.oauth_sign_out().await?;
    /// assert!(dir.logged_in().await.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn oauth_sign_out(&self) -> Result<(), PdsError> {
        let Some(active) = self.oauth.active.lock().await.take() else {
            return Err(PdsError::NotLoggedIn);
        };
        let store = self.oauth.store()?;
        let row = with(&store, |c| table::session_get(c, active.did.as_str()))
            .map_err(PdsError::Storage)?;
        let revoked = match row {
            Some((redirect_uri, _)) => {
                let client = self.oauth_client(&redirect_uri)?;
                let sub = ADid::new(active.did.as_str().to_owned())
                    .map_err(|e| PdsError::InvalidResponse(e.to_owned()))?;
                accept_200(contained(client.revoke(&sub)).await)
            }
            None => Ok(()),
        };
        with(&store, |c| table::session_delete(c, active.did.as_str()))
            .map_err(PdsError::Storage)?;
        revoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rec_14_redirect_query_parsed() {
        let r = parse_redirect("http://127.0.0.1:1/cb?state=s&iss=http%3A%2F%2Fx&code=c");
        assert_eq!(r.code.as_deref(), Some("c"));
        assert_eq!(r.state.as_deref(), Some("s"));
        assert_eq!(r.iss.as_deref(), Some("http://x"));
        let r = parse_redirect("error=access_denied&error_description=no&state=s");
        assert_eq!(r.error.as_deref(), Some("access_denied"));
        // Garbage is no redirect, not a panic.
        let r = parse_redirect("%%%&&==?#");
        assert!(r.code.is_none() && r.state.is_none());
    }

    #[test]
    fn rec_16_errors_say_whether_retrying_helps() {
        let e = from_text("http status: 400 Bad Request, body: {\"error\":\"invalid_grant\"}");
        assert!(matches!(e, PdsError::OAuth { .. }) && !e.is_retryable());
        assert!(from_text("http status: 503 Service Unavailable").is_retryable());
        assert!(from_text("http client error: connection refused").is_retryable());
        assert!(matches!(
            from_text("session does not exist"),
            PdsError::NotLoggedIn
        ));
    }
}
