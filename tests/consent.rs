//! Consent (spec/consent.md): message requests, the incoming policy, blocking. Consent is a
//! trust check: whatever one member decides, every member merges the same commits.

mod common;

use atmls::storage::Store;
use atmls::trust::{AccountConsent, DeclineReason, IncomingPolicy};
use atmls::{Client, Error, Event, GroupId};
use common::{did, joined, stored_texts, texts, World};

/// An account whose device holds conversations from unknown accounts back as requests (the
/// default; the test world turns them off).
async fn with_requests(w: &World, name: &str) -> Client {
    Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
        .identity(atmls::identity::DeviceIdentity::new_account(did(name)))
        .build()
        .await
        .unwrap()
}

fn requested(events: &[Event]) -> Vec<GroupId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageRequest { group, .. } => Some(group.clone()),
            _ => None,
        })
        .collect()
}

fn declined(events: &[Event]) -> Vec<(GroupId, DeclineReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Declined { group, reason, .. } => Some((group.clone(), *reason)),
            _ => None,
        })
        .collect()
}

/// The epoch and a secret of it: equal on two members only if they merged the same commits.
async fn epoch(c: &Client, g: &GroupId) -> (u64, Vec<u8>) {
    c.epoch_fingerprint(g).await.unwrap()
}

#[tokio::test]
async fn consent_3_a_request_is_held_back_until_accepted() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let bob = with_requests(&w, "bob").await;
    let dm = alice.dm(bob.did()).await.unwrap();
    let hi = alice.conversation(&dm).send_text("hi bob").await.unwrap();

    let ev = bob.sync().await.unwrap();
    assert_eq!(requested(&ev), std::slice::from_ref(&dm));
    assert!(joined(&ev).is_empty() && texts(&ev).is_empty(), "{ev:?}");
    let reqs = bob.requests().await.unwrap();
    assert_eq!((reqs.len(), &reqs[0].by), (1, alice.did()));
    assert!(bob.groups().await.unwrap().is_empty());
    // Stored, so the user can look at the request before deciding.
    assert_eq!(stored_texts(&bob, &dm).await, ["hi bob"]);
    // Nothing tells alice the request was seen (CONSENT-5).
    let b = bob.conversation(&dm);
    assert!(matches!(b.mark_read(&hi.id).await, Err(Error::NotAccepted)));
    assert!(matches!(b.typing(true).await, Err(Error::NotAccepted)));

    b.accept().await.unwrap();
    // Twice is once (another device's decision may arrive before the user's).
    bob.conversation(&dm).accept().await.unwrap();
    assert_eq!(bob.groups().await.unwrap()[0].id, dm);
    assert_eq!(
        bob.consent(alice.did()).await.unwrap(),
        AccountConsent::Allowed
    );
    b.mark_read(&hi.id).await.unwrap();
    alice.conversation(&dm).send_text("again").await.unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), ["again"]);

    // An allowed account's next conversation is shown at once.
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    assert_eq!(joined(&bob.sync().await.unwrap()), [g]);
}

#[tokio::test]
async fn consent_5_a_reply_accepts_the_request() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let bob = with_requests(&w, "bob").await;
    let dm = alice.dm(bob.did()).await.unwrap();
    alice.conversation(&dm).send_text("hi").await.unwrap();
    bob.sync().await.unwrap();
    bob.conversation(&dm).send_text("hello").await.unwrap();
    assert!(bob.requests().await.unwrap().is_empty());
    assert_eq!(bob.groups().await.unwrap().len(), 1);
    assert_eq!(texts(&alice.sync().await.unwrap()), ["hello"]);
}

#[tokio::test]
async fn consent_3_declining_leaves_the_conversation() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (carol, _) = w.account("carol").await;
    let bob = with_requests(&w, "bob").await;
    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    carol.sync().await.unwrap();
    bob.sync().await.unwrap();
    bob.conversation(&g).decline().await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(declined(&ev), [(g.clone(), DeclineReason::User)]);
    assert!(bob.requests().await.unwrap().is_empty());
    assert!(bob.groups().await.unwrap().is_empty());
    // An ordinary leave: the others commit it and carry on without bob.
    alice.sync().await.unwrap();
    carol.sync().await.unwrap();
    let members = alice.conversation(&g).members().await.unwrap();
    assert!(members.iter().all(|m| m.did != *bob.did()));
    assert_eq!(epoch(&alice, &g).await, epoch(&carol, &g).await);
    alice
        .conversation(&g)
        .send_text("without bob")
        .await
        .unwrap();
    assert_eq!(texts(&carol.sync().await.unwrap()), ["without bob"]);
    assert!(texts(&bob.sync().await.unwrap()).is_empty());
}

