//! [`PdsDirectory`]: the [`Directory`] on real ATProto repositories.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::checks::{check_declaration, check_devices, check_key_packages, Rejected};
use super::handle::{HandleSettings, Handles};
use super::oauth::{OAuthState, Writer};
use super::records::{self, DeclarationRecord, IncomingPolicy, Profile};
use super::resolve::Resolver;
use super::session::{is_expired_token, jwt_expiry, PdsSession, Session};
use super::xrpc::Http;
use super::{repo, PdsError};
use crate::directory::{
    AccountRecord, DeviceRecord, Directory, DirectoryError, KeyPackageRecord, VerifiedAccount,
};
use crate::identity::{unix_now, Did, IdentityDeclaration, PublicKey};

/// How long a resolved PDS endpoint is reused before resolving the DID again.
const PDS_CACHE_SECS: u64 = 300;

/// Where the PDS directory resolves identities, and what it publishes.
///
/// ```
/// use atmls::directory::pds::{PdsConfig, PdsDirectory};
/// let mut config = PdsConfig::new();
/// // Handles resolve through DNS and HTTPS (REC-6) unless a trusted XRPC service is named.
/// assert!(config.handle_resolver.is_none());
/// config.timeout = std::time::Duration::from_secs(10);
/// let dir = PdsDirectory::new(config);
/// ```
#[derive(Clone, Debug)]
pub struct PdsConfig {
    /// PLC directory for did:plc documents (default `https://plc.directory`).
    pub plc_url: String,
    /// An XRPC service trusted to resolve handles (`com.atproto.identity.resolveHandle`)
    /// instead of DNS and HTTPS; the answer is still checked against the DID document. For
    /// tests with a local PDS (whose `.test` handles have no DNS) and deployments that trust
    /// their own PDS. Default `None`: the DNS TXT record, then the HTTPS well-known (REC-6).
    pub handle_resolver: Option<String>,
    /// Name servers for handle resolution: the TXT record `_atproto.<handle>` and the
    /// addresses of the well-known host. Default empty: the system's configuration
    /// (`/etc/resolv.conf`).
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Port of `https://<handle>/.well-known/atproto-did` (default `None`: 443). Only for
    /// tests and private deployments, like `did_web_scheme`.
    pub well_known_port: Option<u16>,
    /// Whether a handle's well-known host may resolve to a loopback, private or link-local
    /// address (default `false`, as for did:web; REC-6). `true` only for local tests and
    /// development.
    pub allow_private_handle_hosts: bool,
    /// Scheme for did:web documents: `https`, or `http` for local tests.
    pub did_web_scheme: String,
    /// Whether a did:web host may resolve to a loopback, private or link-local address
    /// (default `false`: a DID named in a message must not make this device call into its
    /// own network; REC-6). `true` only for local tests and development.
    pub allow_private_did_web: bool,
    /// Timeout of each request, and of each step of handle resolution (default 20 s).
    pub timeout: Duration,
    /// What the declaration record says besides the key (ciphersuites, delivery service,
    /// incoming-message policy, endorsements).
    pub profile: Profile,
    /// Roots trusted besides the built-in ones (`add_root_certificate_pem`).
    roots: Vec<reqwest::Certificate>,
}

impl Default for PdsConfig {
    fn default() -> Self {
        PdsConfig {
            plc_url: "https://plc.directory".into(),
            handle_resolver: None,
            dns_servers: Vec::new(),
            well_known_port: None,
            allow_private_handle_hosts: false,
            did_web_scheme: "https".into(),
            allow_private_did_web: false,
            timeout: Duration::from_secs(20),
            profile: Profile::default(),
            roots: Vec::new(),
        }
    }
}

impl PdsConfig {
    /// Defaults for the public network: handles through DNS and HTTPS, did:plc documents
    /// from `https://plc.directory`, TLS with the built-in (webpki) roots.
    ///
    /// ```
    /// let config = atmls::directory::pds::PdsConfig::new();
    /// assert_eq!(config.plc_url, "https://plc.directory");
    /// assert!(config.dns_servers.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the root certificate(s) in `pem` (one or more `CERTIFICATE` blocks) besides the
    /// built-in roots, for every HTTPS request of the directory (PDS, PLC, did:web, handle
    /// well-known): for a private deployment or a test with its own certificate authority.
    /// A PEM without a usable certificate is refused ([`PdsError::Config`]), the config
    /// unchanged.
    ///
    /// ```
    /// let mut config = atmls::directory::pds::PdsConfig::new();
    /// assert!(config.add_root_certificate_pem(b"not a certificate").is_err());
    /// ```
    pub fn add_root_certificate_pem(&mut self, pem: &[u8]) -> Result<(), PdsError> {
        let bad = |e: String| PdsError::Config(format!("root certificate: {e}"));
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no CERTIFICATE in the PEM".into()));
        }
        // Building a client parses each certificate: a bad one fails here, not at the first
        // request.
        super::xrpc::client_builder(&certs)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        self.roots.extend(certs);
        Ok(())
    }
}

