//! Signing in with OAuth on the real PDS and its own OAuth provider (spec/records.md REC-13 …
//! REC-16): the loopback client, PAR, PKCE, DPoP-bound tokens, the session kept in the
//! store and resumed after a restart, a refresh of its tokens, and refused sessions.
//!
//! The user's browser is played at the HTTP level: the authorization page's own JSON API
//! (`/@atproto/oauth-provider/~api/sign-in`, `/consent`, `/reject`), with its CSRF cookie
//! and header and the `sec-fetch-*` headers a browser sends, then the redirect page's 303 to
//! the app's loopback listener ([`LoopbackRedirect`]).
#![cfg(feature = "pds")]

mod pds_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atmls::directory::pds::{records, LoopbackRedirect, PdsDirectory, PdsError};
use atmls::identity::{unix_now, DeviceIdentity, IdentityKeyPair};
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::Client;
use pds_support::browser::{origin, user_at_page};
use pds_support::*;
use serde_json::{json, Value};

/// The whole sign-in: the app starts it, the user signs in and approves in the browser, the
/// app completes it with the URL its listener received.
async fn sign_in(
    dir: &PdsDirectory,
    a: &Account,
    approve: bool,
) -> Result<atmls::identity::Did, PdsError> {
    let listener = LoopbackRedirect::bind("/callback").await.unwrap();
    let url = dir.oauth_begin(&a.handle, listener.redirect_uri()).await?;
    assert!(url.contains("request_uri="), "PAR: {url}");
    let a2 = a.clone();
    let user = std::thread::spawn(move || user_at_page(&url, &a2, approve));
    let redirected = listener.wait(Duration::from_secs(30)).await?;
    user.join().unwrap();
    dir.oauth_complete(&redirected).await
}

fn directory(db: &Path) -> PdsDirectory {
    PdsDirectory::new(config()).with_oauth_store(Store::open(db).unwrap())
}

