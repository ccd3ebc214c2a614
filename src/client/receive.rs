//! One group payload, received (spec/agreement.md): opened, then handled by kind. A commit is
//! merged exactly when the agreement checks pass (AGREE-1 … AGREE-5), which read only the
//! group and the commit; the trust checks (spec/trust.md TRUST-20 …) run after the merge and
//! only raise events. An application message is the one thing a trust verdict may hold back,
//! since holding it changes no group state.

use openmls::prelude::{
    tls_codec::DeserializeBytes as _, LeafNodeIndex, MlsGroup, MlsMessageIn,
    ProcessedMessageContent, QueuedProposal, Sender, StagedCommit,
};
use openmls_traits::OpenMlsProvider as _;

use super::history::{self, ApplyError};
use super::state::Ctx;
use super::verify;
use super::{Error, Event, Message};
use crate::content::{EncodedContent, MessageId};
use crate::credential::AtmlsIdentity;
use crate::group::{
    check_commit, outer_open, validate_proposal, GroupError, GroupId, GroupStatus, Member,
};
use crate::identity::PublicKey;
use crate::storage::consent;
use crate::storage::tables;
use crate::transport::{MAX_COMMIT_PAYLOAD, MAX_PAYLOAD};

/// Why processing one item stopped: refused alone (the cursor moves past it), or a local
/// failure that undoes the whole pass (nothing is lost, the item comes again).
pub(super) enum Failure {
    Refused(GroupError),
    Fatal(Error),
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

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Group(g) => Failure::Refused(g),
            e => Failure::Fatal(e),
        }
    }
}

fn fatal_mls(e: impl std::fmt::Debug) -> Failure {
    Failure::Fatal(GroupError::Mls(format!("{e:?}")).into())
}

pub(super) fn parse_mls(payload: &[u8], limit: usize) -> Result<MlsMessageIn, GroupError> {
    if payload.len() > limit {
        return Err(GroupError::Malformed("oversized message".into()));
    }
    MlsMessageIn::tls_deserialize_exact_bytes(payload)
        .map_err(|e| GroupError::Malformed(e.to_string()))
}

pub(super) fn member_from(
    cred: &openmls::prelude::Credential,
) -> Result<(Member, PublicKey), GroupError> {
    let c = AtmlsIdentity::from_credential(cred)?.certificate;
    Ok((
        Member {
            did: c.did,
            installation: c.installation_key,
        },
        c.identity_key,
    ))
}

/// What processing one item came to.
pub(super) struct Processed {
    pub events: Vec<Event>,
    /// A merged commit moved the group to a new mailbox (GROUP-4a): the rest of the old one
    /// is not read.
    pub moved: bool,
}

/// Processes one group payload inside the caller's transaction (savepoint). Nothing here
/// waits for the network: no directory lookup happens before a commit is merged (AGREE-2).
pub(super) fn process_item(
    cx: &Ctx<'_>,
    group: &GroupId,
    seq: u64,
    payload: &[u8],
) -> Result<Processed, Failure> {
    // The kind is only known once opened: commits may be larger (LG-13), application
    // messages are held to their own limit below.
    if payload.len() > MAX_COMMIT_PAYLOAD {
        return Err(GroupError::Malformed("oversized message".into()).into());
    }
    if payload.first() == Some(&crate::group::RESYNC_VERSION) {
        return Ok(Processed {
            events: resync_request(cx, group, seq, payload)?,
            moved: false,
        });
    }
    let mut g = cx.load(group)?;
    // Every group payload is sealed under the current epoch's outer key (DS-2). The sender's
    // hint (LG-14) is not used: nothing is looked up before the agreement checks pass.
    let inner = outer_open(&g, cx.p.crypto(), payload)?.mls;
    let pm = parse_mls(&inner, MAX_COMMIT_PAYLOAD)?
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
    let (sender, sender_key) = match cx.cached_roster(group, &g).and_then(|r| {
        r.get(sender_index)
            .map(|l| (l.member.clone(), l.identity_key))
    }) {
        Some(m) => m,
        None => member_from(processed.credential())?,
    };
    let mut moved = false;
    let events = match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(am) => {
            let m = Received {
                group,
                seq,
                inner: &inner,
                sender,
                sender_key,
            };
            application(cx, &g, m, payload.len(), am.into_bytes())?
        }
        ProcessedMessageContent::ProposalMessage(qp) => proposal(cx, group, &mut g, *qp, sender)?,
        ProcessedMessageContent::OwnPendingCommit | ProcessedMessageContent::OwnPrivateMessage => {
            return Err(GroupError::Replay.into());
        }
        ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
            return Err(GroupError::NotAllowed("external join proposals").into());
        }
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            let c = Received {
                group,
                seq,
                inner: &inner,
                sender,
                sender_key,
            };
            let (events, m) = commit(cx, &mut g, c, *staged, sender_index)?;
            moved = m;
            events
        }
    };
    // A move starts the new mailbox from its beginning.
    if !moved {
        tables::group_set_cursor(cx.c, &group.0, seq)?;
    }
    // A group whose state was just deleted (we were removed) must not come back from the
    // cache.
    if !events.iter().any(|e| matches!(e, Event::Removed { .. })) {
        cx.keep(group, g);
    }
    Ok(Processed { events, moved })
}

