//! Group operations at N = 10, 100, 1000 members (and 10,000 with `ATMLS_BENCH_10K=1`),
//! each measured twice in the same run: through atmls's public [`Client`] API, and through raw
//! openmls doing the same MLS operation. Ids pair up: `add_one/atmls/100` and
//! `add_one/openmls/100`.
//!
//! Operations:
//! * `add_one`: the creator adds one new member (atmls: `add_members`, i.e. directory lookup,
//!   KeyPackage and credential validation, commit, transport acceptance, merge, Welcome sent;
//!   openmls: KeyPackage deserialize + validate, an add-only commit built as atmls builds it
//!   (commit builder, no forced update path: `MlsGroup::add_members` would force one),
//!   serialize commit and Welcome, `merge_pending_commit`).
//! * `process_commit`: another member processes that add commit (atmls: `sync()`; openmls:
//!   deserialize, `process_message`, `merge_staged_commit`).
//! * `join`: a new member joins from the Welcome (atmls: the joiner's `sync()`; openmls:
//!   `StagedWelcome::new_from_welcome` + `into_group`, ratchet tree from the extension).
//! * `app_message`: a 1 KiB text is encrypted by the creator and decrypted by another member
//!   (atmls: `send_text` + the receiver's `sync()`; openmls: `create_message` +
//!   `process_message`).
//! * `self_update`: the creator rotates its leaf (encryption and signature key, as atmls does)
//!   and merges (atmls: `self_update`).
//!
//! Both sides use ciphersuite 0x0001, the ratchet tree extension, the pure-ciphertext wire
//! format, `max_past_epochs(0)` and the same sender ratchet configuration. The raw openmls side
//! is the unpatched openmls 0.9.2 release with `openmls_rust_crypto` and
//! `openmls_sqlite_storage` (JSON codec) on an in-memory rusqlite connection per member (atmls
//! uses the patched openmls, a compact codec, one SQLite transaction per operation and keeps
//! loaded groups in memory: spec/large-groups.md; raw openmls keeps the `MlsGroup` in memory
//! and runs in autocommit mode). Raw credentials are `BasicCredential`s
//! holding a DID; atmls's carry an installation certificate and a leaf proof extension.
//!
//! Set-up: one N-member group per N and side, built once outside the timed loops (the set-up
//! times are printed to stderr). atmls: a real creator ("alice") and a real second member
//! ("bob") plus N-2 accounts that only published a last-resort KeyPackage (a `Client` each,
//! dropped after publishing; the Welcomes addressed to them are discarded by the bench
//! transport). alice adds them in commits of 1,000 (the transport's 1 MiB commit limit). openmls: alice and bob with their own providers, plus N-2
//! KeyPackages generated in one shared provider.
//!
//! The group stays at N members: every member added in an iteration is removed again after
//! the timed part, and bob catches up, outside the timed part (the epoch advances across
//! iterations; nothing else grows but the stored message history and mailboxes). Timing uses
//! `iter_custom`, so only the operation itself is measured; criterion's iteration count is
//! still derived from wall time, which keeps each benchmark near its time budget.
//!
//! Diagnostic, openmls only: `load_group/openmls/N` is one `MlsGroup::load` from the SQLite
//! storage with the JSON codec, which atmls did once or more per operation before it kept
//! groups in memory (LG-3).
//!
//! Notes: the atmls `join` and `process_commit` timings include what `sync()` does besides
//! (pinning unknown DIDs from the directory, replenishing the joiner's KeyPackage, the
//! pending-proposal check). openmls encrypts update paths in parallel (rayon), on both sides.
//! At N = 10,000 the Welcome is about 5.4 MB with the ratchet tree (within the transport's
//! 16 MiB Welcome limit); openmls itself needs about half a minute to add 9,999 members in one
//! commit, so the 10,000-member set-up takes minutes.
//!
//! Environment: `ATMLS_BENCH_10K=1` adds N = 10,000; `ATMLS_BENCH_SIZES=10,100` overrides the
//! sizes. `cargo test --benches` (criterion's test mode) runs each benchmark once at N = 10.

mod common;

// The raw side is the unpatched openmls 0.9.2 release (atmls links the patched one).
use openmls_upstream as openmls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use openmls::prelude::{
    tls_codec::Serialize as _, BasicCredential, CredentialWithKey, KeyPackage, MlsGroup,
};
use openmls_traits::OpenMlsProvider;

