//! Governance scenarios (spec/governance.md): roles, per-action policies, metadata, leave,
//! audit events, and forged commits that every other member refuses with the group state
//! unchanged.
mod common;
use atmls::content::{Content, ContentCodec as _, GroupUpdatedCodec};
use atmls::group::{
    Action, GovernanceChange, GovernanceError, GroupError, GroupMetadata, Policy, Preset, Role,
    Roles, METADATA_EXTENSION, ROLES_EXTENSION,
};
use atmls::identity::{unix_now, DeviceIdentity};
use atmls::storage::Store;
use atmls::{Client, Error, Event, GroupId};
use common::*;
use openmls::prelude::{
    tls_codec::Serialize as _, CommitMessageBundle, Extension, Extensions, GroupContext, MlsGroup,
    UnknownExtension,
};
use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider as _;

async fn state(c: &Client, g: &GroupId) -> ((u64, Vec<u8>), Vec<(String, Vec<String>)>) {
    (
        c.epoch_fingerprint(g).await.unwrap(),
        c.store_snapshot().await.unwrap(),
    )
}

fn forbidden(e: &Error, want: Action) -> bool {
    matches!(e, Error::Group(GroupError::Governance(GovernanceError::Forbidden { action, .. })) if *action == want)
}

fn changes(events: &[Event]) -> Vec<GovernanceChange> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::GovernanceChanged { change, .. } => Some(change.clone()),
            _ => None,
        })
        .collect()
}

/// alice (owner), bob, carol, dave, in one group with `preset`; bob's store is a file so a
/// test can drive his MLS state with raw openmls.
struct Cast {
    w: World,
    alice: Client,
    bob: Client,
    carol: Client,
    dave: Client,
    g: GroupId,
    bob_db: std::path::PathBuf,
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
    let (dave, _) = w.account("dave").await;
    let g = alice
        .create_group_with(
            &[bob.did().clone(), carol.did().clone(), dave.did().clone()],
            preset,
            GroupMetadata {
                name: "Secret Club".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for c in [&bob, &carol, &dave] {
        c.sync().await.unwrap();
    }
    Cast {
        w,
        alice,
        bob,
        carol,
        dave,
        g,
        bob_db,
        _dir: dir,
    }
}

#[tokio::test]
async fn gov_1_creator_is_owner_and_gov_5_moderator_removes_a_member() {
    let c = cast(Preset::AdminsOnly).await;
    assert_eq!(
        c.bob.conversation(&c.g).role(c.alice.did()).await.unwrap(),
        Role::Owner
    );
    assert_eq!(
        c.bob.conversation(&c.g).role(c.carol.did()).await.unwrap(),
        Role::Member
    );
    assert_eq!(
        c.dave.conversation(&c.g).metadata().await.unwrap().name,
        "Secret Club"
    );

    c.alice
        .conversation(&c.g)
        .set_role(c.carol.did(), Role::Moderator)
        .await
        .unwrap();
    // GOV-10: every member derives the audit event from the verified commit.
    for m in [&c.bob, &c.carol, &c.dave] {
        let ev = m.sync().await.unwrap();
        assert_eq!(
            changes(&ev),
            vec![GovernanceChange::RoleChanged {
                did: c.carol.did().clone(),
                role: Role::Moderator
            }]
        );
    }
    // A moderator may remove a member (RemoveMembers is moderator and up in both presets)...
    c.carol
        .conversation(&c.g)
        .remove_members(&[c.dave.did().clone()])
        .await
        .unwrap();
    let ev = c.bob.sync().await.unwrap();
    assert!(ev.iter().any(
        |e| matches!(e, Event::MembersRemoved { by, members, .. } if by == c.carol.did() && members[0].did == *c.dave.did())
    ));
    assert!(c
        .dave
        .sync()
        .await
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::Removed { .. })));
    c.alice.sync().await.unwrap();
    // ...but not an admin or the owner (GOV-5).
    c.alice
        .conversation(&c.g)
        .set_role(c.bob.did(), Role::Admin)
        .await
        .unwrap();
    c.carol.sync().await.unwrap();
    let before = c.carol.epoch_fingerprint(&c.g).await.unwrap();
    let e = c
        .carol
        .conversation(&c.g)
        .remove_members(&[c.bob.did().clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::Outranked { .. }))
        ),
        "{e:?}"
    );
    assert_eq!(c.carol.epoch_fingerprint(&c.g).await.unwrap(), before);

    // The audit trail is in the history too, as group updates derived locally.
    let items = c
        .bob
        .conversation(&c.g)
        .history(None, 50)
        .await
        .unwrap()
        .items;
    let texts: Vec<String> = items
        .iter()
        .filter_map(|i| match i.decoded() {
            Some(Content::GroupUpdated(u)) => {
                GroupUpdatedCodec::fallback(&u).map(|s| s.to_string())
            }
            _ => None,
        })
        .collect();
    assert!(texts.iter().any(|t| t.contains("moderator")), "{texts:?}");
}

