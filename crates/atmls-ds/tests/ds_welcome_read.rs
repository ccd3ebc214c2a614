//! Welcome mailboxes only their owner can read (spec/ds.md DS-W-1, DS-W-2), on the real
//! atmls-ds over SQLite: anyone may post a Welcome, but reading the mailbox or hearing of its
//! items takes a proof by the device's installation key; through the group routes a Welcome
//! mailbox reads like an absent one and never notifies.
#[path = "../../../tests/common/mod.rs"]
mod common;
mod ds_support;

use std::time::Duration;

use atmls::identity::{unix_now, InstallationKeyPair};
use atmls::transport::*;
use ds_support::*;

fn start() -> (Ds, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ds = Ds::start(
        &sqlite_in(&dir),
        "127.0.0.1:0",
        dir.path().join("ds.log"),
        NO_LIMITS,
    );
    (ds, dir)
}

/// GET `path` with an optional proof header; (status, body).
async fn get(http: &reqwest::Client, url: String, proof: Option<&str>) -> (u16, String) {
    let mut req = http.get(url);
    if let Some(p) = proof {
        req = req.header(atmls_ds_wire::api::WELCOME_PROOF_HEADER, p);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<atmls_ds_wire::api::ErrorBody>(body)
        .map(|e| e.error)
        .unwrap_or_else(|_| format!("not JSON: {body:?}"))
}

/// DS-W-1: a stranger reads a Welcome mailbox as empty through the group route and is refused
/// on the Welcome route; only the owner's fresh proof reads the Welcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_w_1_only_the_owner_reads_its_welcome_mailbox() {
    let (ds, _d) = start();
    let t = ds.transport();
    let device = InstallationKeyPair::generate();
    let other = InstallationKeyPair::generate();
    let mine = WelcomeReadProof::sign(&device.secret_bytes(), unix_now());
    let mailbox = mine.mailbox;
    t.send_welcome(&mailbox, b"sealed welcome", &IdempotencyKey::random())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let hexed = hex::encode(mailbox.0);
    let absent = hex::encode(welcome_mailbox_of(other.public().as_bytes()).0);

    // Group route: the Welcome mailbox and an absent one answer alike.
    let via_group = get(
        &http,
        format!("{}/v1/mailboxes/{hexed}/items", ds.url),
        None,
    )
    .await;
    let of_absent = get(
        &http,
        format!("{}/v1/mailboxes/{absent}/items", ds.url),
        None,
    )
    .await;
    assert_eq!(via_group, of_absent);
    assert_eq!(via_group.0, 200);
    assert!(!via_group.1.contains("seq\":1"), "{via_group:?}");

    // Welcome route: no proof, another device's proof, a stale one, a forged one: 403.
    let url = format!("{}/v1/welcomes/{hexed}/items", ds.url);
    let others = WelcomeReadProof::sign(&other.secret_bytes(), unix_now()).to_header();
    let stale = WelcomeReadProof::sign(
        &device.secret_bytes(),
        unix_now() - WELCOME_READ_WINDOW_SECS - 60,
    );
    let mut forged = mine;
    forged.signature[10] ^= 0x40;
    for proof in [
        None,
        Some(others.as_str()),
        Some(&stale.to_header()[..]),
        Some(&forged.to_header()[..]),
        Some("not a proof"),
    ] {
        let (status, body) = get(&http, url.clone(), proof).await;
        assert_eq!(
            (status, error_code(&body)),
            (403, "forbidden".into()),
            "{proof:?}"
        );
    }
    // The owner's proof reads it, through the transport as the client does.
    let page = t.fetch_welcomes(&mine, 0, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].payload, b"sealed welcome");
    // A group mailbox is not readable through the Welcome route (it reads as empty).
    let group = Mailbox::from_capability(rand::random());
    t.submit_commit(
        &group,
        &EpochTag([1; 32]),
        0,
        b"c",
        &IdempotencyKey::random(),
    )
    .await
    .unwrap();
    let mut p = mine;
    p.mailbox = group.id;
    assert!(matches!(
        t.fetch_welcomes(&p, 0, 10).await,
        Err(TransportError::Forbidden)
    ));
}

