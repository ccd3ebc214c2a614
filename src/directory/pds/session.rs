//! Logging in with an app password (`com.atproto.server.createSession`) and refreshing the
//! session (`refreshSession`). Tokens stay in memory; the password is not kept.

use atrium_api::com::atproto::server::{create_session, refresh_session};

use super::xrpc::Http;
use super::PdsError;
use crate::identity::Did;

/// A logged-in session on the account's PDS.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) did: Did,
    pub(crate) handle: String,
    pub(crate) pds: String,
    pub(crate) access: String,
    refresh: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({}, {}, {})", self.did, self.handle, self.pds)
    }
}

fn auth_error(e: PdsError) -> PdsError {
    match e {
        PdsError::Refused { error, message, .. } => PdsError::Auth(format!("{error} {message}")),
        other => other,
    }
}

impl Session {
    /// Logs in on `pds` with a handle, DID or email and an app password.
    pub(crate) async fn create(
        http: &Http,
        pds: &str,
        identifier: &str,
        password: &str,
    ) -> Result<Session, PdsError> {
        let input: create_session::Input = create_session::InputData {
            allow_takendown: None,
            auth_factor_token: None,
            identifier: identifier.to_owned(),
            password: password.to_owned(),
        }
        .into();
        let out: create_session::Output = http
            .procedure(pds, create_session::NSID, Some(input), None)
            .await
            .map_err(auth_error)?;
        Ok(Session {
            did: Did::new(out.did.as_str())
                .map_err(|e| PdsError::InvalidResponse(format!("session DID: {e}")))?,
            handle: out.handle.as_str().to_owned(),
            pds: pds.to_owned(),
            access: out.data.access_jwt,
            refresh: out.data.refresh_jwt,
        })
    }

    /// Exchanges the refresh token for new tokens.
    pub(crate) async fn refresh(&mut self, http: &Http) -> Result<(), PdsError> {
        let out: refresh_session::Output = http
            .procedure::<(), _>(&self.pds, refresh_session::NSID, None, Some(&self.refresh))
            .await
            .map_err(auth_error)?;
        if out.did.as_str() != self.did.as_str() {
            return Err(PdsError::InvalidResponse(
                "refreshed session is another account".into(),
            ));
        }
        self.access = out.data.access_jwt;
        self.refresh = out.data.refresh_jwt;
        self.handle = out.data.handle.as_str().to_owned();
        Ok(())
    }
}

/// Whether an error says the access token expired (then refresh and retry once).
pub(crate) fn is_expired_token(e: &PdsError) -> bool {
    matches!(e, PdsError::Refused { error, .. } if error == "ExpiredToken" || error == "InvalidToken")
        || matches!(e, PdsError::Auth(_))
}

/// A logged-in session on the account's PDS, exported to be kept between runs
/// ([`PdsDirectory::export_session`](super::PdsDirectory::export_session)) and resumed
/// ([`PdsDirectory::resume_session`](super::PdsDirectory::resume_session)) without the
/// password. The tokens are secrets: keep them where the device's keys are kept.
///
/// ```no_run
/// # async fn f(dir: atmls::directory::pds::PdsDirectory) {
/// if let Some(s) = dir.export_session().await {
///     println!("{s:?}"); // the account and its PDS; Debug leaves the tokens out
/// }
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PdsSession {
    /// The account.
    pub did: Did,
    /// Its handle.
    pub handle: String,
    /// The PDS the tokens are for.
    pub pds: String,
    /// The access token (`accessJwt`).
    pub access_jwt: String,
    /// The refresh token (`refreshJwt`).
    pub refresh_jwt: String,
}

impl std::fmt::Debug for PdsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PdsSession({}, {}, {})", self.did, self.handle, self.pds)
    }
}

impl From<&Session> for PdsSession {
    fn from(s: &Session) -> Self {
        PdsSession {
            did: s.did.clone(),
            handle: s.handle.clone(),
            pds: s.pds.clone(),
            access_jwt: s.access.clone(),
            refresh_jwt: s.refresh.clone(),
        }
    }
}

impl From<PdsSession> for Session {
    fn from(s: PdsSession) -> Self {
        Session {
            did: s.did,
            handle: s.handle,
            pds: s.pds,
            access: s.access_jwt,
            refresh: s.refresh_jwt,
        }
    }
}

/// The expiry (`exp`, unix seconds) a JWT claims, if it can be read. Only to decide when to
/// refresh: the PDS checks the token.
pub(crate) fn jwt_expiry(token: &str) -> Option<u64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}

#[cfg(test)]
mod tests {
    // Test code: `unwrap` only on values the test makes itself.
    use super::*;

    #[test]
    fn jwt_expiry_reads_exp_and_refuses_garbage() {
        use base64::Engine as _;
        let enc = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let t = format!("{}.{}.sig", enc("{}"), enc(r#"{"exp":1700000000}"#));
        assert_eq!(jwt_expiry(&t), Some(1_700_000_000));
        assert_eq!(jwt_expiry("not a jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
        assert_eq!(jwt_expiry(&format!("a.{}.c", enc(r#"{"exp":"x"}"#))), None);
    }

    #[test]
    fn session_debug_hides_tokens() {
        let s = PdsSession {
            did: Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
            handle: "a.test".into(),
            pds: "http://127.0.0.1:1".into(),
            access_jwt: "secret-access".into(),
            refresh_jwt: "secret-refresh".into(),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(PdsSession::from(&Session::from(s.clone())), s);
    }
}
