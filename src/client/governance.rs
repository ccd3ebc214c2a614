//! The governance half of the client API: roles, policies, metadata, pinned messages,
//! ownership hand-over (spec/governance.md). Every change is a commit that every member's
//! device authorizes against the roles and policies before merging it.

use openmls::prelude::{Extension, ExtensionType, Extensions, GroupContext};

use super::history::ModerationPolicy;
use super::outgoing::Intent;
use super::{Client, Error};
use crate::content::{decrypt_stream, encrypt_stream, Content, MessageId, StreamedAttachment};
use crate::group::{
    invites_of, metadata_of, Action, Avatar, AvatarBlob, Governance, GovernanceError, GroupError,
    GroupId, GroupKind, GroupMetadata, InviteId, InviteRecord, Policies, Policy, Preset, Role,
    MAX_AVATAR_BYTES,
};
use crate::identity::Did;
use crate::storage::blob_erasure;

/// A change of the group-context extensions, re-applied to the current state on every
/// commit attempt (GROUP-6).
#[derive(Clone, Debug)]
pub(crate) enum ContextEdit {
    Roles(Vec<(Did, Role)>),
    Policies(Policies),
    Name(String),
    Description(String),
    Avatar(Option<Avatar>),
    Pin(MessageId),
    Unpin(MessageId),
    CreateInvite(Box<InviteRecord>),
    RevokeInvite(InviteId),
}

/// `ext` with `new` in place of the extension of the same type.
fn replace(
    ext: &Extensions<GroupContext>,
    new: Extension,
) -> Result<Extensions<GroupContext>, GroupError> {
    let ty = new.extension_type();
    let mut v: Vec<Extension> = ext
        .iter()
        .filter(|e| e.extension_type() != ty)
        .cloned()
        .collect();
    v.push(new);
    Extensions::from_vec(v).map_err(|e| GroupError::Mls(e.to_string()))
}

fn governance(ext: &Extensions<GroupContext>) -> Result<Governance, GroupError> {
    Governance::from_extensions(ext)?
        .ok_or(GovernanceError::Immutable("a DM has no roles, metadata or invites").into())
}

/// The extensions after `edit` at time `now`, or `None` if it changes nothing.
pub(crate) fn apply_edit(
    ext: &Extensions<GroupContext>,
    edit: &ContextEdit,
    me: &Did,
    now: u64,
) -> Result<Option<Extensions<GroupContext>>, GroupError> {
    let gov = governance(ext)?;
    let mut meta = metadata_of(ext)?;
    let before = meta.clone();
    let new = match edit {
        ContextEdit::Roles(changes) => {
            let mut roles = gov.roles.clone();
            for (d, r) in changes {
                roles.set(d.clone(), *r);
            }
            if roles == gov.roles {
                return Ok(None);
            }
            roles.to_extension()
        }
        ContextEdit::Policies(p) => {
            if *p == gov.policies {
                return Ok(None);
            }
            p.to_extension()
        }
        ContextEdit::CreateInvite(rec) => {
            let mut all = invites_of(ext)?;
            // Revoked, expired or used-up links make room for new ones.
            if all.len() >= crate::group::MAX_INVITES {
                all.retain(|i| i.state(now) == crate::group::InviteState::Open);
            }
            let mut rec = (**rec).clone();
            rec.created_by = me.clone();
            all.push(rec);
            crate::group::invites_to_extension(&all)?
        }
        ContextEdit::RevokeInvite(id) => {
            let mut all = invites_of(ext)?;
            let i = all
                .iter_mut()
                .find(|i| i.id() == *id)
                .ok_or(GovernanceError::UnknownInvite)?;
            if i.revoked {
                return Ok(None);
            }
            i.revoked = true;
            crate::group::invites_to_extension(&all)?
        }
        ContextEdit::Name(n) => {
            meta.name = n.clone();
            meta.to_extension()?
        }
        ContextEdit::Description(d) => {
            meta.description = d.clone();
            meta.to_extension()?
        }
        ContextEdit::Avatar(a) => {
            meta.avatar = a.clone();
            meta.to_extension()?
        }
        ContextEdit::Pin(m) => {
            if !meta.pinned.contains(m) {
                meta.pinned.push(*m);
            }
            meta.to_extension()?
        }
        ContextEdit::Unpin(m) => {
            meta.pinned.retain(|p| p != m);
            meta.to_extension()?
        }
    };
    let is_meta = new.extension_type() == ExtensionType::Unknown(crate::group::METADATA_EXTENSION);
    if is_meta && meta == before {
        return Ok(None);
    }
    Ok(Some(replace(ext, new)?))
}