#[tokio::test]
async fn gov_4_api_refuses_what_the_policies_forbid_state_unchanged() {
    let c = cast(Preset::AdminsOnly).await;
    let (erin, _) = c.w.account("erin").await;
    let before = state(&c.bob, &c.g).await;
    let e = c
        .bob
        .conversation(&c.g)
        .add_members(&[erin.did().clone()])
        .await
        .unwrap_err();
    assert!(forbidden(&e, Action::AddMembers), "{e:?}");
    let e = c
        .bob
        .conversation(&c.g)
        .set_name("Bob's")
        .await
        .unwrap_err();
    assert!(forbidden(&e, Action::EditName), "{e:?}");
    let e = c
        .bob
        .conversation(&c.g)
        .set_role(c.bob.did(), Role::Admin)
        .await
        .unwrap_err();
    assert!(forbidden(&e, Action::ChangeRoles), "{e:?}");
    let e = c
        .bob
        .conversation(&c.g)
        .apply_preset(Preset::AllMembers)
        .await
        .unwrap_err();
    assert!(forbidden(&e, Action::ChangePolicies), "{e:?}");
    assert_eq!(state(&c.bob, &c.g).await, before);
    assert!(erin.sync().await.unwrap().is_empty());
}

/// A commit built with raw openmls on the offender's own state (our API refuses to build
/// it), sealed for the mailbox like any commit.
fn forge(
    db: &std::path::Path,
    g: &GroupId,
    build: impl FnOnce(
        &mut MlsGroup,
        &RawProvider,
        &openmls_basic_credential::SignatureKeyPair,
    ) -> CommitMessageBundle,
) -> Vec<u8> {
    let (p, mut group, signer) = RawProvider::open_group(db, g);
    let bundle = build(&mut group, &p, &signer);
    let sealed = atmls::group::seal_for_transport(
        &group,
        p.crypto(),
        &bundle.commit().tls_serialize_detached().unwrap(),
    )
    .unwrap();
    group.clear_pending_commit(p.storage()).unwrap();
    sealed
}

fn with_extension(g: &MlsGroup, ty: u16, bytes: Vec<u8>) -> Extensions<GroupContext> {
    let mut v: Vec<Extension> = g
        .extensions()
        .iter()
        .filter(|e| e.extension_type() != openmls::prelude::ExtensionType::Unknown(ty))
        .cloned()
        .collect();
    v.push(Extension::Unknown(ty, UnknownExtension(bytes)));
    Extensions::from_vec(v).unwrap()
}

fn context_commit(
    ext: Extensions<GroupContext>,
) -> impl FnOnce(
    &mut MlsGroup,
    &RawProvider,
    &openmls_basic_credential::SignatureKeyPair,
) -> CommitMessageBundle {
    move |g, p, s| {
        g.commit_builder()
            .propose_group_context_extensions(ext)
            .unwrap()
            .load_psks(p.storage())
            .unwrap()
            .build(p.rand(), p.crypto(), s, |_| true)
            .unwrap()
            .stage_commit(p)
            .unwrap()
    }
}

/// Every other member refuses `forged` with `check`, and its state does not change.
async fn all_refuse(c: &Cast, forged: &[u8], check: impl Fn(&Error) -> bool) {
    for m in [&c.alice, &c.carol, &c.dave] {
        let before = state(m, &c.g).await;
        let e = m
            .conversation(&c.g)
            .process_incoming(forged)
            .await
            .unwrap_err();
        assert!(check(&e), "{e:?}");
        assert!(state(m, &c.g).await == before, "state changed");
    }
}