use atmls::directory::MemoryDirectory;
use atmls::group::welcome_mailbox;
use atmls::identity::Did;
use atmls::keypackage::KeyPackagePolicy;
use atmls::transport::Transport;
use atmls::{Client, Event, GroupId};

use common::*;

struct AtmlsFx {
    dir: Arc<MemoryDirectory>,
    net: Arc<BenchNet>,
    alice: Client,
    bob: Client,
    group: GroupId,
    next: AtomicU64,
    text: String,
}

impl AtmlsFx {
    fn build(rt: &tokio::runtime::Runtime, n: usize) -> Result<Self, BoxError> {
        let dir = Arc::new(MemoryDirectory::new());
        let net = Arc::new(BenchNet::default());
        let t0 = Instant::now();
        let extra: Vec<Did> = atmls_cheap_accounts(&dir, &net, n.saturating_sub(2), &[], false)?
            .into_iter()
            .map(|(_, d)| d)
            .collect();
        let t_accounts = t0.elapsed();
        rt.block_on(async {
            let alice =
                atmls_account(&dir, &net, did(b'a', 0), KeyPackagePolicy::default()).await?;
            let bob = atmls_account(&dir, &net, did(b'b', 0), KeyPackagePolicy::default()).await?;
            let mut members = vec![bob.did().clone()];
            members.extend(extra);
            let t1 = Instant::now();
            let mut chunks = members.chunks(SETUP_CHUNK);
            let group = alice
                .create_group(chunks.next().unwrap_or_default())
                .await?;
            for chunk in chunks {
                alice.conversation(&group).add_members(chunk).await?;
            }
            let t_create = t1.elapsed();
            let t2 = Instant::now();
            let events = bob.sync().await?;
            let t_join = t2.elapsed();
            if !events.iter().any(|e| matches!(e, Event::Joined { .. })) {
                return Err(format!("bob did not join: {events:?}").into());
            }
            let size = alice.conversation(&group).members().await?.len();
            if size != n {
                return Err(format!("group has {size} members, wanted {n}").into());
            }
            // The Welcome as the transport stored it (envelope included).
            let welcome_len = net
                .fetch(&welcome_mailbox(bob.installation()), 0, 1)
                .await?
                .items
                .first()
                .map_or(0, |d| d.payload.len());
            eprintln!(
                "set-up atmls   N={n}: {} accounts {:.2?}, create_group {:.2?}, bob joins {:.2?} (Welcome {} bytes)",
                n - 2,
                t_accounts,
                t_create,
                t_join,
                welcome_len
            );
            Ok(AtmlsFx {
                dir: dir.clone(),
                net: net.clone(),
                alice,
                bob,
                group,
                next: AtomicU64::new(0),
                text: text_1k(),
            })
        })
    }

    fn fresh_did(&self) -> Did {
        did(b'x', self.next.fetch_add(1, Ordering::Relaxed))
    }

    async fn fresh_account(&self, policy: KeyPackagePolicy) -> Client {
        atmls_account(&self.dir, &self.net, self.fresh_did(), policy)
            .await
            .expect("new account")
    }

    /// Back to N members, everyone in sync (untimed).
    async fn restore(&self, added: &Did) {
        self.alice
            .conversation(&self.group)
            .remove_members(std::slice::from_ref(added))
            .await
            .expect("remove");
        self.bob.sync().await.expect("bob sync");
    }
}

fn added(events: &[Event]) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::MembersAdded { .. }))
}

async fn atmls_add_one(fx: &AtmlsFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let new = fx.fresh_account(last_resort_only()).await;
        let d = new.did().clone();
        drop(new);
        let t = Instant::now();
        fx.alice
            .conversation(&fx.group)
            .add_members(std::slice::from_ref(&d))
            .await
            .expect("add");
        total += t.elapsed();
        fx.restore(&d).await;
    }
    total
}

async fn atmls_process_commit(fx: &AtmlsFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let new = fx.fresh_account(last_resort_only()).await;
        let d = new.did().clone();
        drop(new);
        fx.alice
            .conversation(&fx.group)
            .add_members(std::slice::from_ref(&d))
            .await
            .expect("add");
        let t = Instant::now();
        let events = fx.bob.sync().await.expect("sync");
        total += t.elapsed();
        assert!(added(&events), "bob saw no add: {events:?}");
        fx.restore(&d).await;
    }
    total
}

