//! Large groups (issue 8): every row of the target table, for atmls and for raw openmls 0.9.2,
//! in one run, at N = 1,000 and 10,000 members (100,000 with `ATMLS_BENCH_LARGE=100000`).
//!
//! ```text
//! cargo bench --bench large_group                      # N = 1,000 and 10,000
//! ATMLS_BENCH_SIZES=1000 cargo bench --bench large_group
//! ATMLS_BENCH_LARGE=100000 cargo bench --bench large_group
//! ```
//!
//! A plain bench binary (`harness = false`) with progress on stderr: the set-up at 10,000
//! members takes minutes. Each (side, N) runs in a child process of this binary, so that its
//! peak RSS (`VmHWM`) is its own; the parent prints one table at the end.
//!
//! Rows (medians of a few samples; a 2-core machine shared with builds is noisy, ±10% or
//! more):
//! * `build_s`: building the group: the creator creates it and adds N-1 members in commits of
//!   1,000 (atmls: `create_group` + `add_members`, i.e. directory lookups, KeyPackage and
//!   credential validation, commit, transport, merge; openmls: validate the KeyPackages, an
//!   add-only commit, merge).
//! * `app_ms`: one 1 KiB application message encrypted by the creator and decrypted by bob
//!   (atmls: `send_text` + bob's `sync()`).
//! * `burst_ms_per_msg`: 100 messages are sent, then bob decrypts them (atmls: one `sync()`);
//!   time per message.
//! * `add_ms`: the creator adds one member (commit + Welcome). `process_add_ms`: bob processes
//!   it. `join_ms`: the new member joins (atmls: its `sync()`, including the validation of
//!   every leaf's credential). `process_remove_ms`: bob processes the commit that removes it
//!   again (a remove commit carries an update path). `welcome_bytes`: that Welcome.
//! * `update_blank_ms`: the creator's self-update commit on the freshly built tree (parent
//!   nodes blank: the path secrets are encrypted to about N leaves). `update_filled_ms`: the
//!   same once members spread over the tree have committed (one member in each subtree of the
//!   creator's copath, ⌈log₂N⌉ commits), so the copath resolution is one node per level.
//! * `peak_rss_mb`: the child's peak RSS (everything it held: the creator, bob, the members
//!   kept for the filled tree, the in-memory transport). `bytes_per_member`: the creator's
//!   stored state (SQLite pages in use) divided by N.
//!
//! From 50,000 members on, the two update-commit rows are skipped (no target asks for them at
//! that size, and filling the tree means ⌈log₂N⌉ members each processing every set-up commit):
//! the 100,000-member targets are join, add and message.
//!
//! Sides: `atmls` (the creator's and bob's stores in memory), `openmls` (raw openmls), and for
//! the cost of encryption at rest (spec/storage.md STORE-6) `atmls-file` (their stores in
//! SQLite files, as a device keeps them) and `atmls-encrypted` (the same files encrypted by
//! SQLCipher; needs `--features encrypted-store`):
//!
//! ```text
//! ATMLS_BENCH_SIDES=atmls-file,atmls-encrypted ATMLS_BENCH_SIZES=10000 \
//!     cargo bench --features encrypted-store --bench large_group
//! ```
//!
//! Env: `ATMLS_BENCH_SIZES=1000,10000` (default), `ATMLS_BENCH_LARGE=100000` (adds that size),
//! `ATMLS_BENCH_SIDES=atmls,openmls` (default), `ATMLS_BENCH_SAMPLES=k` (samples of the slow rows),
//! `ATMLS_BENCH_FAST_SAMPLES=k` (samples of the app-message row), `ATMLS_BENCH_MARKS=1`
//! (markers for a profiler).

mod common;

// The raw side is the unpatched openmls 0.9.2 release (atmls links the patched one).
use openmls_upstream as openmls;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls::directory::MemoryDirectory;
use atmls::group::welcome_mailbox;
use atmls::identity::Did;
use atmls::keypackage::KeyPackagePolicy;
use atmls::storage::Store;
use atmls::transport::Transport as _;
use atmls::{Client, Event, GroupId};

use common::*;