/// Everything an account published, after every check (REC-3 … REC-5).
#[derive(Debug)]
pub struct Lookup {
    /// The account's PDS.
    pub pds: String,
    /// Its declaration (binding signature and endorsements verified).
    pub declaration: DeclarationRecord,
    /// The account with its valid devices.
    pub account: VerifiedAccount,
    /// The valid device records.
    pub devices: Vec<DeviceRecord>,
    /// The KeyPackage records that passed every check.
    pub key_packages: Vec<KeyPackageRecord>,
    /// Records that were refused, with the reason.
    pub rejected: Vec<Rejected>,
}

/// A [`Directory`] on ATProto repositories: reads anyone's records from their own PDS
/// (no login), writes to the logged-in account's repository.
///
/// ```no_run
/// # async fn f() -> Result<(), atmls::directory::pds::PdsError> {
/// use atmls::directory::pds::{PdsConfig, PdsDirectory};
/// let dir = PdsDirectory::new(PdsConfig::new());
/// let did = dir.login("alice.example.com", "app-password").await?;
/// let bob = dir.resolve("bob.example.com").await?;
/// let found = dir.lookup(&bob).await?;
/// println!("{did} sees {} devices of {bob}", found.account.devices.len());
/// # Ok(()) }
/// ```
pub struct PdsDirectory {
    pub(super) http: Http,
    pub(super) resolver: Resolver,
    /// The OAuth session, if signed in with OAuth (the default; REC-13), and its store.
    pub(super) oauth: OAuthState,
    /// What the declaration record says besides the key; its policy follows
    /// [`Directory::publish_incoming_policy`].
    profile: Mutex<Profile>,
    session: tokio::sync::Mutex<Option<Session>>,
    pds_cache: Mutex<HashMap<Did, (String, Instant)>>,
    kp_rkeys: Mutex<HashMap<Vec<u8>, String>>,
    rejected: Mutex<HashMap<Did, Vec<Rejected>>>,
}

