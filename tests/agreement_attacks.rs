//! Attacks on agreement (spec/agreement.md, issue "Groups that no one can freeze or fork"):
//! hostile members and strangers post what every member refuses, under the epoch's own tag,
//! and the group carries on: the honest members commit, send and converge.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use atmls::group::{epoch_tag, mailbox_for, seal_for_transport, GroupError, Preset};
use atmls::identity::DeviceIdentity;
use atmls::storage::Store;
use atmls::transport::*;
use atmls::{Client, Event, GroupId};
use common::*;
use openmls::prelude::{
    tls_codec::Serialize as _, Extension, Extensions, GroupContext, UnknownExtension,
};
use openmls_traits::OpenMlsProvider as _;

/// alice (owner), bob (the hostile member, his state in a file) and carol in one group.
struct Cast {
    w: World,
    alice: Client,
    bob: Client,
    carol: Client,
    bob_db: PathBuf,
    g: GroupId,
    _dir: tempfile::TempDir,
}

async fn cast(preset: Preset) -> Cast {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let bob_db = dir.path().join("bob.sqlite");
    let (alice, _) = w.account("alice").await;
    let bob = w
        .client(
            DeviceIdentity::new_account(did("bob")),
            Store::open(&bob_db).unwrap(),
        )
        .await;
    let (carol, _) = w.account("carol").await;
    let g = alice
        .create_group_with(
            &[bob.did().clone(), carol.did().clone()],
            preset,
            Default::default(),
        )
        .await
        .unwrap();
    for c in [&bob, &carol] {
        c.sync().await.unwrap();
    }
    Cast {
        w,
        alice,
        bob,
        carol,
        bob_db,
        g,
        _dir: dir,
    }
}

/// The tag of the epoch the device whose database is `db` is in.
fn current_tag(db: &Path, g: &GroupId) -> EpochTag {
    let (p, group, _) = RawProvider::open_group(db, g);
    epoch_tag(&group, p.crypto()).unwrap()
}

/// Posts `payload` as a commit under `tag`, claiming to have read nothing (the poster's word
/// on its cursor changes nothing for the members).
async fn post_commit(w: &World, g: &GroupId, tag: &EpochTag, payload: &[u8]) -> CommitOutcome {
    w.net
        .submit_commit(
            &mailbox_for(g.as_bytes()),
            tag,
            0,
            payload,
            &IdempotencyKey::random(),
        )
        .await
        .unwrap()
}

/// The honest members (alice, carol) carry on after an attack: each refuses it on her next
/// sync, alice commits and sends, carol reads and answers, and both end in the same epoch
/// with the same authenticator.
async fn carries_on(c: &Cast) {
    let refused = |ev: &[Event]| ev.iter().any(|e| matches!(e, Event::Refused { .. }));
    let ev = c.alice.sync().await.unwrap();
    assert!(refused(&ev), "alice saw the attack: {ev:?}");
    let ev = c.carol.sync().await.unwrap();
    assert!(refused(&ev), "carol saw the attack: {ev:?}");
    carry_on(c).await;
}

/// [`carries_on`] once both have synced past the attack.
async fn carry_on(c: &Cast) {
    c.alice.conversation(&c.g).self_update().await.unwrap();
    c.alice
        .conversation(&c.g)
        .send_text("still here")
        .await
        .unwrap();
    assert_eq!(texts(&c.carol.sync().await.unwrap()), vec!["still here"]);
    c.carol
        .conversation(&c.g)
        .send_text("me too")
        .await
        .unwrap();
    assert_eq!(texts(&c.alice.sync().await.unwrap()), vec!["me too"]);
    assert_eq!(
        c.alice.epoch_fingerprint(&c.g).await.unwrap(),
        c.carol.epoch_fingerprint(&c.g).await.unwrap()
    );
}

/// AGREE-1: 19 junk bytes stored as a commit under the current epoch's tag hold nothing:
/// every member refuses them, and the next valid commit is the epoch's.
#[tokio::test]
async fn agree_1_junk_commit_under_the_current_tag_does_not_freeze_the_group() {
    let c = cast(Preset::AllMembers).await;
    let tag = current_tag(&c.bob_db, &c.g);
    assert!(matches!(
        post_commit(&c.w, &c.g, &tag, &[0x42; 19]).await,
        CommitOutcome::Accepted { .. }
    ));
    carries_on(&c).await;
    // The owner can still remove the attacker, and bob sees it.
    c.alice
        .conversation(&c.g)
        .remove_members(&[c.bob.did().clone()])
        .await
        .unwrap();
    let ev = c.bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Removed { .. })),
        "{ev:?}"
    );
}