const ROWS: &[(&str, &str)] = &[
    ("build_s", "build the group (s)"),
    ("app_ms", "app message encrypt + decrypt (ms)"),
    ("burst_ms_per_msg", "burst of 100, per message (ms)"),
    ("add_ms", "add one member, commit + Welcome (ms)"),
    ("process_add_ms", "process an add commit (ms)"),
    ("process_remove_ms", "process a remove commit (ms)"),
    ("join_ms", "join, all credentials validated (ms)"),
    ("update_blank_ms", "update commit, blank tree (ms)"),
    ("update_filled_ms", "update commit, filled tree (ms)"),
    ("welcome_bytes", "Welcome size (bytes)"),
    ("peak_rss_mb", "peak RSS (MB)"),
    ("bytes_per_member", "stored bytes per member"),
];

fn emit(row: &str, v: f64) {
    println!("ROW\t{row}\t{v}");
    eprintln!("  {row} = {v:.3}");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Leaf indices of the members that commit to fill the creator's copath: one in each
/// subtree [2^k, 2^(k+1)), k ≥ 1 (leaf 0 is the creator, leaf 1 bob).
fn filler_leaves(n: usize) -> Vec<usize> {
    if !update_rows(n) {
        return Vec::new();
    }
    (1..usize::BITS)
        .map(|k| 1usize << k)
        .take_while(|&l| l < n)
        .collect()
}

/// Whether the update-commit rows run at this size (see the module docs).
fn update_rows(n: usize) -> bool {
    n < 50_000
}

/// With `ATMLS_BENCH_MARKS=1`, prints `MARK <label>` on stderr around the timed steps of the
/// add/join/remove rows, so a profiler can be attached to just that step.
fn mark(label: &str) {
    if std::env::var_os("ATMLS_BENCH_MARKS").is_some() {
        eprintln!("MARK {label}");
    }
}

struct Samples {
    fast: usize,
    slow: usize,
}

fn samples(n: usize) -> Samples {
    let slow = std::env::var("ATMLS_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if n >= 10_000 { 3 } else { 5 });
    // More fast samples give a profiler something to see (`ATMLS_BENCH_FAST_SAMPLES=2000`).
    let fast = std::env::var("ATMLS_BENCH_FAST_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if n >= 100_000 { 10 } else { 30 });
    Samples { fast, slow }
}

// ---------------------------------------------------------------------------------------------
// atmls
// ---------------------------------------------------------------------------------------------

struct Atmls {
    /// Where the creator's and bob's store files are (none in memory).
    _files: Option<tempfile::TempDir>,
    dir: Arc<MemoryDirectory>,
    net: Arc<BenchNet>,
    alice: Client,
    bob: Client,
    kept: Vec<Client>,
    group: GroupId,
    next: u64,
}

impl Atmls {
    async fn fresh(&mut self, policy: KeyPackagePolicy) -> Client {
        self.next += 1;
        atmls_account(&self.dir, &self.net, did(b'x', self.next), policy)
            .await
            .expect("account")
    }
}

/// Where the creator and bob keep their state (the other members are always in memory).
#[derive(Clone, Copy, PartialEq)]
enum BenchStore {
    Memory,
    File,
    Encrypted,
}

/// The raw key of the encrypted stores: fixed, since deriving one (Argon2id, once per
/// opening) is not what is measured.
#[cfg(feature = "encrypted-store")]
struct BenchKey;

#[cfg(feature = "encrypted-store")]
impl atmls::storage::KeyProvider for BenchKey {
    fn key(
        &self,
        _: atmls::storage::KeyPurpose,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, atmls::storage::KeyProviderError> {
        Ok(zeroize::Zeroizing::new([0x5a; 32]))
    }
}

fn bench_store(
    kind: BenchStore,
    files: Option<&tempfile::TempDir>,
    name: &str,
) -> Result<Store, BoxError> {
    let path = || files.map(|d| d.path().join(name)).ok_or("no directory");
    Ok(match kind {
        BenchStore::Memory => Store::in_memory()?,
        BenchStore::File => Store::open(path()?)?,
        #[cfg(feature = "encrypted-store")]
        BenchStore::Encrypted => Store::open_encrypted(path()?, &BenchKey)?,
        #[cfg(not(feature = "encrypted-store"))]
        BenchStore::Encrypted => {
            return Err("atmls-encrypted needs --features encrypted-store".into())
        }
    })
}

fn atmls_run(n: usize, kind: BenchStore) -> Result<(), BoxError> {
    let s = samples(n);
    let files = match kind {
        BenchStore::Memory => None,
        _ => Some(tempfile::tempdir()?),
    };
    let rt = current_thread_rt();
    let dir = Arc::new(MemoryDirectory::new());
    let net = Arc::new(BenchNet::default());
    let leaves = filler_leaves(n);
    // Filler i sits at leaf i + 2 (alice 0, bob 1, then the order of the adds).
    let kept_idx: Vec<usize> = leaves.iter().map(|l| l - 2).collect();
    let t = Instant::now();
    let fillers = atmls_cheap_accounts(&dir, &net, n - 2, &kept_idx, true)?;
    eprintln!("  {} filler accounts in {:.1?}", fillers.len(), t.elapsed());
    let alice_store = bench_store(kind, files.as_ref(), "alice.db")?;
    let bob_store = bench_store(kind, files.as_ref(), "bob.db")?;
    let mut fx = rt.block_on(async {
        let policy = KeyPackagePolicy::default();
        let alice = atmls_account_in(&dir, &net, did(b'a', 0), policy.clone(), alice_store);
        let alice = alice.await?;
        let bob = atmls_account_in(&dir, &net, did(b'b', 0), policy, bob_store).await?;
        let mut kept = Vec::new();
        for &i in &kept_idx {
            kept.push(atmls_account(&dir, &net, did(b'm', i as u64), last_resort_only()).await?);
        }
        let mut all: Vec<(usize, Did)> = fillers;
        all.extend(kept_idx.iter().map(|&i| (i, did(b'm', i as u64))));
        all.sort_by_key(|(i, _)| *i);
        let mut members = vec![bob.did().clone()];
        members.extend(all.into_iter().map(|(_, d)| d));
        let t = Instant::now();
        let mut chunks = members.chunks(SETUP_CHUNK);
        let group = alice
            .create_group(chunks.next().unwrap_or_default())
            .await?;
        for (k, chunk) in chunks.enumerate() {
            alice.conversation(&group).add_members(chunk).await?;
            if (k + 2) % 5 == 0 {
                eprintln!("  … {} members, {:.1?}", (k + 2) * SETUP_CHUNK, t.elapsed());
            }
        }
        emit("build_s", t.elapsed().as_secs_f64());
        let list = alice.conversation(&group).members().await?;
        if list.len() != n {
            return Err(format!("group has {} members, wanted {n}", list.len()).into());
        }
        for (l, c) in leaves.iter().zip(&kept) {
            if list.get(*l).map(|m| &m.did) != Some(c.did()) {
                eprintln!(
                    "  warning: member kept for leaf {l} is elsewhere; filled tree is partial"
                );
            }
        }
        let t = Instant::now();
        bob.sync().await?;
        eprintln!("  bob joined in {:.1?}", t.elapsed());
        Ok::<_, BoxError>(Atmls {
            _files: files,
            dir: dir.clone(),
            net: net.clone(),
            alice,
            bob,
            kept,
            group,
            next: 0,
        })
    })?;
    rt.block_on(atmls_rows(&mut fx, &s))?;
    emit("peak_rss_mb", peak_rss_mb());
    Ok(())
}

async fn atmls_rows(fx: &mut Atmls, s: &Samples) -> Result<(), BoxError> {
    let n = fx.alice.conversation(&fx.group).members().await?.len();
    let text = text_1k();
    // App messages one at a time.
    let mut v = Vec::new();
    for _ in 0..s.fast {
        let t = Instant::now();
        fx.alice.conversation(&fx.group).send_text(&text).await?;
        let ev = fx.bob.sync().await?;
        v.push(ms(t.elapsed()));
        if !ev.iter().any(|e| matches!(e, Event::Message(_))) {
            return Err(format!("bob got no message: {ev:?}").into());
        }
    }
    emit("app_ms", median(v));
    // Bursts of 100.
    let mut v = Vec::new();
    for _ in 0..3 {
        for _ in 0..100 {
            fx.alice.conversation(&fx.group).send_text(&text).await?;
        }
        let t = Instant::now();
        let ev = fx.bob.sync().await?;
        v.push(ms(t.elapsed()) / 100.0);
        let got = ev.iter().filter(|e| matches!(e, Event::Message(_))).count();
        if got != 100 {
            return Err(format!("bob got {got} of 100 messages").into());
        }
    }
    emit("burst_ms_per_msg", median(v));
    // Update on the blank tree.
    if update_rows(n) {
        let mut v = Vec::new();
        for _ in 0..s.slow.min(3) {
            let t = Instant::now();
            fx.alice.conversation(&fx.group).self_update().await?;
            v.push(ms(t.elapsed()));
            fx.bob.sync().await?;
        }
        emit("update_blank_ms", median(v));
    }
    // Add, process add, join, process remove.
    let (mut add, mut padd, mut join, mut prm, mut wsize) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0usize);
    for _ in 0..s.slow {
        let joiner = fx.fresh(joiner_policy()).await;
        let d = joiner.did().clone();
        mark("add");
        let t = Instant::now();
        fx.alice
            .conversation(&fx.group)
            .add_members(std::slice::from_ref(&d))
            .await?;
        add.push(ms(t.elapsed()));
        mark("added");
        mark("process add");
        let t = Instant::now();
        let ev = fx.bob.sync().await?;
        padd.push(ms(t.elapsed()));
        mark("processed add");
        if !ev.iter().any(|e| matches!(e, Event::MembersAdded { .. })) {
            return Err(format!("bob saw no add: {ev:?}").into());
        }
        wsize = fx
            .net
            .fetch(&welcome_mailbox(joiner.installation()), 0, 1)
            .await?
            .items
            .first()
            .map_or(0, |d| d.payload.len());
        mark("join");
        let t = Instant::now();
        let ev = joiner.sync().await?;
        join.push(ms(t.elapsed()));
        mark("joined");
        if !ev.iter().any(|e| matches!(e, Event::Joined { .. })) {
            return Err(format!("no join: {ev:?}").into());
        }
        drop(joiner);
        fx.alice
            .conversation(&fx.group)
            .remove_members(std::slice::from_ref(&d))
            .await?;
        mark("process remove");
        let t = Instant::now();
        fx.bob.sync().await?;
        prm.push(ms(t.elapsed()));
        mark("processed remove");
    }
    emit("add_ms", median(add));
    emit("process_add_ms", median(padd));
    emit("join_ms", median(join));
    emit("process_remove_ms", median(prm));
    emit("welcome_bytes", wsize as f64);
    if !update_rows(n) {
        emit(
            "bytes_per_member",
            fx.alice.store_bytes().await? as f64 / n as f64,
        );
        return Ok(());
    }
    // Fill the tree: one member per copath subtree commits an update.
    let t = Instant::now();
    for k in &fx.kept {
        k.sync().await?;
    }
    for i in 0..fx.kept.len() {
        fx.kept[i].conversation(&fx.group).self_update().await?;
    }
    fx.alice.sync().await?;
    fx.bob.sync().await?;
    eprintln!(
        "  tree filled by {} commits in {:.1?}",
        fx.kept.len(),
        t.elapsed()
    );
    let mut v = Vec::new();
    for _ in 0..s.slow {
        let t = Instant::now();
        fx.alice.conversation(&fx.group).self_update().await?;
        v.push(ms(t.elapsed()));
        fx.bob.sync().await?;
    }
    emit("update_filled_ms", median(v));
    emit(
        "bytes_per_member",
        fx.alice.store_bytes().await? as f64 / n as f64,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// raw openmls
// ---------------------------------------------------------------------------------------------

fn raw_run(n: usize) {
    let s = samples(n);
    let text = text_1k().into_bytes();
    let leaves = filler_leaves(n);
    let t = Instant::now();
    let kp_provider = RawProvider::new();
    // Member i (0 = bob) sits at leaf i + 1; kept members have their own provider.
    let mut kps = Vec::with_capacity(n - 1);
    let mut kept_pending: Vec<(
        usize,
        RawProvider,
        openmls_basic_credential::SignatureKeyPair,
    )> = Vec::new();
    let mut bob_parts = None;
    for i in 0..n - 1 {
        let leaf = i + 1;
        if leaf == 1 || leaves.contains(&leaf) {
            let d = if leaf == 1 {
                did(b'b', 0)
            } else {
                did(b'm', i as u64)
            };
            let (p, signer, kp) = raw_joiner(&d);
            kps.push(kp);
            if leaf == 1 {
                bob_parts = Some((p, signer));
            } else {
                kept_pending.push((leaf, p, signer));
            }
        } else {
            kps.push(raw_key_package(&kp_provider, &did(b'm', i as u64)));
        }
    }
    eprintln!("  {} KeyPackages in {:.1?}", kps.len(), t.elapsed());
    let alice_provider = RawProvider::new();
    let (alice_signer, alice_cwk) = raw_identity(&alice_provider, &did(b'a', 0));
    let group = openmls::prelude::MlsGroup::new(
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
    let mut bob_parts = bob_parts;
    let mut bob: Option<RawMember> = None;
    let mut kept: Vec<RawMember> = Vec::new();
    let t = Instant::now();
    let mut build = Duration::ZERO;
    for (k, chunk) in kps.chunks(SETUP_CHUNK).enumerate() {
        let tc = Instant::now();
        let (commit, welcome) = alice.add(chunk);
        build += tc.elapsed();
        // Existing real members process the commit; the new ones join (untimed).
        for m in bob.iter_mut().chain(kept.iter_mut()) {
            m.process(&commit);
        }
        let (lo, hi) = (k * SETUP_CHUNK + 1, k * SETUP_CHUNK + chunk.len());
        if let Some((p, signer)) = bob_parts.take() {
            let g = raw_join(&p, &welcome);
            bob = Some(RawMember {
                provider: p,
                signer,
                group: g,
            });
        }
        let (now, later): (Vec<_>, Vec<_>) = kept_pending
            .into_iter()
            .partition(|(leaf, _, _)| (lo..=hi).contains(leaf));
        kept_pending = later;
        for (_, p, signer) in now {
            let g = raw_join(&p, &welcome);
            kept.push(RawMember {
                provider: p,
                signer,
                group: g,
            });
        }
        if (k + 1) % 5 == 0 {
            eprintln!("  … {} members, {:.1?}", hi + 1, t.elapsed());
        }
    }
    emit("build_s", build.as_secs_f64());
    let mut bob = bob.expect("bob joined");
    assert_eq!(bob.group.members().count(), n);

    let mut v = Vec::new();
    for _ in 0..s.fast {
        let t = Instant::now();
        let ct = alice.send(&text);
        let pt = bob.process(&ct);
        v.push(ms(t.elapsed()));
        assert_eq!(pt.as_deref(), Some(text.as_slice()));
    }
    emit("app_ms", median(v));
    let mut v = Vec::new();
    for _ in 0..3 {
        let cts: Vec<Vec<u8>> = (0..100).map(|_| alice.send(&text)).collect();
        let t = Instant::now();
        for ct in &cts {
            bob.process(ct).expect("application message");
        }
        v.push(ms(t.elapsed()) / 100.0);
    }
    emit("burst_ms_per_msg", median(v));
    if update_rows(n) {
        let mut v = Vec::new();
        for _ in 0..s.slow.min(3) {
            let t = Instant::now();
            let c = alice.self_update();
            v.push(ms(t.elapsed()));
            bob.process(&c);
            for m in &mut kept {
                m.process(&c);
            }
        }
        emit("update_blank_ms", median(v));
    }
    let (mut add, mut padd, mut join, mut prm, mut wsize) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0usize);
    for x in 0..s.slow {
        let d = did(b'x', x as u64);
        let (p, _signer, kp) = raw_joiner(&d);
        let t = Instant::now();
        let (commit, welcome) = alice.add(std::slice::from_ref(&kp));
        add.push(ms(t.elapsed()));
        wsize = welcome.len();
        let t = Instant::now();
        bob.process(&commit);
        padd.push(ms(t.elapsed()));
        let t = Instant::now();
        let g = raw_join(&p, &welcome);
        join.push(ms(t.elapsed()));
        drop(g);
        for m in &mut kept {
            m.process(&commit);
        }
        let rm = alice.remove(&d);
        let t = Instant::now();
        bob.process(&rm);
        prm.push(ms(t.elapsed()));
        for m in &mut kept {
            m.process(&rm);
        }
    }
    emit("add_ms", median(add));
    emit("process_add_ms", median(padd));
    emit("join_ms", median(join));
    emit("process_remove_ms", median(prm));
    emit("welcome_bytes", wsize as f64);
    if !update_rows(n) {
        emit(
            "bytes_per_member",
            alice.provider.stored_bytes() as f64 / n as f64,
        );
        emit("peak_rss_mb", peak_rss_mb());
        return;
    }
    let t = Instant::now();
    for i in 0..kept.len() {
        let c = kept[i].self_update();
        alice.process(&c);
        bob.process(&c);
        for (j, m) in kept.iter_mut().enumerate() {
            if j != i {
                m.process(&c);
            }
        }
    }
    eprintln!(
        "  tree filled by {} commits in {:.1?}",
        kept.len(),
        t.elapsed()
    );
    let mut v = Vec::new();
    for _ in 0..s.slow {
        let t = Instant::now();
        let c = alice.self_update();
        v.push(ms(t.elapsed()));
        bob.process(&c);
    }
    emit("update_filled_ms", median(v));
    emit(
        "bytes_per_member",
        alice.provider.stored_bytes() as f64 / n as f64,
    );
    emit("peak_rss_mb", peak_rss_mb());
}

// ---------------------------------------------------------------------------------------------
// driver
// ---------------------------------------------------------------------------------------------

fn sizes() -> Vec<usize> {
    let mut v: Vec<usize> = std::env::var("ATMLS_BENCH_SIZES")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|x| x.trim().parse().ok())
                .filter(|&n| n >= 4)
                .collect()
        })
        .unwrap_or_else(|| vec![1000, 10_000]);
    if let Some(n) = std::env::var("ATMLS_BENCH_LARGE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        v.push(n);
    }
    v
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let side = args.get(i + 1).ok_or("side")?;
        let n: usize = args.get(i + 2).ok_or("n")?.parse()?;
        return match side.as_str() {
            "atmls" => atmls_run(n, BenchStore::Memory),
            "atmls-file" => atmls_run(n, BenchStore::File),
            "atmls-encrypted" => atmls_run(n, BenchStore::Encrypted),
            _ => {
                raw_run(n);
                Ok(())
            }
        };
    }
    // `cargo test --benches` runs bench binaries without `--bench`: nothing to check here.
    if !args.iter().any(|a| a == "--bench") {
        return Ok(());
    }
    let sides: Vec<String> = std::env::var("ATMLS_BENCH_SIDES")
        .unwrap_or_else(|_| "atmls,openmls".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut table: BTreeMap<(usize, String), BTreeMap<String, f64>> = BTreeMap::new();
    let exe = std::env::current_exe()?;
    for n in sizes() {
        for side in &sides {
            eprintln!("== {side}, N = {n}");
            let t = Instant::now();
            let mut child = Command::new(&exe)
                .args(["--child", side, &n.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let out = child.stdout.take().ok_or("stdout")?;
            let rows = table.entry((n, side.clone())).or_default();
            for line in BufReader::new(out).lines() {
                let line = line?;
                let mut f = line.split('\t');
                if let (Some("ROW"), Some(k), Some(v)) = (f.next(), f.next(), f.next()) {
                    rows.insert(k.to_owned(), v.parse().unwrap_or(f64::NAN));
                }
            }
            let status = child.wait()?;
            eprintln!("== {side}, N = {n}: {status} after {:.1?}", t.elapsed());
        }
    }
    println!();
    for n in sizes() {
        println!("N = {n}");
        print!("| row |");
        for side in &sides {
            print!(" {side} |");
        }
        println!();
        print!("|---|");
        for _ in &sides {
            print!("---:|");
        }
        println!();
        for (k, label) in ROWS {
            print!("| {label} |");
            for side in &sides {
                match table.get(&(n, side.clone())).and_then(|r| r.get(*k)) {
                    Some(v) if v.abs() >= 100.0 => print!(" {v:.0} |"),
                    Some(v) => print!(" {v:.3} |"),
                    None => print!(" — |"),
                }
            }
            println!();
        }
        println!();
    }
    Ok(())
}
