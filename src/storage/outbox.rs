//! Application messages and leave proposals waiting for the transport's answer (spec/group.md
//! GROUP-11): queued before the first attempt, each with the idempotency key of its current
//! ciphertext, deleted once the transport accepted it.

use rusqlite::{params, Connection, OptionalExtension};

use super::tables::to_i64;
use super::StorageError;

type R<T> = Result<T, StorageError>;

/// Migration 9: the message outbox.
pub(super) const MIGRATION_9: &str = r#"
CREATE TABLE atmls_message_outbox (
    id INTEGER PRIMARY KEY,
    group_id BLOB NOT NULL,
    content BLOB,
    checked INTEGER NOT NULL,
    idem BLOB NOT NULL,
    epoch_tag BLOB,
    after INTEGER,
    payload BLOB,
    inner BLOB,
    created INTEGER NOT NULL
);
CREATE INDEX atmls_message_outbox_group ON atmls_message_outbox(group_id, id);
"#;

/// A ciphertext made for one epoch: what is sent, every time, under the row's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// The tag of the epoch it was encrypted in.
    pub epoch_tag: [u8; 32],
    /// The group cursor when it was encrypted (the poster's cursor, TRANSPORT-3).
    pub after: u64,
    /// The sealed transport payload.
    pub payload: Vec<u8>,
    /// The MLS message inside (its id, CONTENT-18); empty for a proposal.
    pub inner: Vec<u8>,
    /// The capability of the mailbox it is for (GROUP-4a); `None` in rows sealed before
    /// mailboxes moved: the one derived from the group id.
    pub capability: Option<[u8; 32]>,
}

/// What a queued item is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QueuedKind {
    /// An application message: its encoded content, encrypted again for a new epoch when its
    /// ciphertext goes stale.
    Content {
        /// The encoded content.
        bytes: Vec<u8>,
        /// Whether the history rules apply (CONTENT-29).
        checked: bool,
    },
    /// A leave proposal: sealed when queued, dropped when stale (a proposal of a past epoch
    /// cannot be re-encrypted).
    LeaveProposal,
}

/// Where a queued item is in its life: sealed for an epoch, or waiting to be (again, after
/// `StaleEpoch`). Accepted items are deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QueueState {
    /// Not encrypted yet, or its ciphertext went stale: sealed at the next send.
    ToSeal,
    /// The ciphertext sent, every time, under the row's idempotency key.
    Sealed(Sealed),
}

/// One queued item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Queued {
    pub id: i64,
    pub group_id: Vec<u8>,
    pub kind: QueuedKind,
    /// The idempotency key of the current ciphertext (or of the next one).
    pub idem: [u8; 16],
    pub state: QueueState,
}

fn key16(v: Vec<u8>) -> rusqlite::Result<[u8; 16]> {
    v.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            16,
            rusqlite::types::Type::Blob,
            "idempotency key".into(),
        )
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Queued> {
    let tag: Option<Vec<u8>> = r.get(5)?;
    let after: Option<i64> = r.get(6)?;
    let payload: Option<Vec<u8>> = r.get(7)?;
    let inner: Option<Vec<u8>> = r.get(8)?;
    let capability: Option<Vec<u8>> = r.get(9)?;
    let capability = capability
        .map(<[u8; 32]>::try_from)
        .transpose()
        .map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                9,
                rusqlite::types::Type::Blob,
                "mailbox capability".into(),
            )
        })?;
    let sealed = match (tag, after, payload) {
        (Some(tag), Some(after), Some(payload)) => Some(Sealed {
            epoch_tag: tag.try_into().map_err(|_| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Blob,
                    "epoch tag".into(),
                )
            })?,
            after: u64::try_from(after).unwrap_or(0),
            payload,
            inner: inner.unwrap_or_default(),
            capability,
        }),
        _ => None,
    };
    let kind = match r.get::<_, Option<Vec<u8>>>(2)? {
        Some(bytes) => QueuedKind::Content {
            bytes,
            checked: r.get::<_, i64>(3)? != 0,
        },
        None => QueuedKind::LeaveProposal,
    };
    Ok(Queued {
        id: r.get(0)?,
        group_id: r.get(1)?,
        kind,
        idem: key16(r.get(4)?)?,
        state: sealed.map_or(QueueState::ToSeal, QueueState::Sealed),
    })
}

