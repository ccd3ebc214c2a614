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