#[tokio::test]
async fn gov_4_forged_add_rename_and_self_promotion_are_refused_by_every_member() {
    let c = cast(Preset::AdminsOnly).await;
    let (erin, _) = c.w.account("erin").await;
    // An add by a member without AddMembers.
    let account = {
        use atmls::directory::Directory;
        c.w.dir
            .account(erin.did())
            .await
            .unwrap()
            .unwrap()
            .verify(erin.did(), unix_now())
            .unwrap()
    };
    let rec = {
        use atmls::directory::Directory;
        c.w.dir.key_packages(erin.did()).await.unwrap().remove(0)
    };
    let kp = atmls::keypackage::validate_record(
        &rec,
        &account,
        &RustCrypto::default(),
        atmls::keypackage::DEFAULT_CIPHERSUITE,
        unix_now(),
    )
    .unwrap();
    let forged = forge(&c.bob_db, &c.g, |g, p, s| {
        g.commit_builder()
            .propose_adds([kp])
            .load_psks(p.storage())
            .unwrap()
            .build(p.rand(), p.crypto(), s, |_| true)
            .unwrap()
            .stage_commit(p)
            .unwrap()
    });
    all_refuse(&c, &forged, |e| forbidden(e, Action::AddMembers)).await;

    // A rename.
    let renamed = GroupMetadata {
        name: "Bob's Club".into(),
        ..Default::default()
    }
    .to_bytes()
    .unwrap();
    let forged = forge(&c.bob_db, &c.g, |g, p, s| {
        let ext = with_extension(g, METADATA_EXTENSION, renamed);
        context_commit(ext)(g, p, s)
    });
    all_refuse(&c, &forged, |e| forbidden(e, Action::EditName)).await;

    // GOV-5: a forged role change inside a commit: bob makes himself owner.
    let mut roles = Roles::with_owner(c.alice.did().clone());
    roles.set(c.bob.did().clone(), Role::Owner);
    let forged = forge(&c.bob_db, &c.g, |g, p, s| {
        let ext = with_extension(g, ROLES_EXTENSION, roles.to_bytes());
        context_commit(ext)(g, p, s)
    });
    all_refuse(&c, &forged, |e| forbidden(e, Action::ChangeRoles)).await;

    // The same offence through the delivery service: refused on sync, group carries on.
    let forged = forge(&c.bob_db, &c.g, |g, p, s| {
        let ext = with_extension(g, ROLES_EXTENSION, roles.to_bytes());
        context_commit(ext)(g, p, s)
    });
    let before = c.alice.epoch_fingerprint(&c.g).await.unwrap();
    use atmls::transport::Transport;
    let tag = {
        // The forged commit is built on the current epoch; submit it with that epoch's tag
        // by letting bob's client post a message first is not possible, so post it as a
        // message-less commit under a fresh tag: the transport orders it, members refuse it.
        atmls::transport::EpochTag(rand::random())
    };
    c.w.net
        .submit_commit(
            &atmls::group::mailbox_for(c.g.as_bytes()),
            &tag,
            0,
            &forged,
            &atmls::transport::IdempotencyKey::random(),
        )
        .await
        .unwrap();
    let ev = c.alice.sync().await.unwrap();
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
    assert_eq!(c.alice.epoch_fingerprint(&c.g).await.unwrap(), before);
    c.alice
        .conversation(&c.g)
        .send_text("still fine")
        .await
        .unwrap();
    assert_eq!(texts(&c.carol.sync().await.unwrap()), vec!["still fine"]);
}

#[tokio::test]
async fn gov_7_metadata_over_the_limit_is_refused_by_api_and_by_receivers() {
    let c = cast(Preset::AllMembers).await;
    let before = state(&c.alice, &c.g).await;
    let e = c
        .alice
        .conversation(&c.g)
        .set_name(&"x".repeat(atmls::group::MAX_NAME + 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::TooLarge {
                what: "name",
                ..
            }))
        ),
        "{e:?}"
    );
    assert_eq!(state(&c.alice, &c.g).await, before);
    // A modified client commits an oversized description anyway.
    let mut bytes = GroupMetadata::default().to_bytes().unwrap();
    bytes.truncate(1);
    bytes.push(0); // empty name
    bytes.extend([0x50, 0x00]); // description length 4096 (2-byte varint)
    bytes.extend(vec![b'x'; 4096]);
    bytes.extend([0, 0]); // no avatar, no pins
    let forged = forge(&c.bob_db, &c.g, |g, p, s| {
        let ext = with_extension(g, METADATA_EXTENSION, bytes);
        context_commit(ext)(g, p, s)
    });
    all_refuse(&c, &forged, |e| {
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::TooLarge { .. }))
        )
    })
    .await;
}