/// AGREE-1: a flood of junk commits under the current tag, posted while honest members
/// commit, costs them retries but never the group.
#[tokio::test]
async fn agree_1_junk_flood_is_outlasted() {
    let c = cast(Preset::AllMembers).await;
    let tag = current_tag(&c.bob_db, &c.g);
    for i in 0..20u8 {
        post_commit(&c.w, &c.g, &tag, &[i; 40]).await;
    }
    carries_on(&c).await;
}

/// AGREE-4: a member's commit whose disappearing-timer extension is malformed is refused by
/// every other member; the committer's own (modified) client is the only one that moved.
#[tokio::test]
async fn agree_4_commit_with_a_malformed_extension_is_skipped_by_all() {
    let c = cast(Preset::AllMembers).await;
    c.bob
        .set_context_extension_unchecked(&c.g, atmls::group::DISAPPEARING_EXTENSION, vec![0xff; 3])
        .await
        .unwrap();
    carries_on(&c).await;
}

/// AGREE-4 (GOV-4): a rename bob's role does not allow, built with raw openmls on his own
/// state and posted under the current tag, is refused by all; alice's rename then wins.
#[tokio::test]
async fn agree_4_forbidden_governance_change_under_the_current_tag() {
    let c = cast(Preset::AdminsOnly).await;
    let (p, mut group, signer) = RawProvider::open_group(&c.bob_db, &c.g);
    let tag = epoch_tag(&group, p.crypto()).unwrap();
    let meta = atmls::group::GroupMetadata {
        name: "bob's now".into(),
        ..Default::default()
    }
    .to_bytes()
    .unwrap();
    let mut ext: Vec<Extension> = group
        .extensions()
        .iter()
        .filter(|e| {
            e.extension_type()
                != openmls::prelude::ExtensionType::Unknown(atmls::group::METADATA_EXTENSION)
        })
        .cloned()
        .collect();
    ext.push(Extension::Unknown(
        atmls::group::METADATA_EXTENSION,
        UnknownExtension(meta),
    ));
    let ext: Extensions<GroupContext> = Extensions::from_vec(ext).unwrap();
    let bundle = group
        .commit_builder()
        .propose_group_context_extensions(ext)
        .unwrap()
        .load_psks(p.storage())
        .unwrap()
        .build(p.rand(), p.crypto(), &signer, |_| true)
        .unwrap()
        .stage_commit(&p)
        .unwrap();
    let sealed = seal_for_transport(
        &group,
        p.crypto(),
        &bundle.commit().tls_serialize_detached().unwrap(),
    )
    .unwrap();
    group.clear_pending_commit(p.storage()).unwrap();
    post_commit(&c.w, &c.g, &tag, &sealed).await;
    let ev = c.carol.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Refused {
                error: GroupError::Governance(_),
                ..
            }
        )),
        "{ev:?}"
    );
    let ev = c.alice.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    carry_on(&c).await;
    c.alice
        .conversation(&c.g)
        .set_name("alice's")
        .await
        .unwrap();
    c.carol.sync().await.unwrap();
    c.bob.sync().await.unwrap();
    for m in [&c.alice, &c.bob, &c.carol] {
        assert_eq!(
            m.conversation(&c.g).metadata().await.unwrap().name,
            "alice's"
        );
    }
}

