//! Attachments through a real atmls-ds (spec/content.md CONTENT-25a to CONTENT-25k): two
//! clients on their own stores send each other files streamed through the service's blob
//! store, resume after cut connections, are refused bad input with typed errors and nothing
//! written, and erase blobs of deleted and expired messages; each on SQLite and on
//! PostgreSQL (`ATMLS_TEST_DATABASE_URL`, `scripts/postgres.sh start`; required under CI).
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use atmls::blob::{no_progress, BlobError, BlobStore, HttpBlobStore, Progress};
use atmls::content::{
    encrypt_stream, Attachment, AttachmentSource, Content, StreamError, StreamedAttachment,
};
use atmls::storage::Store;
use atmls::transport::HttpTransport;
use atmls::{Client, Error, GroupId};
use common::did;
use ds_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A service on SQLite, or on a fresh PostgreSQL database (`None` without a server, outside
/// CI: `pg_url` fails the test under CI).
fn start(dir: &tempfile::TempDir, pg: bool) -> Option<(Ds, Backend)> {
    start_with(dir, pg, &[])
}

/// As [`start`], with these flags after the ones that turn rate limits off.
fn start_with(dir: &tempfile::TempDir, pg: bool, extra: &[&str]) -> Option<(Ds, Backend)> {
    let b = if pg { pg_fresh()? } else { sqlite_in(dir) };
    let mut args = NO_LIMITS.to_vec();
    args.extend_from_slice(extra);
    let ds = Ds::start(&b, "127.0.0.1:0", dir.path().join("ds.log"), &args);
    Some((ds, b))
}

/// A test body run on each backend: `name_sqlite` and `name_postgres`.
macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body(false).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(true).await
            }
        }
    };
}

async fn client(w: &DsWorld, url: &str, name: &str) -> Client {
    let t = Arc::new(HttpTransport::new(url).unwrap());
    Client::builder(w.dir.clone(), t.clone(), Store::in_memory().unwrap())
        .identity(atmls::identity::DeviceIdentity::new_account(did(name)))
        .blob_store(Arc::new(HttpBlobStore::new(t)))
        // Accounts of a test world know each other (message requests: tests/consent.rs).
        .message_requests(false)
        .build()
        .await
        .unwrap()
}

/// Pseudo-random bytes (so no run of them repeats in a database page by chance).
fn random_file(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

/// Progress reports, to check they rise to the total.
#[derive(Default)]
struct Bar(Mutex<Vec<Progress>>);

impl Bar {
    fn tick(&self, p: Progress) {
        self.0.lock().unwrap().push(p);
    }
    fn check(&self, total: u64) {
        let seen = self.0.lock().unwrap();
        assert!(seen.len() > 2, "progress after each chunk: {}", seen.len());
        assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));
        assert!(seen.iter().all(|p| p.total == total && p.done <= total));
        assert_eq!(seen.last().unwrap().done, total);
    }
}

async fn received(c: &Client, g: &GroupId, id: &atmls::content::MessageId) -> Attachment {
    c.sync().await.unwrap();
    let item = c
        .conversation(g)
        .message(id)
        .await
        .unwrap()
        .expect("delivered");
    match item.decoded() {
        Some(Content::Attachment(a)) => a,
        other => panic!("not an attachment: {other:?}"),
    }
}

/// `from` sends `len` bytes to `to`, which downloads them; both see progress.
async fn send_file(dir: &Path, from: &Client, to: &Client, g: &GroupId, len: usize) -> Vec<u8> {
    let (path, data) = random_file(dir, "in.bin", len);
    let up = Bar::default();
    let sent = from
        .conversation(g)
        .attach_file(&path, "in.bin", "application/octet-stream", &|p| up.tick(p))
        .await
        .unwrap();
    let a = received(to, g, &sent.id).await;
    assert_eq!(a.size, len as u64);
    let AttachmentSource::Streamed(r) = &a.source else {
        panic!("streamed (CONTENT-25a)")
    };
    up.check(atmls::content::padded_len(atmls::content::stream_len(
        len as u64,
    )));
    let down = Bar::default();
    let target = dir.join("out.bin");
    to.download_to(&a, &target, &|p| down.tick(p))
        .await
        .unwrap();
    down.check(atmls::content::padded_len(atmls::content::stream_len(
        len as u64,
    )));
    assert!(std::fs::read(&target).unwrap() == data, "bytes differ");
    std::fs::remove_file(&target).unwrap();
    assert!(r.url.contains("/v1/blobs/"));
    data
}

