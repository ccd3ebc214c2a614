//! What this device sends: commits (merged only after the transport accepted them; on a lost
//! race, dropped, caught up and retried), leave proposals, Welcomes. Application messages and
//! the proposals go through the message outbox (outbox.rs).

use openmls::prelude::{
    tls_codec::Serialize as _, GroupId as MlsGroupId, KeyPackage, LeafNodeIndex,
    LeafNodeParameters, MlsGroup, NewSignerBundle,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider as _;

use super::history;
use super::{Error, Session};
use crate::credential::AtmlsIdentity;
use crate::group::{
    create_config, epoch_tag, mailbox_for, outer_seal, welcome_mailbox, GroupData, GroupError,
    GroupId, GroupKind, GroupStatus, Member, Roster, RosterChange, TreeRef,
};
use crate::identity::Did;
use crate::keypackage::new_leaf_key;
use crate::storage::group_state::{self, GroupFlag};
use crate::storage::tables::{self, GroupRow, Outgoing};
use crate::transport::{CommitOutcome, EpochTag, IdempotencyKey, TreeLocator};
use crate::wire::WelcomeEnvelope;

/// How often an operation retries after losing a commit race.
mod plan;

use plan::build_commit;

pub(super) const MAX_COMMIT_ATTEMPTS: usize = 8;

/// What a commit is meant to achieve; re-evaluated after every lost race.
#[derive(Clone, Debug)]
pub(crate) enum Intent {
    Add(Vec<Did>),
    Remove(Vec<Did>),
    Update,
    /// Commit proposals others sent (leave requests).
    Pending,
    /// Set the disappearing-messages timer, in seconds (0: off) (CONTENT-28).
    SetDisappearing(u32),
    /// Change roles, policies, metadata or invites (spec/governance.md).
    Context(super::governance::ContextEdit),
    /// Add accounts that redeemed invite `1`, raising its use count (INV-3).
    AddViaInvite(Vec<Did>, crate::group::InviteId),
    /// Re-add a member device that fell out of the group (AGREE-8): remove its leaf, still
    /// signed by key `2`, and add a fresh KeyPackage of the same device. Done (nothing to
    /// commit) once that leaf is gone or changed.
    Readd(Did, crate::identity::PublicKey, Vec<u8>),
    /// Put raw bytes in a group-context extension, unchecked: only for tests of what
    /// receivers refuse.
    #[cfg(feature = "test-utils")]
    RawContextExtension(u16, Vec<u8>),
}

impl Intent {
    /// Whether the commit goes out without our own governance check (a test hook).
    fn is_unchecked(&self) -> bool {
        #[cfg(feature = "test-utils")]
        if let Intent::RawContextExtension(..) = self {
            return true;
        }
        false
    }
}

enum Submitted {
    Accepted,
    Lost,
}

/// Leaves of devices their account revoked (TRUST-12): every commit we make removes them.
/// The revoked set is read once and is almost always empty; the roster (LG-8) names every
/// leaf's device without decoding a credential.
fn revoked_leaves(
    cx: &super::state::Ctx<'_>,
    roster: &Roster,
    own: LeafNodeIndex,
) -> Result<Vec<LeafNodeIndex>, Error> {
    let revoked = crate::storage::trust::revoked_all(cx.c)?;
    if revoked.is_empty() {
        return Ok(Vec::new());
    }
    Ok(roster
        .leaves()
        .filter(|(i, l)| *i != own && revoked.contains(&l.member.installation))
        .map(|(i, _)| i)
        .collect())
}

/// Leaves of `dids` certified by an identity key that is neither the one now pinned nor an
/// endorsed predecessor of it (TRUST-14): devices of a replaced identity (the user accepted
/// a new key, TRUST-5). Adding that account's current
/// devices removes them in the same commit, so the group never mixes the two identities.
/// Only the leaves of `dids` are looked at (LG-8).
fn stale_leaves(
    cx: &super::state::Ctx<'_>,
    roster: &Roster,
    own: LeafNodeIndex,
    dids: &[Did],
) -> Result<Vec<LeafNodeIndex>, Error> {
    let mut out = std::collections::BTreeSet::new();
    for did in dids {
        let mut leaves = roster.leaves_of(did).filter(|i| *i != own).peekable();
        if leaves.peek().is_none() {
            continue;
        }
        let Some(pinned) = crate::storage::trust::pinned_keys(cx.c, did)? else {
            continue;
        };
        for i in leaves {
            if roster
                .get(i)
                .is_some_and(|l| !pinned.accepts(&l.identity_key, true))
            {
                out.insert(i);
            }
        }
    }
    Ok(out.into_iter().collect())
}

fn mls(e: impl std::fmt::Display) -> GroupError {
    GroupError::Mls(e.to_string())
}

impl Session<'_> {
    pub(crate) async fn create(
        &mut self,
        kind: GroupKind,
        members: &[Did],
    ) -> Result<GroupId, Error> {
        self.create_with(kind, members, crate::group::Preset::AllMembers, None)
            .await
    }

    /// Creates a group; a group (not a DM) starts with its creator as owner, the policy
    /// preset and the metadata given (GOV-1, GOV-3).
    pub(crate) async fn create_with(
        &mut self,
        kind: GroupKind,
        members: &[Did],
        preset: crate::group::Preset,
        metadata: Option<crate::group::GroupMetadata>,
    ) -> Result<GroupId, Error> {
        let me = self.inner.device.did.clone();
        let mine = self.inner.device.installation.public();
        // Validate everyone's KeyPackages before creating anything.
        let mut dids: Vec<Did> = members.iter().filter(|d| **d != me).cloned().collect();
        dids.dedup();
        self.collect_key_packages(&dids, &[mine], false).await?;

        let data = match kind {
            GroupKind::Dm => {
                let mut pair = vec![
                    me.clone(),
                    dids.first()
                        .cloned()
                        .ok_or(Error::InvalidArgument("empty DM"))?,
                ];
                pair.sort();
                GroupData {
                    kind,
                    dm_members: pair,
                }
            }
            GroupKind::Group => GroupData {
                kind,
                dm_members: vec![],
            },
            GroupKind::Account => GroupData {
                kind,
                dm_members: vec![me.clone()],
            },
        };
        let gid: [u8; 32] = rand::random();
        let id = GroupId(gid.to_vec());
        let peer = if kind == GroupKind::Dm {
            dids.first().cloned()
        } else {
            None
        };
        let mut extra = Vec::new();
        if kind == GroupKind::Group {
            extra.push(crate::group::Roles::with_owner(me.clone()).to_extension());
            extra.push(crate::group::Policies::preset(preset).to_extension());
            if let Some(m) = &metadata {
                extra.push(m.to_extension().map_err(GroupError::from)?);
            }
        }
        self.inner.atomic(|cx| {
            let (signer, cwk, ext) = new_leaf_key(&cx.p, cx.dev, cx.cs)?;
            let config = create_config(cx.cs, &data, extra, ext)?;
            MlsGroup::new_with_group_id(&cx.p, &signer, &config, MlsGroupId::from_slice(&gid), cwk)
                .map_err(mls)?;
            tables::group_put(
                cx.c,
                &GroupRow {
                    group_id: gid.to_vec(),
                    mailbox: mailbox_for(&gid).id.0,
                    capability: None,
                    cursor: 0,
                    kind,
                    dm_peer: peer.clone(),
                    status: GroupStatus::Active,
                    created: cx.now(),
                },
            )?;
            Ok::<_, Error>(())
        })?;
        let mut all = dids;
        all.push(me);
        let reserved = self.inner.used_key_packages.clone();
        let Err(e) = self.run_commit(&id, Intent::Add(all)).await else {
            return Ok(id);
        };
        // Once the first commit is merged the group stands: its Welcomes are queued and go
        // out with the next sync.
        let merged = self
            .inner
            .ctx_read(|cx| Ok(cx.peek(&id, |g| g.epoch().as_u64() > 0)?))
            .unwrap_or(false);
        if merged {
            tracing::warn!(group = %id, error = %e, "group created; Welcomes go out at the next sync");
            return Ok(id);
        }
        // Else nobody else holds it (Welcomes are queued only once the transport accepted the
        // commit), and the caller has no id for it: nothing of it stays (GROUP-1).
        if let Err(error) = self.inner.atomic(|cx| discard_new_group(cx, &id)) {
            tracing::warn!(group = %id, %error, "could not discard a group whose creation failed");
            return Err(e);
        }
        // Its commit is gone with it, never to be sent again: the single-use KeyPackages it
        // named were not used (KP-5).
        self.inner.used_key_packages = reserved;
        Err(e)
    }

    /// Commits `intent`, retrying after lost races until it is done or nothing is left to do.
    pub(crate) async fn run_commit(
        &mut self,
        group: &GroupId,
        intent: Intent,
    ) -> Result<(), Error> {
        let added = match &intent {
            Intent::Add(dids) => dids.clone(),
            _ => Vec::new(),
        };
        let entered = self.enter_group(group).await;
        let r = self.run_commit_in_group(group, intent).await;
        self.leave_group(entered, group);
        r?;
        // Adding an account, or starting a conversation with it, is consent to hear from it
        // (CONSENT-1); a refused add changes nothing.
        self.inner.atomic(|cx| {
            for d in added.iter().filter(|d| **d != cx.dev.did) {
                crate::storage::consent::allow_unless_blocked(cx.c, d.as_str(), cx.now())?;
            }
            Ok::<_, Error>(())
        })?;
        // Devices added to the own-device group get the whole consent table (CONSENT-7).
        let row = self.inner.read(|c| tables::group_get(c, &group.0))?;
        if !added.is_empty() && row.is_some_and(|r| r.kind == GroupKind::Account) {
            // Boxed: sending may commit, which may come back here.
            Box::pin(self.share_consent_in(group)).await?;
        }
        Ok(())
    }

    /// [`run_commit`](Self::run_commit) with the group's ordering lock held.
    async fn run_commit_in_group(&mut self, group: &GroupId, intent: Intent) -> Result<(), Error> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            self.sync_group(group).await?;
            if let Intent::Add(dids) = &intent {
                // GOV-4, before any directory lookup: nothing changes when it is refused.
                self.check_may_add(group, dids)?;
            }
            let kps = match &intent {
                Intent::Add(dids) | Intent::AddViaInvite(dids, _) => {
                    // Devices of these accounts already in the group (only theirs can be
                    // among the KeyPackages fetched).
                    let present: Vec<_> = self.inner.ctx_read(|cx| {
                        Ok(cx.peek(group, |g| {
                            let r = cx.roster(group, g);
                            dids.iter()
                                .flat_map(|d| r.leaves_of(d))
                                .filter_map(|i| r.get(i).map(|l| l.member.installation))
                                .collect()
                        })?)
                    })?;
                    self.collect_key_packages(dids, &present, true).await?
                }
                Intent::Readd(did, installation, _) => {
                    // Only that device's package: its account's other devices stay as they are.
                    let others: Vec<_> = self.inner.ctx_read(|cx| {
                        Ok(cx.peek(group, |g| {
                            let r = cx.roster(group, g);
                            r.leaves_of(did)
                                .filter_map(|i| r.get(i).map(|l| l.member.installation))
                                .filter(|k| k != installation)
                                .collect()
                        })?)
                    })?;
                    let mut kps = self
                        .collect_key_packages(std::slice::from_ref(did), &others, true)
                        .await?;
                    kps.retain(|k| {
                        AtmlsIdentity::from_credential(k.leaf_node().credential())
                            .is_ok_and(|id| id.certificate.installation_key == *installation)
                    });
                    kps
                }
                _ => Vec::new(),
            };
            let built = self
                .inner
                .atomic(|cx| build_commit(cx, group, &intent, kps))?;
            let Some(out) = built else { return Ok(()) };
            if let Submitted::Accepted = self.submit(group, out).await? {
                self.flush_welcomes().await?;
                return Ok(());
            }
        }
        Err(Error::Conflict)
    }

    /// Refuses an add of new accounts that this account's role does not allow (GOV-4).
    fn check_may_add(&mut self, group: &GroupId, dids: &[Did]) -> Result<(), Error> {
        let me = self.inner.device.did.clone();
        let new_accounts = self.inner.ctx_read(|cx| {
            Ok(cx.peek(group, |g| {
                let r = cx.roster(group, g);
                dids.iter().any(|d| *d != me && !r.contains(d))
            })?)
        })?;
        if !new_accounts {
            return Ok(());
        }
        let gov = self.inner.ctx_read(|cx| {
            Ok(cx
                .peek(group, |g| {
                    crate::group::Governance::from_extensions(g.extensions())
                })?
                .map_err(GroupError::from)?)
        })?;
        if let Some(gov) = gov {
            gov.require(&me, crate::group::Action::AddMembers)
                .map_err(GroupError::from)?;
        }
        Ok(())
    }

    /// Offers the stored outgoing commit to the transport and settles the outcome.
    async fn submit(&mut self, group: &GroupId, out: Outgoing) -> Result<Submitted, Error> {
        // The outgoing commit is settled before the mailbox is read again, so the group is
        // still where the commit was built.
        let mailbox = self.mailbox(group)?;
        // Our cursor: every commit for this epoch up to it was processed and refused, so it
        // holds nothing (TRANSPORT-1, AGREE-1).
        let after = self.cursor(group)?;
        let outcome = self
            .inner
            .io(self.transport.submit_commit(
                &mailbox,
                &EpochTag(out.epoch_tag),
                after,
                &out.commit,
                &IdempotencyKey(out.idem),
            ))
            .await?;
        match outcome {
            CommitOutcome::Accepted { seq } => {
                // Messages before our commit belong to our current epoch: read them first.
                self.sync_group_until(group, seq.saturating_sub(1)).await?;
                self.inner.atomic(|cx| {
                    let mut g = cx.load(group)?;
                    let roster = cx.roster(group, &g);
                    // Our own commit: record what it does; an unreadable change (only a test's
                    // unchecked commit) is not recorded rather than blocking the merge.
                    let update = history::own_commit_update(&g, &roster, &cx.dev.did)
                        .ok()
                        .flatten();
                    let change = g
                        .pending_commit()
                        .and_then(|s| RosterChange::of(s, g.own_leaf_index()));
                    // Message ids cover the inner MLS message (CONTENT-18): open our own
                    // sealed commit with the epoch's key before moving on.
                    let inner = crate::group::outer_open(&g, cx.p.crypto(), &out.commit)?.mls;
                    let leaf_key = g.own_leaf_node().map(|l| l.signature_key().clone());
                    let removes = g
                        .pending_commit()
                        .is_some_and(|s| s.remove_proposals().next().is_some());
                    g.merge_pending_commit(&cx.p).map_err(mls)?;
                    cx.roster_merged(group, roster, change, &g);
                    // A new leaf signature key: the rotation schedule starts again (GROUP-10).
                    if g.own_leaf_node().map(|l| l.signature_key()) != leaf_key.as_ref() {
                        super::upkeep::leaf_rotated(cx, group)?;
                    }
                    if let Some(u) = update {
                        let me = Member {
                            did: cx.dev.did.clone(),
                            installation: cx.dev.installation.public(),
                        };
                        let timer = crate::group::disappearing_secs(g.extensions())
                            .ok()
                            .flatten();
                        history::record_update(cx, group, &inner, seq, &me, &u, timer)?;
                    }
                    tables::outbox_delete(cx.c, &group.0)?;
                    tables::group_set_cursor(cx.c, &group.0, seq)?;
                    // A removal moves the group (GROUP-4a); joiners start where it moved to.
                    let (joiners_from, capability) = if removes {
                        let cap = crate::group::moved_mailbox(&g, cx.p.crypto())?;
                        tables::group_move(cx.c, &group.0, cap)?;
                        (0, Some(cap))
                    } else {
                        (seq, mailbox.post_secret)
                    };
                    // The tree our Welcome points to, exported after the merge: the tree the
                    // GroupInfo's tree hash names. Queued with the Welcomes, uploaded before
                    // them (LG-T-3).
                    let tree_queued = match (&out.welcome, &out.tree_seed) {
                        (Some(_), Some(seed)) => {
                            let r = TreeRef::from_seed(seed);
                            match r.seal(&g.export_ratchet_tree_ref()) {
                                Ok(blob) => {
                                    tables::tree_queue(cx.c, &r.locator.0, &blob)?;
                                    true
                                }
                                // Only a tree over the transport's limit: the commit stands
                                // (the transport accepted it), its joiners cannot join.
                                Err(error) => {
                                    tracing::warn!(%error, "ratchet tree not uploadable");
                                    false
                                }
                            }
                        }
                        _ => true,
                    };
                    let cs = g.ciphersuite();
                    cx.keep(group, g);
                    if let Some(w) = out.welcome.as_ref().filter(|_| tree_queued) {
                        for (k, r) in out.recipients.iter().enumerate() {
                            // Only this joiner's secrets (LG-9); the whole Welcome when its
                            // ref is unknown (a row from an older version).
                            let welcome = out
                                .recipient_refs
                                .as_ref()
                                .and_then(|refs| refs.get(k))
                                .and_then(|kp| crate::group::welcome_for(w, kp))
                                .unwrap_or_else(|| w.clone());
                            let env = WelcomeEnvelope {
                                commit_seq: joiners_from,
                                welcome,
                                capability,
                            };
                            // Sealed to the joiner's init key (GROUP-12); in clear only for a
                            // row written before the keys were kept (version 1, as it was).
                            let bytes = match out.recipient_keys.as_ref().map(|ks| ks.get(k)) {
                                Some(Some(key)) => match env.seal(cx.p.crypto(), cs, key) {
                                    Ok(b) => b,
                                    // Not an HPKE key of the ciphersuite: openmls sealed the
                                    // group secrets to it, so this cannot happen; never fall
                                    // back to clear.
                                    Err(error) => {
                                        tracing::warn!(%error, "Welcome not sealable, not sent");
                                        continue;
                                    }
                                },
                                Some(None) => {
                                    tracing::warn!("no init key for a Welcome, not sent");
                                    continue;
                                }
                                // Version 1 cannot name a mailbox: only for a group that
                                // never moved.
                                None if capability == mailbox_for(&group.0).post_secret => {
                                    env.to_bytes()
                                }
                                None => {
                                    tracing::warn!("no init key for a Welcome, not sent");
                                    continue;
                                }
                            };
                            tables::welcome_queue(cx.c, r, &IdempotencyKey::random().0, &bytes)?;
                        }
                    }
                    Ok::<_, Error>(())
                })?;
                Ok(Submitted::Accepted)
            }
            CommitOutcome::Rejected { .. } => {
                self.inner.atomic(|cx| {
                    let mut g = cx.load(group)?;
                    g.clear_pending_commit(cx.p.storage())
                        .map_err(|e| mls(format!("{e:?}")))?;
                    tables::outbox_delete(cx.c, &group.0)?;
                    cx.keep(group, g);
                    Ok::<_, Error>(())
                })?;
                Ok(Submitted::Lost)
            }
        }
    }

    /// Whether `group` holds proposals not yet committed (read-only: no write transaction,
    /// LG-10). A group we left holds none.
    pub(crate) fn has_pending(&mut self, group: &GroupId) -> Result<bool, Error> {
        self.inner.ctx_read(|cx| {
            let row = tables::group_get(cx.c, &group.0)?.ok_or(GroupError::UnknownGroup)?;
            if row.status == GroupStatus::Left {
                return Ok(false);
            }
            Ok(cx.peek(group, |g| g.has_pending_proposals())?)
        })
    }

    /// Commits the pending proposals, if any (GROUP-9). `false` when some remain: our role
    /// does not allow the commit (GOV-4), or they remove this device (our account is
    /// leaving); another member commits them.
    pub(crate) async fn commit_pending(&mut self, group: &GroupId) -> Result<bool, Error> {
        let entered = self.enter_group(group).await;
        let r = self.commit_pending_in_group(group).await;
        self.leave_group(entered, group);
        r
    }

    /// [`commit_pending`](Self::commit_pending) with the group's ordering lock held.
    async fn commit_pending_in_group(&mut self, group: &GroupId) -> Result<bool, Error> {
        if !self.has_pending(group)? {
            return Ok(true);
        }
        match self.run_commit(group, Intent::Pending).await {
            Err(Error::Group(GroupError::Governance(e))) => {
                tracing::debug!(error = %e, "cannot commit pending proposals");
            }
            // Leaving (our removal is not ours to commit), or the sync before the commit read
            // our removal.
            Err(Error::Group(GroupError::NotMember | GroupError::UnknownGroup)) => {}
            r => r?,
        }
        Ok(!self.has_pending(group)?)
    }

    /// Settles a commit left in the outbox by an interrupted operation (same idempotency key,
    /// so the transport answers as it did the first time).
    pub(crate) async fn resolve_outbox(&mut self, group: &GroupId) -> Result<(), Error> {
        let entered = self.enter_group(group).await;
        let r = self.resolve_outbox_in_group(group).await;
        self.leave_group(entered, group);
        r
    }

    /// [`resolve_outbox`](Self::resolve_outbox) with the group's ordering lock held.
    async fn resolve_outbox_in_group(&mut self, group: &GroupId) -> Result<(), Error> {
        if let Some(out) = self.inner.read(|c| tables::outbox_get(c, &group.0))? {
            if let Submitted::Accepted = self.submit(group, out).await? {
                self.flush_welcomes().await?;
            }
        }
        // Messages and proposals already encrypted go again under their keys (GROUP-11).
        self.resend_queued(group).await
    }

    pub(crate) async fn flush_welcomes(&mut self) -> Result<(), Error> {
        // Two calls sending the same queue would send each Welcome twice (the transport keeps
        // one copy, by idempotency key, but the work is wasted).
        let _sending = self.welcomes_out_lock().await;
        // Trees first: a Welcome is sent only once the tree it points to is stored (LG-T-3).
        for locator in self.inner.read(tables::tree_pending)? {
            let Some(blob) = self.inner.read(|c| tables::tree_blob(c, &locator))? else {
                continue;
            };
            match self
                .inner
                .io(self.transport.put_tree(&TreeLocator(locator), &blob))
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_retryable() => return Err(e.into()),
                // Refused for good (e.g. over this transport's limit): its joiners will find
                // no tree and refuse their Welcome (LG-T-5); nothing else is held up.
                Err(error) => tracing::warn!(%error, "ratchet tree upload refused"),
            }
            self.inner.atomic(|cx| tables::tree_sent(cx.c, &locator))?;
        }
        // Sent ones are marked in one transaction, at the end or at the first failure: one
        // that is sent again after a crash carries the same idempotency key, so the
        // transport keeps one copy.
        let mut sent = Vec::new();
        let mut result = Ok(());
        for (id, mailbox, idem, payload) in self.inner.read(tables::welcome_pending)? {
            match self
                .inner
                .io(self.transport.send_welcome(
                    &crate::transport::MailboxId(mailbox),
                    &payload,
                    &IdempotencyKey(idem),
                ))
                .await
            {
                Ok(_) => sent.push(id),
                Err(e) => {
                    result = Err(e.into());
                    break;
                }
            }
        }
        if !sent.is_empty() {
            self.inner.atomic(|cx| {
                sent.iter()
                    .try_for_each(|id| tables::welcome_sent(cx.c, *id))
                    .map_err(Error::from)
            })?;
        }
        result
    }

    /// The group's current mailbox (GROUP-4a).
    pub(crate) fn mailbox(&self, group: &GroupId) -> Result<crate::transport::Mailbox, Error> {
        Ok(self
            .inner
            .read(|c| tables::group_get(c, &group.0))?
            .ok_or(GroupError::UnknownGroup)?
            .current_mailbox())
    }

    /// The last mailbox position this device processed in `group` (STORE-1).
    pub(crate) fn cursor(&self, group: &GroupId) -> Result<u64, Error> {
        Ok(self
            .inner
            .read(|c| tables::group_get(c, &group.0))?
            .ok_or(GroupError::UnknownGroup)?
            .cursor)
    }

    pub(crate) async fn leave(&mut self, group: &GroupId) -> Result<(), Error> {
        let entered = self.enter_group(group).await;
        let r = self.leave_in_group(group).await;
        self.leave_group(entered, group);
        r
    }

    /// [`leave`](Self::leave) with the group's ordering lock held.
    async fn leave_in_group(&mut self, group: &GroupId) -> Result<(), Error> {
        self.sync_group(group).await?;
        // Our queued messages go before we ask to leave (GROUP-11).
        self.deliver(group, None).await?;
        self.inner.atomic(|cx| {
            let mut g = active(cx, group)?;
            let tag = epoch_tag(&g, cx.p.crypto())?;
            let signer = cx.signer(&g)?;
            let own = g.own_leaf_index();
            // GOV-6: the last owner names a successor first (Client::leave_naming).
            let roster = cx.roster(group, &g);
            if let Some(gov) = crate::group::Governance::from_extensions(g.extensions())
                .map_err(GroupError::from)?
            {
                let dids: Vec<Did> = roster
                    .accounts()
                    .filter(|d| crate::group::stays(&g, &roster, d))
                    .cloned()
                    .collect();
                if super::governance::is_last_owner(&gov, &dids, &cx.dev.did) {
                    return Err(GroupError::from(crate::group::GovernanceError::LastOwner).into());
                }
            }
            let siblings: Vec<_> = roster
                .leaves_of(&cx.dev.did)
                .filter(|i| *i != own)
                .collect();
            let own_leave = g
                .leave_group(&cx.p, &*signer)
                .map_err(mls)?
                .tls_serialize_detached()
                .map_err(mls)?;
            let mut out = vec![outer_seal(&g, cx.p.crypto(), &own_leave)?];
            for i in siblings {
                let (m, _) = g.propose_remove_member(&cx.p, &*signer, i).map_err(mls)?;
                let m = m.tls_serialize_detached().map_err(mls)?;
                out.push(outer_seal(&g, cx.p.crypto(), &m)?);
            }
            // Queued with their keys (GROUP-11): a retry after a lost answer stores each
            // once. On StaleEpoch they are dropped: the next sync sees we are still a member
            // and proposes again.
            let row = tables::group_get(cx.c, &group.0)?.ok_or(GroupError::UnknownGroup)?;
            for payload in out {
                let sealed = crate::storage::outbox::Sealed {
                    epoch_tag: tag.0,
                    after: row.cursor,
                    payload,
                    inner: Vec::new(),
                    capability: row.current_mailbox().post_secret,
                };
                let key = IdempotencyKey::random();
                crate::storage::outbox::queue_sealed(cx.c, &group.0, &key.0, &sealed, cx.now())?;
            }
            tables::group_set_status(cx.c, &group.0, GroupStatus::Leaving)?;
            let epoch = g.epoch().as_u64();
            group_state::set_flag(cx.c, &group.0, GroupFlag::LeaveEpoch, epoch)?;
            cx.keep(group, g);
            Ok::<_, Error>(())
        })?;
        self.resend_queued(group).await
    }
}

