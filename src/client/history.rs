//! Local message history: what each kind of content does to it (spec/content.md
//! CONTENT-26 to CONTENT-30), the types history queries return, and the moderation hook.
//! Every function here runs inside the transaction of the state change it belongs to.

use openmls::prelude::MlsGroup;
use rusqlite::Connection;

use super::Message;
use crate::content::{
    Content, ContentCodec as _, EncodedContent, GroupUpdated, GroupUpdatedCodec, MessageId,
    ReactionAction,
};
use crate::credential::AtmlsIdentity;
use crate::group::{authorize_commit, GovernanceChange, GroupError, GroupId, Member};
use crate::identity::{Did, PublicKey};
use crate::storage::history::{self as store, HistoryRow};
use crate::storage::StorageError;

/// Why an edit, delete, reaction or receipt was refused (CONTENT-26, CONTENT-29). The
/// history is unchanged. None is retryable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// No message with this id in the group's history (never seen, expired, or from
    /// before this device joined).
    #[error("no message {0} in this group's history")]
    UnknownMessage(MessageId),
    /// Only a message's author (any device of the same account) may edit it.
    #[error("only the author may edit message {0}")]
    NotAuthor(MessageId),
    /// The moderation policy does not let this account delete the message.
    #[error("not allowed to delete message {0}")]
    DeleteNotAllowed(MessageId),
    /// The message was deleted; it can no longer be edited or reacted to.
    #[error("message {0} was deleted")]
    Deleted(MessageId),
    /// Only text, markdown and replies can be edited.
    #[error("message {0} cannot be edited")]
    NotEditable(MessageId),
    /// A group update arrived as an application message: they are derived from
    /// commits, never sent (CONTENT-27).
    #[error("group updates are derived from commits, never sent")]
    Forged,
}

impl HistoryError {
    /// Always `false`: the same content is refused again.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Decides who may delete other people's messages (CONTENT-26).
///
/// Edits are always author-only. For deletes, the author may always delete; so may an
/// account with the group's *moderate* permission whose role is not below the author's
/// (spec/governance.md GOV-8, from the group state, so every member agrees); anyone else
/// only if this policy says so. The default, [`AuthorOnly`], adds no one. A custom policy
/// is given to [`ClientBuilder::moderation`](super::ClientBuilder::moderation); every
/// member's device applies its own to every delete it receives, so all devices must be
/// given the same one.
///
/// ```
/// use atmls::client::ModerationPolicy;
/// use atmls::{identity::Did, GroupId};
///
/// /// One fixed moderator account may delete anything.
/// struct FixedModerator(Did);
/// impl ModerationPolicy for FixedModerator {
///     fn may_delete(&self, _group: &GroupId, actor: &Did, _author: &Did) -> bool {
///         *actor == self.0
///     }
/// }
/// ```
pub trait ModerationPolicy: Send + Sync {
    /// Whether `actor` may delete a message that `author` wrote in `group` (called only
    /// when `actor` is not the author).
    fn may_delete(&self, group: &GroupId, actor: &Did, author: &Did) -> bool;
}

/// The default moderation policy: only authors delete their messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthorOnly;

impl ModerationPolicy for AuthorOnly {
    fn may_delete(&self, _group: &GroupId, _actor: &Did, _author: &Did) -> bool {
        false
    }
}

/// Where a page of history ends; pass it back to get the next, older page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HistoryCursor(pub(crate) i64);

/// One page of a group's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    /// Items, oldest first.
    pub items: Vec<HistoryItem>,
    /// The cursor for the next (older) page, if there may be more.
    pub older: Option<HistoryCursor>,
}

/// Who deleted a message, and when (unix seconds, this device's clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    /// The account that deleted it.
    pub by: Did,
    /// When this device applied the delete.
    pub at: u64,
}

/// The reactions with one emoji on a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionCount {
    /// The reaction.
    pub emoji: String,
    /// The accounts that reacted with it, in the order they did.
    pub by: Vec<Did>,
}

impl ReactionCount {
    /// How many accounts reacted with this emoji.
    pub fn count(&self) -> usize {
        self.by.len()
    }
}

/// One earlier version of an edited message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    /// The content this edit set.
    pub content: EncodedContent,
    /// When this device applied it.
    pub at: u64,
}