#[tokio::test]
async fn gov_3_policy_preset_switch() {
    let c = cast(Preset::AllMembers).await;
    c.bob
        .conversation(&c.g)
        .set_name("Bob was here")
        .await
        .unwrap();
    c.alice.sync().await.unwrap();
    assert_eq!(
        c.alice.conversation(&c.g).metadata().await.unwrap().name,
        "Bob was here"
    );
    c.alice
        .conversation(&c.g)
        .apply_preset(Preset::AdminsOnly)
        .await
        .unwrap();
    let ev = c.bob.sync().await.unwrap();
    assert!(changes(&ev).contains(&GovernanceChange::PolicyChanged {
        action: Action::EditName,
        policy: Policy::AtLeast(Role::Admin)
    }));
    let e = c
        .bob
        .conversation(&c.g)
        .set_name("again")
        .await
        .unwrap_err();
    assert!(forbidden(&e, Action::EditName), "{e:?}");
    // One action at a time, too: only owners may post now.
    c.alice
        .conversation(&c.g)
        .set_policy(Action::Post, Policy::AtLeast(Role::Owner))
        .await
        .unwrap();
    c.bob.sync().await.unwrap();
    let e = c
        .bob
        .conversation(&c.g)
        .send_text("hello?")
        .await
        .unwrap_err();
    assert!(forbidden(&e, Action::Post), "{e:?}");
    // DMs have a fixed policy (GOV-3): no metadata, no third account.
    let dm = c.alice.dm(c.bob.did()).await.unwrap();
    c.bob.sync().await.unwrap();
    let e = c
        .alice
        .conversation(&dm)
        .add_members(&[c.carol.did().clone()])
        .await
        .unwrap_err();
    assert!(forbidden(&e, Action::AddMembers), "{e:?}");
    let e = c
        .alice
        .conversation(&dm)
        .set_name("our DM")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::Immutable(_)))
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn gov_8_can_post_enforced_by_receivers_and_moderators_delete() {
    let c = cast(Preset::AllMembers).await;
    let m = c
        .bob
        .conversation(&c.g)
        .send_text("bob speaks")
        .await
        .unwrap();
    c.alice.sync().await.unwrap();
    c.carol.sync().await.unwrap();
    // carol, a moderator, deletes bob's message on every device.
    c.alice
        .conversation(&c.g)
        .set_role(c.carol.did(), Role::Moderator)
        .await
        .unwrap();
    c.carol.sync().await.unwrap();
    c.carol.conversation(&c.g).delete(&m.id).await.unwrap();
    c.alice.sync().await.unwrap();
    let item = c
        .alice
        .conversation(&c.g)
        .message(&m.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.deleted.unwrap().by, *c.carol.did());
    // bob may not delete carol's (a member deletes only their own).
    let cm = c
        .carol
        .conversation(&c.g)
        .send_text("carol speaks")
        .await
        .unwrap();
    c.bob.sync().await.unwrap();
    assert!(c.bob.conversation(&c.g).delete(&cm.id).await.is_err());

    // Posting becomes admins-only; bob's modified client posts anyway: dropped with an event.
    c.alice
        .conversation(&c.g)
        .set_policy(Action::Post, Policy::AtLeast(Role::Admin))
        .await
        .unwrap();
    c.bob.sync().await.unwrap();
    c.carol.sync().await.unwrap();
    let before = c
        .carol
        .conversation(&c.g)
        .history(None, 100)
        .await
        .unwrap()
        .items
        .len();
    c.bob
        .send_unchecked(&c.g, &Content::text("muted but talking"))
        .await
        .unwrap();
    let ev = c.carol.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::PostDropped { message, error: GovernanceError::Forbidden { action: Action::Post, .. } } if message.sender.did == *c.bob.did())),
        "{ev:?}"
    );
    assert!(texts(&ev).is_empty());
    assert_eq!(
        c.carol
            .conversation(&c.g)
            .history(None, 100)
            .await
            .unwrap()
            .items
            .len(),
        before
    );
    // Receipts are not posts.
    c.bob.conversation(&c.g).mark_read(&cm.id).await.unwrap();
}

