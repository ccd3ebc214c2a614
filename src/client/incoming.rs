//! What this device receives: Welcomes and group mailboxes, processed in mailbox order, each
//! item in one transaction. A refused item changes nothing but the cursor past it.

use openmls::prelude::{
    tls_codec::{DeserializeBytes as _, Serialize as _},
    KeyPackageBundle, KeyPackageRef, MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent,
    ProcessedWelcome, RatchetTreeIn, Sender,
};
use openmls_traits::storage::StorageProvider as _;
use openmls_traits::OpenMlsProvider as _;

use super::history::{self, ApplyError};
use super::outgoing::{leave_key, Intent};
use super::state::Ctx;
use super::{Error, Event, Message, Session};
use crate::content::{EncodedContent, MessageId};
use crate::credential::AtmlsIdentity;
use crate::group::{
    join_config, mailbox_for, outer_open, staging_error, validate_joined_tree, validate_proposal,
    validate_staged_commit, welcome_mailbox, GroupData, GroupError, GroupId, GroupKind,
    GroupStatus, Member, TreeError, TreeRef, Validation,
};
use crate::identity::{unix_now, Did};
use crate::storage::tables::{self, GroupRow};
use crate::storage::StorageError;
use crate::transport::{
    Delivered, TransportError, MAX_COMMIT_PAYLOAD, MAX_PAYLOAD, MAX_WELCOME_PAYLOAD,
};
use crate::wire::WelcomeEnvelope;

const PAGE: u32 = 100;
/// How long a used single-use KeyPackage's private keys are kept for racing inviters.
pub(crate) const KEY_PACKAGE_GRACE_SECS: u64 = 24 * 3600;
const K_WELCOME_CURSOR: &str = "welcome_cursor";

/// Why processing one item stopped.
enum Failure {
    Refused(GroupError),
    NeedDirectory(Vec<Did>),
    /// The sender's hint names accounts we hold no keys for (LG-14): look them up, then
    /// process the item. Nothing was changed; a failed lookup refuses nothing.
    Prefetch(Vec<Did>),
    Fatal(Error),
}

impl From<Validation> for Failure {
    fn from(v: Validation) -> Self {
        match v {
            Validation::Refused(e) => Failure::Refused(e),
            Validation::NeedDirectory(d) => Failure::NeedDirectory(d),
        }
    }
}

impl From<GroupError> for Failure {
    fn from(e: GroupError) -> Self {
        Failure::Refused(e)
    }
}

impl From<crate::storage::StorageError> for Failure {
    fn from(e: crate::storage::StorageError) -> Self {
        Failure::Fatal(e.into())
    }
}

fn pin_lookup<'a>(cx: &'a Ctx<'a>) -> impl Fn(&Did) -> Option<crate::trust::PinnedKeys> + 'a {
    move |d| crate::storage::trust::pinned_keys(cx.c, d).ok().flatten()
}

fn member_from(cred: &openmls::prelude::Credential) -> Result<Member, GroupError> {
    let id = AtmlsIdentity::from_credential(cred)?;
    Ok(Member {
        did: id.certificate.did,
        installation: id.certificate.installation_key,
    })
}

fn parse_mls(payload: &[u8], limit: usize) -> Result<MlsMessageIn, GroupError> {
    if payload.len() > limit {
        return Err(GroupError::Malformed("oversized message".into()));
    }
    MlsMessageIn::tls_deserialize_exact_bytes(payload)
        .map_err(|e| GroupError::Malformed(e.to_string()))
}

/// Where a pass over a page stopped.
enum Stop {
    Done,
    Removed,
    /// Item `k` needs these accounts' identity keys from the directory.
    NeedDirectory(usize, Vec<Did>),
    /// Item `k`'s hint names these accounts (LG-14).
    Prefetch(usize, Vec<Did>),
}

fn savepoint(cx: &Ctx<'_>, sql: &str) -> Result<(), Error> {
    // One cached statement each (LG-10): these run around every item of a pass.
    for stmt in sql.split("; ") {
        cx.c.prepare_cached(stmt)
            .and_then(|mut s| s.execute([]))
            .map_err(|e| Error::from(crate::storage::StorageError::from(e)))?;
    }
    Ok(())
}