/// Deletes a group this device just created and whose first commit failed: its MLS state,
/// the leaf signer made for it, and its rows. Nobody else ever held it.
fn discard_new_group(cx: &super::state::Ctx<'_>, group: &GroupId) -> Result<(), Error> {
    let storage_err = |e: &dyn std::fmt::Debug| mls(format!("discarding group: {e:?}"));
    let mut g = cx.load(group)?;
    if g.pending_commit().is_some() {
        g.clear_pending_commit(cx.p.storage())
            .map_err(|e| storage_err(&e))?;
    }
    if let Some(leaf) = g.own_leaf_node() {
        SignatureKeyPair::delete(
            cx.p.storage(),
            leaf.signature_key().as_slice(),
            cx.cs.signature_algorithm(),
        )
        .map_err(|e| storage_err(&e))?;
    }
    g.delete(cx.p.storage()).map_err(|e| storage_err(&e))?;
    cx.forget_roster(group);
    tables::group_delete(cx.c, &group.0)?;
    Ok(())
}

pub(super) fn active(cx: &super::state::Ctx<'_>, group: &GroupId) -> Result<MlsGroup, Error> {
    let row = tables::group_get(cx.c, &group.0)?.ok_or(GroupError::UnknownGroup)?;
    if row.status == GroupStatus::Left {
        return Err(GroupError::NotMember.into());
    }
    let g = cx.load(group)?;
    if !g.is_active() {
        return Err(GroupError::NotMember.into());
    }
    Ok(g)
}
