//! The durable outbox of application messages and leave proposals (spec/group.md GROUP-11):
//! a message is queued, with its idempotency key, before the first attempt; every attempt —
//! after a lost answer, a crash, a restart — sends the same ciphertext under the same key; a
//! ciphertext the transport refused as stale is replaced by one of the new epoch under a new
//! key; the row goes once the transport accepted it.

use openmls::prelude::{tls_codec::Serialize as _, MlsGroup};
use openmls_traits::OpenMlsProvider as _;

use super::outgoing::{active, MAX_COMMIT_ATTEMPTS};
use super::state::Ctx;
use super::{history, Client, Error, Event, Message, Session};
use crate::content::{Content, EncodedContent, MessageId};
use crate::group::{epoch_tag, mailbox_for, outer_seal, GroupError, GroupId, GroupStatus, Member};
use crate::storage::outbox::{self, QueueState, Queued, QueuedKind, Sealed};
use crate::storage::tables;
use crate::transport::{EpochTag, IdempotencyKey, SendOutcome};

fn mls(e: impl std::fmt::Display) -> GroupError {
    GroupError::Mls(e.to_string())
}

/// The history and governance rules an outgoing message must pass (CONTENT-29, GOV-8): what
/// other members would drop is not sent.
fn check_sendable(
    cx: &Ctx<'_>,
    group: &GroupId,
    g: &MlsGroup,
    decoded: &Content,
) -> Result<(), Error> {
    let gov =
        crate::group::Governance::from_extensions(g.extensions()).map_err(GroupError::from)?;
    if let Some(gv) = &gov {
        if super::governance::is_post(decoded) {
            gv.require(&cx.dev.did, crate::group::Action::Post)
                .map_err(GroupError::from)?;
        }
    }
    let moderation = super::governance::RoleModeration {
        base: cx.moderation,
        gov,
    };
    history::validate(cx.c, &moderation, group, &cx.dev.did, decoded, cx.now())?;
    Ok(())
}

/// What encrypting a queued message came to.
enum Sealing {
    Sealed(Sealed),
    /// Refused now, by a history or governance rule, or because we are no longer a member:
    /// the row is gone.
    Refused(Error),
    /// Proposals are pending: openmls encrypts nothing until they are committed.
    Proposals,
}

/// Encrypts a queued message in the group's current epoch.
fn seal(cx: &Ctx<'_>, group: &GroupId, row: &Queued) -> Result<Sealing, Error> {
    let attempt = || -> Result<Option<Sealed>, Error> {
        let QueuedKind::Content {
            bytes: content,
            checked,
        } = &row.kind
        else {
            let stale = "a stale proposal is not re-encrypted";
            return Err(GroupError::Malformed(stale.into()).into());
        };
        let mut g = active(cx, group)?;
        if g.has_pending_proposals() {
            cx.keep(group, g);
            return Ok(None);
        }
        if *checked {
            let decoded = Content::decode(&EncodedContent::from_bytes(content)?);
            check_sendable(cx, group, &g, &decoded)?;
        }
        let row = tables::group_get(cx.c, &group.0)?.ok_or(GroupError::UnknownGroup)?;
        let tag = epoch_tag(&g, cx.p.crypto())?;
        let signer = cx.signer(&g)?;
        let msg = g.create_message(&cx.p, &*signer, content).map_err(mls)?;
        let inner = msg.tls_serialize_detached().map_err(mls)?;
        let payload = outer_seal(&g, cx.p.crypto(), &inner)?;
        cx.keep(group, g);
        Ok(Some(Sealed {
            epoch_tag: tag.0,
            after: row.cursor,
            payload,
            inner,
            capability: row.current_mailbox().post_secret,
        }))
    };
    match attempt() {
        Ok(Some(s)) => {
            outbox::set_sealed(cx.c, row.id, &s)?;
            Ok(Sealing::Sealed(s))
        }
        Ok(None) => Ok(Sealing::Proposals),
        Err(Error::Storage(e)) => Err(Error::Storage(e)),
        Err(e) => {
            outbox::delete(cx.c, row.id)?;
            Ok(Sealing::Refused(e))
        }
    }
}

/// What one pass over a group's queue ended with.
enum Pumped {
    /// The queue is empty, or the item asked for was accepted (its message, for content).
    Done(Option<Box<Message>>),
    /// An item's epoch was committed away: catch up, then go on.
    Stale,
    /// The oldest item is not encrypted and this pass does not encrypt.
    Unsealed,
    /// The oldest item is not encrypted and proposals are pending: openmls encrypts nothing
    /// until they are committed.
    Proposals,
}