/// Processes one group payload inside a transaction. With `prefetch`, a commit whose sender names accounts we
/// hold no keys for stops before openmls sees it ([`Failure::Prefetch`], LG-14).
fn process_item(
    cx: &Ctx<'_>,
    group: &GroupId,
    seq: u64,
    payload: &[u8],
    prefetch: bool,
) -> Result<Vec<Event>, Failure> {
    // The kind is only known once opened: commits may be larger (LG-13), application
    // messages are held to their own limit below.
    if payload.len() > MAX_COMMIT_PAYLOAD {
        return Err(GroupError::Malformed("oversized message".into()).into());
    }
    let mut g = cx.load(group)?;
    // Every group payload is sealed under the current epoch's outer key (DS-2).
    let opened = outer_open(&g, cx.p.crypto(), payload)?;
    if prefetch {
        let unpinned = crate::group::unpinned(opened.hint.iter().cloned(), &pin_lookup(cx));
        if !unpinned.is_empty() {
            // Nothing changed yet (openmls has not seen the message): the group goes back
            // to the cache as it was, so the retry stages the commit once, in memory.
            cx.keep(group, g);
            return Err(Failure::Prefetch(unpinned));
        }
    }
    let inner = opened.mls;
    let msg = parse_mls(&inner, MAX_COMMIT_PAYLOAD)?;
    let pm = msg
        .try_into_protocol_message()
        .map_err(|e| GroupError::Malformed(e.to_string()))?;
    if pm.group_id().as_slice() != group.0.as_slice() {
        return Err(GroupError::WrongGroup.into());
    }
    let processed = g
        .process_message(&cx.p, pm)
        .map_err(GroupError::from_process)?;
    let Sender::Member(sender_index) = *processed.sender() else {
        return Err(GroupError::NotAllowed("non-member sender").into());
    };
    // A cached roster names the sender's leaf without decoding its credential (LG-8);
    // openmls reports the credential of that same leaf. An application message does not
    // make one: that would decode every leaf of a group just loaded.
    let sender = match cx
        .cached_roster(group, &g)
        .and_then(|r| r.get(sender_index).map(|l| l.member.clone()))
    {
        Some(m) => m,
        None => member_from(processed.credential())?,
    };
    // Nothing from a device its account revoked is accepted once we know (TRUST-12).
    if crate::storage::trust::is_revoked(cx.c, &sender.installation)? {
        return Err(GroupError::NotAllowed("sender device revoked").into());
    }
    let mut events = Vec::new();
    match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(am) => {
            if payload.len() > MAX_PAYLOAD {
                return Err(GroupError::Malformed("oversized message".into()).into());
            }
            let bytes = am.into_bytes();
            let content = EncodedContent::from_bytes(&bytes)
                .map_err(|e| GroupError::Malformed(format!("content: {e}")))?;
            let message = Message {
                group: group.clone(),
                id: MessageId::from_mls_message(&inner),
                seq,
                sender,
                content,
                outgoing: false,
                received: unix_now(),
            };
            let timer = crate::group::disappearing_secs(g.extensions())?;
            let gov = crate::group::Governance::from_extensions(g.extensions())
                .map_err(GroupError::from)?;
            // GOV-8: a post from an account without the Post permission is dropped.
            if let Some(gv) = &gov {
                let decoded = crate::content::Content::decode(&message.content);
                if super::governance::is_post(&decoded)
                    && !gv.allows(&message.sender.did, crate::group::Action::Post)
                {
                    let error = crate::group::GovernanceError::Forbidden {
                        did: message.sender.did.clone(),
                        action: crate::group::Action::Post,
                    };
                    tables::group_set_cursor(cx.c, &group.0, seq)?;
                    return Ok(vec![Event::PostDropped { message, error }]);
                }
            }
            let moderation = super::governance::RoleModeration {
                base: cx.moderation,
                gov,
            };
            // A history-rule violation keeps the decryption (the message was valid MLS) but
            // changes no history (CONTENT-29).
            match history::apply(cx.c, &moderation, &message, &bytes, timer) {
                Ok(()) => events.push(Event::Message(message)),
                Err(ApplyError::Rejected(error)) => {
                    events.push(Event::ContentRejected { message, error })
                }
                Err(ApplyError::Storage(e)) => return Err(e.into()),
            }
        }
        ProcessedMessageContent::ProposalMessage(qp) => {
            validate_proposal(&g, &cx.roster(group, &g), &qp)?;
            g.store_pending_proposal(cx.p.storage(), *qp)
                .map_err(|e| Failure::Fatal(GroupError::Mls(e.to_string()).into()))?;
            events.push(Event::LeaveRequested {
                group: group.clone(),
                did: sender.did,
            });
        }
        ProcessedMessageContent::OwnPendingCommit | ProcessedMessageContent::OwnPrivateMessage => {
            return Err(GroupError::Replay.into());
        }
        ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
            return Err(GroupError::NotAllowed("external join proposals").into());
        }
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            // GOV-4: what the committer was not allowed to do is refused, unmerged, before
            // any directory lookup.
            let roster = cx.roster(group, &g);
            let effect = crate::group::authorize_commit(&g, &roster, &staged, sender_index)?;
            let summary = validate_staged_commit(
                &g,
                &staged,
                sender_index,
                cx.verdicts,
                &pin_lookup(cx),
                unix_now(),
            )?;
            for m in &summary.added {
                if crate::storage::trust::is_revoked(cx.c, &m.installation)? {
                    return Err(GroupError::NotAllowed("commit adds a revoked device").into());
                }
            }
            let timer_change = effect.timer;
            let change = crate::group::RosterChange::of(&staged, sender_index);
            g.merge_staged_commit(&cx.p, *staged)
                .map_err(|e| GroupError::InvalidCommit(e.to_string()))?;
            cx.roster_merged(group, roster, change, &g);
            for change in &effect.changes {
                events.push(Event::GovernanceChanged {
                    group: group.clone(),
                    by: sender.did.clone(),
                    change: change.clone(),
                });
            }
            if let Some(update) = history::update_if_any(
                sender.did.clone(),
                summary.added.clone(),
                summary.removed.clone(),
                timer_change,
                effect.changes,
            ) {
                let timer = crate::group::disappearing_secs(g.extensions())?;
                history::record_update(cx.c, group, &inner, seq, &sender, &update, timer)?;
            }
            if let Some(secs) = timer_change {
                events.push(Event::DisappearingChanged {
                    group: group.clone(),
                    by: sender.did.clone(),
                    secs: (secs > 0).then_some(secs),
                });
            }
            if !summary.added.is_empty() {
                events.push(Event::MembersAdded {
                    group: group.clone(),
                    by: sender.did.clone(),
                    members: summary.added,
                });
            }
            if !summary.removed.is_empty() {
                events.push(Event::MembersRemoved {
                    group: group.clone(),
                    by: sender.did.clone(),
                    members: summary.removed,
                });
            }
            if summary.self_removed {
                tables::group_set_status(cx.c, &group.0, GroupStatus::Left)?;
                // A removed or departed device keeps no group secrets (GROUP-9).
                g.delete(cx.p.storage())
                    .map_err(|e| Failure::Fatal(GroupError::Mls(e.to_string()).into()))?;
                cx.forget_roster(group);
                events.push(Event::Removed {
                    group: group.clone(),
                    by: sender.did,
                });
            }
        }
    }
    tables::group_set_cursor(cx.c, &group.0, seq)?;
    // A group whose state was just deleted (we were removed) must not come back from the
    // cache.
    if !events.iter().any(|e| matches!(e, Event::Removed { .. })) {
        cx.keep(group, g);
    }
    Ok(events)
}