#[tokio::test]
async fn consent_2_policy_none_declines_strangers_only() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (carol, _) = w.account("carol").await;
    let (bob, _) = w.account("bob").await;
    // bob talked to carol first: she is allowed.
    let with_carol = bob.dm(carol.did()).await.unwrap();
    bob.set_incoming_policy(IncomingPolicy::None).await.unwrap();
    assert_eq!(bob.incoming_policy().await.unwrap(), IncomingPolicy::None);

    let from_alice = alice.dm(bob.did()).await.unwrap();
    let from_carol = carol.create_group(&[bob.did().clone()]).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(declined(&ev), [(from_alice.clone(), DeclineReason::Policy)]);
    assert_eq!(joined(&ev), std::slice::from_ref(&from_carol));
    let shown: Vec<_> = common::group_ids(&bob).await;
    assert!(shown.contains(&with_carol) && shown.contains(&from_carol));
    assert!(!shown.contains(&from_alice));
    // alice's messages in the declined DM never show.
    alice
        .conversation(&from_alice)
        .send_text("hello?")
        .await
        .unwrap();
    assert!(texts(&bob.sync().await.unwrap()).is_empty());
}

#[tokio::test]
async fn consent_4_policy_following_reads_the_follow_list() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (carol, _) = w.account("carol").await;
    let (bob, _) = w.account("bob").await;
    bob.set_incoming_policy(IncomingPolicy::Following)
        .await
        .unwrap();

    // No follow list in the directory: nothing can be judged, so a request (nothing lost).
    let first = alice.dm(bob.did()).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(requested(&ev), std::slice::from_ref(&first));

    w.dir.set_follows(bob.did(), vec![carol.did().clone()]);
    let from_carol = carol.dm(bob.did()).await.unwrap();
    let from_alice = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(joined(&ev), [from_carol]);
    assert_eq!(declined(&ev), [(from_alice, DeclineReason::Policy)]);
}

#[tokio::test]
async fn consent_6_blocking_hides_declines_and_leaves_dms() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (carol, _) = w.account("carol").await;
    let (bob, _) = w.account("bob").await;
    let dm = alice.dm(bob.did()).await.unwrap();
    let g = carol
        .create_group(&[alice.did().clone(), bob.did().clone()])
        .await
        .unwrap();
    alice.sync().await.unwrap();
    alice.conversation(&g).send_text("before").await.unwrap();
    bob.sync().await.unwrap();
    carol.sync().await.unwrap();
    assert_eq!(stored_texts(&bob, &g).await, ["before"]);

    bob.block(alice.did()).await.unwrap();
    assert_eq!(bob.blocked().await.unwrap(), [alice.did().clone()]);
    assert!(matches!(
        bob.block(bob.did()).await,
        Err(Error::InvalidArgument(_))
    ));
    // Hidden, not deleted; the DM is left.
    assert!(stored_texts(&bob, &g).await.is_empty());
    let ev = bob.sync().await.unwrap();
    assert_eq!(declined(&ev), [(dm.clone(), DeclineReason::Blocked)]);
    let shown: Vec<_> = common::group_ids(&bob).await;
    assert_eq!(shown, std::slice::from_ref(&g));

    // In the shared group, alice's posts and commits still merge everywhere; bob sees none of
    // her messages, carol sees them all, and both stay in step.
    alice.conversation(&g).self_update().await.unwrap();
    alice.conversation(&g).send_text("spam").await.unwrap();
    carol
        .conversation(&g)
        .send_text("from carol")
        .await
        .unwrap();
    assert_eq!(texts(&bob.sync().await.unwrap()), ["from carol"]);
    assert_eq!(texts(&carol.sync().await.unwrap()), ["spam"]);
    assert_eq!(epoch(&bob, &g).await, epoch(&carol, &g).await);

    // Her next conversation is declined.
    let again = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(declined(&ev), [(again, DeclineReason::Blocked)]);

    // Unblocked: her messages in the group show again; the left DM stays left.
    bob.unblock(alice.did()).await.unwrap();
    assert_eq!(
        bob.consent(alice.did()).await.unwrap(),
        AccountConsent::Unknown
    );
    assert_eq!(
        stored_texts(&bob, &g).await,
        ["before", "spam", "from carol"]
    );
}

