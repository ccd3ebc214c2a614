//! Ratchet-tree blobs on the real atmls-ds, over SQLite and PostgreSQL (spec/ds.md DS-API-10,
//! spec/large-groups.md LG-T-3..5): the API and its bad input, expiry, and joins through the
//! service, including a tree altered in the service's database.
#![cfg(all(feature = "ds-server", feature = "ds-client"))]
mod common;
mod ds_support;

use std::process::Command;
use std::time::Duration;

use atmls::ds::api::ErrorBody;
use atmls::group::{GroupError, TreeError};
use atmls::transport::*;
use atmls::Event;
use common::joined;
use ds_support::*;

/// A running service on each available backend, with the backend (to reach its database).
fn services(extra: &[&str]) -> Vec<(Ds, Backend, tempfile::TempDir)> {
    let mut args = NO_LIMITS.to_vec();
    args.extend_from_slice(extra);
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite_in(&dir);
    out.push((
        Ds::start(&b, "127.0.0.1:0", dir.path().join("ds.log"), &args),
        b,
        dir,
    ));
    if let Some(pg) = pg_fresh() {
        let dir = tempfile::tempdir().unwrap();
        out.push((
            Ds::start(&pg, "127.0.0.1:0", dir.path().join("ds.log"), &args),
            pg,
            dir,
        ));
    }
    out
}

/// Flips one byte of every stored tree blob, in the service's own database: a hostile or
/// corrupted service.
fn tamper_trees(b: &Backend) {
    match b {
        Backend::Sqlite(p) => {
            let c = rusqlite::Connection::open(p).unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            let rows: Vec<(Vec<u8>, Vec<u8>)> = c
                .prepare("SELECT locator, blob FROM trees")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(!rows.is_empty(), "no tree stored");
            for (l, mut blob) in rows {
                let i = blob.len() / 2;
                blob[i] ^= 0xff;
                c.execute(
                    "UPDATE trees SET blob = ?1 WHERE locator = ?2",
                    rusqlite::params![blob, l],
                )
                .unwrap();
            }
        }
        Backend::Postgres(url) => {
            let out = Command::new("psql")
                .arg(url)
                .arg("-qtc")
                .arg(
                    "UPDATE trees SET blob = set_byte(blob, length(blob) / 2, \
                     get_byte(blob, length(blob) / 2) # 255) RETURNING 1",
                )
                .output()
                .expect("psql");
            assert!(out.status.success(), "tamper: {out:?}");
            assert!(
                String::from_utf8_lossy(&out.stdout).contains('1'),
                "no tree stored"
            );
        }
    }
}