/// The extensions with invite `id`'s use count raised by `n` (INV-3); fails with the
/// invite's state if it cannot take them.
pub(crate) fn bump_invite(
    ext: &Extensions<GroupContext>,
    id: &InviteId,
    n: usize,
) -> Result<Extensions<GroupContext>, GroupError> {
    let mut all = invites_of(ext)?;
    let i = all
        .iter_mut()
        .find(|i| i.id() == *id)
        .ok_or(GovernanceError::UnknownInvite)?;
    let n = u32::try_from(n).map_err(|_| GovernanceError::Malformed("use count"))?;
    if i.revoked || (i.max_uses != 0 && i.uses.saturating_add(n) > i.max_uses) {
        return Err(GovernanceError::Immutable("invite revoked or used up").into());
    }
    i.uses = i.uses.saturating_add(n);
    let e = crate::group::invites_to_extension(&all)?;
    replace(ext, e)
}

/// The extensions without the roles of `dids`, or `None` if none of them has one.
pub(crate) fn drop_roles(
    ext: &Extensions<GroupContext>,
    dids: &[Did],
) -> Result<Option<Extensions<GroupContext>>, GroupError> {
    let Some(gov) = Governance::from_extensions(ext)? else {
        return Ok(None);
    };
    let mut roles = gov.roles.clone();
    for d in dids {
        roles.set(d.clone(), Role::Member);
    }
    if roles == gov.roles {
        return Ok(None);
    }
    replace(ext, roles.to_extension()).map(Some)
}

/// The leaves among `leaves` this account may remove in a commit (GOV-5): a device of an
/// account that keeps another device, or any device of an account it may remove.
pub(crate) fn removable(
    g: &openmls::prelude::MlsGroup,
    roster: &crate::group::Roster,
    me: &Did,
    leaves: Vec<openmls::prelude::LeafNodeIndex>,
) -> Result<Vec<openmls::prelude::LeafNodeIndex>, GroupError> {
    let gov = Governance::from_extensions(g.extensions())?;
    let set: std::collections::BTreeSet<_> = leaves.iter().copied().collect();
    Ok(leaves
        .iter()
        .filter(|i| {
            let Some(did) = roster.did(**i) else {
                return false;
            };
            // Leaves of `did` outside `leaves`: its count minus those inside.
            let inside = set.iter().filter(|l| roster.did(**l) == Some(did)).count();
            let keeps_one = roster.count(did) > inside;
            let may_remove = gov.as_ref().is_some_and(|gv| {
                let mine = gv.roles.get(me);
                gv.allows(me, Action::RemoveMembers)
                    && (mine == Role::Owner || gv.roles.get(did) < mine)
            });
            keeps_one || may_remove
        })
        .copied()
        .collect())
}

/// Whether content counts as a post for the `Post` policy (GOV-8): receipts, typing
/// indicators and deletes do not.
pub(crate) fn is_post(c: &Content) -> bool {
    !matches!(
        c,
        Content::ReadReceipt(_) | Content::Typing(_) | Content::Delete(_)
    )
}

/// The builder's moderation policy, widened by the group's roles (GOV-8): an account with
/// the `Moderate` permission deletes messages of accounts whose role is not above its own.
pub(crate) struct RoleModeration<'a> {
    pub base: &'a dyn ModerationPolicy,
    pub gov: Option<Governance>,
}

impl ModerationPolicy for RoleModeration<'_> {
    fn may_delete(&self, group: &GroupId, actor: &Did, author: &Did) -> bool {
        self.base.may_delete(group, actor, author)
            || self.gov.as_ref().is_some_and(|g| {
                g.allows(actor, Action::Moderate) && g.roles.get(actor) >= g.roles.get(author)
            })
    }
}

/// Whether `did` is the group's only owner among its members (GOV-6).
pub(crate) fn is_last_owner(gov: &Governance, members: &[Did], did: &Did) -> bool {
    gov.roles.get(did) == Role::Owner
        && !gov
            .roles
            .iter()
            .any(|(d, r)| r == Role::Owner && d != did && members.contains(d))
}

impl Client {
    async fn change_context(&self, group: &GroupId, edit: ContextEdit) -> Result<(), Error> {
        self.session()
            .await
            .run_commit(group, Intent::Context(edit))
            .await
    }

