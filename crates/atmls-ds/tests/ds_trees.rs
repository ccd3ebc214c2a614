//! Ratchet-tree blobs on the real atmls-ds, over SQLite and PostgreSQL (spec/ds.md DS-API-10,
//! spec/large-groups.md LG-T-3..5): the API and its bad input, expiry, and joins through the
//! service, including a tree altered in the service's database.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use std::process::Command;
use std::time::Duration;

use atmls::group::{GroupError, TreeError};
use atmls::transport::*;
use atmls::Event;
use atmls_ds_wire::api::ErrorBody;
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

/// The file of the trees beside a SQLite database `ds.db`: `ds.trees.db` (DS-11).
fn trees_file(p: &std::path::Path) -> std::path::PathBuf {
    p.with_file_name("ds.trees.db")
}

fn sqlite(p: &std::path::Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(p).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .arg(url)
        .arg("-qtAc")
        .arg(sql)
        .output()
        .expect("psql");
    assert!(out.status.success(), "psql {sql}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Flips one byte in the middle of every stored chunk of every tree blob, in the service's own
/// database: a hostile or corrupted service.
fn tamper_trees(b: &Backend) {
    match b {
        Backend::Sqlite(p) => {
            let c = sqlite(&trees_file(p));
            let rows: Vec<(i64, i64, Vec<u8>)> = c
                .prepare("SELECT upload, idx, data FROM chunks")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(!rows.is_empty(), "no tree stored");
            for (upload, idx, mut data) in rows {
                let i = data.len() / 2;
                data[i] ^= 0xff;
                c.execute(
                    "UPDATE chunks SET data = ?1 WHERE upload = ?2 AND idx = ?3",
                    rusqlite::params![data, upload, idx],
                )
                .unwrap();
            }
        }
        Backend::Postgres(url) => {
            let out = psql(
                url,
                "UPDATE tree_chunks SET data = set_byte(data, length(data) / 2, \
                 get_byte(data, length(data) / 2) # 255) RETURNING 1",
            );
            assert!(out.contains('1'), "no tree stored");
        }
    }
}

/// What the backend holds of trees: (trees, chunk rows, unfinished uploads). On PostgreSQL an
/// upload in progress is an open transaction, invisible, so only the first two count.
fn stored_rows(b: &Backend) -> (i64, i64, i64) {
    match b {
        Backend::Sqlite(p) => sqlite(&trees_file(p))
            .query_row(
                "SELECT (SELECT COUNT(*) FROM trees), (SELECT COUNT(*) FROM chunks),
                        (SELECT COUNT(*) FROM uploads WHERE id NOT IN (SELECT upload FROM trees))",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap(),
        Backend::Postgres(url) => {
            let out = psql(
                url,
                "SELECT (SELECT count(*) FROM trees) || ' ' || (SELECT count(*) FROM tree_chunks)",
            );
            let n: Vec<i64> = out.split(' ').map(|v| v.parse().unwrap()).collect();
            (n[0], n[1], 0)
        }
    }
}

/// Waits (up to 10 s) until the backend holds no tree, chunk or unfinished upload.
async fn assert_nothing_stored(b: &Backend) {
    let mut rows = stored_rows(b);
    for _ in 0..100 {
        if rows == (0, 0, 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rows = stored_rows(b);
    }
    panic!("left behind (trees, chunks, uploads): {rows:?}");
}

/// A `/proc/<pid>/status` field in KiB (VmHWM: peak resident memory; VmRSS: current).
fn vm_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Starts measuring a peak of the service's memory: resets its VmHWM to its current RSS
/// (`clear_refs` 5) where the kernel lets us, and returns the baseline.
fn peak_baseline(pid: u32) -> u64 {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
    vm_kib(pid, "VmRSS")
}

fn random_blob(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut v);
    v
}

/// A raw request head for a tree upload.
fn put_head(locator: &[u8; 32], framing: &str) -> String {
    format!(
        "PUT /v1/trees/{} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n{framing}\r\n\r\n",
        hex::encode(locator)
    )
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
        let stored: atmls_ds_wire::api::TreeStored = serde_json::from_slice(&body).unwrap();
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
        alice
            .conversation(&g)
            .add_members(&[carol.did().clone()])
            .await
            .unwrap();
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
        alice.conversation(&g).send_text("after").await.unwrap();
        assert_eq!(common::texts(&bob.sync().await.unwrap()), vec!["after"]);
    }
}

/// DS-15, LG-T-3: trees round-trip byte for byte through the chunked storage, whatever their
/// length against the chunk size and however they are framed (`Content-Length` or chunked
/// encoding); a repeat is a success and other bytes a conflict, both without storing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_trees_round_trip_byte_exact_through_chunks() {
    const CHUNK: usize = 256 << 10;
    for (ds, b, _d) in services(&[]) {
        let t = ds.transport();
        for n in [1, CHUNK - 1, CHUNK, 4 * CHUNK, 20 * CHUNK + 12_345] {
            let blob = random_blob(n);
            let l = TreeLocator(rand::random());
            t.put_tree(&l, &blob).await.unwrap();
            assert!(t.fetch_tree(&l).await.unwrap() == blob, "{n} bytes");
            t.put_tree(&l, &blob).await.unwrap();
            let mut other = blob.clone();
            other[n / 2] ^= 1;
            let e = t.put_tree(&l, &other).await.unwrap_err();
            assert!(matches!(e, TransportError::Refused(_)), "{e:?}");
            assert!(t.fetch_tree(&l).await.unwrap() == blob, "{n} bytes");
        }
        let (trees, chunks, unfinished) = stored_rows(&b);
        assert_eq!(trees, 5);
        // Stored in chunks: 1 + 1 + 1 + 4 + 21.
        assert_eq!(chunks, 28);
        assert_eq!(unfinished, 0);
        // Chunked transfer encoding, in pieces that straddle the chunk boundaries.
        let blob = random_blob(3 * CHUNK + 777);
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
            blob.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
        let l = TreeLocator(rand::random());
        let url = format!("{}/v1/trees/{}", ds.url, hex::encode(l.0));
        let r = reqwest::Client::new()
            .put(&url)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                pieces,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(t.fetch_tree(&l).await.unwrap() == blob);
        let got = reqwest::get(&url).await.unwrap();
        assert_eq!(
            got.headers()["content-length"],
            blob.len().to_string().as_str()
        );
        assert!(got.bytes().await.unwrap() == blob);
    }
}

/// DS-15: 24 clients fetching one 32 MiB tree at once cost the service a few chunks each at
/// most, not a copy of the tree each (before: 1.1 GB). Peak RSS (VmHWM of the service), a bound
/// on memory only: its growth stays under 24 × 8 chunks (48 MiB; one copy each would be
/// 768 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_concurrent_tree_downloads_keep_memory_bounded() {
    const CHUNK: u64 = 256 << 10;
    const CLIENTS: u64 = 24;
    for (ds, _b, _d) in services(&[]) {
        let t = ds.transport();
        let blob = std::sync::Arc::new(random_blob(32 << 20));
        let l = TreeLocator(rand::random());
        t.put_tree(&l, &blob).await.unwrap();
        let pid = ds.child.id();
        let base = peak_baseline(pid);
        let url = format!("{}/v1/trees/{}", ds.url, hex::encode(l.0));
        let mut gets = Vec::new();
        for _ in 0..CLIENTS {
            let (url, blob) = (url.clone(), std::sync::Arc::clone(&blob));
            gets.push(tokio::spawn(async move {
                let r = reqwest::get(&url).await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                r.bytes().await.unwrap() == blob[..]
            }));
        }
        for g in gets {
            assert!(g.await.unwrap(), "the tree comes back byte for byte");
        }
        let peak = vm_kib(pid, "VmHWM");
        let growth = peak.saturating_sub(base);
        eprintln!("{CLIENTS} downloads of 32 MiB: RSS {base} KiB before, peak {peak} KiB");
        assert!(
            growth * 1024 < CLIENTS * 8 * CHUNK,
            "peak RSS grew by {growth} KiB"
        );
    }
}