async fn raw(ds: &Ds, method: reqwest::Method, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let resp = reqwest::Client::new()
        .request(method, format!("{}{path}", ds.url))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[track_caller]
fn assert_error(got: (u16, Vec<u8>), status: u16, code: &str) {
    assert_eq!(got.0, status, "{:?}", String::from_utf8_lossy(&got.1));
    let body: ErrorBody = serde_json::from_slice(&got.1).expect("JSON error body");
    assert_eq!(body.error, code);
    assert!(!body.message.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_api_10_trees_idempotent_bounded_and_bad_input_refused() {
    for (ds, _b, _d) in services(&["--max-tree", "4096"]) {
        let t = ds.transport();
        let l = TreeLocator(rand::random());
        assert_eq!(t.fetch_tree(&l).await, Err(TransportError::NotFound));
        t.put_tree(&l, b"blob").await.unwrap();
        // LG-T-3: a repeated upload is a success; other bytes under the locator are refused.
        t.put_tree(&l, b"blob").await.unwrap();
        let e = t.put_tree(&l, b"other").await.unwrap_err();
        assert!(matches!(e, TransportError::Refused(_)), "{e:?}");
        assert!(!e.is_retryable());
        assert_eq!(t.fetch_tree(&l).await.unwrap(), b"blob");
        // The service's limit (--max-tree), with the limit in the error; nothing stored.
        let big = TreeLocator(rand::random());
        assert_eq!(
            t.put_tree(&big, &[7u8; 5000]).await,
            Err(TransportError::PayloadTooLarge {
                size: 5000,
                limit: 4096
            })
        );
        assert_eq!(t.fetch_tree(&big).await, Err(TransportError::NotFound));
        // Bad input over raw HTTP: each a clear error.
        use reqwest::Method;
        let hex = hex::encode(big.0);
        assert_error(
            raw(&ds, Method::PUT, "/v1/trees/zz", b"x".to_vec()).await,
            400,
            "malformed",
        );
        assert_error(
            raw(
                &ds,
                Method::GET,
                &format!("/v1/trees/{}", &hex[..62]),
                vec![],
            )
            .await,
            400,
            "malformed",
        );
        assert_error(
            raw(&ds, Method::PUT, &format!("/v1/trees/{hex}"), vec![]).await,
            400,
            "malformed",
        );
        assert_error(
            raw(&ds, Method::GET, &format!("/v1/trees/{hex}"), vec![]).await,
            404,
            "unknown_tree",
        );
        assert_error(
            raw(&ds, Method::PUT, &format!("/v1/trees/{hex}"), vec![1; 4097]).await,
            413,
            "payload_too_large",
        );
        let (status, body) = raw(&ds, Method::PUT, &format!("/v1/trees/{hex}"), vec![1; 9]).await;
        assert_eq!(status, 200);
        let stored: atmls::ds::api::TreeStored = serde_json::from_slice(&body).unwrap();
        assert!(stored.expires > atmls::identity::unix_now() as i64);
        assert_eq!(
            raw(&ds, Method::GET, &format!("/v1/trees/{hex}"), vec![]).await,
            (200, vec![1; 9])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lg_t_4_trees_expire_on_the_ds_and_joiners_then_refuse() {
    for (ds, _b, _d) in services(&["--tree-retention", "1", "--prune-interval", "1"]) {
        let t = ds.transport();
        let l = TreeLocator(rand::random());
        t.put_tree(&l, b"blob").await.unwrap();
        let w = DsWorld::new();
        let (alice, _) = w.account(&ds.url, "alice").await;
        let (bob, _) = w.account(&ds.url, "bob").await;
        alice.create_group(&[bob.did().clone()]).await.unwrap();
        // Unix seconds: gone within two.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(t.fetch_tree(&l).await, Err(TransportError::NotFound));
        let events = bob.sync().await.unwrap();
        assert!(joined(&events).is_empty(), "{events:?}");
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Refused {
                    group: None,
                    error: GroupError::WelcomeTree(TreeError::Missing),
                    ..
                }
            )),
            "{events:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lg_t_5_joins_through_the_ds_and_a_tampered_tree_is_refused() {
    for (ds, backend, _d) in services(&[]) {
        let w = DsWorld::new();
        let (alice, _) = w.account(&ds.url, "alice").await;
        let (bob, _) = w.account(&ds.url, "bob").await;
        let (carol, _) = w.account(&ds.url, "carol").await;
        let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
        assert_eq!(joined(&bob.sync().await.unwrap()), vec![g.clone()]);
        alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
        tamper_trees(&backend);
        let before = carol.store_snapshot().await.unwrap();
        let events = carol.sync().await.unwrap();
        assert!(joined(&events).is_empty(), "{events:?}");
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Refused {
                    group: None,
                    error: GroupError::WelcomeTree(TreeError::Undecryptable),
                    ..
                }
            )),
            "{events:?}"
        );
        assert!(carol.groups().await.unwrap().is_empty());
        // Only the Welcome cursor moved.
        let after = carol.store_snapshot().await.unwrap();
        let strip = |s: Vec<(String, Vec<String>)>| -> Vec<(String, Vec<String>)> {
            s.into_iter()
                .map(|(t, mut rows)| {
                    rows.retain(|r| !r.contains("welcome_cursor"));
                    (t, rows)
                })
                .collect()
        };
        assert_eq!(strip(after), strip(before));
        // The group goes on for its members.
        alice.send_text(&g, "after").await.unwrap();
        assert_eq!(common::texts(&bob.sync().await.unwrap()), vec!["after"]);
    }
}
