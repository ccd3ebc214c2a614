//! Members' posts on atmls-ds while others flood the same mailboxes (spec/ds.md DS-9, DS-17):
//! a load generator, not criterion. Starts the real binary on loopback with its default limits
//! (but no per-address limit: every client here shares 127.0.0.1) and runs two phases, quiet
//! and flooded, of the same members' traffic:
//! - members: one poster per group mailbox sends a 1 KiB message under the current epoch tag
//!   every 50 ms; an inviter sends a sealed-size (1 KiB) Welcome to each Welcome mailbox in
//!   turn every 100 ms, paying the price the service names (DS-17);
//! - flooded: meanwhile a removed member posts, as fast as it can, junk messages and commits
//!   with the capability it kept: to the mailboxes the groups moved to at its removal
//!   (spec/group.md GROUP-4a: refused, `403`) and to the ones they left, under its last
//!   epoch's tag and made-up tags (stored, read by no member); and strangers post Welcomes to
//!   the same Welcome mailboxes, paying each price asked.
//!
//! It prints the members' post latency (p50, p99, max) and refusals in each phase, the
//! inviter's latency (stamp work included) and the price it paid, and what the floods got
//! stored and refused. Every loop is bounded (`ATMLS_BENCH_POSTS` member posts per mailbox,
//! default 200; floods stop when the members finish or after `ATMLS_BENCH_FLOOD` posts per
//! flooding task, default 50,000).
//!
//! `cargo bench -p atmls-ds --features postgres --bench ds_abuse` runs SQLite, and
//! PostgreSQL too when `ATMLS_TEST_DATABASE_URL` names a server (scripts/postgres.sh start).

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls::identity::InstallationKeyPair;
use atmls::transport::stamp::{make_stamp, stamp_header, STAMP_HEADER};
use atmls::transport::{
    welcome_mailbox_of, CommitOutcome, EpochTag, HttpTransport, IdempotencyKey, Mailbox, MailboxId,
    SendOutcome, Transport,
};
use support::{cpu_secs, env_usize, ms, percentile, start};

const GROUPS: usize = 20;
const DEVICES: usize = 20;
const PAYLOAD: usize = 1024;
const MEMBER_EVERY: Duration = Duration::from_millis(50);
const INVITE_EVERY: Duration = Duration::from_millis(100);
const FLOODERS: usize = 2;
const OLD: [u8; 32] = [1; 32];
const CURRENT: [u8; 32] = [2; 32];

struct World {
    url: String,
    /// The mailboxes the groups moved to at the flooder's removal (GROUP-4a).
    groups: Vec<Mailbox>,
    /// The mailboxes they left, whose capability the flooder kept.
    left: Vec<Mailbox>,
    devices: Vec<MailboxId>,
    /// Each left mailbox's position of the commit that removed the flooder.
    removed_at: Vec<u64>,
}

#[derive(Default)]
struct Counts {
    stored: AtomicU64,
    refused: AtomicU64,
    /// Refused for want of the capability (`403`).
    forbidden: AtomicU64,
    price: AtomicU8,
}

async fn member(
    t: Arc<HttpTransport>,
    m: Mailbox,
    after: u64,
    posts: usize,
) -> (Vec<Duration>, u64) {
    let (mut lat, mut refused) = (Vec::new(), 0);
    let payload = vec![0x5a; PAYLOAD];
    for _ in 0..posts {
        let t0 = Instant::now();
        match t
            .send_message(
                &m,
                &EpochTag(CURRENT),
                after,
                &payload,
                &IdempotencyKey::random(),
            )
            .await
        {
            Ok(SendOutcome::Accepted { .. }) => lat.push(t0.elapsed()),
            _ => refused += 1,
        }
        tokio::time::sleep(MEMBER_EVERY.saturating_sub(t0.elapsed())).await;
    }
    (lat, refused)
}

