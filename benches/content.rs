//! Typed content and history (spec/content.md):
//! * `history/page50`: one page of 50 items from a 2,000-message group history (each item
//!   with its reactions looked up), through `Conversation::history`.
//! * `history/search`: full-text search for a word in that history (`Client::search`, SQLite
//!   FTS5), one hit and 2,000 candidates.
//! * `history/receive_reaction`: the receiver's `sync()` of one reaction (decrypt, validate
//!   against history, store), with the sender's `react` outside the timing.
//! * `history/receive_delete`: the receiver's `sync()` of one delete (tombstone, and the FTS5
//!   index merged so no deleted term stays in it), the message and delete sent outside the
//!   timing.
//! * `attachment/encrypt_5MiB` and `attachment/decrypt_5MiB`: ChaCha20-Poly1305 and SHA-256
//!   over a 5 MiB file (`encrypt_attachment`, `RemoteAttachment::decrypt` with digest check).
//!
//! Set-up (outside the timings): two accounts on the in-memory directory and in-process
//! transport, each with an in-memory SQLite store; alice sends 2,000 texts, bob syncs them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atmls::content::encrypt_attachment;
use atmls::directory::MemoryDirectory;
use atmls::identity::DeviceIdentity;
use atmls::storage::Store;
use atmls::transport::MemoryTransport;
use atmls::Client;
use criterion::{criterion_group, criterion_main, Criterion};

const MESSAGES: usize = 2_000;

fn history(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (alice, bob, dm, target) = rt.block_on(async {
        let dir = Arc::new(MemoryDirectory::new());
        let net = Arc::new(MemoryTransport::new());
        let mk = |d: &str| {
            let (dir, net) = (dir.clone(), net.clone());
            let id = DeviceIdentity::new_account(d.parse().unwrap());
            async move {
                Client::builder(dir, net, Store::in_memory().unwrap())
                    .identity(id)
                    .message_requests(false)
                    .build()
                    .await
                    .unwrap()
            }
        };
        let alice = mk("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").await;
        let bob = mk("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").await;
        let dm = alice.dm(bob.did()).await.unwrap();
        let start = Instant::now();
        let mut target = None;
        for i in 0..MESSAGES {
            let word = if i == MESSAGES / 2 { " quokka" } else { "" };
            let m = alice
                .conversation(&dm)
                .send_text(&format!("message number {i} about lunch{word}"))
                .await
                .unwrap();
            target.get_or_insert(m.id);
        }
        bob.sync().await.unwrap();
        eprintln!(
            "set-up: {MESSAGES} messages sent and received in {:?}",
            start.elapsed()
        );
        (alice, bob, dm, target.unwrap())
    });
    let mut g = c.benchmark_group("history");
    g.bench_function("page50", |b| {
        b.to_async(&rt).iter(|| async {
            let page = bob.conversation(&dm).history(None, 50).await.unwrap();
            assert_eq!(page.items.len(), 50);
        })
    });
    g.bench_function("search", |b| {
        b.to_async(&rt).iter(|| async {
            let found = bob.search(Some(&dm), "quokka", 10).await.unwrap();
            assert_eq!(found.len(), 1);
        })
    });
    g.bench_function("receive_reaction", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (alice, bob, dm) = (&alice, &bob, &dm);
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    let emoji = if i % 2 == 0 { "👍" } else { "🎉" };
                    alice.conversation(dm).react(&target, emoji).await.unwrap();
                    let t = Instant::now();
                    bob.sync().await.unwrap();
                    total += t.elapsed();
                }
                total
            }
        })
    });
    g.bench_function("receive_delete", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (alice, bob, dm) = (&alice, &bob, &dm);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let m = alice
                        .conversation(dm)
                        .send_text("short-lived words")
                        .await
                        .unwrap();
                    bob.sync().await.unwrap();
                    alice.conversation(dm).delete(&m.id).await.unwrap();
                    let t = Instant::now();
                    bob.sync().await.unwrap();
                    total += t.elapsed();
                }
                total
            }
        })
    });
    g.finish();
}

fn attachment(c: &mut Criterion) {
    let data = vec![0x42u8; 5 << 20];
    let mut g = c.benchmark_group("attachment");
    g.sample_size(20);
    g.bench_function("encrypt_5MiB", |b| {
        b.iter(|| encrypt_attachment(&data).unwrap())
    });
    let (ct, r) = encrypt_attachment(&data).unwrap();
    g.bench_function("decrypt_5MiB", |b| b.iter(|| r.decrypt(&ct).unwrap()));
    g.finish();
}

criterion_group!(benches, history, attachment);
criterion_main!(benches);