    /// Creates a group with a policy preset and initial metadata; this account is its
    /// owner (GOV-1). [`create_group`](Self::create_group) uses
    /// [`Preset::AllMembers`] and no metadata.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// # let bob = Client::builder(dir, net, Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?)).build().await?;
    /// use atmls::group::{Action, GroupMetadata, Preset, Role, GroupError, GovernanceError};
    /// use atmls::Error;
    /// let meta = GroupMetadata { name: "Secret Club".into(), ..Default::default() };
    /// let g = alice.create_group_with(&[bob.did().clone()], Preset::AdminsOnly, meta).await?;
    /// bob.sync().await?;
    /// assert_eq!(bob.conversation(&g).metadata().await?.name, "Secret Club");
    /// assert_eq!(bob.conversation(&g).role(alice.did()).await?, Role::Owner);
    /// // Bob is a member: renaming needs an admin under this preset.
    /// let err = bob.conversation(&g).set_name("Bob's Club").await.unwrap_err();
    /// assert!(matches!(err, Error::Group(GroupError::Governance(
    ///     GovernanceError::Forbidden { action: Action::EditName, .. }))));
    /// alice.conversation(&g).set_role(bob.did(), Role::Admin).await?;
    /// bob.sync().await?;
    /// bob.conversation(&g).set_name("Bob's Club").await?;
    /// alice.sync().await?;
    /// assert_eq!(alice.conversation(&g).metadata().await?.name, "Bob's Club");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn create_group_with(
        &self,
        members: &[Did],
        preset: Preset,
        metadata: GroupMetadata,
    ) -> Result<GroupId, Error> {
        metadata.check().map_err(GroupError::from)?;
        self.account_session()
            .await
            .create_with(GroupKind::Group, members, preset, Some(metadata))
            .await
    }

    /// Behind [`Conversation::governance`](super::Conversation::governance).
    pub(crate) async fn governance(&self, group: &GroupId) -> Result<Option<Governance>, Error> {
        let mut s = self.session().await;
        s.inner.atomic(|cx| {
            Ok::<_, Error>(
                cx.peek(group, |g| Governance::from_extensions(g.extensions()))?
                    .map_err(GroupError::from)?,
            )
        })
    }

    /// Behind [`Conversation::role`](super::Conversation::role).
    pub(crate) async fn role(&self, group: &GroupId, did: &Did) -> Result<Role, Error> {
        Ok(self
            .governance(group)
            .await?
            .map(|g| g.roles.get(did))
            .unwrap_or(Role::Member))
    }

    /// Behind [`Conversation::set_role`](super::Conversation::set_role).
    pub(crate) async fn set_role(
        &self,
        group: &GroupId,
        did: &Did,
        role: Role,
    ) -> Result<(), Error> {
        if !self.members(group).await?.iter().any(|m| &m.did == did) {
            return Err(Error::InvalidArgument("not a member of this group"));
        }
        self.change_context(group, ContextEdit::Roles(vec![(did.clone(), role)]))
            .await
    }

    /// Behind [`Conversation::transfer_ownership`](super::Conversation::transfer_ownership).
    pub(crate) async fn transfer_ownership(&self, group: &GroupId, to: &Did) -> Result<(), Error> {
        if to == self.did() {
            return Err(Error::InvalidArgument("already the owner"));
        }
        if !self.members(group).await?.iter().any(|m| &m.did == to) {
            return Err(Error::InvalidArgument("not a member of this group"));
        }
        self.change_context(
            group,
            ContextEdit::Roles(vec![
                (to.clone(), Role::Owner),
                (self.did().clone(), Role::Admin),
            ]),
        )
        .await
    }

    /// Behind [`Conversation::leave_naming`](super::Conversation::leave_naming).
    pub(crate) async fn leave_naming(&self, group: &GroupId, successor: &Did) -> Result<(), Error> {
        self.set_role(group, successor, Role::Owner).await?;
        self.leave(group).await
    }

    /// Behind [`Conversation::set_policy`](super::Conversation::set_policy).
    pub(crate) async fn set_policy(
        &self,
        group: &GroupId,
        action: Action,
        policy: Policy,
    ) -> Result<(), Error> {
        let mut p = self
            .governance(group)
            .await?
            .ok_or(GroupError::from(GovernanceError::Immutable(
                "a DM has fixed policies",
            )))?
            .policies;
        p.set(action, policy);
        self.change_context(group, ContextEdit::Policies(p)).await
    }

    /// Behind [`Conversation::apply_preset`](super::Conversation::apply_preset).
    pub(crate) async fn apply_preset(&self, group: &GroupId, preset: Preset) -> Result<(), Error> {
        self.change_context(group, ContextEdit::Policies(Policies::preset(preset)))
            .await
    }

    /// Behind [`Conversation::metadata`](super::Conversation::metadata).
    pub(crate) async fn metadata(&self, group: &GroupId) -> Result<GroupMetadata, Error> {
        let mut s = self.session().await;
        s.inner.atomic(|cx| {
            Ok::<_, Error>(
                cx.peek(group, |g| metadata_of(g.extensions()))?
                    .map_err(GroupError::from)?,
            )
        })
    }

    /// Behind [`Conversation::set_name`](super::Conversation::set_name).
    pub(crate) async fn set_name(&self, group: &GroupId, name: &str) -> Result<(), Error> {
        self.change_context(group, ContextEdit::Name(name.to_owned()))
            .await
    }

    /// Behind [`Conversation::set_description`](super::Conversation::set_description).
    pub(crate) async fn set_description(&self, group: &GroupId, text: &str) -> Result<(), Error> {
        self.change_context(group, ContextEdit::Description(text.to_owned()))
            .await
    }

    /// Behind [`Conversation::set_avatar`](super::Conversation::set_avatar).
    pub(crate) async fn set_avatar(
        &self,
        group: &GroupId,
        image: Option<(&str, &[u8])>,
    ) -> Result<(), Error> {
        if let Some(gov) = self.governance(group).await? {
            gov.require(self.did(), Action::EditAvatar)
                .map_err(GroupError::from)?;
        }
        let previous = self.metadata(group).await?.avatar;
        let avatar = match image {
            None => None,
            Some((mime, bytes)) => Some(self.store_avatar(group, mime, bytes).await?),
        };
        let committed = self
            .change_context(group, ContextEdit::Avatar(avatar.clone()))
            .await;
        let unreferenced = match &committed {
            Ok(()) => previous,
            Err(e) if !e.is_retryable() => avatar,
            Err(_) => None,
        };
        if let Some(old) = unreferenced.filter(|_| self.blob_store.is_some()) {
            // Best effort: the commit's outcome is the answer; a blob left behind expires
            // with the mailbox's retention, and a queued one is erased at the next sync.
            if let Err(e) = self.erase_avatar_blob(group, old.blob.url()).await {
                tracing::debug!(error = %e, "avatar blob not erased yet");
            }
        }
        committed
    }

    /// Queues the blob of an avatar no longer referenced for erasure, and erases the queue.
    async fn erase_avatar_blob(&self, group: &GroupId, url: &str) -> Result<(), Error> {
        self.session().await.inner.atomic(|cx| {
            let now = i64::try_from(crate::identity::unix_now()).unwrap_or(i64::MAX);
            blob_erasure::queue_url(cx.c, &group.0, url, now)
        })?;
        self.erase_deleted_blobs().await.map(|_| ())
    }

    /// Encrypts and stores an avatar image for `group`.
    async fn store_avatar(
        &self,
        group: &GroupId,
        mime: &str,
        bytes: &[u8],
    ) -> Result<Avatar, Error> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if len > MAX_AVATAR_BYTES {
            let e = GovernanceError::TooLarge {
                what: "avatar",
                len: bytes.len(),
                max: MAX_AVATAR_BYTES as usize,
            };
            return Err(GroupError::Governance(e).into());
        }
        let blobs = self.blob_store.as_ref().ok_or(Error::NoBlobStore)?;
        let mut blob = Vec::new();
        let sealed = encrypt_stream(&mut &bytes[..], &mut blob).await?;
        let cap = self.current_mailbox(group).await?.post_secret;
        let url = blobs.put_for(cap.as_ref(), &blob).await?;
        Ok(Avatar {
            mime_type: mime.to_owned(),
            blob: AvatarBlob::Streamed {
                reference: StreamedAttachment {
                    url,
                    digest: sealed.digest,
                    key: sealed.key,
                },
                size: sealed.size,
            },
        })
    }

    /// Behind [`Conversation::avatar`](super::Conversation::avatar).
    pub(crate) async fn avatar(&self, group: &GroupId) -> Result<Option<(String, Vec<u8>)>, Error> {
        let Some(a) = self.metadata(group).await?.avatar else {
            return Ok(None);
        };
        let blobs = self.blob_store.as_ref().ok_or(Error::NoBlobStore)?;
        let bytes = match &a.blob {
            AvatarBlob::Whole(r) => r.decrypt(&blobs.get(&r.url).await?)?,
            AvatarBlob::Streamed { reference, size } => {
                let blob = blobs.get(&reference.url).await?;
                let mut out = Vec::new();
                decrypt_stream(
                    &reference.key,
                    &reference.digest,
                    *size,
                    &mut &blob[..],
                    &mut out,
                )
                .await?;
                out
            }
        };
        Ok(Some((a.mime_type.clone(), bytes)))
    }

    /// Behind [`Conversation::pin`](super::Conversation::pin).
    pub(crate) async fn pin(&self, group: &GroupId, id: &MessageId) -> Result<(), Error> {
        if self.message(group, id).await?.is_none() {
            return Err(super::HistoryError::UnknownMessage(*id).into());
        }
        self.change_context(group, ContextEdit::Pin(*id)).await
    }

    /// Behind [`Conversation::unpin`](super::Conversation::unpin).
    pub(crate) async fn unpin(&self, group: &GroupId, id: &MessageId) -> Result<(), Error> {
        self.change_context(group, ContextEdit::Unpin(*id)).await
    }

    pub(crate) async fn edit_invites(&self, group: &GroupId, e: ContextEdit) -> Result<(), Error> {
        self.change_context(group, e).await
    }
}
