//! OAuth sign-in state of the PDS directory (spec/records.md REC-13 … REC-16): the sessions
//! (DPoP key and tokens, per account) and the authorization requests under way (PKCE
//! verifier and DPoP key, per `state`). Values are atrium-oauth's JSON, stored as given and
//! checked when read back.

use rusqlite::{params, Connection, OptionalExtension};

use super::tables::to_i64;
use super::StorageError;

type R<T> = Result<T, StorageError>;

/// Migration 15: OAuth sessions, and authorization requests until their redirect comes back.
pub(super) const MIGRATION_15: &str = r#"
CREATE TABLE atmls_oauth_sessions (
    did TEXT PRIMARY KEY,
    redirect_uri TEXT NOT NULL,
    session BLOB NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE atmls_oauth_requests (state TEXT PRIMARY KEY, data BLOB NOT NULL, created INTEGER NOT NULL);
"#;

/// How long an authorization request waits for its redirect (REC-14), in seconds.
pub(crate) const REQUEST_TTL_SECS: u64 = 3600;

/// An account's stored session: the loopback redirect URI its client id names, and
/// atrium-oauth's session JSON.
pub(crate) fn session_get(c: &Connection, did: &str) -> R<Option<(String, Vec<u8>)>> {
    Ok(
        c.prepare_cached("SELECT redirect_uri, session FROM atmls_oauth_sessions WHERE did = ?1")?
            .query_row([did], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?,
    )
}

/// Stores (or replaces) an account's session.
pub(crate) fn session_set(
    c: &Connection,
    did: &str,
    redirect_uri: &str,
    session: &[u8],
    now: u64,
) -> R<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO atmls_oauth_sessions (did, redirect_uri, session, updated) \
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![did, redirect_uri, session, to_i64(now)])?;
    Ok(())
}

/// Forgets an account's session.
pub(crate) fn session_delete(c: &Connection, did: &str) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_oauth_sessions WHERE did = ?1")?
        .execute([did])?;
    Ok(())
}

/// The accounts with a stored session.
pub(crate) fn session_dids(c: &Connection) -> R<Vec<String>> {
    let mut st = c.prepare_cached("SELECT did FROM atmls_oauth_sessions ORDER BY did")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An authorization request under way, if it is younger than [`REQUEST_TTL_SECS`].
pub(crate) fn request_get(c: &Connection, state: &str, now: u64) -> R<Option<Vec<u8>>> {
    let oldest = to_i64(now.saturating_sub(REQUEST_TTL_SECS));
    Ok(c.prepare_cached(
        "SELECT data FROM atmls_oauth_requests WHERE state = ?1 AND created >= ?2",
    )?
    .query_row(params![state, oldest], |r| r.get(0))
    .optional()?)
}

/// Stores an authorization request, dropping those too old to come back.
pub(crate) fn request_set(c: &Connection, state: &str, data: &[u8], now: u64) -> R<()> {
    let oldest = to_i64(now.saturating_sub(REQUEST_TTL_SECS));
    c.prepare_cached("DELETE FROM atmls_oauth_requests WHERE created < ?1")?
        .execute([oldest])?;
    c.prepare_cached(
        "INSERT OR REPLACE INTO atmls_oauth_requests (state, data, created) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![state, data, to_i64(now)])?;
    Ok(())
}

/// Forgets an authorization request (its redirect came back, REC-14: used once).
pub(crate) fn request_delete(c: &Connection, state: &str) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_oauth_requests WHERE state = ?1")?
        .execute([state])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Store;

    #[test]
    fn rec_14_requests_expire_and_sessions_round_trip() {
        let s = Store::in_memory().unwrap();
        let c = &s.conn;
        request_set(c, "st", b"{}", 1000).unwrap();
        assert_eq!(
            request_get(c, "st", 1000).unwrap().as_deref(),
            Some(&b"{}"[..])
        );
        assert_eq!(
            request_get(c, "st", 1000 + REQUEST_TTL_SECS + 1).unwrap(),
            None
        );
        request_delete(c, "st").unwrap();
        assert_eq!(request_get(c, "st", 1000).unwrap(), None);

        session_set(c, "did:plc:a", "http://127.0.0.1:1/cb", b"{\"x\":1}", 5).unwrap();
        let (uri, v) = session_get(c, "did:plc:a").unwrap().unwrap();
        assert_eq!(
            (uri.as_str(), v.as_slice()),
            ("http://127.0.0.1:1/cb", &b"{\"x\":1}"[..])
        );
        assert_eq!(session_dids(c).unwrap(), vec!["did:plc:a".to_owned()]);
        session_delete(c, "did:plc:a").unwrap();
        assert_eq!(session_get(c, "did:plc:a").unwrap(), None);
    }
}