on_both!(
    content_25g_two_clients_send_each_other_1_mib_and_ds_sees_no_plaintext,
    content_25g_two_clients_send_each_other_1_mib_and_ds_sees_no_plaintext_on
);

async fn content_25g_two_clients_send_each_other_1_mib_and_ds_sees_no_plaintext_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, backend)) = start(&dir, pg) else {
        return;
    };
    let w = DsWorld::new();
    let alice = client(&w, &ds.url, "alice").await;
    let bob = client(&w, &ds.url, "bob").await;
    let g = alice.dm(bob.did()).await.unwrap();
    bob.sync().await.unwrap();
    let a = send_file(dir.path(), &alice, &bob, &g, 1 << 20).await;
    let b = send_file(dir.path(), &bob, &alice, &g, (1 << 20) + 12_345).await;
    // The in-memory API goes through the service too.
    let bytes: Vec<u8> = (0..300_000).map(|_| rand::random::<u8>()).collect();
    let sent = alice
        .conversation(&g)
        .attach("m.bin", "x/y", &bytes)
        .await
        .unwrap();
    let m = received(&bob, &g, &sent.id).await;
    assert!(streamed_url(&m).starts_with(&ds.url));
    assert!(bob.download(&m).await.unwrap() == bytes);
    // The service's files (the blobs' own file included) hold no run of either plaintext.
    // The SQLite dump reads the blobs' own file too; PostgreSQL's is a pg_dump.
    let dump = backend.dump();
    assert!(dump.len() > 2 << 20, "the blobs are in the dump");
    for data in [&a, &b] {
        for at in [0, 70_000, 500_000, 1_000_000] {
            assert!(!contains(&dump, &data[at..at + 32]), "plaintext at {at}");
        }
    }
    // The operator sees counts and bytes (DS-12), never a blob's URL or a mailbox.
    let metrics = reqwest::get(format!("{}/metrics", ds.metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |line: &str| -> u64 {
        let l = metrics.lines().find(|l| l.starts_with(line));
        l.and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{line} in {metrics}"))
    };
    let padded = |n: u64| atmls::content::padded_len(atmls::content::stream_len(n));
    let all = padded(1 << 20) + padded((1 << 20) + 12_345) + padded(300_000);
    let requests = |op: &str, outcome: &str| {
        count(&format!(
            "atmls_ds_blob_requests_total{{op=\"{op}\",outcome=\"{outcome}\"}}"
        ))
    };
    assert!(requests("complete", "stored") >= 3);
    assert!(requests("download", "served") >= 3);
    assert!(count("atmls_ds_blob_received_bytes_total") >= all);
    assert!(count("atmls_ds_blob_sent_bytes_total") >= all);
    let url = streamed_url(&m);
    let id = url.rsplit('/').next().unwrap();
    assert!(!metrics.contains(id), "no blob id in the metrics");
}

/// 100 MiB each way, on each backend: `ATMLS_TEST_100_MIB=1` runs it (a few minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_25g_two_clients_send_each_other_100_mib() {
    if std::env::var_os("ATMLS_TEST_100_MIB").is_none() {
        eprintln!("ATMLS_TEST_100_MIB not set: skipping the 100 MiB transfers");
        return;
    }
    for pg in [false, true] {
        content_25g_100_mib_on(pg).await;
    }
}

async fn content_25g_100_mib_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, _backend)) = start(&dir, pg) else {
        return;
    };
    let w = DsWorld::new();
    let alice = client(&w, &ds.url, "alice").await;
    let bob = client(&w, &ds.url, "bob").await;
    let g = alice.dm(bob.did()).await.unwrap();
    bob.sync().await.unwrap();
    send_file(dir.path(), &alice, &bob, &g, 100 << 20).await;
    send_file(dir.path(), &bob, &alice, &g, 100 << 20).await;
}

/// A TCP relay to the service that cuts, once, the first connection to carry more than
/// `after` bytes in the direction chosen (`upstream`: client to service).
/// Returns its URL, the number of cuts and the bytes relayed in that direction.
async fn cutting_relay(to: String, after: usize, upstream: bool) -> (String, Counters) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let counters = Counters::default();
    let c = counters.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = l.accept().await {
            let server = tokio::net::TcpStream::connect(&to).await.unwrap();
            tokio::spawn(relay(client, server, after, upstream, c.clone()));
        }
    });
    (format!("http://{addr}"), counters)
}