#[tokio::test]
async fn consent_3_own_devices_are_never_held_back() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (bob, key) = w.account("bob").await;
    bob.set_incoming_policy(IncomingPolicy::None).await.unwrap();
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(declined(&ev), [(g, DeclineReason::Policy)]);
    let with_alice = bob.dm(alice.did()).await.unwrap();
    // bob's second device, with requests on (the default) and a store that knows no one.
    let laptop = second_device(&w, &key, &bob).await;
    bob.add_own_devices().await.unwrap();
    let ev = laptop.sync().await.unwrap();
    assert!(joined(&ev).contains(&with_alice), "{ev:?}");
    assert!(requested(&ev).is_empty());
}

#[tokio::test]
async fn consent_3_requests_are_per_device_choices_not_agreement() {
    // bob holds alice's group back as a request; carol shows it. Both merge every commit.
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (carol, _) = w.account("carol").await;
    let bob = with_requests(&w, "bob").await;
    let g = alice
        .create_group(&[bob.did().clone(), carol.did().clone()])
        .await
        .unwrap();
    assert_eq!(
        requested(&bob.sync().await.unwrap()),
        std::slice::from_ref(&g)
    );
    assert_eq!(
        joined(&carol.sync().await.unwrap()),
        std::slice::from_ref(&g)
    );
    alice.conversation(&g).self_update().await.unwrap();
    alice.conversation(&g).send_text("one").await.unwrap();
    assert!(texts(&bob.sync().await.unwrap()).is_empty());
    assert_eq!(texts(&carol.sync().await.unwrap()), ["one"]);
    assert_eq!(epoch(&bob, &g).await, epoch(&alice, &g).await);
    assert_eq!(epoch(&carol, &g).await, epoch(&alice, &g).await);
    // Declining twice or accepting a declined conversation is refused, nothing changes.
    bob.conversation(&g).decline().await.unwrap();
    assert!(matches!(
        bob.conversation(&g).accept().await,
        Err(Error::InvalidArgument(_))
    ));
    let unknown = GroupId::from_hex(&"07".repeat(32)).unwrap();
    assert!(matches!(
        bob.conversation(&unknown).accept().await,
        Err(Error::InvalidArgument(_))
    ));
}

/// A second device of `owner`'s account, with message requests on.
async fn second_device(
    w: &World,
    key: &atmls::identity::IdentityKeyPair,
    owner: &Client,
) -> Client {
    let inst = atmls::identity::InstallationKeyPair::generate();
    let now = atmls::identity::unix_now();
    let cert = key.certify(owner.did(), &inst.public(), now, now + 86_400);
    Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
        .identity(atmls::identity::DeviceIdentity::linked(inst, cert).unwrap())
        .build()
        .await
        .unwrap()
}

/// `name`'s phone and laptop (message requests on), and the account's identity key.
async fn phone_and_laptop(
    w: &World,
    name: &str,
) -> (Client, Client, atmls::identity::IdentityKeyPair) {
    let dev = atmls::identity::DeviceIdentity::new_account(did(name));
    let key = atmls::identity::IdentityKeyPair::from_secret_bytes(
        &dev.identity_key.as_ref().unwrap().secret_bytes()[..],
    )
    .unwrap();
    let phone = Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
        .identity(dev)
        .build()
        .await
        .unwrap();
    let laptop = second_device(w, &key, &phone).await;
    (phone, laptop, key)
}