/// How far an account has read, from its latest read receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadPosition {
    /// The account.
    pub did: Did,
    /// The newest message it has read.
    pub up_to: MessageId,
    /// When this device received the receipt.
    pub at: u64,
}

/// One item of a group's timeline: a message (text, markdown, reply, attachment,
/// unknown type) or a group update, with edits, deletes and reactions applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryItem {
    /// The message id (CONTENT-18).
    pub id: MessageId,
    /// Its group.
    pub group: GroupId,
    /// Its position in the group's mailbox. Positions start again when the group moves to a
    /// new mailbox at a removal (spec/group.md GROUP-4a): order by the history, not by this.
    pub seq: u64,
    /// Who sent it.
    pub sender: Member,
    /// Whether this device sent it.
    pub outgoing: bool,
    /// When this device stored it (unix seconds).
    pub received: u64,
    /// The current content: the latest edit if edited; `None` once deleted. Unknown
    /// types are kept as received, so a later version can decode them.
    pub content: Option<EncodedContent>,
    /// How many times it was edited (earlier versions: `Conversation::edit_history`).
    pub edits: usize,
    /// Set when the message was deleted.
    pub deleted: Option<Tombstone>,
    /// The message this one replies to.
    pub in_reply_to: Option<MessageId>,
    /// Reactions, one entry per emoji, in the order first used.
    pub reactions: Vec<ReactionCount>,
    /// When it disappears from this device (disappearing messages), unix seconds.
    pub expires_at: Option<u64>,
    /// Its position, for [`Conversation::history`](super::Conversation::history) pagination.
    pub cursor: HistoryCursor,
}

impl HistoryItem {
    /// The current content decoded for display (`None` once deleted).
    pub fn decoded(&self) -> Option<Content> {
        self.content.as_ref().map(Content::decode)
    }

    /// A one-line text for the item (see [`Content::summary`]).
    pub fn text(&self) -> Option<String> {
        self.decoded().and_then(|c| c.summary())
    }
}

/// Why applying content to history stopped.
#[derive(Debug)]
pub(crate) enum ApplyError {
    Rejected(HistoryError),
    Storage(StorageError),
}

impl From<StorageError> for ApplyError {
    fn from(e: StorageError) -> Self {
        ApplyError::Storage(e)
    }
}

impl From<HistoryError> for ApplyError {
    fn from(e: HistoryError) -> Self {
        ApplyError::Rejected(e)
    }
}

impl From<ApplyError> for super::Error {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Rejected(h) => super::Error::History(h),
            ApplyError::Storage(s) => super::Error::Storage(s),
        }
    }
}

/// The live (not expired) item `id`, or [`HistoryError::UnknownMessage`].
fn target(
    c: &Connection,
    group: &GroupId,
    id: &MessageId,
    now: u64,
) -> Result<HistoryRow, ApplyError> {
    store::get(c, &group.0, id.as_bytes(), now)?
        .ok_or(ApplyError::Rejected(HistoryError::UnknownMessage(*id)))
}

fn live_target(
    c: &Connection,
    group: &GroupId,
    id: &MessageId,
    now: u64,
) -> Result<HistoryRow, ApplyError> {
    let t = target(c, group, id, now)?;
    if t.deleted_at.is_some() {
        return Err(HistoryError::Deleted(*id).into());
    }
    Ok(t)
}

/// Checks whether `actor` may send or apply `content` in `group` now (CONTENT-26,
/// CONTENT-29); returns the message it acts on, if any. Changes nothing.
pub(crate) fn validate(
    c: &Connection,
    policy: &dyn ModerationPolicy,
    group: &GroupId,
    actor: &Did,
    content: &Content,
    now: u64,
) -> Result<Option<HistoryRow>, ApplyError> {
    Ok(match content {
        Content::GroupUpdated(_) => return Err(HistoryError::Forged.into()),
        Content::Reaction(r) => Some(live_target(c, group, &r.target, now)?),
        Content::ReadReceipt(r) => Some(target(c, group, &r.up_to, now)?),
        Content::Edit(e) => {
            let t = live_target(c, group, &e.target, now)?;
            if t.sender_did != *actor {
                return Err(HistoryError::NotAuthor(e.target).into());
            }
            let editable = EncodedContent::from_bytes(&t.content)
                .map(|orig| {
                    matches!(
                        Content::decode(&orig),
                        Content::Text(_) | Content::Markdown(_) | Content::Reply(_)
                    )
                })
                .unwrap_or(false);
            if !editable {
                return Err(HistoryError::NotEditable(e.target).into());
            }
            Some(t)
        }
        Content::Delete(d) => {
            let t = target(c, group, &d.target, now)?;
            // Group updates record verified commits: no one deletes them.
            let is_update = t
                .type_id
                .parse::<crate::content::ContentTypeId>()
                .is_ok_and(|id| GroupUpdatedCodec::content_type().is_same_type(&id));
            if is_update
                || (t.sender_did != *actor && !policy.may_delete(group, actor, &t.sender_did))
            {
                return Err(HistoryError::DeleteNotAllowed(d.target).into());
            }
            Some(t)
        }
        _ => None,
    })
}