/// Cuts made, and bytes relayed in the watched direction.
#[derive(Clone, Default)]
struct Counters {
    cuts: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
}

/// Copies `r` to `w`; with a `limit`, cuts (returns) once past it if no cut happened yet.
async fn pipe(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    limit: Option<usize>,
    counters: Counters,
) {
    let mut buf = vec![0u8; 16 << 10];
    let mut n = 0;
    loop {
        let k = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(k) => k,
        };
        n += k;
        if limit.is_some() {
            counters.bytes.fetch_add(k, Ordering::SeqCst);
        }
        if limit.is_some_and(|l| n > l)
            && counters
                .cuts
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            return; // dropping both halves cuts the connection mid-transfer
        }
        if w.write_all(&buf[..k]).await.is_err() {
            return;
        }
    }
}

async fn relay(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    after: usize,
    upstream: bool,
    counters: Counters,
) {
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let (up, down) = if upstream {
        (Some(after), None)
    } else {
        (None, Some(after))
    };
    tokio::select! {
        _ = pipe(cr, sw, up, counters.clone()) => {}
        _ = pipe(sr, cw, down, counters) => {}
    }
}

on_both!(
    content_25h_upload_and_download_resume_after_a_cut_connection,
    content_25h_upload_and_download_resume_after_a_cut_connection_on
);

async fn content_25h_upload_and_download_resume_after_a_cut_connection_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, _backend)) = start(&dir, pg) else {
        return;
    };
    let cap: [u8; 32] = rand::random();
    let (blob, data) = random_file(dir.path(), "blob", 4 << 20);
    // Upload through a relay that cuts the first connection after 1.5 MiB sent.
    let (up_url, up_cuts) = cutting_relay(ds.addr.clone(), 3 << 19, true).await;
    let up = HttpBlobStore::new(Arc::new(HttpTransport::new(&up_url).unwrap()));
    let bar = Bar::default();
    let url = up
        .put_file(Some(&cap), &blob, &|p| bar.tick(p))
        .await
        .unwrap();
    assert_eq!(
        up_cuts.cuts.load(Ordering::SeqCst),
        1,
        "the upload was cut once"
    );
    // Resumed, not restarted: what went through is the blob, the chunk cut short and
    // headers, far less than twice the blob.
    let sent = up_cuts.bytes.load(Ordering::SeqCst);
    assert!(sent < (4 << 20) + (1 << 20), "{sent} bytes sent for 4 MiB");
    bar.check(4 << 20);
    // Download through a relay that cuts the first connection after 1.5 MiB received.
    let (down_url, down_cuts) = cutting_relay(ds.addr.clone(), 3 << 19, false).await;
    let down = HttpBlobStore::new(Arc::new(HttpTransport::new(&down_url).unwrap()));
    let url = url.replacen(&up_url, &down_url, 1);
    let target = dir.path().join("got");
    let bar = Bar::default();
    down.get_to_file(&url, &target, &|p| bar.tick(p))
        .await
        .unwrap();
    assert_eq!(
        down_cuts.cuts.load(Ordering::SeqCst),
        1,
        "the download was cut once"
    );
    bar.check(4 << 20);
    assert!(std::fs::read(&target).unwrap() == data);
    // Resumed with a Range, not restarted.
    let got = down_cuts.bytes.load(Ordering::SeqCst);
    assert!(
        got < (4 << 20) + (1 << 20),
        "{got} bytes received for 4 MiB"
    );
}

/// Uploads `blob` (a file) as a streamed attachment of `size` plaintext bytes sealed with
/// `sealed`'s key, and what a message would carry.
async fn upload_as(
    store: &HttpBlobStore,
    cap: &[u8; 32],
    blob: &Path,
    size: u64,
    key: &atmls::content::StreamKey,
    digest: [u8; 32],
) -> Attachment {
    let url = store.put_file(Some(cap), blob, &no_progress).await.unwrap();
    Attachment {
        filename: "x.bin".into(),
        mime_type: "application/octet-stream".into(),
        size,
        source: AttachmentSource::Streamed(StreamedAttachment {
            url,
            digest,
            key: key.clone(),
        }),
    }
}