/// An opened item and its sender.
struct Received<'a> {
    group: &'a GroupId,
    seq: u64,
    inner: &'a [u8],
    sender: Member,
    sender_key: PublicKey,
}

/// An application message: decrypted (the ratchet moved, for everyone alike), then shown,
/// dropped by governance (GOV-8, a pure function of the group) or held by a trust verdict on
/// its sender (TRUST-22).
fn application(
    cx: &Ctx<'_>,
    g: &MlsGroup,
    m: Received<'_>,
    size: usize,
    bytes: Vec<u8>,
) -> Result<Vec<Event>, Failure> {
    if size > MAX_PAYLOAD {
        return Err(GroupError::Malformed("oversized message".into()).into());
    }
    let status = verify::status_of(
        cx,
        &m.sender.did,
        &m.sender.installation,
        &m.sender_key,
        true,
    )?;
    match status {
        crate::trust::MemberStatus::Revoked => {
            return Err(GroupError::NotAllowed("sender device revoked").into())
        }
        crate::trust::MemberStatus::Mismatch => {
            return Err(GroupError::Credential(
                crate::credential::CredentialError::UnknownIdentityKey(m.sender.did),
            )
            .into())
        }
        _ => {}
    }
    let content = EncodedContent::from_bytes(&bytes)
        .map_err(|e| GroupError::Malformed(format!("content: {e}")))?;
    let message = Message {
        group: m.group.clone(),
        id: MessageId::from_mls_message(m.inner),
        seq: m.seq,
        sender: m.sender,
        content,
        outgoing: false,
        received: cx.now(),
    };
    // A consent table: read only from the account's own devices in its own-device group, and
    // never shown anywhere (CONSENT-7).
    if super::consent_sync::is_table(&message.content.type_id) {
        let own_group = crate::storage::tables::group_get(cx.c, &message.group.0)?
            .is_some_and(|r| r.kind == crate::group::GroupKind::Account);
        if own_group && message.sender.did == cx.dev.did && message.content.compression.is_none() {
            super::consent_sync::merge(cx, &message.content.content)?;
        }
        return Ok(vec![]);
    }
    let timer = crate::group::disappearing_secs(g.extensions())?;
    let gov =
        crate::group::Governance::from_extensions(g.extensions()).map_err(GroupError::from)?;
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
            return Ok(vec![Event::PostDropped { message, error }]);
        }
    }
    let moderation = super::governance::RoleModeration {
        base: cx.moderation,
        gov,
    };
    // A history-rule violation keeps the decryption (the message was valid MLS) but changes
    // no history (CONTENT-29).
    let ev = match history::apply(cx.c, &moderation, &message, &bytes, timer) {
        // Stored, but no event: a request not yet accepted, or a blocked sender (CONSENT-6).
        Ok(()) if consent::hides(cx.c, &message.group.0, message.sender.did.as_str())? => {
            return Ok(vec![])
        }
        Ok(()) => Event::Message(message),
        Err(ApplyError::Rejected(error)) => Event::ContentRejected { message, error },
        Err(ApplyError::Storage(e)) => return Err(e.into()),
    };
    Ok(vec![ev])
}

/// A proposal sent alone (a leave request): stored when the agreement checks pass (AGREE-5),
/// whoever sent it. A commit may name it by reference, so every member must hold the same
/// proposals: no trust verdict applies here.
fn proposal(
    cx: &Ctx<'_>,
    group: &GroupId,
    g: &mut MlsGroup,
    qp: QueuedProposal,
    sender: Member,
) -> Result<Vec<Event>, Failure> {
    validate_proposal(g, &cx.roster(group, g), &qp)?;
    g.store_pending_proposal(cx.p.storage(), qp)
        .map_err(fatal_mls)?;
    Ok(vec![Event::LeaveRequested {
        group: group.clone(),
        did: sender.did,
    }])
}