/// AGREE-1, GROUP-4a: a removed member's commit, built on the epoch it was removed in and
/// posted under that epoch's tag claiming any cursor: to the mailbox it knows, read by no one;
/// to the one the group moved to, refused by the transport; put there by a hostile service,
/// refused by all.
#[tokio::test]
async fn agree_1_removed_member_commit_is_skipped() {
    let c = cast(Preset::AllMembers).await;
    // bob's state before he learns of his removal.
    let (p, mut group, signer) = RawProvider::open_group(&c.bob_db, &c.g);
    let old_tag = epoch_tag(&group, p.crypto()).unwrap();
    c.alice
        .conversation(&c.g)
        .remove_members(&[c.bob.did().clone()])
        .await
        .unwrap();
    let bundle = group
        .commit_builder()
        .force_self_update(true)
        .load_psks(p.storage())
        .unwrap()
        .build(p.rand(), p.crypto(), &signer, |_| true)
        .unwrap()
        .stage_commit(&p)
        .unwrap();
    let sealed = seal_for_transport(
        &group,
        p.crypto(),
        &bundle.commit().tls_serialize_detached().unwrap(),
    )
    .unwrap();
    group.clear_pending_commit(p.storage()).unwrap();
    let post = |mailbox: Mailbox| {
        let net = c.w.net.clone();
        let sealed = sealed.clone();
        async move {
            net.submit_commit(
                &mailbox,
                &old_tag,
                u64::MAX,
                &sealed,
                &IdempotencyKey::random(),
            )
            .await
        }
    };
    let known = mailbox_for(c.g.as_bytes());
    let outcome = post(known.clone()).await.unwrap();
    assert!(
        matches!(outcome, CommitOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    let ev = c.carol.sync().await.unwrap();
    assert!(
        !ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "the old mailbox is not read after the move: {ev:?}"
    );
    let moved = c.carol.mailbox_for_test(&c.g).await.unwrap();
    assert_ne!(moved.id, known.id);
    let forged = Mailbox {
        id: moved.id,
        post_secret: known.post_secret,
    };
    assert_eq!(post(forged).await, Err(TransportError::Forbidden));
    // A hostile service can still put it in the new mailbox: the members refuse it.
    let outcome = post(moved).await.unwrap();
    assert!(
        matches!(outcome, CommitOutcome::Accepted { .. }),
        "{outcome:?}"
    );
    let ev = c.carol.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Refused { .. })),
        "{ev:?}"
    );
    c.carol
        .conversation(&c.g)
        .send_text("after bob")
        .await
        .unwrap();
    assert_eq!(texts(&c.alice.sync().await.unwrap()), vec!["after bob"]);
    c.alice.conversation(&c.g).self_update().await.unwrap();
    c.carol.sync().await.unwrap();
    assert_eq!(
        c.alice.epoch_fingerprint(&c.g).await.unwrap(),
        c.carol.epoch_fingerprint(&c.g).await.unwrap()
    );
}

/// AGREE-1: the group's first commit replayed under the current tag is refused by all.
#[tokio::test]
async fn agree_1_replayed_commit_under_the_current_tag_is_skipped() {
    let c = cast(Preset::AllMembers).await;
    let tag = current_tag(&c.bob_db, &c.g);
    let first =
        c.w.net
            .fetch(&mailbox_for(c.g.as_bytes()).id, 0, 1)
            .await
            .unwrap()
            .items
            .remove(0);
    assert_eq!(first.kind, Kind::Commit);
    post_commit(&c.w, &c.g, &tag, &first.payload).await;
    carries_on(&c).await;
}

/// A transport whose pages always say `more`, repeating what it already sent.
struct Endless {
    inner: Arc<MemoryTransport>,
    fetches: AtomicUsize,
}

#[async_trait::async_trait]
impl Transport for Endless {
    async fn submit_commit(
        &self,
        m: &Mailbox,
        e: &EpochTag,
        after: u64,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<CommitOutcome, TransportError> {
        self.inner.submit_commit(m, e, after, p, k).await
    }
    async fn send_message(
        &self,
        m: &Mailbox,
        e: &EpochTag,
        after: u64,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<SendOutcome, TransportError> {
        self.inner.send_message(m, e, after, p, k).await
    }
    async fn send_welcome(
        &self,
        m: &MailboxId,
        p: &[u8],
        k: &IdempotencyKey,
    ) -> Result<u64, TransportError> {
        self.inner.send_welcome(m, p, k).await
    }
    async fn fetch(&self, m: &MailboxId, after: u64, limit: u32) -> Result<Page, TransportError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        // Everything from the start, again and again, and always "more".
        let mut page = self.inner.fetch(m, 0, limit).await?;
        let _ = after;
        page.more = true;
        Ok(page)
    }
    async fn subscribe(&self, m: &[MailboxId]) -> Result<Subscription, TransportError> {
        self.inner.subscribe(m).await
    }
    async fn put_tree(&self, l: &TreeLocator, b: &[u8]) -> Result<(), TransportError> {
        self.inner.put_tree(l, b).await
    }
    async fn fetch_tree(&self, l: &TreeLocator) -> Result<Vec<u8>, TransportError> {
        self.inner.fetch_tree(l).await
    }
}

/// AGREE-7: a delivery service whose pages say `more` forever (and repeat old items) cannot
/// keep a sync going or move a cursor back: the sync ends, and nothing is processed twice.
#[tokio::test]
async fn agree_7_a_page_that_says_more_forever_ends() {
    let w = World::new();
    let endless = Arc::new(Endless {
        inner: w.net.clone(),
        fetches: AtomicUsize::new(0),
    });
    let (alice, _) = w.account("alice").await;
    let bob = Client::builder(w.dir.clone(), endless.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("bob")))
        .message_requests(false)
        .build()
        .await
        .unwrap();
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    alice.conversation(&g).send_text("once").await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(texts(&ev), vec!["once"]);
    let ev = bob.sync().await.unwrap();
    assert!(texts(&ev).is_empty(), "{ev:?}");
    // Bounded: a few dozen pages per mailbox per sync, not an endless loop.
    assert!(endless.fetches.load(Ordering::SeqCst) < 500);
    alice.conversation(&g).send_text("twice").await.unwrap();
    // The repeated old items are skipped, the new one comes once.
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["twice"]);
}