#[tokio::test]
async fn gov_6_last_owner_cannot_leave_owner_hand_over_then_leave() {
    let c = cast(Preset::AdminsOnly).await;
    let before = state(&c.alice, &c.g).await;
    let last_owner = |e: &Error| {
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::LastOwner))
        )
    };
    let e = c.alice.conversation(&c.g).leave().await.unwrap_err();
    assert!(last_owner(&e), "{e:?}");
    let e = c
        .alice
        .conversation(&c.g)
        .set_role(c.alice.did(), Role::Admin)
        .await
        .unwrap_err();
    assert!(last_owner(&e), "{e:?}");
    assert_eq!(state(&c.alice, &c.g).await, before);

    // Hand-over: bob becomes owner, alice admin.
    c.alice
        .conversation(&c.g)
        .transfer_ownership(c.bob.did())
        .await
        .unwrap();
    c.bob.sync().await.unwrap();
    assert_eq!(
        c.bob.conversation(&c.g).role(c.bob.did()).await.unwrap(),
        Role::Owner
    );
    assert_eq!(
        c.bob.conversation(&c.g).role(c.alice.did()).await.unwrap(),
        Role::Admin
    );
    // Now bob is the last owner; he leaves naming carol.
    c.bob
        .conversation(&c.g)
        .leave_naming(c.carol.did())
        .await
        .unwrap();
    c.carol.sync().await.unwrap(); // commits bob's leave
    let members = c.carol.conversation(&c.g).members().await.unwrap();
    assert!(members.iter().all(|m| m.did != *c.bob.did()));
    assert_eq!(
        c.carol
            .conversation(&c.g)
            .role(c.carol.did())
            .await
            .unwrap(),
        Role::Owner
    );
    // The leaver's device drops the group state.
    let ev = c.bob.sync().await.unwrap();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Removed { .. })),
        "{ev:?}"
    );
    assert!(c.bob.conversation(&c.g).members().await.is_err());
    assert!(c
        .bob
        .conversation(&c.g)
        .send_text("still here?")
        .await
        .is_err());
}

#[tokio::test]
async fn gov_7_metadata_avatar_and_pins_round_trip_with_audit() {
    let blobs = std::sync::Arc::new(atmls::blob::MemoryBlobStore::new());
    let w = World::new();
    let mk = |name: &str| {
        Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
            .identity(DeviceIdentity::new_account(did(name)))
            .blob_store(blobs.clone())
            .build()
    };
    let alice = mk("alice").await.unwrap();
    let bob = mk("bob").await.unwrap();
    let g = alice.create_group(&[bob.did().clone()]).await.unwrap();
    bob.sync().await.unwrap();
    alice
        .conversation(&g)
        .set_description("members only")
        .await
        .unwrap();
    let png = vec![0x89u8; 50_000];
    alice
        .conversation(&g)
        .set_avatar(Some(("image/png", &png)))
        .await
        .unwrap();
    let m = alice
        .conversation(&g)
        .send_text("rules: be nice")
        .await
        .unwrap();
    alice.conversation(&g).pin(&m.id).await.unwrap();
    let ev = bob.sync().await.unwrap();
    assert_eq!(
        changes(&ev),
        vec![
            GovernanceChange::DescriptionChanged("members only".into()),
            GovernanceChange::AvatarChanged(true),
            GovernanceChange::Pinned(m.id),
        ]
    );
    let meta = bob.conversation(&g).metadata().await.unwrap();
    assert_eq!(meta.description, "members only");
    assert_eq!(meta.pinned, vec![m.id]);
    assert_eq!(
        bob.conversation(&g).avatar().await.unwrap(),
        Some(("image/png".into(), png))
    );
    bob.conversation(&g).unpin(&m.id).await.unwrap();
    alice.sync().await.unwrap();
    assert!(alice
        .conversation(&g)
        .metadata()
        .await
        .unwrap()
        .pinned
        .is_empty());

    // Where members may not change the avatar, carol's attempt stores nothing at all.
    let carols_blobs = std::sync::Arc::new(atmls::blob::MemoryBlobStore::new());
    let carol = Client::builder(w.dir.clone(), w.net.clone(), Store::in_memory().unwrap())
        .identity(DeviceIdentity::new_account(did("carol")))
        .blob_store(carols_blobs.clone())
        .build()
        .await
        .unwrap();
    alice
        .conversation(&g)
        .add_members(&[carol.did().clone()])
        .await
        .unwrap();
    alice
        .conversation(&g)
        .apply_preset(Preset::AdminsOnly)
        .await
        .unwrap();
    carol.sync().await.unwrap();
    let err = carol
        .conversation(&g)
        .set_avatar(Some(("image/png", &[1, 2, 3])))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Group(GroupError::Governance(GovernanceError::Forbidden {
                action: Action::EditAvatar,
                ..
            }))
        ),
        "{err:?}"
    );
    assert!(carols_blobs.is_empty(), "nothing stored before the refusal");
}