impl std::fmt::Debug for PdsDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PdsDirectory({:?})", self.resolver)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PdsDirectory {
    /// A directory that can read anyone's records; [`login`](Self::login) to publish.
    pub fn new(config: PdsConfig) -> Self {
        let handles = Handles::new(&HandleSettings {
            dns_servers: &config.dns_servers,
            well_known_port: config.well_known_port,
            allow_private_hosts: config.allow_private_handle_hosts,
            timeout: config.timeout,
            roots: &config.roots,
        });
        PdsDirectory {
            http: Http::new(config.timeout, &config.roots),
            resolver: Resolver {
                plc_url: config.plc_url,
                handle_resolver: config.handle_resolver,
                handles,
                did_web_scheme: config.did_web_scheme,
                allow_private_did_web: config.allow_private_did_web,
            },
            profile: Mutex::new(config.profile),
            oauth: OAuthState::new(),
            session: tokio::sync::Mutex::new(None),
            pds_cache: Mutex::new(HashMap::new()),
            kp_rkeys: Mutex::new(HashMap::new()),
            rejected: Mutex::new(HashMap::new()),
        }
    }

    /// Logs in with a handle or DID and an app password, on the account's own PDS (found by
    /// resolving the identifier): the fallback when OAuth ([`oauth_begin`](Self::oauth_begin))
    /// cannot be used. Returns the account's DID. Replaces an OAuth session (kept in its
    /// store).
    pub async fn login(&self, identifier: &str, password: &str) -> Result<Did, PdsError> {
        let did = self.resolve(identifier).await?;
        let pds = self.pds_of(&did).await?;
        let s = Session::create(&self.http, &pds, identifier, password).await?;
        if s.did != did {
            return Err(PdsError::Auth(format!(
                "{identifier} logged in as {}",
                s.did
            )));
        }
        *self.session.lock().await = Some(s);
        *self.oauth.active.lock().await = None;
        Ok(did)
    }

    /// Refreshes the session's tokens (done automatically when the access token expires).
    /// An OAuth session refreshes its own tokens when the PDS says they expired (REC-15):
    /// with one, this does nothing.
    pub async fn refresh(&self) -> Result<(), PdsError> {
        if self.oauth.active.lock().await.is_some() {
            return Ok(());
        }
        let mut g = self.session.lock().await;
        let s = g.as_mut().ok_or(PdsError::NotLoggedIn)?;
        s.refresh(&self.http).await
    }

    /// The logged-in account, if any.
    pub async fn logged_in(&self) -> Option<(Did, String)> {
        if let Some(a) = self.oauth.active.lock().await.as_ref() {
            return Some((a.did.clone(), a.handle.clone()));
        }
        self.session
            .lock()
            .await
            .as_ref()
            .map(|s| (s.did.clone(), s.handle.clone()))
    }

    /// The logged-in session, to keep between runs (e.g. in the app's store) and
    /// [`resume`](Self::resume_session) later without the password. Export it again after
    /// the calls of a run: a refresh (automatic when the access token expires) replaces both
    /// tokens, and the PDS may refuse the old refresh token.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), atmls::directory::pds::PdsError> {
    /// use atmls::directory::pds::{PdsConfig, PdsDirectory};
    /// let dir = PdsDirectory::new(PdsConfig::new());
    /// dir.login("alice.example.com", "app-password").await?;
    /// let saved = dir.export_session().await.expect("logged in");
    /// // ... later, in another run:
    /// let again = PdsDirectory::new(PdsConfig::new());
    /// again.resume_session(saved).await?;
    /// # Ok(()) }
    /// ```
    pub async fn export_session(&self) -> Option<PdsSession> {
        self.session.lock().await.as_ref().map(PdsSession::from)
    }

    /// Resumes a session exported by [`export_session`](Self::export_session), as if
    /// [`login`](Self::login) had just returned. When the access token has expired (or
    /// expires within a minute), it is refreshed at once, so an expired refresh token is
    /// reported here (`PdsError::Auth`: log in again) rather than at the first write.
    ///
    /// ```no_run
    /// # async fn f(saved: atmls::directory::pds::PdsSession) -> Result<(), atmls::directory::pds::PdsError> {
    /// use atmls::directory::pds::{PdsConfig, PdsDirectory};
    /// let dir = PdsDirectory::new(PdsConfig::new());
    /// let did = dir.resume_session(saved).await?;
    /// // ... publish, write records ...
    /// let to_save = dir.export_session().await; // the tokens may have been refreshed
    /// # let _ = (did, to_save); Ok(()) }
    /// ```
    pub async fn resume_session(&self, session: PdsSession) -> Result<Did, PdsError> {
        let did = session.did.clone();
        let expired = jwt_expiry(&session.access_jwt).is_some_and(|exp| exp <= unix_now() + 60);
        *self.session.lock().await = Some(Session::from(session));
        if expired {
            self.refresh().await?;
        }
        Ok(did)
    }

    /// A DID as given, or the DID of a handle (checked both ways, REC-6).
    pub async fn resolve(&self, handle_or_did: &str) -> Result<Did, PdsError> {
        if handle_or_did.starts_with("did:") {
            return Did::new(handle_or_did).map_err(|e| PdsError::InvalidResponse(e.to_string()));
        }
        self.resolver
            .resolve_handle(&self.http, handle_or_did)
            .await
    }

    /// The PDS endpoint of `did` (REC-6).
    pub async fn pds_of(&self, did: &Did) -> Result<String, PdsError> {
        if let Some((url, at)) = lock(&self.pds_cache).get(did) {
            if at.elapsed().as_secs() < PDS_CACHE_SECS {
                return Ok(url.clone());
            }
        }
        let url = self.resolver.pds_endpoint(&self.http, did).await?;
        lock(&self.pds_cache).insert(did.clone(), (url.clone(), Instant::now()));
        Ok(url)
    }

    /// `did`'s PDS, checked declaration, and device records (valid ones, and the refused
    /// ones), or `None` when it published no declaration (REC-3, REC-4).
    async fn read_account(
        &self,
        did: &Did,
        now: u64,
    ) -> Result<Option<(String, DeclarationRecord, Vec<DeviceRecord>, Vec<Rejected>)>, PdsError>
    {
        let pds = self.pds_of(did).await?;
        let Some(raw) = repo::get(
            &self.http,
            &pds,
            did,
            records::DECLARATION,
            records::DECLARATION_RKEY,
        )
        .await?
        else {
            return Ok(None);
        };
        let declaration = check_declaration(did, &raw).map_err(|error| PdsError::Declaration {
            did: did.clone(),
            error,
        })?;
        let raw_devices = repo::list(&self.http, &pds, did, records::DEVICE).await?;
        let (devices, rejected) = check_devices(&declaration, &raw_devices, now);
        Ok(Some((pds, declaration, devices, rejected)))
    }

    /// Reads everything `did` published and checks it (REC-3 … REC-5).
    pub async fn lookup(&self, did: &Did) -> Result<Lookup, PdsError> {
        let now = unix_now();
        let (pds, declaration, devices, mut rejected) = self
            .read_account(did, now)
            .await?
            .ok_or_else(|| PdsError::NoIdentity(did.clone()))?;
        let account = AccountRecord {
            declaration: declaration.declaration.clone(),
            devices: devices.clone(),
        }
        .verify(did, now)
        .map_err(|e| PdsError::Declaration {
            did: did.clone(),
            error: e.into(),
        })?;
        let raw_kps = repo::list(&self.http, &pds, did, records::KEY_PACKAGE).await?;
        let (key_packages, bad) = check_key_packages(&declaration, &account, &raw_kps, now);
        rejected.extend(bad);
        Ok(Lookup {
            pds,
            declaration,
            account,
            devices,
            key_packages,
            rejected,
        })
    }

    /// The records refused by the last [`Directory`] read of `did` (taken: a second call
    /// returns nothing until the next read).
    pub fn take_rejected(&self, did: &Did) -> Vec<Rejected> {
        lock(&self.rejected).remove(did).unwrap_or_default()
    }

    fn note_rejected(&self, did: &Did, rejected: Vec<Rejected>) {
        for r in &rejected {
            tracing::warn!(did = %did, collection = r.collection, rkey = %r.rkey, error = %r.error, "refused record");
        }
        lock(&self.rejected).insert(did.clone(), rejected);
    }

    /// Drops the app-password session (an OAuth session replaced it).
    pub(super) async fn forget_password_session(&self) {
        *self.session.lock().await = None;
    }

    /// The session (OAuth, or else app password), if `did` is the logged-in account.
    async fn own_session(&self, did: &Did) -> Result<Writer, PdsError> {
        let oauth = self.oauth.active.lock().await.clone();
        let s = match oauth {
            Some(a) => Writer::OAuth(a),
            None => Writer::Password(
                self.session
                    .lock()
                    .await
                    .clone()
                    .ok_or(PdsError::NotLoggedIn)?,
            ),
        };
        if s.did() != did {
            return Err(PdsError::InvalidRecord(
                "a record of another account than the logged-in one",
            ));
        }
        Ok(s)
    }

    /// Writes one of the logged-in account's records, refreshing the session once if needed.
    async fn write(
        &self,
        did: &Did,
        collection: &str,
        rkey: Option<&str>,
        v: &Value,
    ) -> Result<String, PdsError> {
        let s = self.own_session(did).await?;
        match repo::write(&self.http, s.pds(), s.auth(), did, collection, rkey, v).await {
            Err(e) if s.is_password() && is_expired_token(&e) => {
                self.refresh().await?;
                let s = self.own_session(did).await?;
                repo::write(&self.http, s.pds(), s.auth(), did, collection, rkey, v).await
            }
            r => r,
        }
    }

    async fn delete(&self, did: &Did, collection: &str, rkey: &str) -> Result<(), PdsError> {
        let s = self.own_session(did).await?;
        match repo::delete(&self.http, s.pds(), s.auth(), did, collection, rkey).await {
            Err(e) if s.is_password() && is_expired_token(&e) => {
                self.refresh().await?;
                let s = self.own_session(did).await?;
                repo::delete(&self.http, s.pds(), s.auth(), did, collection, rkey).await
            }
            r => r,
        }
    }

    /// Publishes the declaration with an explicit profile (the [`Directory`] method uses the
    /// configured one).
    pub async fn publish_declaration_with(
        &self,
        declaration: &IdentityDeclaration,
        profile: &Profile,
    ) -> Result<(), PdsError> {
        let v = records::encode_declaration(declaration, profile);
        self.write(
            &declaration.did,
            records::DECLARATION,
            Some(records::DECLARATION_RKEY),
            &v,
        )
        .await
        .map(|_| ())
    }

    /// The logged-in account's own KeyPackage records, decoded where possible, as
    /// (record key, record).
    async fn own_key_packages(
        &self,
        did: &Did,
    ) -> Result<Vec<(String, KeyPackageRecord)>, PdsError> {
        let pds = self.own_session(did).await?.pds().to_owned();
        let raw = repo::list(&self.http, &pds, did, records::KEY_PACKAGE).await?;
        let mut out = Vec::new();
        for (rkey, v) in raw {
            if let Ok(r) = records::decode_key_package(did, &v) {
                lock(&self.kp_rkeys).insert(r.key_package_ref.clone(), rkey.clone());
                out.push((rkey, r));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Directory for PdsDirectory {
    async fn account(&self, did: &Did) -> Result<Option<AccountRecord>, DirectoryError> {
        let Some((_, declaration, devices, rejected)) = self.read_account(did, unix_now()).await?
        else {
            return Ok(None);
        };
        self.note_rejected(did, rejected);
        Ok(Some(AccountRecord {
            declaration: declaration.declaration,
            devices,
        }))
    }

    async fn key_packages(&self, did: &Did) -> Result<Vec<KeyPackageRecord>, DirectoryError> {
        let found = self.lookup(did).await?;
        self.note_rejected(did, found.rejected);
        Ok(found.key_packages)
    }

    async fn publish_declaration(
        &self,
        declaration: &IdentityDeclaration,
    ) -> Result<(), DirectoryError> {
        let profile = lock(&self.profile).clone();
        Ok(self.publish_declaration_with(declaration, &profile).await?)
    }

    async fn follows(&self, did: &Did) -> Result<Option<Vec<Did>>, DirectoryError> {
        let pds = self.pds_of(did).await?;
        let raw = repo::list(&self.http, &pds, did, records::FOLLOW).await?;
        // A record whose subject is not a DID follows no one (the PDS stores what it is given).
        let subject = |v: &serde_json::Value| v.get("subject")?.as_str().map(Did::new)?.ok();
        Ok(Some(raw.iter().filter_map(|(_, v)| subject(v)).collect()))
    }

    async fn publish_incoming_policy(
        &self,
        did: &Did,
        policy: &IncomingPolicy,
    ) -> Result<(), DirectoryError> {
        lock(&self.profile).incoming_policy = policy.clone();
        let pds = self.own_session(did).await?.pds().to_owned();
        let (collection, rkey) = (records::DECLARATION, records::DECLARATION_RKEY);
        // The policy is not signed (REC-3): the published record changes in that field only.
        if let Some(mut v) = repo::get(&self.http, &pds, did, collection, rkey).await? {
            v["incomingPolicy"] = policy.as_str().into();
            self.write(did, collection, Some(rkey), &v).await?;
        }
        Ok(())
    }

    async fn publish_device(&self, device: &DeviceRecord) -> Result<(), DirectoryError> {
        let (rkey, v) = records::encode_device(device);
        self.write(&device.certificate.did, records::DEVICE, Some(&rkey), &v)
            .await?;
        Ok(())
    }

    async fn remove_device(
        &self,
        did: &Did,
        installation: &PublicKey,
    ) -> Result<(), DirectoryError> {
        for (rkey, r) in self.own_key_packages(did).await? {
            if &r.installation_key == installation {
                self.delete(did, records::KEY_PACKAGE, &rkey).await?;
            }
        }
        let rkey = records::installation_id(installation);
        Ok(self.delete(did, records::DEVICE, &rkey).await?)
    }

    async fn publish_key_package(&self, record: &KeyPackageRecord) -> Result<(), DirectoryError> {
        let v = records::encode_key_package(record);
        let rkey = self
            .write(&record.did, records::KEY_PACKAGE, None, &v)
            .await?;
        lock(&self.kp_rkeys).insert(record.key_package_ref.clone(), rkey);
        Ok(())
    }

    async fn delete_key_package(
        &self,
        did: &Did,
        key_package_ref: &[u8],
    ) -> Result<(), DirectoryError> {
        let known = lock(&self.kp_rkeys).get(key_package_ref).cloned();
        let rkey = match known {
            Some(k) => Some(k),
            None => self
                .own_key_packages(did)
                .await?
                .into_iter()
                .find(|(_, r)| r.key_package_ref == key_package_ref)
                .map(|(k, _)| k),
        };
        if let Some(rkey) = rkey {
            self.delete(did, records::KEY_PACKAGE, &rkey).await?;
            lock(&self.kp_rkeys).remove(key_package_ref);
        }
        Ok(())
    }

    async fn prune_key_packages(&self, did: &Did, now: u64) -> Result<usize, DirectoryError> {
        let mut n = 0;
        for (rkey, r) in self.own_key_packages(did).await? {
            if r.expires <= now {
                self.delete(did, records::KEY_PACKAGE, &rkey).await?;
                lock(&self.kp_rkeys).remove(&r.key_package_ref);
                n += 1;
            }
        }
        Ok(n)
    }
}