const COLUMNS: &str =
    "id, group_id, content, checked, idem, epoch_tag, after, payload, inner, capability";

/// Queues content not yet encrypted; returns its id (queue order).
pub(crate) fn queue_content(
    c: &Connection,
    group_id: &[u8],
    content: &[u8],
    checked: bool,
    idem: &[u8; 16],
    now: u64,
) -> R<i64> {
    c.prepare_cached(
        "INSERT INTO atmls_message_outbox (group_id, content, checked, idem, created)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        group_id,
        content,
        checked as i64,
        &idem[..],
        to_i64(now)
    ])?;
    Ok(c.last_insert_rowid())
}

/// Queues an encrypted proposal (no content: dropped rather than re-encrypted when stale).
pub(crate) fn queue_sealed(
    c: &Connection,
    group_id: &[u8],
    idem: &[u8; 16],
    s: &Sealed,
    now: u64,
) -> R<i64> {
    c.prepare_cached(
        "INSERT INTO atmls_message_outbox
         (group_id, content, checked, idem, epoch_tag, after, payload, inner, created, capability)
         VALUES (?1, NULL, 0, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        group_id,
        &idem[..],
        &s.epoch_tag[..],
        to_i64(s.after),
        s.payload,
        s.inner,
        to_i64(now),
        s.capability.map(|c| c.to_vec())
    ])?;
    Ok(c.last_insert_rowid())
}

/// Records the ciphertext of a row (sent under its current key).
pub(crate) fn set_sealed(c: &Connection, id: i64, s: &Sealed) -> R<()> {
    c.prepare_cached(
        "UPDATE atmls_message_outbox SET epoch_tag = ?2, after = ?3, payload = ?4, inner = ?5,
         capability = ?6 WHERE id = ?1",
    )?
    .execute(params![
        id,
        &s.epoch_tag[..],
        to_i64(s.after),
        s.payload,
        s.inner,
        s.capability.map(|c| c.to_vec())
    ])?;
    Ok(())
}

/// Drops a row's ciphertext after `StaleEpoch` (it was not stored) and gives the row the key
/// of its next ciphertext: another ciphertext under the old key would be an idempotency
/// conflict.
pub(crate) fn unseal(c: &Connection, id: i64, next_idem: &[u8; 16]) -> R<()> {
    c.prepare_cached(
        "UPDATE atmls_message_outbox
         SET idem = ?2, epoch_tag = NULL, after = NULL, payload = NULL, inner = NULL,
         capability = NULL
         WHERE id = ?1",
    )?
    .execute(params![id, &next_idem[..]])?;
    Ok(())
}

pub(crate) fn delete(c: &Connection, id: i64) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_message_outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The oldest queued item of a group.
pub(crate) fn first(c: &Connection, group_id: &[u8]) -> R<Option<Queued>> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM atmls_message_outbox WHERE group_id = ?1 ORDER BY id LIMIT 1"
    ))?
    .query_row([group_id], row)
    .optional()?)
}

/// Whether the item is still queued.
pub(crate) fn contains(c: &Connection, id: i64) -> R<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM atmls_message_outbox WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// Groups with queued items.
pub(crate) fn groups(c: &Connection) -> R<Vec<Vec<u8>>> {
    let mut s =
        c.prepare_cached("SELECT DISTINCT group_id FROM atmls_message_outbox ORDER BY group_id")?;
    let out = s
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    Ok(out)
}

/// The content of every queued message of a group, oldest first.
pub(crate) fn contents(c: &Connection, group_id: &[u8]) -> R<Vec<Vec<u8>>> {
    let mut s = c.prepare_cached(
        "SELECT content FROM atmls_message_outbox WHERE group_id = ?1 AND content IS NOT NULL
         ORDER BY id",
    )?;
    let out = s
        .query_map([group_id], |r| r.get(0))?
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    Ok(out)
}

/// The rows of a group encrypted in the epoch `tag`, with whether each has content.
pub(crate) fn sealed_in(c: &Connection, group_id: &[u8], tag: &[u8; 32]) -> R<Vec<(i64, bool)>> {
    let mut s = c.prepare_cached(
        "SELECT id, content IS NOT NULL FROM atmls_message_outbox
         WHERE group_id = ?1 AND epoch_tag = ?2 ORDER BY id",
    )?;
    let out = s
        .query_map(params![group_id, &tag[..]], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<(i64, bool)>, _>>()?;
    Ok(out)
}
