//! `atmls login` by OAuth (spec/records.md REC-13 … REC-16), the default: the ATProto loopback
//! client. The CLI listens on 127.0.0.1 for the authorization server's redirect, prints the
//! page to open in a browser, and keeps the session (DPoP key and tokens) in the store; later
//! commands resume it there without a browser.

use std::sync::Arc;
use std::time::Duration;

use atmls::directory::pds::{LoopbackRedirect, PdsDirectory, PdsError};
use atmls::identity::{unix_now, Did};
use atmls::storage::SavedLogin;
use serde_json::json;

use crate::ctx::{Global, Res};

/// How a saved login was obtained, in `SavedLogin::auth`.
pub const AUTH_OAUTH: &str = "oauth";

/// The directory with its OAuth sessions in this device's store.
pub fn directory(g: &Global) -> Res<PdsDirectory> {
    Ok(g.directory()
        .with_oauth_store(crate::store::open(&g.store)?))
}

/// Signs in as `handle` in the user's browser, waiting up to `wait`, and saves the login.
pub async fn login(g: &Global, handle: &str, wait: Duration) -> Res<()> {
    let out = g.out();
    let dir = directory(g)?;
    let listener = LoopbackRedirect::bind("/callback").await?;
    let url = dir
        .oauth_begin(handle, listener.redirect_uri())
        .await
        .map_err(|e| format!("cannot start signing in as {handle}: {e}"))?;
    out.emit(
        json!({"event": "open_url", "url": url}),
        format!("open this page in your browser and sign in as {handle}:\n  {url}"),
    );
    out.progress(format!(
        "waiting up to {} s for the sign-in…",
        wait.as_secs()
    ));
    let redirected = listener.wait(wait).await.map_err(|e| {
        format!(
            "no sign-in came back within {} s ({e}): run `atmls login` again (or give `--wait` \
             more seconds)",
            wait.as_secs()
        )
    })?;
    let did = dir.oauth_complete(&redirected).await.map_err(|e| match e {
        PdsError::OAuth { error, description } => {
            format!("sign-in refused ({error}: {description}): run `atmls login` to try again")
        }
        e => format!("sign-in failed: {e}"),
    })?;
    let pds = dir.pds_of(&did).await.unwrap_or_default();
    crate::store::open(&g.store)?.save_login(&SavedLogin {
        auth: AUTH_OAUTH.into(),
        did: did.clone(),
        handle: handle.to_owned(),
        service: pds.clone(),
        access_token: String::new(),
        refresh_token: String::new(),
        saved: unix_now(),
    })?;
    out.emit(
        json!({"event": "logged_in", "did": did.as_str(), "handle": handle, "pds": pds,
               "auth": AUTH_OAUTH}),
        format!("signed in as {handle} ({did}) on {pds}\nnext: `atmls init` (once per device)"),
    );
    Ok(())
}

/// Resumes the stored OAuth session of `did` (tokens refresh when the PDS says so).
pub async fn resume(g: &Global, did: &Did, handle: &str) -> Res<Arc<PdsDirectory>> {
    let dir = Arc::new(directory(g)?);
    match dir.oauth_resume(did).await {
        Ok(()) => Ok(dir),
        Err(e @ (PdsError::Auth(_) | PdsError::OAuth { .. } | PdsError::NotLoggedIn)) => Err(
            format!("the saved sign-in ended ({e}): run `atmls login --handle {handle}` again")
                .into(),
        ),
        Err(e) => Err(e.into()),
    }
}

/// Revokes the session at the authorization server (best effort: the login is forgotten
/// either way).
pub async fn sign_out(g: &Global, did: &Did, handle: &str) -> Res<()> {
    let dir = resume(g, did, handle).await?;
    dir.oauth_sign_out().await?;
    Ok(())
}