/// A commit: merged when the agreement checks pass (governance GOV-4, leaf credentials
/// without a clock, the group-context extensions), then judged by the trust checks. Returns
/// whether it moved the group to a new mailbox (GROUP-4a: it removed someone, not us).
fn commit(
    cx: &Ctx<'_>,
    g: &mut MlsGroup,
    c: Received<'_>,
    staged: StagedCommit,
    sender_index: LeafNodeIndex,
) -> Result<(Vec<Event>, bool), Failure> {
    let group = c.group;
    let roster = cx.roster(group, g);
    let checked = check_commit(g, &roster, staged, sender_index, cx.verdicts)?;
    let (change, summary, effect) = checked.merge(g, &cx.p)?;
    let removes = !summary.removed.is_empty();
    // An outgoing commit of ours for the epoch just left can never be merged now (openmls
    // dropped it with the merge). Only a commit processed outside the mailbox's order
    // (`process_incoming`) finds one here; sent after a move it would start the new mailbox
    // under a dead tag.
    tables::outbox_delete(cx.c, &group.0)?;
    let timer_change = effect.timer;
    cx.roster_merged(group, roster, change, g);
    let by = c.sender.did.clone();
    let mut events: Vec<Event> = effect
        .changes
        .iter()
        .map(|change| Event::GovernanceChanged {
            group: group.clone(),
            by: by.clone(),
            change: change.clone(),
        })
        .collect();
    if let Some(update) = history::update_if_any(
        by.clone(),
        summary.added.clone(),
        summary.removed.clone(),
        timer_change,
        effect.changes,
    ) {
        let timer = crate::group::disappearing_secs(g.extensions())?;
        history::record_update(cx, group, c.inner, c.seq, &c.sender, &update, timer)?;
    }
    if let Some(secs) = timer_change {
        events.push(Event::DisappearingChanged {
            group: group.clone(),
            by: by.clone(),
            secs: (secs > 0).then_some(secs),
        });
    }
    if !summary.added.is_empty() {
        events.push(Event::MembersAdded {
            group: group.clone(),
            by: by.clone(),
            members: summary.added,
        });
    }
    if !summary.removed.is_empty() {
        events.push(Event::MembersRemoved {
            group: group.clone(),
            by: by.clone(),
            members: summary.removed,
        });
    }
    if summary.self_removed {
        tables::group_set_status(cx.c, &group.0, GroupStatus::Left)?;
        // A removed or departed device keeps no group secrets (GROUP-9).
        g.delete(cx.p.storage()).map_err(fatal_mls)?;
        cx.forget_roster(group);
        events.push(Event::Removed {
            group: group.clone(),
            by,
        });
        return Ok((events, false));
    }
    // Whoever was removed holds no secret of the new epoch, so cannot post to its mailbox
    // (GROUP-4a). A pure function of the commit: every member moves at the same commit.
    if removes {
        tables::group_move(
            cx.c,
            &group.0,
            crate::group::moved_mailbox(g, cx.p.crypto())?,
        )?;
    }
    // Trust, after the merge (TRUST-20): the committer and every leaf it brought in.
    events.extend(verify::judge_leaves(cx, group, &summary.leaves)?);
    Ok((events, removes))
}

/// How far a re-add request's time may be from this device's clock (AGREE-8: a trust check on
/// a request, whose answer is an ordinary commit).
const RESYNC_WINDOW_SECS: u64 = 24 * 3600;

/// A member device asks to be re-added (AGREE-8). Accepted when the device has a leaf whose
/// signature key is not the one it holds (it lost its state), and the request is recent; the
/// answer is queued for the sync's chores. Changes no group state.
fn resync_request(
    cx: &Ctx<'_>,
    group: &GroupId,
    seq: u64,
    payload: &[u8],
) -> Result<Vec<Event>, Failure> {
    let r = crate::group::resync_open(&group.0, payload)?;
    let g = cx.load(group)?;
    let roster = cx.roster(group, &g);
    let leaf = roster
        .leaves()
        .find(|(_, l)| l.member.installation == r.installation && l.member.did == r.did)
        .map(|(i, _)| i)
        .ok_or(GroupError::NotAllowed(
            "re-add request from a device not in the group",
        ))?;
    let tree_key = g
        .public_group()
        .leaf(leaf)
        .map(|l| l.signature_key().as_slice().to_vec())
        .ok_or(GroupError::NotAllowed("re-add request for a blank leaf"))?;
    if tree_key == r.leaf_key {
        return Err(
            GroupError::NotAllowed("re-add request from a device that holds its leaf").into(),
        );
    }
    let now = cx.now();
    if r.created.abs_diff(now) > RESYNC_WINDOW_SECS {
        return Err(GroupError::NotAllowed("re-add request out of date").into());
    }
    let installation = r.installation.as_bytes();
    crate::storage::group_state::add_resync_request(cx.c, &group.0, installation, &tree_key)?;
    tables::group_set_cursor(cx.c, &group.0, seq)?;
    cx.keep(group, g);
    Ok(vec![Event::ResyncRequested {
        group: group.clone(),
        member: Member {
            did: r.did,
            installation: r.installation,
        },
    }])
}