/// Reads the next `data:` line of an event stream within `patience`.
async fn next_data(
    resp: &mut reqwest::Response,
    buf: &mut String,
    patience: Duration,
) -> Option<String> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(pos) = buf.find('\n') {
            let line: String = buf.drain(..=pos).collect();
            if let Some(d) = line.strip_prefix("data:") {
                return Some(d.trim().to_owned());
            }
            continue;
        }
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(c))) => buf.push_str(&String::from_utf8_lossy(&c)),
            _ => return None,
        }
    }
}

/// DS-W-2: a subscription through the group route that names a Welcome mailbox hears nothing
/// of it (it does hear of a group mailbox it names); the owner's proven subscription does, and
/// one without a proof is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_w_2_welcome_notifications_only_reach_the_owner() {
    let (ds, _d) = start();
    let t = ds.transport();
    let device = InstallationKeyPair::generate();
    let proof = WelcomeReadProof::sign(&device.secret_bytes(), unix_now());
    let group = Mailbox::from_capability(rand::random());
    let http = reqwest::Client::new();

    let body = serde_json::json!({
        "mailboxes": [hex::encode(proof.mailbox.0), hex::encode(group.id.0)]
    });
    let mut stranger = http
        .post(format!("{}/v1/subscribe", ds.url))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status().as_u16(), 200);
    let welcome_url = format!(
        "{}/v1/welcomes/{}/subscribe",
        ds.url,
        hex::encode(proof.mailbox.0)
    );
    let refused = http.post(&welcome_url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let mut owner = http
        .post(&welcome_url)
        .header(atmls_ds_wire::api::WELCOME_PROOF_HEADER, proof.to_header())
        .send()
        .await
        .unwrap();
    assert_eq!(owner.status().as_u16(), 200);

    // A Welcome, then a group commit: the stranger's first event is the group's.
    t.send_welcome(&proof.mailbox, b"w", &IdempotencyKey::random())
        .await
        .unwrap();
    let (mut a, mut b) = (String::new(), String::new());
    assert_eq!(
        next_data(&mut owner, &mut b, Duration::from_secs(10)).await,
        Some(hex::encode(proof.mailbox.0))
    );
    t.submit_commit(
        &group,
        &EpochTag([2; 32]),
        0,
        b"c",
        &IdempotencyKey::random(),
    )
    .await
    .unwrap();
    assert_eq!(
        next_data(&mut stranger, &mut a, Duration::from_secs(10)).await,
        Some(hex::encode(group.id.0))
    );

    // Through the client API: the proven subscription hears of a new Welcome.
    let mut sub = t.subscribe_welcomes(&proof).await.unwrap();
    t.send_welcome(&proof.mailbox, b"w2", &IdempotencyKey::random())
        .await
        .unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), sub.next()).await;
    assert_eq!(heard.ok().flatten(), Some(proof.mailbox));
}

/// DS-W-2: a long poll through the group route on a Welcome mailbox is not woken by a
/// Welcome: it ends empty at its deadline, as on an absent mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_w_2_group_long_poll_on_a_welcome_mailbox_stays_empty() {
    let (ds, _d) = start();
    let t = ds.transport();
    let device = InstallationKeyPair::generate();
    let proof = WelcomeReadProof::sign(&device.secret_bytes(), unix_now());
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/mailboxes/{}/items?wait_ms=1500",
        ds.url,
        hex::encode(proof.mailbox.0)
    );
    let poll = tokio::spawn(async move { get(&http, url, None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.send_welcome(&proof.mailbox, b"w", &IdempotencyKey::random())
        .await
        .unwrap();
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200);
    let page: atmls_ds_wire::api::PageBody = serde_json::from_str(&body).unwrap();
    assert!(page.items.is_empty() && !page.more, "{body}");
}

/// One request as a recording proxy saw it: the connection it came on, and its head and body.
#[derive(Clone, Debug)]
struct Seen {
    conn: usize,
    head: String,
    body: Vec<u8>,
}

/// A proxy on 127.0.0.1 in front of `upstream` that forwards every connection and records
/// each HTTP/1.1 request (by `Content-Length`; the client never sends chunked bodies).
async fn recording_proxy(
    upstream: String,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = seen.clone();
    tokio::spawn(async move {
        let mut conn = 0;
        while let Ok((client, _)) = listener.accept().await {
            conn += 1;
            let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            tokio::spawn(async move {
                let mut b = [0u8; 16 << 10];
                while let Ok(n) = sr.read(&mut b).await {
                    if n == 0 || cw.write_all(&b[..n]).await.is_err() {
                        return;
                    }
                }
            });
            let log = log.clone();
            tokio::spawn(async move {
                let mut b = vec![0u8; 64 << 10];
                let mut pending: Vec<u8> = Vec::new();
                while let Ok(n) = cr.read(&mut b).await {
                    if n == 0 || sw.write_all(&b[..n]).await.is_err() {
                        return;
                    }
                    pending.extend_from_slice(&b[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end]).into_owned();
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if pending.len() < end + 4 + len {
                            break;
                        }
                        let body = pending[end + 4..end + 4 + len].to_vec();
                        pending.drain(..end + 4 + len);
                        log.lock().unwrap().push(Seen { conn, head, body });
                    }
                }
            });
        }
    });
    (url, seen)
}