/// The reference to a Welcome's out-of-band tree, if it has one (LG-T-5): `None` for a Welcome
/// that carries its tree inline (or none at all: joining then refuses it).
fn peek_tree_ref(cx: &Ctx<'_>, payload: &[u8]) -> Result<Option<TreeRef>, GroupError> {
    let env = WelcomeEnvelope::from_bytes(payload)?;
    let MlsMessageBodyIn::Welcome(welcome) =
        parse_mls(&env.welcome, MAX_WELCOME_PAYLOAD)?.extract()
    else {
        return Err(GroupError::Malformed("not a Welcome".into()));
    };
    let pw = ProcessedWelcome::new_from_welcome(&cx.p, &join_config(), welcome)
        .map_err(|e| GroupError::Welcome(e.to_string()))?;
    let ext = pw.unverified_group_info().extensions();
    if ext.ratchet_tree().is_some() {
        return Ok(None);
    }
    TreeRef::from_group_info(ext).map_err(GroupError::WelcomeTree)
}

/// Ends a transaction that must change nothing (see [`Session::welcome_tree`]).
enum Rollback {
    Peeked(Result<Option<TreeRef>, GroupError>),
    Storage(StorageError),
}

impl From<StorageError> for Rollback {
    fn from(e: StorageError) -> Self {
        Rollback::Storage(e)
    }
}