async fn inviter(t: Arc<HttpTransport>, devices: Vec<MailboxId>, n: usize) -> (Vec<Duration>, u64) {
    let (mut lat, mut refused) = (Vec::new(), 0);
    let payload = vec![0xa5; PAYLOAD];
    for i in 0..n {
        let t0 = Instant::now();
        let key = IdempotencyKey::random();
        let r = t.send_welcome(&devices[i % devices.len()], &payload, &key);
        match r.await {
            Ok(_) => lat.push(t0.elapsed()),
            Err(_) => refused += 1,
        }
        tokio::time::sleep(INVITE_EVERY.saturating_sub(t0.elapsed())).await;
    }
    (lat, refused)
}

/// The removed member: junk under its last tag and made-up tags, with its last cursor and the
/// capability it kept, to the mailbox the group moved to and to the one it left.
async fn removed_member(w: Arc<World>, stop: Arc<AtomicBool>, max: usize, c: Arc<Counts>) {
    let http = reqwest::Client::new();
    for i in 0..max {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let g = i % GROUPS;
        let (route, tag) = match i % 3 {
            0 => ("messages", OLD),
            1 => ("commits", OLD),
            _ => ("commits", rand::random()),
        };
        let kept = &w.left[g];
        let target = if (i / 3) % 2 == 0 { kept } else { &w.groups[g] };
        let r = http
            .post(format!(
                "{}/v1/mailboxes/{}/{route}",
                w.url,
                hex::encode(target.id.0)
            ))
            .bearer_auth(hex::encode(kept.post_secret.expect("capability")))
            .header("atmls-epoch", hex::encode(tag))
            .header("atmls-after", w.removed_at[g].to_string())
            .header("idempotency-key", hex::encode(rand::random::<[u8; 16]>()))
            .body(vec![0u8; PAYLOAD])
            .send()
            .await;
        let counter = match &r {
            Ok(resp) if resp.status().is_success() => &c.stored,
            Ok(resp) if resp.status() == reqwest::StatusCode::FORBIDDEN => &c.forbidden,
            _ => &c.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A stranger: Welcomes to the members' devices, paying each price it is told.
async fn stranger(w: Arc<World>, stop: Arc<AtomicBool>, max: usize, c: Arc<Counts>) {
    let http = reqwest::Client::new();
    let mut price = 8u8;
    for i in 0..max {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mb = w.devices[i % DEVICES];
        let idem: [u8; 16] = rand::random();
        let payload = vec![0u8; PAYLOAD];
        let Some(nonce) = tokio::task::spawn_blocking({
            let p = payload.clone();
            move || make_stamp(&mb, &idem, &p, price)
        })
        .await
        .expect("stamp") else {
            return;
        };
        let r = http
            .post(format!(
                "{}/v1/mailboxes/{}/welcomes",
                w.url,
                hex::encode(mb.0)
            ))
            .header("idempotency-key", hex::encode(idem))
            .header(STAMP_HEADER, stamp_header(nonce))
            .body(payload)
            .send()
            .await;
        c.price.fetch_max(price, Ordering::Relaxed);
        let Ok(resp) = r else { continue };
        if resp.status().is_success() {
            c.stored.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        c.refused.fetch_add(1, Ordering::Relaxed);
        let body = resp.bytes().await.unwrap_or_default();
        let asked = serde_json::from_slice::<atmls_ds_wire::api::ErrorBody>(&body)
            .ok()
            .and_then(|e| e.limit);
        if let Some(bits) = asked {
            price = bits.min(28) as u8;
        }
    }
}

async fn world(url: &str) -> World {
    let t = HttpTransport::new(url).expect("transport");
    let (mut groups, mut left, mut removed_at) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..GROUPS {
        let m = Mailbox::from_capability(rand::random());
        support::genesis(&t, &m).await;
        match t
            .submit_commit(&m, &EpochTag(OLD), 1, b"removal", &IdempotencyKey::random())
            .await
        {
            Ok(CommitOutcome::Accepted { seq }) => removed_at.push(seq),
            other => panic!("removal commit: {other:?}"),
        }
        left.push(m);
        // Members go on in a mailbox their first message starts (GROUP-4a).
        groups.push(Mailbox::from_capability(rand::random()));
    }
    let devices = (0..DEVICES)
        .map(|_| welcome_mailbox_of(InstallationKeyPair::generate().public().as_bytes()))
        .collect();
    World {
        url: url.to_owned(),
        groups,
        left,
        devices,
        removed_at,
    }
}

fn report(label: &str, phase: &str, what: &str, (mut lat, refused): (Vec<Duration>, u64)) {
    lat.sort();
    println!(
        "{label:>10} {phase:>7} {what}: {} stored, {refused} refused; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
    );
}

async fn phase(label: &str, name: &str, w: &Arc<World>, flood: bool, server_pid: &str) {
    let posts = env_usize("ATMLS_BENCH_POSTS", 200);
    let max_flood = env_usize("ATMLS_BENCH_FLOOD", 50_000);
    let t = Arc::new(HttpTransport::new(&w.url).expect("transport"));
    let stop = Arc::new(AtomicBool::new(false));
    let (junk, spam) = (Arc::new(Counts::default()), Arc::new(Counts::default()));
    let mut floods = Vec::new();
    for _ in 0..if flood { FLOODERS } else { 0 } {
        let (w1, s1, j) = (Arc::clone(w), Arc::clone(&stop), Arc::clone(&junk));
        floods.push(tokio::spawn(removed_member(w1, s1, max_flood, j)));
        let (w2, s2, c) = (Arc::clone(w), Arc::clone(&stop), Arc::clone(&spam));
        floods.push(tokio::spawn(stranger(w2, s2, max_flood, c)));
    }
    let cpu0 = cpu_secs(server_pid);
    let started = Instant::now();
    let members: Vec<_> = (0..GROUPS)
        .map(|g| tokio::spawn(member(Arc::clone(&t), w.groups[g].clone(), 0, posts)))
        .collect();
    let invites = posts * MEMBER_EVERY.as_millis() as usize / INVITE_EVERY.as_millis() as usize;
    let inv = tokio::spawn(inviter(Arc::clone(&t), w.devices.clone(), invites));
    let (mut lat, mut refused) = (Vec::new(), 0);
    for m in members {
        let (l, r) = m.await.expect("member");
        lat.extend(l);
        refused += r;
    }
    let inv = inv.await.expect("inviter");
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.await.expect("flood");
    }
    let secs = started.elapsed().as_secs_f64();
    report(label, name, "members' posts", (lat, refused));
    report(label, name, "inviter's Welcomes (stamp work included)", inv);
    if flood {
        println!(
            "{label:>10} {name:>7} removed member: {} posts refused for want of the capability (403), {} junk posts stored in the mailboxes left, {} refused otherwise ({:.0}/s tried)",
            junk.forbidden.load(Ordering::Relaxed),
            junk.stored.load(Ordering::Relaxed),
            junk.refused.load(Ordering::Relaxed),
            (junk.stored.load(Ordering::Relaxed)
                + junk.refused.load(Ordering::Relaxed)
                + junk.forbidden.load(Ordering::Relaxed)) as f64
                / secs,
        );
        println!(
            "{label:>10} {name:>7} strangers: {} Welcomes stored, {} refused for want of work; highest price paid {} bits",
            spam.stored.load(Ordering::Relaxed),
            spam.refused.load(Ordering::Relaxed),
            spam.price.load(Ordering::Relaxed),
        );
    }
    println!(
        "{label:>10} {name:>7} service CPU {:.2} s over {secs:.1} s",
        cpu_secs(server_pid) - cpu0
    );
}

async fn run(label: &'static str, database: String) {
    // Default limits (DS-9, DS-17), except the per-address one: all clients are 127.0.0.1.
    let server = start(&database, &["--rate-address", "0"]);
    let w = Arc::new(world(&server.1).await);
    let pid = server.pid().to_string();
    phase(label, "quiet", &w, false, &pid).await;
    phase(label, "flooded", &w, true, &pid).await;
}

fn main() {
    // `cargo test --benches` runs benches with `--test`-like flags: keep it quick there.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    support::on_both(run);
}