async fn atmls_join(fx: &AtmlsFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let joiner = fx.fresh_account(joiner_policy()).await;
        let d = joiner.did().clone();
        fx.alice
            .conversation(&fx.group)
            .add_members(std::slice::from_ref(&d))
            .await
            .expect("add");
        let t = Instant::now();
        let events = joiner.sync().await.expect("join");
        total += t.elapsed();
        assert!(
            events.iter().any(|e| matches!(e, Event::Joined { .. })),
            "no join: {events:?}"
        );
        drop(joiner);
        fx.restore(&d).await;
    }
    total
}

async fn atmls_app_message(fx: &AtmlsFx, iters: u64) -> Duration {
    fx.bob.sync().await.expect("catch up");
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        fx.alice
            .conversation(&fx.group)
            .send_text(&fx.text)
            .await
            .expect("send");
        let events = fx.bob.sync().await.expect("receive");
        total += t.elapsed();
        assert!(
            events.iter().any(|e| matches!(e, Event::Message(_))),
            "no message: {events:?}"
        );
    }
    total
}

async fn atmls_self_update(fx: &AtmlsFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        fx.alice
            .conversation(&fx.group)
            .self_update()
            .await
            .expect("update");
        total += t.elapsed();
        fx.bob.sync().await.expect("bob sync");
    }
    total
}

struct RawFx {
    alice: RawMember,
    bob: RawMember,
    /// Holds the private parts of the KeyPackages of members that never process anything.
    kp_provider: RawProvider,
    next: u64,
    text: Vec<u8>,
}

impl RawFx {
    fn build(n: usize) -> Self {
        let t0 = Instant::now();
        let kp_provider = RawProvider::new();
        let mut kps: Vec<Vec<u8>> = (0..n.saturating_sub(2))
            .map(|i| raw_key_package(&kp_provider, &did(b'm', i as u64)))
            .collect();
        let bob_provider = RawProvider::new();
        let bob_did = did(b'b', 0);
        let (bob_signer, _) = raw_identity(&bob_provider, &bob_did);
        let bob_kp = {
            let cwk = CredentialWithKey {
                credential: BasicCredential::new(bob_did.as_str().as_bytes().to_vec()).into(),
                signature_key: bob_signer.public().into(),
            };
            KeyPackage::builder()
                .build(CS, &bob_provider, &bob_signer, cwk)
                .expect("bob kp")
                .key_package()
                .tls_serialize_detached()
                .expect("kp bytes")
        };
        kps.insert(0, bob_kp);
        let t_kps = t0.elapsed();

        let alice_provider = RawProvider::new();
        let (alice_signer, alice_cwk) = raw_identity(&alice_provider, &did(b'a', 0));
        let group = MlsGroup::new(
            &alice_provider,
            &alice_signer,
            &raw_create_config(),
            alice_cwk,
        )
        .expect("create group");
        let mut alice = RawMember {
            provider: alice_provider,
            signer: alice_signer,
            group,
        };
        let t1 = Instant::now();
        let (_, welcome) = alice.add(&kps);
        let t_create = t1.elapsed();
        let t2 = Instant::now();
        let bob_group = raw_join(&bob_provider, &welcome);
        let t_join = t2.elapsed();
        assert_eq!(bob_group.members().count(), n);
        eprintln!(
            "set-up openmls N={n}: {} KeyPackages {:.2?}, add all {:.2?}, bob joins {:.2?} (Welcome {} bytes)",
            kps.len(),
            t_kps,
            t_create,
            t_join,
            welcome.len()
        );
        RawFx {
            alice,
            bob: RawMember {
                provider: bob_provider,
                signer: bob_signer,
                group: bob_group,
            },
            kp_provider,
            next: 0,
            text: text_1k().into_bytes(),
        }
    }

    fn fresh_did(&mut self) -> Did {
        self.next += 1;
        did(b'x', self.next)
    }

    /// Back to N members, bob in sync (untimed). `bob_has` = bob already processed `commit`.
    fn restore(&mut self, added: &Did, commit: &[u8], bob_has: bool) {
        if !bob_has {
            self.bob.process(commit);
        }
        let rm = self.alice.remove(added);
        self.bob.process(&rm);
    }
}