/// The stored session of `did` (atrium-oauth's JSON), straight from the database.
fn stored_session(db: &Path, did: &str) -> Value {
    let c = rusqlite::Connection::open(db).unwrap();
    let v: Vec<u8> = c
        .query_row(
            "SELECT session FROM atmls_oauth_sessions WHERE did = ?1",
            [did],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_slice(&v).unwrap()
}

fn store_session(db: &Path, did: &str, session: &Value) {
    let c = rusqlite::Connection::open(db).unwrap();
    let n = c
        .execute(
            "UPDATE atmls_oauth_sessions SET session = ?2 WHERE did = ?1",
            rusqlite::params![did, serde_json::to_vec(session).unwrap()],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// REC-13, REC-15: signed in with OAuth (no app password), a client publishes its
/// declaration, device and KeyPackages through the DPoP-bound session; the session (DPoP
/// key, tokens) is in the client's database; its access token alone, as a bearer token, is
/// refused by the PDS.
#[tokio::test(flavor = "multi_thread")]
async fn rec_13_oauth_sign_in_then_publish() {
    let a = create_account("oauth");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("atmls.db");
    let dir = directory(&db);
    let did = sign_in(&dir, &a, true).await.expect("signed in");
    assert_eq!(did, a.did);
    assert_eq!(
        dir.logged_in().await,
        Some((a.did.clone(), a.handle.clone()))
    );
    assert_eq!(dir.oauth_accounts().unwrap(), vec![a.did.clone()]);

    let net = Arc::new(MemoryTransport::new());
    let client = Client::builder(Arc::new(dir), net, Store::open(&db).unwrap())
        .identity(DeviceIdentity::new_account(a.did.clone()))
        .build()
        .await
        .expect("client publishes through the OAuth session");
    assert_eq!(list_raw(&a.did, records::DECLARATION).len(), 1);
    assert_eq!(list_raw(&a.did, records::DEVICE).len(), 1);
    assert!(!list_raw(&a.did, records::KEY_PACKAGE).is_empty());
    drop(client);

    let s = stored_session(&db, a.did.as_str());
    assert_eq!(s["token_set"]["token_type"], "DPoP");
    assert_eq!(s["dpop_key"]["kty"], "EC");
    assert!(
        s["dpop_key"]["d"].is_string(),
        "the DPoP private key is kept"
    );
    assert_eq!(s["token_set"]["sub"], a.did.as_str());
    // DPoP-bound: the access token without its proof is refused.
    let access = s["token_set"]["access_token"].as_str().unwrap();
    let (st, out) = put_raw_with(access, &a, json!({"text": "bearer"}));
    assert!(st == 400 || st == 401, "{st} {out}");
}

/// A createRecord with `token` as a bearer token: (status, body).
fn put_raw_with(token: &str, a: &Account, record: Value) -> (u16, Value) {
    http(
        "POST",
        &format!("{}/xrpc/com.atproto.repo.createRecord", pds().pds_url),
        Some(token),
        Some(&json!({"repo": a.did.as_str(), "collection": "com.example.oauth", "record": record})),
    )
}

/// REC-15: after a restart the session is resumed from the store, without a browser; an
/// access token the PDS no longer takes is refreshed with the stored refresh token (which
/// the PDS rotates), and the new tokens are stored.
#[tokio::test(flavor = "multi_thread")]
async fn rec_15_session_resumed_from_store_and_refreshed() {
    let a = create_account("oresume");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("atmls.db");
    {
        let dir = directory(&db);
        sign_in(&dir, &a, true).await.expect("signed in");
    }
    // The access token expired (as far as this device can tell) and is no longer valid.
    let mut s = stored_session(&db, a.did.as_str());
    let refresh_before = s["token_set"]["refresh_token"].clone();
    s["token_set"]["access_token"] = json!("not-a-valid-access-token");
    s["token_set"]["expires_at"] = json!("2000-01-01T00:00:00.000Z");
    store_session(&db, a.did.as_str(), &s);

    let dir = directory(&db);
    assert!(dir.logged_in().await.is_none());
    assert_eq!(dir.oauth_accounts().unwrap(), vec![a.did.clone()]);
    dir.oauth_resume(&a.did).await.expect("resumed");
    assert_eq!(dir.logged_in().await.map(|(d, _)| d), Some(a.did.clone()));
    let profile = records::Profile::default();
    let declaration = IdentityKeyPair::generate().declare(&a.did, unix_now());
    dir.publish_declaration_with(&declaration, &profile)
        .await
        .expect("written after a refresh");
    assert_eq!(list_raw(&a.did, records::DECLARATION).len(), 1);

    let s = stored_session(&db, a.did.as_str());
    assert_ne!(s["token_set"]["access_token"], "not-a-valid-access-token");
    assert_ne!(
        s["token_set"]["refresh_token"], refresh_before,
        "rotated and stored"
    );
}

/// REC-16: the user refuses at the authorization page: signing in fails with the server's
/// `access_denied`, which retrying does not fix; nothing is signed in or stored, and the
/// request's `state` cannot be used again.
#[tokio::test(flavor = "multi_thread")]
async fn rec_16_refused_sign_in() {
    let a = create_account("orefuse");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("atmls.db");
    let dir = directory(&db);
    let listener = LoopbackRedirect::bind("/callback").await.unwrap();
    let url = dir
        .oauth_begin(&a.handle, listener.redirect_uri())
        .await
        .unwrap();
    let a2 = a.clone();
    let user = std::thread::spawn(move || user_at_page(&url, &a2, false));
    let redirected = listener.wait(Duration::from_secs(30)).await.unwrap();
    user.join().unwrap();
    match dir.oauth_complete(&redirected).await {
        Err(e @ PdsError::OAuth { .. }) => {
            assert!(!e.is_retryable());
            assert!(e.to_string().contains("access_denied"), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(dir.logged_in().await.is_none());
    assert!(dir.oauth_accounts().unwrap().is_empty());
    // The same redirect again: its request is gone.
    let again = redirected.replace("error=", "code=forged&was=");
    assert!(matches!(
        dir.oauth_complete(&again).await,
        Err(PdsError::Auth(_))
    ));
    // Writes need a session.
    let declaration = IdentityKeyPair::generate().declare(&a.did, unix_now());
    let e = dir
        .publish_declaration_with(&declaration, &records::Profile::default())
        .await
        .unwrap_err();
    assert!(matches!(e, PdsError::NotLoggedIn), "{e:?}");
}

/// REC-16: a session the PDS refuses (its tokens revoked by signing out elsewhere, a stale
/// copy resumed) fails the write with an authentication error that retrying does not fix;
/// signing out forgets the stored session.
#[tokio::test(flavor = "multi_thread")]
async fn rec_16_revoked_session_refused() {
    let a = create_account("orevoke");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("atmls.db");
    let dir = directory(&db);
    sign_in(&dir, &a, true).await.expect("signed in");
    let copy = stored_session(&db, a.did.as_str());
    let row: (String,) = {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row("SELECT redirect_uri FROM atmls_oauth_sessions", [], |r| {
            Ok((r.get(0)?,))
        })
        .unwrap()
    };
    dir.oauth_sign_out().await.expect("revoked");
    assert!(dir.logged_in().await.is_none());
    assert!(dir.oauth_accounts().unwrap().is_empty());

    // A stale copy comes back (a backup, another process): the PDS refuses its access
    // token; and with that token expired, it refuses the refresh (the revocation covered the
    // refresh token). Either way the write fails, and retrying does not help.
    let mut expired = copy.clone();
    expired["token_set"]["access_token"] = json!("not-a-valid-access-token");
    expired["token_set"]["expires_at"] = json!("2000-01-01T00:00:00.000Z");
    for stale in [copy, expired] {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute(
            "INSERT INTO atmls_oauth_sessions (did, redirect_uri, session, updated) \
             VALUES (?1, ?2, ?3, 0)",
            rusqlite::params![a.did.as_str(), row.0, serde_json::to_vec(&stale).unwrap()],
        )
        .unwrap();
        let dir = directory(&db);
        dir.oauth_resume(&a.did)
            .await
            .expect("resumed from the store");
        let declaration = IdentityKeyPair::generate().declare(&a.did, unix_now());
        let e = dir
            .publish_declaration_with(&declaration, &records::Profile::default())
            .await
            .unwrap_err();
        assert!(matches!(e, PdsError::Auth(_)), "{e:?}");
        assert!(!e.is_retryable());
        assert!(list_raw(&a.did, records::DECLARATION).is_empty());
        c.execute("DELETE FROM atmls_oauth_sessions", []).unwrap();
    }
}

/// REC-13: app passwords stay as the fallback, and logging in with one replaces an OAuth
/// session in the directory (the stored one stays, to resume).
#[tokio::test(flavor = "multi_thread")]
async fn rec_13_app_password_fallback() {
    let a = create_account("ofallback");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("atmls.db");
    let dir = directory(&db);
    sign_in(&dir, &a, true).await.expect("signed in");
    dir.login(&a.handle, &a.app_password)
        .await
        .expect("app password");
    assert_eq!(dir.logged_in().await.map(|(d, _)| d), Some(a.did.clone()));
    let declaration = IdentityKeyPair::generate().declare(&a.did, unix_now());
    dir.publish_declaration_with(&declaration, &records::Profile::default())
        .await
        .expect("written with the app password");
    assert_eq!(dir.oauth_accounts().unwrap(), vec![a.did.clone()]);
}

/// REC-14, REC-16: a redirect whose code the authorization server refuses (forged, here:
/// with a real `state`) fails with a refusal, not retryable, and not a crash (atrium-oauth
/// 0.2 panics there; the panic is contained); the `state` is used up.
#[tokio::test(flavor = "multi_thread")]
async fn rec_16_refused_code() {
    let a = create_account("ocode");
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("atmls.db");
    let dir = directory(&db);
    let url = dir
        .oauth_begin(&a.handle, "http://127.0.0.1:9/callback")
        .await
        .unwrap();
    let state: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT state FROM atmls_oauth_requests", [], |r| r.get(0))
        .unwrap();
    let iss = origin(&url);
    let forged = format!("http://127.0.0.1:9/callback?state={state}&iss={iss}&code=cod-forged");
    let e = dir.oauth_complete(&forged).await.unwrap_err();
    assert!(matches!(e, PdsError::OAuth { .. }), "{e:?}");
    assert!(!e.is_retryable());
    assert!(dir.logged_in().await.is_none());
    assert!(dir.oauth_accounts().unwrap().is_empty());
    let e = dir.oauth_complete(&forged).await.unwrap_err();
    assert!(matches!(e, PdsError::Auth(_)), "used state: {e:?}");
}