/// Joins from one Welcome inside a transaction, with its out-of-band `tree` if it has one.
fn process_welcome(
    cx: &Ctx<'_>,
    payload: &[u8],
    seq: u64,
    tree: Option<&RatchetTreeIn>,
) -> Result<Vec<Event>, Failure> {
    let env = WelcomeEnvelope::from_bytes(payload)?;
    let MlsMessageBodyIn::Welcome(welcome) =
        parse_mls(&env.welcome, MAX_WELCOME_PAYLOAD)?.extract()
    else {
        return Err(GroupError::Malformed("not a Welcome".into()).into());
    };
    let werr = |e: &dyn std::fmt::Display| GroupError::Welcome(e.to_string());
    // openmls deletes a single-use package as soon as it reads the Welcome; keep a copy so it
    // can be kept for a grace period: a second inviter who raced for the same package can
    // still be joined (KP-6). Reading it must come first.
    let mut stored: Vec<(KeyPackageRef, KeyPackageBundle)> = Vec::new();
    for s in welcome.secrets() {
        let r = s.new_member();
        if let Some(b) = cx.p.storage().key_package(&r).map_err(|e| werr(&e))? {
            stored.push((r, b));
        }
    }
    let pw =
        ProcessedWelcome::new_from_welcome(&cx.p, &join_config(), welcome).map_err(|e| werr(&e))?;
    let unpinned = crate::group::unpinned_in_welcome(&pw, tree, &pin_lookup(cx));
    if !unpinned.is_empty() {
        return Err(Failure::NeedDirectory(unpinned));
    }
    let used = pw
        .own_key_package()
        .map(|kp| kp.hash_ref(cx.p.crypto()).map(|r| (r, kp.last_resort())))
        .transpose()
        .map_err(|e| werr(&e))?;
    let bundle: Option<KeyPackageBundle> = match &used {
        Some((r, false)) => stored.into_iter().find(|(s, _)| s == r).map(|(_, b)| b),
        _ => None,
    };
    // openmls checks the tree against the GroupInfo's tree hash (LG-T-5).
    let out_of_band = tree.is_some();
    let staged = pw
        .into_staged_welcome(&cx.p, tree.cloned())
        .map_err(|e| staging_error(&e, out_of_band))?;
    let by = member_from(staged.welcome_sender().map_err(|e| werr(&e))?.credential())?.did;
    let gid = GroupId(staged.group_context().group_id().as_slice().to_vec());
    match tables::group_get(cx.c, &gid.0)? {
        // Re-added after leaving or being removed (e.g. by an invite link): a fresh start.
        Some(row) if row.status == GroupStatus::Left => {
            let mls_id = openmls::prelude::GroupId::from_slice(&gid.0);
            if let Ok(Some(mut old)) = openmls::prelude::MlsGroup::load(cx.p.storage(), &mls_id) {
                old.delete(cx.p.storage()).map_err(|e| werr(&e))?;
            }
        }
        Some(_) => {
            return Err(GroupError::Welcome("already joined this group".into()).into());
        }
        None => {}
    }
    let g = staged.into_group(&cx.p).map_err(|e| werr(&e))?;
    validate_joined_tree(&g, cx.verdicts, &pin_lookup(cx), unix_now())?;
    let data = GroupData::from_extensions(g.extensions())?;
    // Roles, policies, metadata and invites must decode (GOV-3).
    crate::group::check_context(g.extensions())?;
    // A malformed disappearing timer would make every later message unreadable (CONTENT-28).
    crate::group::disappearing_secs(g.extensions())?;
    let me = &cx.dev.did;
    let dm_peer = match data.kind {
        GroupKind::Dm => {
            if !data.dm_members.contains(me) {
                return Err(GroupError::Welcome("DM does not name us".into()).into());
            }
            data.dm_members.iter().find(|d| *d != me).cloned()
        }
        GroupKind::Group => None,
    };
    tables::group_put(
        cx.c,
        &GroupRow {
            group_id: gid.0.clone(),
            mailbox: mailbox_for(&gid.0).id.0,
            cursor: env.commit_seq,
            kind: data.kind,
            dm_peer,
            status: GroupStatus::Active,
            created: unix_now(),
        },
    )?;
    if let (Some((r, _)), Some(b)) = (&used, &bundle) {
        cx.p.storage()
            .write_key_package(r, b)
            .map_err(|e| werr(&e))?;
        let key = r.tls_serialize_detached().map_err(|e| werr(&e))?;
        tables::kp_grace_add(cx.c, &key, unix_now() + KEY_PACKAGE_GRACE_SECS)?;
    }
    if let Some((kp_ref, last_resort)) = used {
        if last_resort {
            // A last-resort leaf key may be shared with other groups: rotate it here, and
            // replace the package itself; its private keys stay for the grace period so other
            // inviters who already picked it can still be joined (KP-8).
            tables::account_set_u64(cx.c, &format!("needs_update:{gid}"), 1)?;
            let key = kp_ref.tls_serialize_detached().map_err(|e| werr(&e))?;
            tables::kp_grace_add(cx.c, &key, unix_now() + KEY_PACKAGE_GRACE_SECS)?;
        }
        tables::kp_retire(cx.c, kp_ref.as_slice())?;
    }
    tables::account_set_u64(cx.c, K_WELCOME_CURSOR, seq)?;
    cx.keep(&gid, g);
    Ok(vec![Event::Joined {
        group: gid,
        kind: data.kind,
        by,
    }])
}