/// DS-15: uploads are stored as they arrive, never held whole: eight concurrent 16 MiB
/// uploads grow the service's peak RSS by less than 8 × 8 chunks (16 MiB; one copy each
/// would be 128 MiB). A bound on memory only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_concurrent_tree_uploads_keep_memory_bounded() {
    const CHUNK: u64 = 256 << 10;
    const CLIENTS: u64 = 8;
    for (ds, b, _d) in services(&[]) {
        let pid = ds.child.id();
        // Warm up (connections, statements, the first pages of the files).
        ds.transport()
            .put_tree(&TreeLocator(rand::random()), &random_blob(1 << 20))
            .await
            .unwrap();
        let blob = axum::body::Bytes::from(random_blob(16 << 20));
        let base = peak_baseline(pid);
        let mut puts = Vec::new();
        for _ in 0..CLIENTS {
            let (url, blob) = (ds.url.clone(), blob.clone());
            puts.push(tokio::spawn(async move {
                let l = hex::encode(rand::random::<[u8; 32]>());
                let r = reqwest::Client::new()
                    .put(format!("{url}/v1/trees/{l}"))
                    .body(blob)
                    .send()
                    .await
                    .unwrap();
                r.status().as_u16()
            }));
        }
        for p in puts {
            assert_eq!(p.await.unwrap(), 200);
        }
        let peak = vm_kib(pid, "VmHWM");
        let growth = peak.saturating_sub(base);
        eprintln!("{CLIENTS} uploads of 16 MiB: RSS {base} KiB before, peak {peak} KiB");
        assert!(
            growth * 1024 < CLIENTS * 8 * CHUNK,
            "peak RSS grew by {growth} KiB"
        );
        assert_eq!(stored_rows(&b).0, 9);
    }
}