/// A bad blob: its name, bytes, the digest the message gives, and the error it must get.
type Case = (&'static str, Vec<u8>, [u8; 32], fn(&Error) -> bool);

fn only_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

on_both!(
    content_25c_25e_25f_bad_blobs_refused_and_nothing_written,
    content_25c_25e_25f_bad_blobs_refused_and_nothing_written_on
);

async fn content_25c_25e_25f_bad_blobs_refused_and_nothing_written_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, _backend)) = start(&dir, pg) else {
        return;
    };
    let w = DsWorld::new();
    let bob = client(&w, &ds.url, "bob").await;
    let store = HttpBlobStore::new(Arc::new(HttpTransport::new(&ds.url).unwrap()));
    let cap: [u8; 32] = rand::random();
    let plain: Vec<u8> = (0..(1 << 20)).map(|_| rand::random::<u8>()).collect();
    let mut blob = Vec::new();
    let sealed = encrypt_stream(&mut &plain[..], &mut blob).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("file");
    let c = 65_536 + 16;
    let cases: Vec<Case> = vec![
        (
            "altered chunk",
            flip(&blob, 2 * c + 5),
            sealed.digest,
            |e| {
                matches!(
                    e,
                    Error::Stream(StreamError::ChunkAuthentication { chunk: 2 })
                )
            },
        ),
        ("reordered", swap(&blob, c), sealed.digest, |e| {
            matches!(
                e,
                Error::Stream(StreamError::ChunkAuthentication { chunk: 0 })
            )
        }),
        // Cut to a smaller padded size: the stream ends before its last chunk.
        (
            "truncated",
            blob[..512 << 10].to_vec(),
            sealed.digest,
            |e| matches!(e, Error::Stream(StreamError::Truncated { .. })),
        ),
        ("digest", blob.clone(), [7; 32], |e| {
            matches!(e, Error::Stream(StreamError::DigestMismatch))
        }),
    ];
    for (name, bytes, digest, want) in cases {
        let f = dir.path().join("bad");
        std::fs::write(&f, &bytes).unwrap();
        let a = upload_as(&store, &cap, &f, sealed.size, &sealed.key, digest).await;
        let r = bob.download_to(&a, &target, &no_progress).await;
        assert!(r.as_ref().is_err_and(want), "{name}: {r:?}");
        assert!(only_files(out.path()).is_empty(), "{name}: nothing written");
    }
    // An id never issued.
    let a = Attachment {
        filename: "x.bin".into(),
        mime_type: "application/octet-stream".into(),
        size: sealed.size,
        source: AttachmentSource::Streamed(StreamedAttachment {
            url: store.url_of(&rand::random()),
            digest: sealed.digest,
            key: sealed.key.clone(),
        }),
    };
    let r = bob.download_to(&a, &target, &no_progress).await;
    assert!(
        matches!(r, Err(Error::Blob(BlobError::NotFound(_)))),
        "{r:?}"
    );
    assert!(only_files(out.path()).is_empty());
    // A URL of another service is not fetched.
    assert!(matches!(
        store
            .get_to_file(
                "https://elsewhere.example/v1/blobs/00",
                &target,
                &no_progress
            )
            .await,
        Err(BlobError::InvalidUrl(_))
    ));
}

fn flip(b: &[u8], at: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    v[at] ^= 1;
    v
}

fn swap(b: &[u8], c: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    v[..c].copy_from_slice(&b[c..2 * c]);
    v[c..2 * c].copy_from_slice(&b[..c]);
    v
}

on_both!(
    content_25h_budget_capability_and_chunk_checks,
    content_25h_budget_capability_and_chunk_checks_on
);