#[tokio::test]
async fn consent_7_own_devices_keep_the_same_decisions() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let (carol, _) = w.account("carol").await;
    let (phone, laptop, key) = phone_and_laptop(&w, "bob").await;

    // Both devices get carol's and alice's requests.
    let from_carol = carol.dm(phone.did()).await.unwrap();
    let from_alice = alice.dm(phone.did()).await.unwrap();
    carol
        .conversation(&from_carol)
        .send_text("hi")
        .await
        .unwrap();
    phone.sync().await.unwrap();
    laptop.sync().await.unwrap();
    assert_eq!(laptop.requests().await.unwrap().len(), 2);

    // On the phone: accept carol, block alice, and set the policy.
    phone.conversation(&from_carol).accept().await.unwrap();
    phone.block(alice.did()).await.unwrap();
    phone
        .set_incoming_policy(IncomingPolicy::Following)
        .await
        .unwrap();

    // The laptop follows, without any call of the app beyond sync.
    let ev = laptop.sync().await.unwrap();
    let ev2 = laptop.sync().await.unwrap();
    assert_eq!(
        laptop.consent(alice.did()).await.unwrap(),
        AccountConsent::Blocked
    );
    assert_eq!(
        laptop.consent(carol.did()).await.unwrap(),
        AccountConsent::Allowed
    );
    assert_eq!(
        laptop.incoming_policy().await.unwrap(),
        IncomingPolicy::Following
    );
    let all: Vec<Event> = ev.into_iter().chain(ev2).collect();
    assert!(
        declined(&all).contains(&(from_alice.clone(), DeclineReason::Blocked)),
        "{all:?}"
    );
    let shown: Vec<_> = common::group_ids(&laptop).await;
    assert_eq!(
        shown,
        std::slice::from_ref(&from_carol),
        "the own-device group is never shown"
    );
    assert!(laptop.requests().await.unwrap().is_empty());
    // Nor are its events: every one the laptop saw is about a conversation it was offered.
    let offered = [from_carol.clone(), from_alice.clone()];
    assert!(
        all.iter()
            .all(|e| e.group().is_none_or(|g| offered.contains(g))),
        "{all:?}"
    );

    // The laptop unblocks: the phone follows, the newer decision wins.
    laptop.unblock(alice.did()).await.unwrap();
    phone.sync().await.unwrap();
    assert_eq!(
        phone.consent(alice.did()).await.unwrap(),
        AccountConsent::Unknown
    );

    // A device linked later gets the whole table when it is added.
    let tablet = second_device(&w, &key, &phone).await;
    phone.add_own_devices().await.unwrap();
    let mut ev = tablet.sync().await.unwrap();
    // The laptop sees the tablet join the own-device group: not an event for the app.
    ev.extend(laptop.sync().await.unwrap());
    assert!(
        ev.iter()
            .all(|e| e.group().is_none_or(|g| offered.contains(g))),
        "{ev:?}"
    );
    assert_eq!(
        tablet.consent(carol.did()).await.unwrap(),
        AccountConsent::Allowed
    );
    assert_eq!(
        tablet.incoming_policy().await.unwrap(),
        IncomingPolicy::Following
    );
}

#[tokio::test]
async fn consent_7_a_request_declined_on_one_device_is_declined_on_all() {
    let w = World::new();
    let (carol, _) = w.account("carol").await;
    let (dave, _) = w.account("dave").await;
    let (phone, laptop, _) = phone_and_laptop(&w, "bob").await;
    let from_carol = carol.dm(phone.did()).await.unwrap();
    let from_dave = dave.dm(phone.did()).await.unwrap();
    phone.sync().await.unwrap();
    laptop.sync().await.unwrap();
    assert_eq!(laptop.requests().await.unwrap().len(), 2);
    // Accepted on the laptop while the phone, not having synced since, declines it: the
    // laptop keeps what its user accepted there.
    laptop.conversation(&from_dave).accept().await.unwrap();
    phone.conversation(&from_carol).decline().await.unwrap();
    phone.conversation(&from_dave).decline().await.unwrap();
    let ev = laptop.sync().await.unwrap();
    assert_eq!(
        declined(&ev),
        vec![(from_carol.clone(), DeclineReason::User)],
        "{ev:?}"
    );
    assert!(laptop.requests().await.unwrap().is_empty());
    assert_eq!(common::group_ids(&laptop).await, [from_dave]);
    // Declining is not blocking: carol may still ask again.
    assert_eq!(
        laptop.consent(carol.did()).await.unwrap(),
        AccountConsent::Unknown
    );
}

#[tokio::test]
async fn consent_7_no_one_else_can_write_the_table() {
    let w = World::new();
    let (alice, _) = w.account("alice").await;
    let bob = with_requests(&w, "bob").await;
    // alice posts a consent table in a conversation with bob: never read as one.
    let dm = bob.dm(alice.did()).await.unwrap();
    alice.sync().await.unwrap();
    let table = br#"{"v":1,"accounts":[["did:plc:aliceaaaaaaaaaaaaaaaaaaa",1,99999999999]],"policy":["everyone",99999999999]}"#;
    let forged = atmls::content::EncodedContent::new(
        atmls::content::ContentTypeId::new("atmls.dev", "consent", 1, 0).unwrap(),
        table.to_vec(),
    );
    bob.set_incoming_policy(IncomingPolicy::None).await.unwrap();
    alice.conversation(&dm).send(&forged).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert!(texts(&ev).is_empty(), "{ev:?}");
    assert_eq!(bob.incoming_policy().await.unwrap(), IncomingPolicy::None);
    assert_eq!(
        bob.consent(alice.did()).await.unwrap(),
        AccountConsent::Allowed
    );
    assert_eq!(bob.groups().await.unwrap().len(), 1);
}