/// DS-15: a client that goes away in the middle of an upload leaves no tree, no chunk and no
/// unfinished upload behind (on SQLite the chunks were being written as they arrived, and are
/// deleted; on PostgreSQL the upload's transaction is rolled back), and the locator is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_aborted_tree_upload_leaves_nothing() {
    use tokio::io::AsyncWriteExt as _;
    for (ds, b, _d) in services(&[]) {
        let l = TreeLocator(rand::random());
        let mut s = tokio::net::TcpStream::connect(&ds.addr).await.unwrap();
        s.write_all(put_head(&l.0, &format!("Content-Length: {}", 8 << 20)).as_bytes())
            .await
            .unwrap();
        let part = random_blob(3 << 20);
        s.write_all(&part).await.unwrap();
        s.flush().await.unwrap();
        if let Backend::Sqlite(_) = b {
            // Stored as it arrives: chunks are there before the body is complete.
            let mut rows = stored_rows(&b);
            for _ in 0..100 {
                if rows.1 >= 8 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                rows = stored_rows(&b);
            }
            assert_eq!((rows.0, rows.2), (0, 1), "{rows:?}");
            assert!(rows.1 >= 8, "{rows:?}");
        } else {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        drop(s);
        assert_nothing_stored(&b).await;
        let t = ds.transport();
        assert_eq!(t.fetch_tree(&l).await, Err(TransportError::NotFound));
        t.put_tree(&l, b"after").await.unwrap();
        assert_eq!(t.fetch_tree(&l).await.unwrap(), b"after");
    }
}

/// DS-9, DS-15: an upload without `Content-Length` (chunked encoding) is counted as it
/// arrives and refused with `413 payload_too_large` once it passes `--max-tree`; nothing of
/// it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_oversize_chunked_tree_upload_refused_and_nothing_stored() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    for (ds, b, _d) in services(&["--max-tree", "1048576"]) {
        let l = TreeLocator(rand::random());
        let s = tokio::net::TcpStream::connect(&ds.addr).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        let reader = tokio::spawn(async move {
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(20), rd.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        });
        wr.write_all(put_head(&l.0, "Transfer-Encoding: chunked").as_bytes())
            .await
            .unwrap();
        // 4 MiB in chunks of 64 KiB, or until the service stops reading.
        let piece = random_blob(64 << 10);
        for _ in 0..64 {
            let mut frame = format!("{:x}\r\n", piece.len()).into_bytes();
            frame.extend_from_slice(&piece);
            frame.extend_from_slice(b"\r\n");
            if wr.write_all(&frame).await.is_err() {
                break;
            }
            if reader.is_finished() {
                break;
            }
        }
        let _ = wr.write_all(b"0\r\n\r\n").await;
        let answer = reader.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.300}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let e: ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(e.error, "payload_too_large");
        assert_eq!(e.limit, Some(1 << 20));
        assert_nothing_stored(&b).await;
        assert_eq!(
            ds.transport().fetch_tree(&l).await,
            Err(TransportError::NotFound)
        );
    }
}