async fn content_25h_budget_capability_and_chunk_checks_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, _backend)) = start(&dir, pg) else {
        return;
    };
    let store = HttpBlobStore::new(Arc::new(HttpTransport::new(&ds.url).unwrap()));
    let cap: [u8; 32] = rand::random();
    let max = atmls_ds_wire::blob_api::MAX_BLOB;
    // Reservations count against the mailbox's budget, before any byte arrives.
    let fit = atmls_ds_wire::blob_api::BLOB_BUDGET / max;
    for _ in 0..fit {
        store.begin_upload(&cap, max).await.unwrap();
    }
    assert!(matches!(
        store.begin_upload(&cap, max).await,
        Err(BlobError::OverBudget { limit }) if limit == atmls_ds_wire::blob_api::BLOB_BUDGET
    ));
    // Another mailbox has its own budget; a size that is not a padded size is refused.
    let other: [u8; 32] = rand::random();
    let id = store.begin_upload(&other, 1 << 20).await.unwrap();
    assert!(matches!(
        store.begin_upload(&other, (1 << 20) + 1).await,
        Err(BlobError::Refused(_))
    ));
    assert!(matches!(
        store.begin_upload(&other, max * 2).await,
        Err(BlobError::Refused(_))
    ));
    // Status needs the capability of the blob's mailbox; another's sees no blob.
    assert!(store
        .upload_status(&other, &id)
        .await
        .unwrap()
        .have
        .is_empty());
    assert!(matches!(
        store.upload_status(&cap, &id).await,
        Err(BlobError::NotFound(_))
    ));
    // An incomplete blob cannot be read.
    let target = dir.path().join("t");
    assert!(matches!(
        store
            .get_to_file(&store.url_of(&id), &target, &no_progress)
            .await,
        Err(BlobError::NotFound(_))
    ));
    // Raw: a chunk of the wrong length, a wrong capability.
    let http = reqwest::Client::new();
    let mb = hex::encode(atmls::transport::MailboxId::for_capability(&other).0);
    let chunk = |cap: [u8; 32], len: usize| {
        http.put(format!(
            "{}/v1/mailboxes/{mb}/blobs/{}/chunks/0",
            ds.url,
            hex::encode(id)
        ))
        .bearer_auth(hex::encode(cap))
        .body(vec![0u8; len])
        .send()
    };
    let r = chunk(other, 100).await.unwrap();
    assert_eq!(r.status(), 400);
    // (A small body: the refusal comes before the body is read.)
    let r = chunk(cap, 100).await.unwrap();
    assert_eq!(r.status(), 403);
    let body: atmls_ds_wire::api::ErrorBody =
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body.error, "forbidden");
    assert_eq!(chunk(other, 256 << 10).await.unwrap().status(), 204);
    assert_eq!(
        store.upload_status(&other, &id).await.unwrap().have,
        vec![0]
    );
}

on_both!(
    content_25k_deleted_and_expired_attachments_erased_at_the_store,
    content_25k_deleted_and_expired_attachments_erased_at_the_store_on
);

async fn content_25k_deleted_and_expired_attachments_erased_at_the_store_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, _backend)) = start(&dir, pg) else {
        return;
    };
    let w = DsWorld::new();
    let alice = client(&w, &ds.url, "alice").await;
    let bob = client(&w, &ds.url, "bob").await;
    let g = alice.dm(bob.did()).await.unwrap();
    bob.sync().await.unwrap();
    let store = HttpBlobStore::new(Arc::new(HttpTransport::new(&ds.url).unwrap()));
    let gone = |url: String| {
        let (store, dir) = (store.clone(), dir.path().to_owned());
        async move { blob_gone(&store, &dir, &url).await }
    };
    // Deleted by its author: erased when the delete is applied.
    let (path, _) = random_file(dir.path(), "a", 300_000);
    let m = alice
        .conversation(&g)
        .attach_file(&path, "a", "x/y", &no_progress)
        .await
        .unwrap();
    let a = received(&bob, &g, &m.id).await;
    let url = streamed_url(&a);
    assert!(!gone(url.clone()).await);
    alice.conversation(&g).delete(&m.id).await.unwrap();
    alice.sync().await.unwrap();
    assert!(gone(url).await, "erased after the delete");
    bob.sync().await.unwrap();
    // Disappearing: erased when the timer runs out on a device.
    alice
        .conversation(&g)
        .set_disappearing(Some(std::time::Duration::from_secs(3600)))
        .await
        .unwrap();
    let (path, _) = random_file(dir.path(), "b", 300_000);
    let m = alice
        .conversation(&g)
        .attach_file(&path, "b", "x/y", &no_progress)
        .await
        .unwrap();
    let a = received(&bob, &g, &m.id).await;
    let url = streamed_url(&a);
    assert!(!gone(url.clone()).await);
    let later = atmls::identity::unix_now() + 7200;
    assert!(bob.purge_expired_at(later).await.unwrap() >= 1);
    assert!(gone(url).await, "erased after expiry");
    // The other device finds it gone, and its queue empties.
    alice.purge_expired_at(later).await.unwrap();
    assert_eq!(alice.erase_deleted_blobs().await.unwrap(), 0);
}