#[tokio::test]
async fn inv_3_forged_invite_use_without_a_join_is_refused() {
    let c = cast(Preset::AllMembers).await;
    c.alice
        .conversation(&c.g)
        .create_invite(atmls::client::InviteOptions::default())
        .await
        .unwrap();
    for m in [&c.bob, &c.carol, &c.dave] {
        m.sync().await.unwrap();
    }
    // bob raises the use count by hand: version, count, secret (32), expiry (8),
    // max uses (4), then uses (4, big-endian) at bytes 46..50.
    let forged = forge(&c.bob_db, &c.g, |g, p, s| {
        let mut raw = g
            .extensions()
            .unknown(atmls::group::INVITES_EXTENSION)
            .unwrap()
            .0
            .clone();
        raw[49] = 1;
        let ext = with_extension(g, atmls::group::INVITES_EXTENSION, raw);
        context_commit(ext)(g, p, s)
    });
    all_refuse(&c, &forged, |e| {
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::Immutable(_)))
        )
    })
    .await;
}

#[tokio::test]
async fn gov_6_a_forged_leave_request_of_the_last_owner_is_refused() {
    let c = cast(Preset::AllMembers).await;
    c.alice
        .conversation(&c.g)
        .transfer_ownership(c.bob.did())
        .await
        .unwrap();
    for m in [&c.bob, &c.carol, &c.dave] {
        m.sync().await.unwrap();
    }
    // bob is now the only owner; his modified client sends a leave request anyway.
    let (p, mut group, signer) = RawProvider::open_group(&c.bob_db, &c.g);
    let msg = group.leave_group(&p, &signer).unwrap();
    let sealed = atmls::group::seal_for_transport(
        &group,
        p.crypto(),
        &msg.tls_serialize_detached().unwrap(),
    )
    .unwrap();
    for m in [&c.alice, &c.carol, &c.dave] {
        let before = state(m, &c.g).await;
        let e = m
            .conversation(&c.g)
            .process_incoming(&sealed)
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Group(GroupError::Governance(GovernanceError::LastOwner))
            ),
            "{e:?}"
        );
        assert!(state(m, &c.g).await == before, "state changed");
    }
}

#[tokio::test]
async fn gov_9_a_removed_member_can_be_added_again() {
    let c = cast(Preset::AllMembers).await;
    c.alice
        .conversation(&c.g)
        .set_role(c.dave.did(), Role::Moderator)
        .await
        .unwrap();
    c.alice
        .conversation(&c.g)
        .remove_members(&[c.dave.did().clone()])
        .await
        .unwrap();
    // The role went with him (GOV-5): he comes back as a member.
    assert_eq!(
        c.alice.conversation(&c.g).role(c.dave.did()).await.unwrap(),
        Role::Member
    );
    c.dave.sync().await.unwrap();
    assert!(
        c.dave.conversation(&c.g).members().await.is_err(),
        "state dropped"
    );
    c.alice
        .conversation(&c.g)
        .add_members(&[c.dave.did().clone()])
        .await
        .unwrap();
    assert_eq!(joined(&c.dave.sync().await.unwrap()), vec![c.g.clone()]);
    c.alice
        .conversation(&c.g)
        .send_text("welcome back")
        .await
        .unwrap();
    assert_eq!(texts(&c.dave.sync().await.unwrap()), vec!["welcome back"]);
}

#[tokio::test]
async fn gov_5_an_admin_cannot_demote_the_owner_even_by_a_forged_commit() {
    let c = cast(Preset::AdminsOnly).await;
    c.alice
        .conversation(&c.g)
        .set_role(c.bob.did(), Role::Admin)
        .await
        .unwrap();
    for m in [&c.bob, &c.carol, &c.dave] {
        m.sync().await.unwrap();
    }
    // The API refuses...
    let e = c
        .bob
        .conversation(&c.g)
        .set_role(c.alice.did(), Role::Member)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::Outranked { .. }))
        ),
        "{e:?}"
    );
    // ...and so does every member when bob's modified client commits it anyway.
    let mut roles = Roles::with_owner(c.bob.did().clone());
    roles.set(c.alice.did().clone(), Role::Member);
    let forged = forge(&c.bob_db, &c.g, |g, p, s| {
        let ext = with_extension(g, ROLES_EXTENSION, roles.to_bytes());
        context_commit(ext)(g, p, s)
    });
    all_refuse(&c, &forged, |e| {
        matches!(
            e,
            Error::Group(GroupError::Governance(GovernanceError::Outranked { .. }))
        )
    })
    .await;
}
