//! Governance (spec/governance.md), in a group of 100 accounts (one device each):
//! * `governance/receive_rename_g100`: a member's `sync()` of one rename commit (GOV-4
//!   authorization reads only the committer's leaf, then MLS processing and merge).
//! * `governance/receive_role_change_g100`: the same for a role change, whose authorization
//!   decodes every member's credential (to count owners, GOV-6).
//! * `governance/receive_post_g100`: a member's `sync()` of one text message (the Post
//!   policy check, GOV-8, reads the roles and policies from the group context).
//!
//! Set-up (outside the timings): 100 accounts on the in-memory directory and in-process
//! transport with in-memory SQLite stores; alice creates the group with everyone, bob joins.
//! The committer's own commit is outside each timing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls::directory::MemoryDirectory;
use atmls::group::{GroupMetadata, Preset, Role};
use atmls::identity::DeviceIdentity;
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::Client;
use criterion::{criterion_group, criterion_main, Criterion};

const ACCOUNTS: usize = 100;

fn did(i: usize) -> String {
    let letters: String = format!("{i:03}")
        .bytes()
        .map(|b| (b'a' + (b - b'0')) as char)
        .collect();
    format!("did:plc:{letters}{}", "x".repeat(21))
}

fn governance(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (alice, bob, carol, g) = rt.block_on(async {
        let dir = Arc::new(MemoryDirectory::new());
        let net = Arc::new(MemoryTransport::new());
        let mut clients = Vec::new();
        let start = Instant::now();
        for i in 0..ACCOUNTS {
            let id = DeviceIdentity::new_account(did(i).parse().unwrap());
            clients.push(
                Client::builder(dir.clone(), net.clone(), Store::in_memory().unwrap())
                    .identity(id)
                    .message_requests(false)
                    .build()
                    .await
                    .unwrap(),
            );
        }
        let alice = clients.remove(0);
        let bob = clients.remove(0);
        let carol = clients.remove(0);
        let mut others: Vec<_> = clients.iter().map(|c| c.did().clone()).collect();
        others.push(bob.did().clone());
        others.push(carol.did().clone());
        let g = alice
            .create_group_with(&others, Preset::AdminsOnly, GroupMetadata::default())
            .await
            .unwrap();
        bob.sync().await.unwrap();
        eprintln!(
            "set-up: {ACCOUNTS} accounts and the group in {:?}",
            start.elapsed()
        );
        (alice, bob, carol, g)
    });
    let mut group = c.benchmark_group("governance");
    group.sample_size(30);
    group.bench_function("receive_rename_g100", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (alice, bob, g) = (&alice, &bob, &g);
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    alice
                        .conversation(g)
                        .set_name(&format!("club {i}"))
                        .await
                        .unwrap();
                    let t = Instant::now();
                    bob.sync().await.unwrap();
                    total += t.elapsed();
                }
                total
            }
        })
    });
    group.bench_function("receive_role_change_g100", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (alice, bob, carol, g) = (&alice, &bob, &carol, &g);
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let role = if i % 2 == 0 {
                        Role::Moderator
                    } else {
                        Role::Member
                    };
                    alice
                        .conversation(g)
                        .set_role(carol.did(), role)
                        .await
                        .unwrap();
                    let t = Instant::now();
                    bob.sync().await.unwrap();
                    total += t.elapsed();
                }
                total
            }
        })
    });
    group.bench_function("receive_post_g100", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (alice, bob, g) = (&alice, &bob, &g);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    alice.conversation(g).send_text("hello club").await.unwrap();
                    let t = Instant::now();
                    bob.sync().await.unwrap();
                    total += t.elapsed();
                }
                total
            }
        })
    });
    group.finish();
}

criterion_group!(benches, governance);
criterion_main!(benches);