on_both!(
    group_4a_blobs_follow_the_mailbox_and_old_ones_are_still_erased,
    group_4a_blobs_follow_the_mailbox_and_old_ones_are_still_erased_on
);

/// GROUP-4a, CONTENT-25k: a blob stored before a removal moved the group is still erased
/// (with the capability it was stored under), and one stored after it is out of the removed
/// member's reach.
async fn group_4a_blobs_follow_the_mailbox_and_old_ones_are_still_erased_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, _backend)) = start(&dir, pg) else {
        return;
    };
    let w = DsWorld::new();
    let alice = client(&w, &ds.url, "alice").await;
    let bob = client(&w, &ds.url, "bob").await;
    let carol = client(&w, &ds.url, "carol").await;
    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    let store = HttpBlobStore::new(Arc::new(HttpTransport::new(&ds.url).unwrap()));
    let present = |url: String| {
        let (store, dir) = (store.clone(), dir.path().to_owned());
        async move { !blob_gone(&store, &dir, &url).await }
    };
    let (path, _) = random_file(dir.path(), "a", 300_000);
    let before = alice
        .conversation(&g)
        .attach_file(&path, "a", "x/y", &no_progress)
        .await
        .unwrap();
    let before_url = streamed_url(&received(&bob, &g, &before.id).await);
    let old = carol.mailbox_for_test(&g).await.unwrap();
    alice
        .conversation(&g)
        .remove_members(&[carol.did().clone()])
        .await
        .unwrap();
    assert_ne!(alice.mailbox_for_test(&g).await.unwrap().id, old.id);
    let (path, _) = random_file(dir.path(), "b", 300_000);
    let after = alice
        .conversation(&g)
        .attach_file(&path, "b", "x/y", &no_progress)
        .await
        .unwrap();
    let after_url = streamed_url(&received(&bob, &g, &after.id).await);
    // The removed member's capability does not reach a blob of the new mailbox.
    assert!(!store
        .delete(old.post_secret.as_ref(), &after_url)
        .await
        .unwrap());
    assert!(present(after_url.clone()).await);
    // The older blob is erased all the same, under the capability it was stored with.
    alice.conversation(&g).delete(&before.id).await.unwrap();
    alice.sync().await.unwrap();
    assert!(!present(before_url).await, "erased after the delete");
    alice.conversation(&g).delete(&after.id).await.unwrap();
    alice.sync().await.unwrap();
    assert!(!present(after_url).await, "erased after the delete");
}

/// Whether the store answers `url` as gone (erased, or never there).
async fn blob_gone(store: &HttpBlobStore, dir: &Path, url: &str) -> bool {
    matches!(
        store
            .get_to_file(url, &dir.join("probe"), &no_progress)
            .await,
        Err(BlobError::NotFound(_))
    )
}

fn streamed_url(a: &Attachment) -> String {
    match &a.source {
        AttachmentSource::Streamed(r) => r.url.clone(),
        _ => panic!("streamed"),
    }
}

on_both!(
    content_25j_blobs_pruned_with_the_messages,
    content_25j_blobs_pruned_with_the_messages_on
);

async fn content_25j_blobs_pruned_with_the_messages_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["--message-retention", "3", "--prune-interval", "1"];
    let Some((ds, _backend)) = start_with(&dir, pg, &extra) else {
        return;
    };
    let store = HttpBlobStore::new(Arc::new(HttpTransport::new(&ds.url).unwrap()));
    let cap: [u8; 32] = rand::random();
    let (blob, _) = random_file(dir.path(), "blob", 1 << 20);
    let url = store
        .put_file(Some(&cap), &blob, &no_progress)
        .await
        .unwrap();
    let target = dir.path().join("got");
    // Pruned by a prune run soon after the 3 s retention (time enough for the upload).
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if matches!(
            store.get_to_file(&url, &target, &no_progress).await,
            Err(BlobError::NotFound(_))
        ) {
            gone = true;
            break;
        }
    }
    assert!(gone, "the blob outlived the message retention");
    // Its budget is free again: a blob of the whole budget fits.
    let max = atmls_ds_wire::blob_api::MAX_BLOB;
    for _ in 0..atmls_ds_wire::blob_api::BLOB_BUDGET / max {
        store.begin_upload(&cap, max).await.unwrap();
    }
}

