//! The account login an app keeps between runs (the CLI's `atmls login`): one row with the
//! account, its PDS and the session tokens, so that later runs resume the session instead of
//! asking for a password again. The tokens are secrets: the database holds them as it holds
//! the device's keys. How they were obtained (`auth`) lets other login methods (OAuth) share
//! the table.

use rusqlite::{params, OptionalExtension};

use super::tables::to_i64;
use super::{StorageError, Store};
use crate::identity::{unix_now, Did};

type R<T> = Result<T, StorageError>;

/// Migration 15: the saved login.
pub(super) const MIGRATION_16: &str = r#"
CREATE TABLE atmls_login (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    auth TEXT NOT NULL,
    did TEXT NOT NULL,
    handle TEXT NOT NULL,
    service TEXT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    saved INTEGER NOT NULL
);
"#;

/// A login saved in the store (see [`Store::save_login`]).
///
/// ```
/// # fn f(store: &atmls::storage::Store) -> Result<(), atmls::storage::StorageError> {
/// if let Some(login) = store.saved_login()? {
///     println!("logged in as {} on {}", login.handle, login.service);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SavedLogin {
    /// How the session was obtained, e.g. `"app-password"`.
    pub auth: String,
    /// The account.
    pub did: Did,
    /// Its handle when the session was saved.
    pub handle: String,
    /// The service the tokens are for (the account's PDS URL).
    pub service: String,
    /// The access token (secret).
    pub access_token: String,
    /// The refresh token (secret).
    pub refresh_token: String,
    /// When it was saved (unix seconds).
    pub saved: u64,
}

impl std::fmt::Debug for SavedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The tokens stay out of logs.
        write!(
            f,
            "SavedLogin({}, {}, {}, {})",
            self.auth, self.did, self.handle, self.service
        )
    }
}

impl Store {
    /// Saves the login, replacing the one saved before (its `saved` time is set to now).
    ///
    /// ```
    /// use atmls::storage::{SavedLogin, Store};
    /// // unwrap: an in-memory store and values the example makes itself.
    /// let store = Store::in_memory().unwrap();
    /// assert!(store.saved_login().unwrap().is_none());
    /// let login = SavedLogin {
    ///     auth: "app-password".into(),
    ///     did: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap(),
    ///     handle: "alice.example.com".into(),
    ///     service: "https://pds.example.com".into(),
    ///     access_token: "access".into(),
    ///     refresh_token: "refresh".into(),
    ///     saved: 0,
    /// };
    /// store.save_login(&login).unwrap();
    /// assert_eq!(store.saved_login().unwrap().unwrap().handle, "alice.example.com");
    /// store.forget_login().unwrap();
    /// assert!(store.saved_login().unwrap().is_none());
    /// ```
    pub fn save_login(&self, login: &SavedLogin) -> R<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO atmls_login (id, auth, did, handle, service, access_token, refresh_token, saved)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(id) DO UPDATE SET auth = excluded.auth, did = excluded.did,
                   handle = excluded.handle, service = excluded.service,
                   access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                   saved = excluded.saved",
            )?
            .execute(params![
                login.auth,
                login.did.as_str(),
                login.handle,
                login.service,
                login.access_token,
                login.refresh_token,
                to_i64(unix_now())
            ])?;
        Ok(())
    }

    /// The saved login, if any.
    ///
    /// ```
    /// // unwrap: an in-memory store the example opens itself.
    /// let store = atmls::storage::Store::in_memory().unwrap();
    /// assert!(store.saved_login().unwrap().is_none());
    /// ```
    pub fn saved_login(&self) -> R<Option<SavedLogin>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT auth, did, handle, service, access_token, refresh_token, saved
                 FROM atmls_login WHERE id = 1",
            )?
            .query_row([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .optional()?;
        let Some((auth, did, handle, service, access_token, refresh_token, saved)) = row else {
            return Ok(None);
        };
        let did = Did::new(&did).map_err(|_| StorageError::Corrupt("saved login DID"))?;
        Ok(Some(SavedLogin {
            auth,
            did,
            handle,
            service,
            access_token,
            refresh_token,
            saved: u64::try_from(saved).unwrap_or(0),
        }))
    }

    /// Forgets the saved login (logging out of this store).
    ///
    /// ```
    /// // unwrap: an in-memory store the example opens itself.
    /// let store = atmls::storage::Store::in_memory().unwrap();
    /// store.forget_login().unwrap(); // nothing saved: nothing to forget, no error
    /// assert!(store.saved_login().unwrap().is_none());
    /// ```
    pub fn forget_login(&self) -> R<()> {
        self.conn.execute("DELETE FROM atmls_login", [])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    // Test code: `unwrap` only on stores and values the test makes itself.
    use super::*;

    fn login(handle: &str) -> SavedLogin {
        SavedLogin {
            auth: "app-password".into(),
            did: Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
            handle: handle.into(),
            service: "http://127.0.0.1:1".into(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            saved: 0,
        }
    }

    /// The login survives reopening the file; saving again replaces it; forgetting removes it.
    #[test]
    fn login_is_saved_replaced_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(s.saved_login().unwrap(), None);
            s.save_login(&login("one.test")).unwrap();
            s.save_login(&login("two.test")).unwrap();
        }
        let s = Store::open(&path).unwrap();
        let got = s.saved_login().unwrap().unwrap();
        assert_eq!(got.handle, "two.test");
        assert!(got.saved > 0);
        assert!(!format!("{got:?}").contains("refresh"), "{got:?}");
        s.forget_login().unwrap();
        assert_eq!(s.saved_login().unwrap(), None);
    }
}