fn raw_add_one(fx: &mut RawFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let d = fx.fresh_did();
        let kp = raw_key_package(&fx.kp_provider, &d);
        let t = Instant::now();
        let (commit, welcome) = fx.alice.add(std::slice::from_ref(&kp));
        total += t.elapsed();
        drop(welcome);
        fx.restore(&d, &commit, false);
    }
    total
}

fn raw_process_commit(fx: &mut RawFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let d = fx.fresh_did();
        let kp = raw_key_package(&fx.kp_provider, &d);
        let (commit, _) = fx.alice.add(std::slice::from_ref(&kp));
        let t = Instant::now();
        fx.bob.process(&commit);
        total += t.elapsed();
        fx.restore(&d, &commit, true);
    }
    total
}

fn raw_join_bench(fx: &mut RawFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let d = fx.fresh_did();
        let provider = RawProvider::new();
        let kp = raw_key_package(&provider, &d);
        let (commit, welcome) = fx.alice.add(std::slice::from_ref(&kp));
        let t = Instant::now();
        let g = raw_join(&provider, &welcome);
        total += t.elapsed();
        drop(g);
        fx.restore(&d, &commit, false);
    }
    total
}

fn raw_app_message(fx: &mut RawFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        let ct = fx.alice.send(&fx.text);
        let pt = fx.bob.process(&ct);
        total += t.elapsed();
        assert_eq!(pt.as_deref(), Some(fx.text.as_slice()));
    }
    total
}

fn raw_self_update(fx: &mut RawFx, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        let commit = fx.alice.self_update();
        total += t.elapsed();
        fx.bob.process(&commit);
    }
    total
}

// ---------------------------------------------------------------------------------------------
// driver
// ---------------------------------------------------------------------------------------------

/// Criterion runs benchmarks with `--bench`; without it (`cargo test --benches`) it runs each
/// once as a test.
fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test")
}

fn sizes() -> Vec<usize> {
    if let Ok(s) = std::env::var("ATMLS_BENCH_SIZES") {
        return s
            .split(',')
            .filter_map(|x| x.trim().parse().ok())
            .filter(|&n| n >= 2)
            .collect();
    }
    if test_mode() {
        return vec![10];
    }
    let mut v = vec![10, 100, 1000];
    if std::env::var("ATMLS_BENCH_10K").is_ok_and(|v| v == "1") {
        v.push(10_000);
    }
    v
}

type AtmlsOp = for<'a> fn(
    &'a AtmlsFx,
    u64,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Duration> + 'a>>;
type RawOp = fn(&mut RawFx, u64) -> Duration;

fn groups(c: &mut Criterion) {
    let rt = current_thread_rt();
    let ops: [(&str, AtmlsOp, RawOp); 5] = [
        ("add_one", |f, i| Box::pin(atmls_add_one(f, i)), raw_add_one),
        (
            "process_commit",
            |f, i| Box::pin(atmls_process_commit(f, i)),
            raw_process_commit,
        ),
        ("join", |f, i| Box::pin(atmls_join(f, i)), raw_join_bench),
        (
            "app_message",
            |f, i| Box::pin(atmls_app_message(f, i)),
            raw_app_message,
        ),
        (
            "self_update",
            |f, i| Box::pin(atmls_self_update(f, i)),
            raw_self_update,
        ),
    ];
    for n in sizes() {
        let afx = match AtmlsFx::build(&rt, n) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("set-up atmls   N={n} failed, atmls benchmarks skipped: {e}");
                None
            }
        };
        let mut rfx = RawFx::build(n);
        for (name, atmls_op, raw_op) in ops {
            let mut g = c.benchmark_group(name);
            g.sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(if n >= 1000 { 3 } else { 2 }));
            if let Some(fx) = &afx {
                g.bench_function(BenchmarkId::new("atmls", n), |b| {
                    b.to_async(&rt).iter_custom(|iters| atmls_op(fx, iters))
                });
            }
            g.bench_function(BenchmarkId::new("openmls", n), |b| {
                b.iter_custom(|iters| raw_op(&mut rfx, iters))
            });
            g.finish();
        }
        let mut g = c.benchmark_group("load_group");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        g.bench_function(BenchmarkId::new("openmls", n), |b| {
            let a = &rfx.alice;
            b.iter(|| {
                MlsGroup::load(a.provider.storage(), a.group.group_id())
                    .expect("load")
                    .expect("group stored")
            })
        });
        g.finish();
    }
}

criterion_group!(benches, groups);
criterion_main!(benches);