on_both!(
    gov_7_avatar_through_atmls_ds_and_the_replaced_one_erased,
    gov_7_avatar_through_atmls_ds_and_the_replaced_one_erased_on
);

/// The avatar goes through the service's blob store like a large attachment (padded,
/// chunked, under the group's capability); replacing it erases the old blob, and an image
/// over the limit is refused before anything is stored or committed.
async fn gov_7_avatar_through_atmls_ds_and_the_replaced_one_erased_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, backend)) = start(&dir, pg) else {
        return;
    };
    let w = DsWorld::new();
    let alice = client(&w, &ds.url, "alice").await;
    let bob = client(&w, &ds.url, "bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let first: Vec<u8> = (0..200_000).map(|_| rand::random::<u8>()).collect();
    alice
        .conversation(&g)
        .set_avatar(Some(("image/png", &first)))
        .await
        .unwrap();
    bob.sync().await.unwrap();
    assert_eq!(
        bob.conversation(&g).avatar().await.unwrap(),
        Some(("image/png".into(), first.clone()))
    );
    let url = avatar_url(&bob, &g).await;
    assert!(url.starts_with(&ds.url), "{url}");
    let dump = backend.dump();
    assert!(
        !contains(&dump, &first[1000..1032]),
        "no plaintext at the DS"
    );

    // Bob replaces it (any member may, under the default preset): the old blob is erased.
    let second = vec![7u8; 5_000];
    bob.conversation(&g)
        .set_avatar(Some(("image/jpeg", &second)))
        .await
        .unwrap();
    alice.sync().await.unwrap();
    assert_eq!(
        alice.conversation(&g).avatar().await.unwrap(),
        Some(("image/jpeg".into(), second))
    );
    let store = HttpBlobStore::new(Arc::new(HttpTransport::new(&ds.url).unwrap()));
    assert!(matches!(store.get(&url).await, Err(BlobError::NotFound(_))));

    // Too large: refused before anything is stored or committed (the avatar stays).
    let newest = avatar_url(&alice, &g).await;
    let big = vec![1u8; (atmls::group::MAX_AVATAR_BYTES + 1) as usize];
    let err = alice
        .conversation(&g)
        .set_avatar(Some(("image/png", &big)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Group(atmls::group::GroupError::Governance(
                atmls::group::GovernanceError::TooLarge { what: "avatar", .. }
            ))
        ),
        "{err:?}"
    );
    assert_eq!(avatar_url(&alice, &g).await, newest);

    // Removing it erases the last blob too.
    alice.conversation(&g).set_avatar(None).await.unwrap();
    bob.sync().await.unwrap();
    assert_eq!(bob.conversation(&g).avatar().await.unwrap(), None);
    assert!(matches!(
        store.get(&newest).await,
        Err(BlobError::NotFound(_))
    ));
}

async fn avatar_url(c: &Client, g: &GroupId) -> String {
    let a = c
        .conversation(g)
        .metadata()
        .await
        .unwrap()
        .avatar
        .expect("an avatar");
    assert!(matches!(a.blob, atmls::group::AvatarBlob::Streamed { .. }));
    a.blob.url().to_owned()
}

on_both!(
    content_25h_the_budget_is_the_operators_choice,
    content_25h_the_budget_is_the_operators_choice_on
);

/// `--blob-budget` sets the per-mailbox budget, named in the refusal.
async fn content_25h_the_budget_is_the_operators_choice_on(pg: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((ds, _backend)) = start_with(&dir, pg, &["--blob-budget", "2097152"]) else {
        return;
    };
    let store = HttpBlobStore::new(Arc::new(HttpTransport::new(&ds.url).unwrap()));
    let cap: [u8; 32] = rand::random();
    store.begin_upload(&cap, 1 << 20).await.unwrap();
    store.begin_upload(&cap, 1 << 20).await.unwrap();
    assert!(matches!(
        store.begin_upload(&cap, 64 << 10).await,
        Err(BlobError::OverBudget { limit: 2_097_152 })
    ));
}
