//! LG-14 (spec/large-groups.md): a commit names the accounts it adds inside its outer seal, so
//! receivers look them up before processing it, and process it once. The hint is only the
//! sender's word: what it names is looked up, never accepted because of it.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use atmls::directory::{
    AccountRecord, DeviceRecord, Directory, DirectoryError, KeyPackageRecord, MemoryDirectory,
};
use atmls::identity::{Did, IdentityDeclaration, PublicKey};
use atmls::storage::Store;
use atmls::{Client, Event};
use common::*;
use openmls::prelude::tls_codec::Serialize as _;
use openmls_traits::OpenMlsProvider as _;

/// A directory that is unreachable for each listed account's first lookup, and records every
/// account lookup.
struct Flaky {
    inner: Arc<MemoryDirectory>,
    fail_once: Mutex<HashSet<Did>>,
    asked: Mutex<Vec<Did>>,
}

#[async_trait]
impl Directory for Flaky {
    async fn account(&self, did: &Did) -> Result<Option<AccountRecord>, DirectoryError> {
        self.asked.lock().unwrap().push(did.clone());
        if self.fail_once.lock().unwrap().remove(did) {
            return Err(DirectoryError::Unavailable("first lookup fails".into()));
        }
        self.inner.account(did).await
    }
    async fn key_packages(&self, did: &Did) -> Result<Vec<KeyPackageRecord>, DirectoryError> {
        self.inner.key_packages(did).await
    }
    async fn publish_declaration(&self, d: &IdentityDeclaration) -> Result<(), DirectoryError> {
        self.inner.publish_declaration(d).await
    }
    async fn publish_device(&self, d: &DeviceRecord) -> Result<(), DirectoryError> {
        self.inner.publish_device(d).await
    }
    async fn remove_device(&self, did: &Did, i: &PublicKey) -> Result<(), DirectoryError> {
        self.inner.remove_device(did, i).await
    }
    async fn publish_key_package(&self, r: &KeyPackageRecord) -> Result<(), DirectoryError> {
        self.inner.publish_key_package(r).await
    }
    async fn delete_key_package(&self, did: &Did, r: &[u8]) -> Result<(), DirectoryError> {
        self.inner.delete_key_package(did, r).await
    }
}

async fn client_with(w: &World, dir: Arc<dyn Directory>, name: &str) -> Client {
    Client::builder(dir, w.net.clone(), Store::in_memory().unwrap())
        .identity(atmls::identity::DeviceIdentity::new_account(did(name)))
        .build()
        .await
        .unwrap()
}

/// LG-14: bob meets carol's account first in the hint of the commit that adds her. The
/// directory fails bob's first lookup of carol: that was the early lookup, it refuses
/// nothing, and the commit's own validation asks again and accepts it in the same sync.
#[tokio::test]
async fn lg_14_added_account_looked_up_before_the_commit() {
    let w = World::new();
    let flaky = Arc::new(Flaky {
        inner: w.dir.clone(),
        fail_once: Mutex::new(HashSet::from([did("carol")])),
        asked: Mutex::new(Vec::new()),
    });
    let (alice, _) = w.account("alice").await;
    let bob = client_with(&w, flaky.clone(), "bob").await;
    let (carol, _) = w.account("carol").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    flaky.asked.lock().unwrap().clear();

    alice.add_members(&g, &[carol.did().clone()]).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::MembersAdded { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.members(&g).await.unwrap().len(), 3);
    // Asked twice: the hint's lookup (failed), then the commit's own.
    let asked = flaky.asked.lock().unwrap().clone();
    assert_eq!(asked, vec![did("carol"), did("carol")]);
    carol.sync().await.unwrap();
    alice.send_text(&g, "hi").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["hi".to_string()]);
    assert_eq!(texts(&carol.sync().await.unwrap()), vec!["hi".to_string()]);
}

/// LG-14: an account bob already holds keys for is not looked up again because a hint names
/// it; an add of a known account asks the directory nothing.
#[tokio::test]
async fn lg_14_known_accounts_not_looked_up() {
    let w = World::new();
    let flaky = Arc::new(Flaky {
        inner: w.dir.clone(),
        fail_once: Mutex::new(HashSet::new()),
        asked: Mutex::new(Vec::new()),
    });
    let (alice, akey) = w.account("alice").await;
    let bob = client_with(&w, flaky.clone(), "bob").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    flaky.asked.lock().unwrap().clear();
    // alice's second device: an add naming alice, whom bob pinned on joining.
    let alice2 = w.device("alice", &akey).await;
    alice.add_members(&g, &[alice.did().clone()]).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::MembersAdded { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.members(&g).await.unwrap().len(), 3);
    assert!(flaky.asked.lock().unwrap().is_empty());
    drop(alice2);
}

/// LG-14: a member's commit whose hint names an account that does not exist and one that
/// the commit does not add (sealed with raw openmls on the member's own state) is processed
/// as the commit it is: the lookups fail or pin a stranger, nothing is refused.
#[tokio::test]
async fn lg_14_false_hint_changes_nothing_but_lookups() {
    let w = World::new();
    let flaky = Arc::new(Flaky {
        inner: w.dir.clone(),
        fail_once: Mutex::new(HashSet::new()),
        asked: Mutex::new(Vec::new()),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.db");
    let alice = w
        .client(
            atmls::identity::DeviceIdentity::new_account(did("alice")),
            Store::open(&path).unwrap(),
        )
        .await;
    let bob = client_with(&w, flaky.clone(), "bob").await;
    let (dave, _) = w.account("dave").await;
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let epoch = bob.epoch_fingerprint(&g).await.unwrap().0;
    flaky.asked.lock().unwrap().clear();
    drop(alice);

    let (p, mut group, signer) = RawProvider::open_group(&path, &g);
    let bundle = group
        .commit_builder()
        .force_self_update(true)
        .load_psks(p.storage())
        .unwrap()
        .build(p.rand(), p.crypto(), &signer, |_| true)
        .unwrap()
        .stage_commit(&p)
        .unwrap();
    let nobody = did("nobody");
    let sealed = atmls::group::seal_for_transport_with_hint(
        &group,
        p.crypto(),
        &bundle.commit().tls_serialize_detached().unwrap(),
        &[nobody.clone(), dave.did().clone()],
    )
    .unwrap();
    // Through the mailbox, as every commit arrives (a hint is read by sync passes).
    use atmls::transport::{EpochTag, IdempotencyKey, Transport as _};
    w.net
        .submit_commit(
            &atmls::group::mailbox_for(g.as_bytes()),
            &EpochTag(rand::random()),
            &sealed,
            &IdempotencyKey::random(),
        )
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    assert_eq!(bob.epoch_fingerprint(&g).await.unwrap().0, epoch + 1);
    assert_eq!(bob.members(&g).await.unwrap().len(), 2);
    let asked = flaky.asked.lock().unwrap().clone();
    assert!(
        asked.contains(&nobody) && asked.contains(dave.did()),
        "{asked:?}"
    );
}