/// DS-W-3: two devices chat in a DM and a group through recording proxies in front of the real
/// service, syncing and watching; no request names two of a device's mailboxes, no connection
/// carries requests for two of them, and its Welcome mailbox is only read with a proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ds_w_3_no_request_or_connection_names_two_of_a_devices_mailboxes() {
    let (ds, _d) = start();
    let (alice_url, alice_seen) = recording_proxy(ds.addr.clone()).await;
    let (bob_url, bob_seen) = recording_proxy(ds.addr.clone()).await;
    let w = DsWorld::new();
    let (alice, _) = w.account(&alice_url, "alice").await;
    let (bob, _) = w.account(&bob_url, "bob").await;
    let bob = std::sync::Arc::new(bob);
    let mut watching = bob.watch(Duration::from_millis(200));

    let dm = alice.dm(bob.did()).await.unwrap();
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    alice
        .conversation(&dm)
        .send_text("in the dm")
        .await
        .unwrap();
    alice
        .conversation(&g)
        .send_text("in the group")
        .await
        .unwrap();
    // Bob's watcher joins both and reads both texts.
    let mut texts = Vec::new();
    while texts.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(20), watching.recv())
            .await
            .expect("bob's watcher went quiet")
            .expect("watcher ended")
            .expect("sync");
        texts.extend(common::texts(&[ev]));
    }
    bob.conversation(&g).send_text("back").await.unwrap();
    alice.sync().await.unwrap();
    drop(watching);

    let groups = [dm, g].map(|id| hex::encode(atmls::group::mailbox_for(id.as_bytes()).id.0));
    for (who, client, seen) in [("alice", &alice, &alice_seen), ("bob", &*bob, &bob_seen)] {
        let welcome = hex::encode(welcome_mailbox_of(client.installation().as_bytes()).0);
        let mine: Vec<&str> = groups
            .iter()
            .map(|s| s.as_str())
            .chain([welcome.as_str()])
            .collect();
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen.len() > 10,
            "{who}: only {} requests recorded",
            seen.len()
        );
        let mut by_conn: std::collections::HashMap<usize, std::collections::HashSet<&str>> =
            Default::default();
        for r in &seen {
            let text = format!("{}\n{}", r.head, String::from_utf8_lossy(&r.body));
            let named: Vec<&str> = mine.iter().copied().filter(|m| text.contains(m)).collect();
            assert!(
                named.len() <= 1,
                "{who}: one request names {named:?}: {}",
                r.head
            );
            by_conn
                .entry(r.conn)
                .or_default()
                .extend(named.iter().copied());
            if named == [welcome.as_str()] {
                assert!(
                    r.head.contains(&format!("/v1/welcomes/{welcome}/"))
                        && r.head
                            .to_ascii_lowercase()
                            .contains(atmls_ds_wire::api::WELCOME_PROOF_HEADER),
                    "{who}: its Welcome mailbox named without a proof: {}",
                    r.head
                );
            }
        }
        for (conn, set) in &by_conn {
            assert!(set.len() <= 1, "{who}: connection {conn} carries {set:?}");
        }
        // The recording saw what it should: the Welcome route and both groups were used.
        let all: String = seen.iter().map(|r| r.head.as_str()).collect();
        if who == "bob" {
            assert!(
                all.contains(&format!("/v1/welcomes/{welcome}/items")),
                "{who}"
            );
            assert!(
                all.contains(&format!("/v1/welcomes/{welcome}/subscribe")),
                "{who}"
            );
        }
        for gm in &groups {
            assert!(
                seen.iter().any(|r| r.head.contains(gm.as_str())
                    || String::from_utf8_lossy(&r.body).contains(gm.as_str())),
                "{who}: group mailbox never used"
            );
        }
    }
}
