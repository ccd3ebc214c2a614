//! What every chat command starts from: the global options, the PDS directory with the saved
//! login resumed, the delivery-service transport and this device's client; and saving the
//! (possibly refreshed) session at the end.

use std::sync::Arc;

use atmls::directory::pds::{PdsDirectory, PdsError, PdsSession};
use atmls::identity::Did;
use atmls::storage::{SavedLogin, Store};
use atmls::transport::Transport;
use atmls::Client;

pub use crate::opts::{Global, Res};
use crate::out::Out;

/// How a saved login was obtained (see `login.rs`).
pub const AUTH_APP_PASSWORD: &str = "app-password";

/// The store's saved login as a PDS session, and back.
pub fn to_session(l: SavedLogin) -> PdsSession {
    PdsSession {
        did: l.did,
        handle: l.handle,
        pds: l.service,
        access_jwt: l.access_token,
        refresh_jwt: l.refresh_token,
    }
}

pub fn to_saved(s: PdsSession) -> SavedLogin {
    SavedLogin {
        auth: AUTH_APP_PASSWORD.into(),
        did: s.did,
        handle: s.handle,
        service: s.pds,
        access_token: s.access_jwt,
        refresh_token: s.refresh_jwt,
        saved: 0,
    }
}

/// A logged-in directory, resumed from the store's saved login.
pub struct Login {
    pub dir: Arc<PdsDirectory>,
    pub did: Did,
    pub handle: String,
    store: Store,
    /// The app-password session as read (an OAuth session keeps itself in the store).
    saved: Option<PdsSession>,
}

impl Login {
    /// Resumes the saved login (refreshing expired tokens), or says to log in.
    pub async fn resume(g: &Global) -> Res<Login> {
        let store = crate::store::open(&g.store)?;
        let Some(saved) = store.saved_login()? else {
            return Err(format!(
                "not logged in: run `atmls login --handle <your handle>` (store {})",
                g.store.display()
            )
            .into());
        };
        let handle = saved.handle.clone();
        if saved.auth == crate::oauth::AUTH_OAUTH {
            let dir = crate::oauth::resume(g, &saved.did, &handle).await?;
            return Ok(Login {
                dir,
                did: saved.did,
                handle,
                store,
                saved: None,
            });
        }
        let session = to_session(saved);
        let dir = Arc::new(g.directory());
        let did = match dir.resume_session(session.clone()).await {
            Ok(did) => did,
            Err(PdsError::Auth(e)) => {
                return Err(format!(
                    "the saved login expired ({e}): run `atmls login --handle {handle}` again"
                )
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        let me = Login {
            dir,
            did,
            handle,
            store,
            saved: Some(session),
        };
        me.save().await?;
        Ok(me)
    }

    /// Saves the session if its tokens changed (refreshed) since it was read.
    pub async fn save(&self) -> Res<()> {
        let Some(saved) = &self.saved else {
            return Ok(());
        };
        if let Some(now) = self.dir.export_session().await {
            if now != *saved {
                self.store.save_login(&to_saved(now))?;
            }
        }
        Ok(())
    }
}

/// A chat command's context: the login and this device's client.
pub struct Ctx {
    pub login: Login,
    pub client: Arc<Client>,
    pub out: Out,
}

impl Ctx {
    /// Logged in and initialised, or an error saying which command to run first.
    pub async fn open(g: &Global) -> Res<Ctx> {
        let login = Login::resume(g).await?;
        let transport = g.transport()?;
        let client = match build(&login, &transport, crate::store::open(&g.store)?, None).await {
            Err(atmls::Error::NoIdentity) => {
                return Err("this device has no messaging identity yet: run `atmls init`".into())
            }
            r => r?,
        };
        check_account(&client, &login)?;
        Ok(Ctx {
            login,
            client: Arc::new(client),
            out: g.out(),
        })
    }

    /// Saves the (possibly refreshed) session.
    pub async fn finish(self) -> Res<()> {
        self.login.save().await
    }

    /// The DID of a handle or DID, with an error a person can act on.
    pub async fn resolve(&self, who: &str) -> Res<Did> {
        resolve(&self.login.dir, who).await
    }
}

/// The DID of `who` (a handle or a DID).
pub async fn resolve(dir: &PdsDirectory, who: &str) -> Res<Did> {
    let who = who.trim().trim_start_matches('@');
    dir.resolve(who)
        .await
        .map_err(|e| format!("unknown account {who}: {e} (check the handle)").into())
}

/// This device's client on `store` (opened by [`crate::store::open`]), optionally with a new
/// identity.
pub async fn build(
    login: &Login,
    transport: &Arc<dyn Transport>,
    store: Store,
    identity: Option<atmls::identity::DeviceIdentity>,
) -> Result<Client, atmls::Error> {
    let mut b = Client::builder(login.dir.clone(), transport.clone(), store);
    if let Some(i) = identity {
        b = b.identity(i);
    }
    b.build().await
}

/// The store's identity is the logged-in account's.
pub fn check_account(client: &Client, login: &Login) -> Res<()> {
    if client.did() != &login.did {
        return Err(format!(
            "this store is {}'s device but the login is {}: use another --store, or log in as {}",
            client.did(),
            login.did,
            client.did()
        )
        .into());
    }
    Ok(())
}
