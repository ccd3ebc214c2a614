//! A 10,000-member group (issue 8): build, add, message, update, remove, and late joiners who
//! fetch the ratchet tree out of band (every Welcome is small, LG-T-1, LG-T-5). Release mode only
//! (`cargo test --release --all-features --test large_group_10k`, run by scripts/test.sh); in
//! a debug build this file has no tests. No timing assertions: speed is the benchmark's job
//! (benches/large_group.rs); this checks that everything works at this size.
//!
//! Members beyond the real clients are accounts that only published a last-resort KeyPackage
//! and were dropped; the Welcomes addressed to them are discarded by the transport (a copy of
//! each large Welcome per filler would take gigabytes). Steps are separate methods of
//! [`Big`], so a new scenario (e.g. a late joiner fetching the tree out of band) is one more
//! method call in the test.
#![cfg(not(debug_assertions))]

#[path = "../benches/common/mod.rs"]
mod bench_common;

use std::sync::Arc;

use atmls::directory::MemoryDirectory;
use atmls::identity::Did;
use atmls::keypackage::KeyPackagePolicy;
use atmls::{Client, Event, GroupId};
use bench_common::{
    atmls_account, atmls_cheap_accounts, did, joiner_policy, BenchNet, BoxError, SETUP_CHUNK,
};

const N: usize = 10_000;

struct Big {
    dir: Arc<MemoryDirectory>,
    net: Arc<BenchNet>,
    alice: Client,
    bob: Client,
    group: GroupId,
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => m.decoded().display_text().map(str::to_owned),
            _ => None,
        })
        .collect()
}

impl Big {
    /// alice creates the group with bob and N-2 fillers, in commits of 1,000; bob joins.
    async fn build() -> Result<Self, BoxError> {
        let dir = Arc::new(MemoryDirectory::new());
        let net = Arc::new(BenchNet::default());
        let fillers = atmls_cheap_accounts(&dir, &net, N - 2, &[], false)?;
        let alice = atmls_account(&dir, &net, did(b'a', 0), KeyPackagePolicy::default()).await?;
        let bob = atmls_account(&dir, &net, did(b'b', 0), KeyPackagePolicy::default()).await?;
        let mut members: Vec<Did> = vec![bob.did().clone()];
        members.extend(fillers.into_iter().map(|(_, d)| d));
        let mut chunks = members.chunks(SETUP_CHUNK);
        let group = alice
            .create_group(chunks.next().unwrap_or_default())
            .await?;
        for chunk in chunks {
            alice.conversation(&group).add_members(chunk).await?;
        }
        let joined = bob.sync().await?;
        assert!(
            joined
                .iter()
                .any(|e| matches!(e, Event::Joined { group: g, .. } if *g == group)),
            "bob did not join"
        );
        Ok(Big {
            dir,
            net,
            alice,
            bob,
            group,
        })
    }

    async fn new_account(&self, tag: u8) -> Result<Client, BoxError> {
        atmls_account(&self.dir, &self.net, did(tag, 0), joiner_policy()).await
    }

    async fn size(&self, c: &Client) -> usize {
        c.conversation(&self.group)
            .members()
            .await
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// alice adds a new account; it joins from its small Welcome, fetching the tree out of
    /// band (LG-T-5); bob sees it.
    async fn add_and_join(&self, tag: u8) -> Result<Client, BoxError> {
        let c = self.new_account(tag).await?;
        self.alice
            .conversation(&self.group)
            .add_members(std::slice::from_ref(c.did()))
            .await?;
        let ev = c.sync().await?;
        assert!(
            ev.iter().any(|e| matches!(e, Event::Joined { .. })),
            "{ev:?}"
        );
        let ev = self.bob.sync().await?;
        assert!(ev
            .iter()
            .any(|e| matches!(e, Event::MembersAdded { members, .. } if members.iter().any(|m| &m.did == c.did()))));
        Ok(c)
    }

    /// `from` sends; every client in `to` receives exactly that text.
    async fn message(&self, from: &Client, to: &[&Client], text: &str) -> Result<(), BoxError> {
        from.conversation(&self.group).send_text(text).await?;
        for c in to {
            assert_eq!(texts(&c.sync().await?), vec![text.to_owned()]);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_members_build_add_message_update_remove() -> Result<(), BoxError> {
    let big = Big::build().await?;
    assert_eq!(big.size(&big.alice).await, N);
    assert_eq!(big.size(&big.bob).await, N);

    let carol = big.add_and_join(b'c').await?;
    assert_eq!(big.size(&carol).await, N + 1);
    assert_eq!(
        big.alice.epoch_fingerprint(&big.group).await?,
        carol.epoch_fingerprint(&big.group).await?
    );

    big.message(&big.alice, &[&big.bob, &carol], "hello, ten thousand")
        .await?;
    big.message(&carol, &[&big.alice, &big.bob], "hi from the newcomer")
        .await?;

    // An update commit (a path through the tree) by bob, processed by the others.
    big.bob.conversation(&big.group).self_update().await?;
    big.alice.sync().await?;
    carol.sync().await?;
    assert_eq!(
        big.alice.epoch_fingerprint(&big.group).await?,
        carol.epoch_fingerprint(&big.group).await?
    );

    // A late joiner after the update: the tree it fetches has bob's new path in it.
    let dave = big.add_and_join(b'd').await?;
    assert_eq!(
        big.alice.epoch_fingerprint(&big.group).await?,
        dave.epoch_fingerprint(&big.group).await?
    );
    carol.sync().await?;
    big.message(&dave, &[&big.alice, &big.bob, &carol], "late, but in")
        .await?;

    // Remove carol: she learns it, the others see it and go on without her.
    big.alice
        .conversation(&big.group)
        .remove_members(std::slice::from_ref(carol.did()))
        .await?;
    let ev = carol.sync().await?;
    assert!(
        ev.iter().any(|e| matches!(e, Event::Removed { .. })),
        "{ev:?}"
    );
    let ev = big.bob.sync().await?;
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::MembersRemoved { members, .. } if members.iter().any(|m| &m.did == carol.did()))));
    assert_eq!(big.size(&big.bob).await, N + 1);
    dave.sync().await?;
    big.message(&big.bob, &[&big.alice, &dave], "still here")
        .await?;
    assert_eq!(
        big.alice.epoch_fingerprint(&big.group).await?,
        big.bob.epoch_fingerprint(&big.group).await?
    );
    Ok(())
}