/// Applies a message (sent or received) to the history, after [`validate`]: timeline items
/// are stored, edits/deletes/reactions/receipts change what they refer to, typing
/// indicators leave no trace (CONTENT-24). `timer` is the group's disappearing timer.
pub(crate) fn apply(
    c: &Connection,
    policy: &dyn ModerationPolicy,
    m: &Message,
    raw: &[u8],
    timer: Option<u32>,
) -> Result<(), ApplyError> {
    let content = Content::decode(&m.content);
    let now = m.received;
    let t = validate(c, policy, &m.group, &m.sender.did, &content, now)?;
    match (content, t) {
        (Content::Typing(_), _) => {}
        (Content::Reaction(r), Some(t)) => store::set_reaction(
            c,
            &m.group.0,
            &t.message_id,
            &m.sender.did,
            &r.emoji,
            r.action == ReactionAction::Add,
            now,
        )?,
        (Content::ReadReceipt(r), Some(t)) => store::set_receipt(
            c,
            &m.group.0,
            &m.sender.did,
            r.up_to.as_bytes(),
            t.rowid,
            now,
        )?,
        (Content::Edit(e), Some(t)) => {
            let bytes = e.content.to_bytes().map_err(|_| {
                StorageError::Corrupt("edit content that decoded does not re-encode")
            })?;
            let body = store::search_text(&e.content);
            store::apply_edit(
                c,
                &t,
                m.id.as_bytes(),
                &m.sender.did,
                &bytes,
                body.as_deref(),
                now,
            )?
        }
        (Content::Delete(_), Some(t)) => {
            if t.deleted_at.is_none() {
                store::tombstone(c, &t, &m.sender.did, now)?
            }
        }
        (content, _) => {
            let reply_to = match &content {
                Content::Reply(r) => Some(*r.in_reply_to.as_bytes()),
                _ => None,
            };
            insert_item(c, m, raw, reply_to, timer)?;
        }
    }
    Ok(())
}

fn insert_item(
    c: &Connection,
    m: &Message,
    raw: &[u8],
    reply_to: Option<[u8; 32]>,
    timer: Option<u32>,
) -> Result<i64, StorageError> {
    store::insert(
        c,
        &HistoryRow {
            rowid: 0,
            group_id: m.group.0.clone(),
            message_id: *m.id.as_bytes(),
            seq: m.seq,
            sender_did: m.sender.did.clone(),
            sender_installation: m.sender.installation.0,
            type_id: m.content.type_id.to_string(),
            content: raw.to_vec(),
            received: m.received,
            outgoing: m.outgoing,
            reply_to,
            edited_content: None,
            edited_at: None,
            deleted_by: None,
            deleted_at: None,
            expires_at: timer.map(|s| m.received.saturating_add(u64::from(s))),
        },
        store::search_text(&m.content).as_deref(),
    )
}

/// Records a group update derived from a verified commit (CONTENT-27). Its id is that of
/// the commit message, so every member's device gives it the same id.
pub(crate) fn record_update(
    cx: &super::state::Ctx<'_>,
    group: &GroupId,
    commit: &[u8],
    seq: u64,
    committer: &Member,
    update: &GroupUpdated,
    timer: Option<u32>,
) -> Result<(), StorageError> {
    let now = cx.now();
    let content = GroupUpdatedCodec::encode(update)
        .map_err(|_| StorageError::Corrupt("group update does not encode"))?;
    let raw = content
        .to_bytes()
        .map_err(|_| StorageError::Corrupt("group update does not encode"))?;
    let m = Message {
        group: group.clone(),
        id: MessageId::from_mls_message(commit),
        seq,
        sender: committer.clone(),
        content,
        outgoing: false,
        received: now,
    };
    insert_item(cx.c, &m, &raw, None, timer).map(|_| ())
}

