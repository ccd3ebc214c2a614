//! `atmls login` / `atmls logout`: how this device gets a session on the account's PDS, kept
//! in the store (`Store::save_login`) so later commands resume it (`ctx::Login::resume`).
//! By OAuth in the user's browser (the default, `oauth.rs`), or with an app password
//! (`--app-password`, or when `ATMLS_APP_PASSWORD` is set): read from `ATMLS_APP_PASSWORD`
//! or typed (without echo on a terminal), never a command-line argument, never stored.

use std::io::{BufRead, IsTerminal};

use atmls::directory::pds::PdsError;
use clap::Args;
use serde_json::json;

use crate::ctx::{to_saved, Global, Res};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Your handle or DID (or ATMLS_HANDLE).
    #[arg(long, env = "ATMLS_HANDLE")]
    pub handle: String,
    /// Log in with an app password instead of OAuth in a browser (also chosen when
    /// ATMLS_APP_PASSWORD is set).
    #[arg(long)]
    pub app_password: bool,
    /// How long to wait for the browser sign-in, in seconds.
    #[arg(long, default_value_t = 300)]
    pub wait: u64,
}

/// The app password: `ATMLS_APP_PASSWORD`, else typed.
pub fn password() -> Res<String> {
    if let Ok(p) = std::env::var("ATMLS_APP_PASSWORD") {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let typed = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("app password: ").unwrap_or_default()
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    };
    let p = typed.trim_end_matches(['\r', '\n']).to_owned();
    if p.is_empty() {
        return Err(
            "no app password: set ATMLS_APP_PASSWORD or type it (create one in your \
                    account's settings: App Passwords)"
                .into(),
        );
    }
    Ok(p)
}

/// Logs in and saves the session in the store.
pub async fn login(g: &Global, a: &LoginArgs) -> Res<()> {
    let handle = a.handle.trim().trim_start_matches('@');
    let env_password = std::env::var("ATMLS_APP_PASSWORD").is_ok_and(|p| !p.is_empty());
    if !a.app_password && !env_password {
        let wait = std::time::Duration::from_secs(a.wait);
        return crate::oauth::login(g, handle, wait).await;
    }
    let out = g.out();
    let password = password()?;
    let dir = g.directory();
    out.progress(format!("logging in as {handle}…"));
    match dir.login(handle, &password).await {
        Ok(_) => {}
        Err(PdsError::Auth(e)) => {
            return Err(format!(
                "login refused for {handle}: {e} (check the handle and the app password)"
            )
            .into())
        }
        Err(e) => return Err(format!("cannot log in as {handle}: {e}").into()),
    }
    let session = dir
        .export_session()
        .await
        .ok_or("the PDS returned no session")?;
    let store = crate::store::open(&g.store)?;
    if let Some(old) = store.saved_login()? {
        if old.did != session.did {
            out.progress(format!("replacing the login of {}", old.did));
        }
    }
    let (did, handle, pds) = (
        session.did.clone(),
        session.handle.clone(),
        session.pds.clone(),
    );
    store.save_login(&to_saved(session))?;
    out.emit(
        json!({"event": "logged_in", "did": did.as_str(), "handle": handle, "pds": pds}),
        format!("logged in as {handle} ({did}) on {pds}\nnext: `atmls init` (once per device)"),
    );
    Ok(())
}

/// Forgets the saved session.
pub async fn logout(g: &Global) -> Res<()> {
    let store = crate::store::open(&g.store)?;
    if let Some(l) = store.saved_login()? {
        if l.auth == crate::oauth::AUTH_OAUTH {
            // Revoked at the server too; the login is forgotten here either way.
            if let Err(e) = crate::oauth::sign_out(g, &l.did, &l.handle).await {
                g.out()
                    .progress(format!("the sign-in was not revoked at the PDS: {e}"));
            }
        }
    }
    store.forget_login()?;
    g.out()
        .emit(json!({"event": "logged_out"}), "logged out of this store");
    Ok(())
}