/// AGREE-6, TRUST-23: a stranger's Welcome naming an account the directory does not know (its
/// record is gone) is joined on the agreement checks; the member stays pending, and every
/// sync goes on, other groups included.
#[tokio::test]
async fn agree_6_welcome_naming_an_unresolvable_did_stops_no_sync() {
    let w = World::new();
    let (mallory, _) = w.account("mallory").await;
    let (carol, _) = w.account("carol").await;
    let flaky = FlakyDirectory::new(w.dir.clone());
    let bob = w.account_on(flaky.clone(), "bob").await;
    let other = carol.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    let g = mallory.create_group(&[bob.did().clone()]).await.unwrap();
    // mallory's records disappear before bob reads the Welcome.
    flaky.dead.lock().unwrap().insert(mallory.did().clone());
    carol
        .conversation(&other)
        .send_text("elsewhere")
        .await
        .unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Joined { group, .. } if *group == g)),
        "{ev:?}"
    );
    assert_eq!(texts(&ev), vec!["elsewhere"]);
    for _ in 0..3 {
        bob.sync().await.unwrap();
    }
    let status = bob
        .conversation(&g)
        .member_trust()
        .await
        .unwrap()
        .into_iter()
        .find(|(m, _)| m.did == *mallory.did())
        .map(|(_, s)| s);
    assert_eq!(status, Some(atmls::trust::MemberStatus::Pending));
    mallory.conversation(&g).send_text("hello").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), vec!["hello"]);
}

/// AGREE-3 (openmls patch AG-P1): a KeyPackage's lifetime is the adder's check. A member adds,
/// with a modified client, one package already expired and one not valid until the day after
/// tomorrow, as members whose clocks differ by days would see them: every member merges the
/// commit alike, and the group carries on.
#[tokio::test]
async fn agree_3_key_package_lifetimes_do_not_decide_a_merge() {
    use openmls::prelude::{KeyPackage, Lifetime};
    let c = cast(Preset::AllMembers).await;
    let now = atmls::identity::unix_now();
    let p = openmls_rust_crypto::OpenMlsRustCrypto::default();
    let cs = atmls::keypackage::DEFAULT_CIPHERSUITE;
    let package = |name: &str, lifetime: Lifetime| -> KeyPackage {
        let dev = DeviceIdentity::new_account(did(name));
        let (signer, cwk, ext) = atmls::keypackage::new_leaf_key(&p, &dev, cs).unwrap();
        KeyPackage::builder()
            .leaf_node_capabilities(capabilities_without(None))
            .leaf_node_extensions(ext)
            .key_package_lifetime(lifetime)
            .build(cs, &p, &signer, cwk)
            .unwrap()
            .key_package()
            .clone()
    };
    let expired = package("dave", Lifetime::init(now - 10 * 86_400, now - 86_400));
    let early = package("erin", Lifetime::init(now + 2 * 86_400, now + 30 * 86_400));
    let (rp, mut group, signer) = RawProvider::open_group(&c.bob_db, &c.g);
    let tag = epoch_tag(&group, rp.crypto()).unwrap();
    let bundle = group
        .commit_builder()
        .propose_adds([expired, early])
        .load_psks(rp.storage())
        .unwrap()
        .build(rp.rand(), rp.crypto(), &signer, |_| true)
        .unwrap()
        .stage_commit(&rp)
        .unwrap();
    let sealed = seal_for_transport(
        &group,
        rp.crypto(),
        &bundle.commit().tls_serialize_detached().unwrap(),
    )
    .unwrap();
    group.clear_pending_commit(rp.storage()).unwrap();
    post_commit(&c.w, &c.g, &tag, &sealed).await;
    for m in [&c.alice, &c.carol] {
        let ev = m.sync().await.unwrap();
        assert!(
            ev.iter().any(|e| matches!(e, Event::MembersAdded { .. })),
            "{ev:?}"
        );
        assert_eq!(m.conversation(&c.g).members().await.unwrap().len(), 5);
    }
    carry_on(&c).await;
}