impl Session<'_> {
    /// Queues `content` for `group` and delivers it (GROUP-11); `check` applies the history
    /// rules first (CONTENT-29), which only a test impersonating a modified client turns off.
    /// Messages queued earlier in the group go first. Returns the message once the transport
    /// accepted it. A refusal (a history or governance rule, not a member, a payload the
    /// transport refuses for good) removes it from the queue; any other failure leaves it
    /// queued for the next sync, which raises [`Event::Sent`] when it is delivered.
    pub(crate) async fn send(
        &mut self,
        group: &GroupId,
        content: &EncodedContent,
        check: bool,
    ) -> Result<Message, Error> {
        let entered = self.enter_group(group).await;
        let r = self.send_in_group(group, content, check).await;
        self.leave_group(entered, group);
        r
    }

    /// [`send`](Self::send) with the group's ordering lock held.
    async fn send_in_group(
        &mut self,
        group: &GroupId,
        content: &EncodedContent,
        check: bool,
    ) -> Result<Message, Error> {
        let bytes = content.to_bytes()?;
        let decoded = Content::decode(content);
        let id = self.inner.atomic(|cx| {
            let g = active(cx, group)?;
            if check {
                check_sendable(cx, group, &g, &decoded)?;
            }
            super::consent::before_send(cx, group, &decoded)?;
            cx.keep(group, g);
            let key = IdempotencyKey::random();
            Ok::<_, Error>(outbox::queue_content(
                cx.c,
                &group.0,
                &bytes,
                check,
                &key.0,
                cx.now(),
            )?)
        })?;
        self.deliver(group, Some(id))
            .await?
            .ok_or(Error::InvalidArgument("message vanished from the outbox"))
    }

    /// Delivers `group`'s queue in order, encrypting what is not yet encrypted in the current
    /// epoch and catching up after a stale epoch (at most [`MAX_COMMIT_ATTEMPTS`] times).
    /// With `mine`, stops once that item was accepted and returns its message.
    pub(crate) async fn deliver(
        &mut self,
        group: &GroupId,
        mine: Option<i64>,
    ) -> Result<Option<Message>, Error> {
        let entered = self.enter_group(group).await;
        let r = self.deliver_in_group(group, mine).await;
        self.leave_group(entered, group);
        r
    }

    /// [`deliver`](Self::deliver) with the group's ordering lock held.
    async fn deliver_in_group(
        &mut self,
        group: &GroupId,
        mine: Option<i64>,
    ) -> Result<Option<Message>, Error> {
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            // A pending commit first; items already encrypted go again under their key.
            self.resolve_outbox(group).await?;
            match self.pump(group, mine, true).await? {
                Pumped::Done(m) => return Ok(m.map(|m| *m)),
                // (`Unsealed` only ends a pass that does not encrypt.)
                Pumped::Stale | Pumped::Unsealed => self.sync_group(group).await?,
                // Read on the way (e.g. a leave request): committed first (GROUP-9), unless
                // our role does not allow it; then the queue waits for a member whose does.
                Pumped::Proposals => {
                    if !self.commit_pending(group).await? {
                        return match mine {
                            Some(_) => Err(GroupError::AwaitingCommit.into()),
                            None => Ok(None),
                        };
                    }
                }
            }
        }
        Err(Error::Conflict)
    }

    /// Sends again what is already encrypted in `group`'s queue, in order, each under its own
    /// key (TRANSPORT-2): an answer lost before a crash or a failure is answered again, and
    /// the message is stored once. Runs before the mailbox is read, so our own stored message
    /// is recognised (its position recorded) rather than refused.
    pub(crate) async fn resend_queued(&mut self, group: &GroupId) -> Result<(), Error> {
        let entered = self.enter_group(group).await;
        let r = self.resend_queued_in_group(group).await;
        self.leave_group(entered, group);
        r
    }

    /// [`resend_queued`](Self::resend_queued) with the group's ordering lock held.
    async fn resend_queued_in_group(&mut self, group: &GroupId) -> Result<(), Error> {
        self.pump(group, None, false).await.map(|_| ())
    }

    /// One pass over `group`'s queue, oldest first: each item is sent and settled; `seal_new`
    /// encrypts items that are not encrypted yet. Stops at `mine` once accepted, at a stale
    /// epoch, or at the first failure that may pass (the item stays queued).
    async fn pump(
        &mut self,
        group: &GroupId,
        mine: Option<i64>,
        seal_new: bool,
    ) -> Result<Pumped, Error> {
        loop {
            if let Some(id) = mine {
                // Settled by an earlier pass: its message was raised as `Sent`.
                if !self.inner.read(|c| outbox::contains(c, id))? {
                    return Ok(Pumped::Done(None));
                }
            }
            let Some(row) = self.inner.read(|c| outbox::first(c, &group.0))? else {
                return Ok(Pumped::Done(None));
            };
            let sealed = match &row.state {
                QueueState::Sealed(s) => s.clone(),
                QueueState::ToSeal if !seal_new => return Ok(Pumped::Unsealed),
                QueueState::ToSeal => match self.inner.atomic(|cx| seal(cx, group, &row))? {
                    Sealing::Sealed(s) => s,
                    Sealing::Proposals => return Ok(Pumped::Proposals),
                    Sealing::Refused(e) => {
                        if Some(row.id) == mine {
                            return Err(e);
                        }
                        tracing::warn!(error = %e, "queued message dropped");
                        continue;
                    }
                },
            };
            // The mailbox it was sealed for: if the group moved since (GROUP-4a), the commit
            // that moved it is there after our cursor, so it is refused as stale and sealed
            // again for the new one.
            let mailbox = match sealed.capability {
                Some(cap) => crate::transport::Mailbox::from_capability(cap),
                None => mailbox_for(&group.0),
            };
            let sent = self
                .inner
                .io(self.transport.send_message(
                    &mailbox,
                    &EpochTag(sealed.epoch_tag),
                    sealed.after,
                    &sealed.payload,
                    &IdempotencyKey(row.idem),
                ))
                .await;
            match sent {
                Ok(SendOutcome::Accepted { seq }) => {
                    let message = self.settle_sent(group, &row, &sealed, seq)?;
                    if Some(row.id) == mine {
                        return Ok(Pumped::Done(message.map(Box::new)));
                    }
                    if let Some(m) = message {
                        self.inner.deferred_events.push(Event::Sent(m));
                    }
                }
                // Not stored (a stored key is answered as stored, TRANSPORT-2), nor is anything
                // else of ours from that epoch: the content is encrypted again in the new
                // epoch under a new key. A proposal is not: the leave chore proposes again
                // (GROUP-9).
                Ok(SendOutcome::StaleEpoch) => {
                    self.inner.atomic(|cx| {
                        for (id, content) in outbox::sealed_in(cx.c, &group.0, &sealed.epoch_tag)? {
                            match content {
                                true => outbox::unseal(cx.c, id, &IdempotencyKey::random().0)?,
                                false => outbox::delete(cx.c, id)?,
                            }
                        }
                        Ok::<_, Error>(())
                    })?;
                    return Ok(Pumped::Stale);
                }
                Err(e) if !e.is_retryable() => {
                    self.inner.atomic(|cx| outbox::delete(cx.c, row.id))?;
                    if Some(row.id) == mine {
                        return Err(e.into());
                    }
                    tracing::warn!(error = %e, "queued message refused by the transport");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Records an accepted item in one transaction: its position (skipped when it comes back
    /// in a fetch), the message in the history, the row deleted.
    fn settle_sent(
        &mut self,
        group: &GroupId,
        row: &Queued,
        sealed: &Sealed,
        seq: u64,
    ) -> Result<Option<Message>, Error> {
        let me = Member {
            did: self.inner.device.did.clone(),
            installation: self.inner.device.installation.public(),
        };
        let now = self.inner.now();
        self.inner.atomic(|cx| {
            tables::own_post_add(cx.c, &group.0, seq)?;
            outbox::delete(cx.c, row.id)?;
            let QueuedKind::Content { bytes, checked } = &row.kind else {
                return Ok(None);
            };
            let message = Message {
                group: group.clone(),
                // The id covers the MLS message every member decrypts the outer layer to
                // (CONTENT-18), not the sealed transport payload.
                id: MessageId::from_mls_message(&sealed.inner),
                seq,
                sender: me.clone(),
                content: EncodedContent::from_bytes(bytes)?,
                outgoing: true,
                received: now,
            };
            // The group as it is now (it may be gone: we were removed after the message).
            let (gov, timer) = match cx.load(group) {
                Ok(g) => {
                    let gov = crate::group::Governance::from_extensions(g.extensions())
                        .ok()
                        .flatten();
                    let timer = crate::group::disappearing_secs(g.extensions())
                        .ok()
                        .flatten();
                    cx.keep(group, g);
                    (gov, timer)
                }
                Err(_) => (None, None),
            };
            let moderation = super::governance::RoleModeration {
                base: cx.moderation,
                gov,
            };
            match history::apply(cx.c, &moderation, &message, bytes, timer) {
                // Stored by the transport all the same: recorded as sent, not kept.
                Err(history::ApplyError::Rejected(e)) => {
                    if *checked {
                        tracing::warn!(error = %e, "sent message not kept in the history");
                    }
                }
                r => r?,
            }
            Ok::<_, Error>(Some(message))
        })
    }

    /// The sync chore (GROUP-11): delivers what is still queued in every group (items
    /// encrypted before a crash were sent again when the group was read). Queues of groups
    /// we left are dropped.
    pub(crate) async fn flush_outbox(&mut self) -> Result<(), Error> {
        let mut first = None;
        for gid in self.inner.read(outbox::groups)? {
            let group = GroupId(gid);
            let left = self
                .inner
                .read(|c| tables::group_get(c, &group.0))?
                .is_none_or(|r| r.status == GroupStatus::Left);
            if left {
                self.inner.atomic(|cx| {
                    while let Some(row) = outbox::first(cx.c, &group.0)? {
                        outbox::delete(cx.c, row.id)?;
                    }
                    Ok::<_, Error>(())
                })?;
                continue;
            }
            if let Err(e) = self.deliver(&group, None).await {
                tracing::warn!(error = %e, "queued messages not delivered");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Client {
    /// Behind [`Conversation::queued_messages`](super::Conversation::queued_messages).
    pub(crate) async fn queued_messages(
        &self,
        group: &GroupId,
    ) -> Result<Vec<EncodedContent>, Error> {
        let s = self.session().await;
        s.inner
            .read(|c| outbox::contents(c, &group.0))?
            .iter()
            .map(|b| EncodedContent::from_bytes(b).map_err(Error::from))
            .collect()
    }
}