/// DS-11: blobs an earlier version stored whole are still served: on SQLite they move from the
/// mailboxes' database into the trees file when the service starts; on PostgreSQL they stay in
/// `trees.blob` and are read a chunk at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_11_trees_of_the_earlier_layout_are_still_served() {
    // 600,000 bytes: 00 01 02 03 repeated (three chunks, the last one short).
    let blob: Vec<u8> = (0..600_000u32).map(|i| (i % 4) as u8).collect();
    let digest = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&blob).to_vec()
    };
    let l: [u8; 32] = rand::random();
    let dir = tempfile::tempdir().unwrap();
    let b = sqlite_in(&dir);
    let Backend::Sqlite(p) = &b else {
        unreachable!()
    };
    let mut ds = Ds::start(&b, "127.0.0.1:0", dir.path().join("ds.log"), NO_LIMITS);
    ds.kill();
    sqlite(p)
        .execute(
            "INSERT INTO trees (locator, digest, blob, expires) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![l.as_slice(), digest, blob, i64::MAX / 2],
        )
        .unwrap();
    let ds = Ds::start(&b, "127.0.0.1:0", dir.path().join("ds.log"), NO_LIMITS);
    assert!(ds.transport().fetch_tree(&TreeLocator(l)).await.unwrap() == blob);
    let left: i64 = sqlite(p)
        .query_row("SELECT COUNT(*) FROM trees", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "moved out of the mailboxes' database");
    assert_eq!(stored_rows(&b), (1, 3, 0));
    if let Some(pg) = pg_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Ds::start(&pg, "127.0.0.1:0", dir.path().join("ds.log"), NO_LIMITS);
        let Backend::Postgres(url) = &pg else {
            unreachable!()
        };
        psql(
            url,
            &format!(
                "INSERT INTO trees (locator, digest, blob, expires) VALUES \
                 ('\\x{}', '\\x{}', decode(repeat('00010203', 150000), 'hex'), {})",
                hex::encode(l),
                hex::encode(&digest),
                i64::MAX / 2
            ),
        );
        let t = ds.transport();
        assert!(t.fetch_tree(&TreeLocator(l)).await.unwrap() == blob);
        // A repeat is recognised by the digest; other bytes are a conflict.
        t.put_tree(&TreeLocator(l), &blob).await.unwrap();
        assert!(t.put_tree(&TreeLocator(l), b"other").await.is_err());
    }
}

/// DS-15: a client that starts a download and stops reading gives its turn back after the
/// body timeout, so with one turn another client's download still goes through (its
/// transport retries `503 busy`); the stalled download holds only its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_15_a_stalled_download_gives_its_turn_back() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    for (ds, _b, _d) in services(&["--max-tree-transfers", "1", "--body-timeout", "2"]) {
        let t = ds.transport();
        let big = TreeLocator(rand::random());
        t.put_tree(&big, &random_blob(32 << 20)).await.unwrap();
        let small = TreeLocator(rand::random());
        t.put_tree(&small, b"small").await.unwrap();
        // Takes the one turn, reads the head of the answer, then nothing more.
        let mut s = tokio::net::TcpStream::connect(&ds.addr).await.unwrap();
        let head = format!(
            "GET /v1/trees/{} HTTP/1.1\r\nHost: x\r\n\r\n",
            hex::encode(big.0)
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut first = [0u8; 64];
        let n = s.read(&mut first).await.unwrap();
        assert!(first[..n].starts_with(b"HTTP/1.1 200"));
        assert_eq!(t.fetch_tree(&small).await.unwrap(), b"small");
        drop(s);
    }
}