/// What our own staged commit changes, for the history (None: nothing to record).
pub(crate) fn own_commit_update(
    g: &MlsGroup,
    roster: &crate::group::Roster,
    me: &Did,
) -> Result<Option<GroupUpdated>, GroupError> {
    let Some(staged) = g.pending_commit() else {
        return Ok(None);
    };
    let member = |cred: &openmls::prelude::Credential| -> Option<Member> {
        let id = AtmlsIdentity::from_credential(cred).ok()?;
        Some(Member {
            did: id.certificate.did,
            installation: id.certificate.installation_key,
        })
    };
    let added: Vec<Member> = staged
        .add_proposals()
        .filter_map(|a| member(a.add_proposal().key_package().leaf_node().credential()))
        .collect();
    let removed: Vec<Member> = staged
        .remove_proposals()
        .filter_map(|r| roster.get(r.remove_proposal().removed()))
        .map(|l| l.member.clone())
        .collect();
    let effect = authorize_commit(g, roster, staged, g.own_leaf_index())?;
    Ok(update_if_any(
        me.clone(),
        added,
        removed,
        effect.timer,
        effect.changes,
    ))
}

/// A group update, unless the commit changed nothing worth showing (a key update).
pub(crate) fn update_if_any(
    by: Did,
    added: Vec<Member>,
    removed: Vec<Member>,
    disappearing_secs: Option<u32>,
    changes: Vec<GovernanceChange>,
) -> Option<GroupUpdated> {
    (!added.is_empty() || !removed.is_empty() || disappearing_secs.is_some() || !changes.is_empty())
        .then_some(GroupUpdated {
            by,
            added,
            removed,
            disappearing_secs,
            changes,
        })
}

/// A stored row as the public item, with its reactions.
pub(crate) fn to_item(c: &Connection, row: HistoryRow) -> Result<HistoryItem, StorageError> {
    let mut reactions: Vec<ReactionCount> = Vec::new();
    for (emoji, did) in store::reactions_of(c, &row.group_id, &row.message_id)? {
        match reactions.iter_mut().find(|r| r.emoji == emoji) {
            Some(r) => r.by.push(did),
            None => reactions.push(ReactionCount {
                emoji,
                by: vec![did],
            }),
        }
    }
    let edits = if row.edited_at.is_some() {
        store::edits_of(c, &row.group_id, &row.message_id)?.len()
    } else {
        0
    };
    let content = match (&row.deleted_at, &row.edited_content) {
        (Some(_), _) => None,
        (None, Some(edited)) => Some(edited.as_slice()),
        (None, None) => Some(row.content.as_slice()),
    }
    .map(EncodedContent::from_bytes)
    .transpose()
    .map_err(|_| StorageError::Corrupt("stored content"))?;
    Ok(HistoryItem {
        id: MessageId::from_bytes(row.message_id),
        group: GroupId(row.group_id),
        seq: row.seq,
        sender: Member {
            did: row.sender_did,
            installation: PublicKey(row.sender_installation),
        },
        outgoing: row.outgoing,
        received: row.received,
        content,
        edits,
        deleted: row.deleted_by.map(|by| Tombstone {
            by,
            at: row.deleted_at.unwrap_or(0),
        }),
        in_reply_to: row.reply_to.map(MessageId::from_bytes),
        reactions,
        expires_at: row.expires_at,
        cursor: HistoryCursor(row.rowid),
    })
}

/// Turns free text into an FTS5 query that matches items containing every word (each
/// word quoted, so user input cannot use FTS5 syntax). `None` if there is no word.
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_30_search_query_quotes_words() {
        assert_eq!(
            fts_query("hello world").as_deref(),
            Some("\"hello\" \"world\"")
        );
        assert_eq!(
            fts_query("a\" OR b*").as_deref(),
            Some("\"a\" \"OR\" \"b\"")
        );
        assert_eq!(fts_query("  !! "), None);
    }

    #[test]
    fn content_26_author_only_is_the_default() {
        let g = GroupId(vec![0; 32]);
        let a: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
        let b: Did = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse().unwrap();
        assert!(!AuthorOnly.may_delete(&g, &a, &b));
        assert!(!HistoryError::Forged.is_retryable());
    }
}