fn unknown_key(dids: &[Did]) -> GroupError {
    match dids.first() {
        Some(d) => crate::credential::CredentialError::UnknownIdentityKey(d.clone()).into(),
        None => GroupError::Mls("identity keys still unknown after directory lookup".into()),
    }
}

impl Session<'_> {
    /// Fetches and opens the out-of-band tree a Welcome points to (LG-T-5). `Err` for a
    /// transient failure (the Welcome stays unprocessed, to be retried by the next sync);
    /// `Ok(Err)` for a refusal. Changes nothing: openmls deletes a used KeyPackage while it
    /// decrypts a Welcome, so reading the reference runs in a transaction rolled back.
    async fn welcome_tree(
        &mut self,
        payload: &[u8],
    ) -> Result<Result<Option<RatchetTreeIn>, GroupError>, Error> {
        let peeked = match self
            .inner
            .atomic(|cx| Err::<(), _>(Rollback::Peeked(peek_tree_ref(cx, payload))))
        {
            Err(Rollback::Peeked(p)) => p,
            Err(Rollback::Storage(e)) => return Err(e.into()),
            Ok(()) => Ok(None),
        };
        let r = match peeked {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(e)),
        };
        let blob = match self.transport.fetch_tree(&r.locator).await {
            Ok(b) => b,
            Err(e) if e.is_retryable() => return Err(e.into()),
            Err(TransportError::NotFound) => {
                return Ok(Err(GroupError::WelcomeTree(TreeError::Missing)))
            }
            Err(TransportError::PayloadTooLarge { size, limit }) => {
                return Ok(Err(GroupError::WelcomeTree(TreeError::TooLarge {
                    size,
                    limit,
                })))
            }
            Err(e) => {
                return Ok(Err(GroupError::WelcomeTree(TreeError::Fetch(
                    e.to_string(),
                ))))
            }
        };
        Ok(r.open(&blob).map(Some).map_err(GroupError::WelcomeTree))
    }

    /// Runs `step` atomically; fetches unknown identity keys and retries once if asked.
    async fn settle(
        &mut self,
        step: impl Fn(&Ctx<'_>) -> Result<Vec<Event>, Failure>,
    ) -> Result<Result<Vec<Event>, GroupError>, Error> {
        let mut looked_up = false;
        loop {
            match self.inner.atomic(|cx| step(cx)) {
                Ok(ev) => return Ok(Ok(ev)),
                Err(Failure::Refused(e)) => return Ok(Err(e)),
                Err(Failure::Fatal(e)) => return Err(e),
                // Steps run here do not prefetch; were one to, its lookup is what a
                // NeedDirectory would do, and the next round must not ask again.
                Err(Failure::Prefetch(dids)) => {
                    if looked_up {
                        return Ok(Err(unknown_key(&dids)));
                    }
                    looked_up = true;
                    self.prefetch(&dids).await;
                }
                // The directory was asked and the leaves still carry keys we do not hold for
                // their accounts (an unendorsed or unknown key): refused (CRED-7, TRUST-5).
                Err(Failure::NeedDirectory(dids)) if looked_up => {
                    return Ok(Err(unknown_key(&dids)))
                }
                Err(Failure::NeedDirectory(dids)) => {
                    looked_up = true;
                    match self.pin_from_directory(&dids).await {
                        Ok(()) => {}
                        Err(Error::Credential(e)) => return Ok(Err(e.into())),
                        // An unendorsed key raised its warning; the message is refused.
                        Err(Error::Trust(_)) | Err(Error::Identity(_)) => {
                            return Ok(Err(unknown_key(&dids)))
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// Processes one fetched page of a group's mailbox in one transaction (LG-4): one durable
    /// write per pass however many messages it holds. Each item runs inside a savepoint, so a
    /// refused item is undone alone and only the cursor moves past it (STORE-1). A crash or
    /// a failed commit undoes the whole pass: nothing is lost (the cursor did not move either)
    /// and nothing is processed twice. Returns the events and whether we were removed.
    async fn process_page(&mut self, group: &GroupId, items: &[&Delivered]) -> Result<bool, Error> {
        let mut start = 0;
        // The item whose identity keys were just fetched: asking again would not help.
        let mut asked: Option<usize> = None;
        // The item whose hint was just looked up (LG-14): processed without it next time.
        let mut hinted: Option<usize> = None;
        while start < items.len() {
            let retried = asked;
            let prefetched = hinted;
            let (stop, mut ev) = self.inner.atomic(|cx| {
                let mut ev = Vec::new();
                for (k, item) in items.iter().enumerate().skip(start) {
                    let seq = item.seq;
                    if tables::own_post_take(cx.c, &group.0, seq)? {
                        tables::group_set_cursor(cx.c, &group.0, seq)?;
                        continue;
                    }
                    savepoint(cx, "SAVEPOINT atmls_item")?;
                    let prefetch = prefetched != Some(k) && retried != Some(k);
                    let error = match process_item(cx, group, seq, &item.payload, prefetch) {
                        Ok(e) => {
                            savepoint(cx, "RELEASE atmls_item")?;
                            let removed = e.iter().any(|e| matches!(e, Event::Removed { .. }));
                            ev.extend(e);
                            if removed {
                                return Ok((Stop::Removed, ev));
                            }
                            continue;
                        }
                        Err(Failure::Fatal(e)) => return Err(e),
                        Err(Failure::Refused(e)) => e,
                        Err(Failure::Prefetch(dids)) => {
                            savepoint(cx, "ROLLBACK TO atmls_item; RELEASE atmls_item")?;
                            return Ok((Stop::Prefetch(k, dids), ev));
                        }
                        Err(Failure::NeedDirectory(dids)) if retried != Some(k) => {
                            savepoint(cx, "ROLLBACK TO atmls_item; RELEASE atmls_item")?;
                            return Ok((Stop::NeedDirectory(k, dids), ev));
                        }
                        // Looked up and still not a key we hold for the account (CRED-7,
                        // TRUST-5).
                        Err(Failure::NeedDirectory(dids)) => unknown_key(&dids),
                    };
                    tracing::debug!(%error, seq, "refused group message");
                    savepoint(cx, "ROLLBACK TO atmls_item; RELEASE atmls_item")?;
                    tables::group_set_cursor(cx.c, &group.0, seq)?;
                    ev.push(Event::Refused {
                        group: Some(group.clone()),
                        seq,
                        error,
                    });
                }
                Ok::<_, Error>((Stop::Done, ev))
            })?;
            // Committed: queued at once, so a later failure in this pass loses none.
            self.inner.deferred_events.append(&mut ev);
            match stop {
                Stop::Done => break,
                Stop::Removed => return Ok(true),
                Stop::Prefetch(k, dids) => {
                    start = k;
                    self.prefetch(&dids).await;
                    hinted = Some(k);
                }
                Stop::NeedDirectory(k, dids) => {
                    // Network calls never run inside a transaction: what came before this
                    // item is committed, the item is retried once its keys are pinned.
                    start = k;
                    match self.pin_from_directory(&dids).await {
                        Ok(()) => asked = Some(k),
                        // The directory answered, and the answer refuses the item: a bad
                        // credential, or an unendorsed key (its warning is raised).
                        Err(e @ (Error::Credential(_) | Error::Trust(_) | Error::Identity(_))) => {
                            let error = match e {
                                Error::Credential(c) => c.into(),
                                _ => unknown_key(&dids),
                            };
                            let seq = items.get(k).map_or(0, |i| i.seq);
                            self.inner
                                .atomic(|cx| tables::group_set_cursor(cx.c, &group.0, seq))?;
                            self.inner.deferred_events.push(Event::Refused {
                                group: Some(group.clone()),
                                seq,
                                error,
                            });
                            start = k + 1;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(false)
    }

    /// Processes raw bytes for a group without touching the cursor; errors change nothing.
    pub(crate) async fn process_raw(
        &mut self,
        group: &GroupId,
        payload: &[u8],
    ) -> Result<Vec<Event>, Error> {
        let cursor = self
            .inner
            .read(|c| tables::group_get(c, &group.0))?
            .ok_or(GroupError::UnknownGroup)?
            .cursor;
        let r = self
            // process_item rewrites the cursor with its current value: it does not move.
            .settle(|cx| process_item(cx, group, cursor, payload, false))
            .await?;
        Ok(r?)
    }

    /// Fetches and processes a group's mailbox after settling any outgoing commit.
    /// Settles any outgoing commit, then processes the group's mailbox. Events go to the
    /// queue the next `sync` hands out: none is lost if a later step fails.
    pub(crate) async fn sync_group(&mut self, group: &GroupId) -> Result<(), Error> {
        self.resolve_outbox(group).await?;
        self.sync_group_until(group, u64::MAX).await
    }

    /// Processes the group's mailbox up to position `until` (events queued as in
    /// `sync_group`).
    pub(crate) async fn sync_group_until(
        &mut self,
        group: &GroupId,
        until: u64,
    ) -> Result<(), Error> {
        let mailbox = mailbox_for(&group.0).id;
        loop {
            let row = self
                .inner
                .read(|c| tables::group_get(c, &group.0))?
                .ok_or(GroupError::UnknownGroup)?;
            if row.status == GroupStatus::Left || row.cursor >= until {
                return Ok(());
            }
            let page = self.transport.fetch(&mailbox, row.cursor, PAGE).await?;
            let items: Vec<&Delivered> = page.items.iter().filter(|i| i.seq <= until).collect();
            let removed = self.process_page(group, &items).await?;
            if removed {
                // Nothing after our removal is for us.
                return Ok(());
            }
            if !page.more || page.items.last().map(|i| i.seq >= until).unwrap_or(true) {
                return Ok(());
            }
        }
    }

    async fn sync_welcomes(&mut self) -> Result<(), Error> {
        let mailbox = welcome_mailbox(&self.inner.device.installation.public());
        loop {
            let cursor = self
                .inner
                .read(|c| tables::account_u64(c, K_WELCOME_CURSOR))?;
            let page = self.transport.fetch(&mailbox, cursor, PAGE).await?;
            for item in &page.items {
                let joined = match self.welcome_tree(&item.payload).await? {
                    Ok(tree) => {
                        self.settle(|cx| {
                            process_welcome(cx, &item.payload, item.seq, tree.as_ref())
                        })
                        .await?
                    }
                    Err(e) => Err(e),
                };
                match joined {
                    Ok(ev) => self.inner.deferred_events.extend(ev),
                    Err(error) => {
                        // A Welcome we cannot process keeps its KeyPackage (KP-6).
                        self.inner.atomic(|cx| {
                            tables::account_set_u64(cx.c, K_WELCOME_CURSOR, item.seq)
                        })?;
                        self.inner.deferred_events.push(Event::Refused {
                            group: None,
                            seq: item.seq,
                            error,
                        });
                    }
                }
            }
            if !page.more {
                return Ok(());
            }
        }
    }

    /// Welcomes, then every group; then commits leave requests, re-proposes our own leave if it
    /// was dropped, rotates last-resort leaves, and maintains KeyPackages.
    pub(crate) async fn sync_all(&mut self) -> Result<Vec<Event>, Error> {
        // Every step queues its events as it goes, so that an error part-way (a transport
        // failure) loses none: they come with the next sync.
        self.sync_welcomes().await?;
        let groups = self.inner.read(tables::groups_all)?;
        for row in groups.iter().filter(|r| r.status != GroupStatus::Left) {
            self.sync_group(&GroupId(row.group_id.clone())).await?;
        }
        for row in self.inner.read(tables::groups_all)? {
            let gid = GroupId(row.group_id.clone());
            match row.status {
                GroupStatus::Active => {
                    // Read-only: no write transaction (LG-10).
                    let has_pending = self
                        .inner
                        .ctx_read(|cx| Ok(cx.peek(&gid, |g| g.has_pending_proposals())?))?;
                    if has_pending {
                        match self.run_commit(&gid, Intent::Pending).await {
                            // Someone else's role allows it; not ours (GOV-4).
                            Err(Error::Group(GroupError::Governance(e))) => {
                                tracing::debug!(error = %e, "cannot commit pending proposals");
                            }
                            r => r?,
                        }
                    }
                    let key = format!("needs_update:{gid}");
                    if self.inner.read(|c| tables::account_u64(c, &key))? == 1 {
                        self.run_commit(&gid, Intent::Update).await?;
                        self.inner
                            .atomic(|cx| tables::account_set_u64(cx.c, &key, 0))?;
                    }
                }
                GroupStatus::Leaving => {
                    let asked = self
                        .inner
                        .read(|c| tables::account_u64(c, &leave_key(&gid)))?;
                    let epoch = self
                        .inner
                        .ctx_read(|cx| Ok(cx.peek(&gid, |g| g.epoch().as_u64())?))?;
                    if epoch > asked {
                        self.inner.atomic(|cx| {
                            tables::group_set_status(cx.c, &gid.0, GroupStatus::Active)
                        })?;
                        self.leave(&gid).await?;
                    }
                }
                GroupStatus::Left => {}
            }
        }
        // Join requests through invite links and handles (INV-4).
        let ev = self.serve_invites().await?;
        self.inner.deferred_events.extend(ev);
        self.maintain_key_packages().await?;
        self.flush_welcomes().await?;
        // With the events raised while committing above and trust events from directory
        // lookups (TRUST-1, TRUST-3).
        Ok(std::mem::take(&mut self.inner.deferred_events))
    }
}
