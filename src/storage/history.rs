//! The message history tables: timeline items (`atmls_messages`, extended by migration 3),
//! edits, reactions, read receipts and the full-text index (spec/storage.md, spec/content.md).
//! Callers run these inside the transaction of the state change they belong to.

use rusqlite::{params, Connection, OptionalExtension, Row};
use sha2::{Digest, Sha256};

use super::StorageError;
use crate::content::{Content, EncodedContent};
use crate::identity::Did;

type R<T> = Result<T, StorageError>;

/// Migration 3: message ids, edits, tombstones, expiry, reactions, receipts, FTS5 search.
pub(super) const MIGRATION_3: &str = r#"
ALTER TABLE atmls_messages ADD COLUMN message_id BLOB;
ALTER TABLE atmls_messages ADD COLUMN type_id TEXT NOT NULL DEFAULT '';
ALTER TABLE atmls_messages ADD COLUMN reply_to BLOB;
ALTER TABLE atmls_messages ADD COLUMN edited_content BLOB;
ALTER TABLE atmls_messages ADD COLUMN edited_at INTEGER;
ALTER TABLE atmls_messages ADD COLUMN deleted_by TEXT;
ALTER TABLE atmls_messages ADD COLUMN deleted_at INTEGER;
ALTER TABLE atmls_messages ADD COLUMN expires_at INTEGER;
CREATE TABLE atmls_edits (
    id INTEGER PRIMARY KEY,
    group_id BLOB NOT NULL,
    target BLOB NOT NULL,
    message_id BLOB NOT NULL,
    sender_did TEXT NOT NULL,
    content BLOB NOT NULL,
    received INTEGER NOT NULL
);
CREATE INDEX atmls_edits_target ON atmls_edits(group_id, target, id);
CREATE TABLE atmls_reactions (
    group_id BLOB NOT NULL,
    target BLOB NOT NULL,
    sender_did TEXT NOT NULL,
    emoji TEXT NOT NULL,
    received INTEGER NOT NULL,
    PRIMARY KEY (group_id, target, sender_did, emoji)
);
CREATE TABLE atmls_receipts (
    group_id BLOB NOT NULL,
    did TEXT NOT NULL,
    up_to BLOB NOT NULL,
    received INTEGER NOT NULL,
    PRIMARY KEY (group_id, did)
);
CREATE VIRTUAL TABLE atmls_messages_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
"#;

/// Rust part of migration 3, in the same transaction: ids, types and search text for rows
/// stored before it. Their MLS bytes were not kept, so their id is derived from the group
/// and mailbox position instead (the same on every device; CONTENT-18).
pub(super) fn backfill_3(c: &Connection) -> R<()> {
    let mut stmt = c.prepare_cached("SELECT id, group_id, seq, content FROM atmls_messages")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (id, group, seq, content) in rows {
        let mut h = Sha256::new();
        h.update(b"atmls/v1/legacy-message-id");
        h.update((group.len() as u32).to_be_bytes());
        h.update(&group);
        h.update(seq.to_be_bytes());
        let mid: [u8; 32] = h.finalize().into();
        let (type_id, body) = match EncodedContent::from_bytes(&content) {
            Ok(e) => (e.type_id.to_string(), search_text(&e)),
            Err(_) => (String::new(), None),
        };
        c.prepare_cached("UPDATE atmls_messages SET message_id = ?2, type_id = ?3 WHERE id = ?1")?
            .execute(params![id, mid.to_vec(), type_id])?;
        if let Some(b) = body {
            c.prepare_cached("INSERT INTO atmls_messages_fts (rowid, body) VALUES (?1, ?2)")?
                .execute(params![id, b])?;
        }
    }
    c.execute_batch(
        "CREATE UNIQUE INDEX atmls_messages_mid ON atmls_messages(group_id, message_id);
         CREATE INDEX atmls_messages_expiry ON atmls_messages(expires_at) WHERE expires_at IS NOT NULL;",
    )?;
    Ok(())
}

/// The text the search index holds for a piece of content: what a reader would see.
pub(crate) fn search_text(e: &EncodedContent) -> Option<String> {
    Content::decode(e).summary().filter(|s| !s.is_empty())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// One timeline item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HistoryRow {
    /// Local order (and pagination cursor).
    pub rowid: i64,
    pub group_id: Vec<u8>,
    pub message_id: [u8; 32],
    pub seq: u64,
    pub sender_did: Did,
    pub sender_installation: [u8; 32],
    pub type_id: String,
    /// The content as received (empty once deleted).
    pub content: Vec<u8>,
    pub received: u64,
    pub outgoing: bool,
    pub reply_to: Option<[u8; 32]>,
    pub edited_content: Option<Vec<u8>>,
    pub edited_at: Option<u64>,
    pub deleted_by: Option<Did>,
    pub deleted_at: Option<u64>,
    pub expires_at: Option<u64>,
}

const COLS: &str =
    "id, group_id, message_id, seq, sender_did, sender_installation, type_id, content, \
     received, outgoing, reply_to, edited_content, edited_at, deleted_by, deleted_at, expires_at";

type RawRow = (
    (i64, Vec<u8>, Vec<u8>, i64, String, Vec<u8>, String, Vec<u8>),
    (i64, bool, Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>),
    (Option<String>, Option<i64>, Option<i64>),
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ),
        (r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?),
        (r.get(13)?, r.get(14)?, r.get(15)?),
    ))
}

fn decode(t: RawRow) -> R<HistoryRow> {
    let ((rowid, group_id, mid, seq, did, inst, type_id, content), a, b) = t;
    let (received, outgoing, reply_to, edited_content, edited_at) = a;
    let (deleted_by, deleted_at, expires_at) = b;
    let did_of = |s: &str, what| Did::new(s).map_err(|_| StorageError::Corrupt(what));
    Ok(HistoryRow {
        rowid,
        group_id,
        message_id: mid
            .try_into()
            .map_err(|_| StorageError::Corrupt("message id"))?,
        seq: to_u64(seq),
        sender_did: did_of(&did, "sender did")?,
        sender_installation: inst
            .try_into()
            .map_err(|_| StorageError::Corrupt("sender installation"))?,
        type_id,
        content,
        received: to_u64(received),
        outgoing,
        reply_to: reply_to
            .map(|v| v.try_into().map_err(|_| StorageError::Corrupt("reply id")))
            .transpose()?,
        edited_content,
        edited_at: edited_at.map(to_u64),
        deleted_by: deleted_by.map(|d| did_of(&d, "deleted by")).transpose()?,
        deleted_at: deleted_at.map(to_u64),
        expires_at: expires_at.map(to_u64),
    })
}

fn query(c: &Connection, sql: &str, p: impl rusqlite::Params) -> R<Vec<HistoryRow>> {
    // Each call site's text is fixed, so the statement is parsed once (LG-10).
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(p, raw)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(decode).collect()
}

/// A new timeline item; returns its local row id. Also indexes its text.
pub(crate) fn insert(c: &Connection, m: &HistoryRow, body: Option<&str>) -> R<i64> {
    c.prepare_cached(
        "INSERT INTO atmls_messages (group_id, message_id, seq, sender_did, sender_installation,
           type_id, content, received, outgoing, reply_to, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        m.group_id,
        m.message_id.to_vec(),
        to_i64(m.seq),
        m.sender_did.as_str(),
        m.sender_installation.to_vec(),
        m.type_id,
        m.content,
        to_i64(m.received),
        m.outgoing,
        m.reply_to.map(|r| r.to_vec()),
        m.expires_at.map(to_i64),
    ])?;
    let rowid = c.last_insert_rowid();
    if let Some(b) = body {
        c.prepare_cached("INSERT INTO atmls_messages_fts (rowid, body) VALUES (?1, ?2)")?
            .execute(params![rowid, b])?;
    }
    Ok(rowid)
}

/// The item with this id, unless it expired by `now`.
pub(crate) fn get(c: &Connection, group: &[u8], id: &[u8; 32], now: u64) -> R<Option<HistoryRow>> {
    Ok(query(
        c,
        &format!(
            "SELECT {COLS} FROM atmls_messages WHERE group_id = ?1 AND message_id = ?2
             AND (expires_at IS NULL OR expires_at > ?3)"
        ),
        params![group, id.to_vec(), to_i64(now)],
    )?
    .into_iter()
    .next())
}

/// Up to `limit` items older than `before` (all if `None`), newest first.
pub(crate) fn page(
    c: &Connection,
    group: &[u8],
    before: Option<i64>,
    limit: u32,
    now: u64,
) -> R<Vec<HistoryRow>> {
    query(
        c,
        &format!(
            "SELECT {COLS} FROM atmls_messages WHERE group_id = ?1 AND id < ?2
             AND (expires_at IS NULL OR expires_at > ?3) ORDER BY id DESC LIMIT ?4"
        ),
        params![group, before.unwrap_or(i64::MAX), to_i64(now), limit],
    )
}

/// Items whose current text matches an FTS5 query, newest first.
pub(crate) fn search(
    c: &Connection,
    group: Option<&[u8]>,
    fts_query: &str,
    limit: u32,
    now: u64,
) -> R<Vec<HistoryRow>> {
    let cols = COLS
        .split(", ")
        .map(|col| format!("m.{col}"))
        .collect::<Vec<_>>()
        .join(", ");
    query(
        c,
        &format!(
            "SELECT {cols} FROM atmls_messages_fts f JOIN atmls_messages m ON m.id = f.rowid
             WHERE atmls_messages_fts MATCH ?1 AND (?2 IS NULL OR m.group_id = ?2)
             AND m.deleted_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > ?3)
             ORDER BY m.id DESC LIMIT ?4"
        ),
        params![fts_query, group, to_i64(now), limit],
    )
}

/// Records an edit: kept in `atmls_edits`, applied to the item and its search text.
pub(crate) fn apply_edit(
    c: &Connection,
    target: &HistoryRow,
    edit_id: &[u8; 32],
    sender: &Did,
    content: &[u8],
    body: Option<&str>,
    now: u64,
) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_edits (group_id, target, message_id, sender_did, content, received)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        target.group_id,
        target.message_id.to_vec(),
        edit_id.to_vec(),
        sender.as_str(),
        content,
        to_i64(now)
    ])?;
    c.prepare_cached(
        "UPDATE atmls_messages SET edited_content = ?2, edited_at = ?3 WHERE id = ?1",
    )?
    .execute(params![target.rowid, content, to_i64(now)])?;
    c.prepare_cached("DELETE FROM atmls_messages_fts WHERE rowid = ?1")?
        .execute([target.rowid])?;
    if let Some(b) = body {
        c.prepare_cached("INSERT INTO atmls_messages_fts (rowid, body) VALUES (?1, ?2)")?
            .execute(params![target.rowid, b])?;
    }
    Ok(())
}

/// Every version an item had, oldest first: `(editor, content, when)`.
pub(crate) fn edits_of(
    c: &Connection,
    group: &[u8],
    target: &[u8; 32],
) -> R<Vec<(Did, Vec<u8>, u64)>> {
    let mut stmt = c.prepare_cached("SELECT sender_did, content, received FROM atmls_edits WHERE group_id = ?1 AND target = ?2 ORDER BY id",
    )?;
    let rows = stmt
        .query_map(params![group, target.to_vec()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(d, content, at)| {
            Ok((
                Did::new(&d).map_err(|_| StorageError::Corrupt("editor did"))?,
                content,
                to_u64(at),
            ))
        })
        .collect()
}

/// Turns an item into a tombstone: its content, edits, reactions and search text go.
pub(crate) fn tombstone(c: &Connection, target: &HistoryRow, by: &Did, now: u64) -> R<()> {
    super::blob_erasure::queue(c, &target.group_id, &target.content, to_i64(now))?;
    c.prepare_cached("UPDATE atmls_messages SET content = X'', edited_content = NULL, deleted_by = ?2, deleted_at = ?3
         WHERE id = ?1")?.execute(params![target.rowid, by.as_str(), to_i64(now)],
    )?;
    forget_related(c, target)?;
    compact_index(c)
}

/// FTS5 keeps a deleted row's terms in its segments until they merge; merging them all
/// now makes deleted and expired text leave the database (CONTENT-28, CONTENT-30).
fn compact_index(c: &Connection) -> R<()> {
    c.prepare_cached("INSERT INTO atmls_messages_fts (atmls_messages_fts) VALUES ('optimize')")?
        .execute([])?;
    Ok(())
}

fn forget_related(c: &Connection, target: &HistoryRow) -> R<()> {
    let mid = target.message_id.to_vec();
    c.prepare_cached("DELETE FROM atmls_edits WHERE group_id = ?1 AND target = ?2")?
        .execute(params![target.group_id, mid])?;
    c.prepare_cached("DELETE FROM atmls_reactions WHERE group_id = ?1 AND target = ?2")?
        .execute(params![target.group_id, mid])?;
    c.prepare_cached("DELETE FROM atmls_messages_fts WHERE rowid = ?1")?
        .execute([target.rowid])?;
    Ok(())
}

/// Deletes every item that expired by `now`, with everything attached to it.
pub(crate) fn purge_expired(c: &Connection, now: u64) -> R<usize> {
    let expired = query(
        c,
        &format!(
            "SELECT {COLS} FROM atmls_messages WHERE expires_at IS NOT NULL AND expires_at <= ?1"
        ),
        [to_i64(now)],
    )?;
    for row in &expired {
        super::blob_erasure::queue(c, &row.group_id, &row.content, to_i64(now))?;
        forget_related(c, row)?;
        c.prepare_cached("DELETE FROM atmls_messages WHERE id = ?1")?
            .execute([row.rowid])?;
    }
    if !expired.is_empty() {
        compact_index(c)?;
    }
    Ok(expired.len())
}

/// Adds (`true`) or removes a reaction of `did`.
pub(crate) fn set_reaction(
    c: &Connection,
    group: &[u8],
    target: &[u8; 32],
    did: &Did,
    emoji: &str,
    add: bool,
    now: u64,
) -> R<()> {
    if add {
        c.prepare_cached(
            "INSERT OR IGNORE INTO atmls_reactions (group_id, target, sender_did, emoji, received)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            group,
            target.to_vec(),
            did.as_str(),
            emoji,
            to_i64(now)
        ])?;
    } else {
        c.prepare_cached("DELETE FROM atmls_reactions WHERE group_id = ?1 AND target = ?2 AND sender_did = ?3 AND emoji = ?4")?.execute(params![group, target.to_vec(), did.as_str(), emoji],
        )?;
    }
    Ok(())
}

/// The reactions on an item, as `(emoji, account)` in the order they were added.
pub(crate) fn reactions_of(
    c: &Connection,
    group: &[u8],
    target: &[u8; 32],
) -> R<Vec<(String, Did)>> {
    let mut stmt = c.prepare_cached("SELECT emoji, sender_did FROM atmls_reactions WHERE group_id = ?1 AND target = ?2 ORDER BY rowid",
    )?;
    let rows = stmt
        .query_map(params![group, target.to_vec()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(e, d)| {
            Ok((
                e,
                Did::new(&d).map_err(|_| StorageError::Corrupt("reactor did"))?,
            ))
        })
        .collect()
}

/// Moves `did`'s read position forward to `up_to` (row `up_to_rowid`); never back.
pub(crate) fn set_receipt(
    c: &Connection,
    group: &[u8],
    did: &Did,
    up_to: &[u8; 32],
    up_to_rowid: i64,
    now: u64,
) -> R<()> {
    let current: Option<i64> = c
        .query_row(
            "SELECT m.id FROM atmls_receipts r JOIN atmls_messages m
               ON m.group_id = r.group_id AND m.message_id = r.up_to
             WHERE r.group_id = ?1 AND r.did = ?2",
            params![group, did.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if current.is_some_and(|cur| cur >= up_to_rowid) {
        return Ok(());
    }
    c.prepare_cached("INSERT INTO atmls_receipts (group_id, did, up_to, received) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(group_id, did) DO UPDATE SET up_to = excluded.up_to, received = excluded.received")?.execute(params![group, did.as_str(), up_to.to_vec(), to_i64(now)],
    )?;
    Ok(())
}

/// Each account's read position in a group: `(account, newest message read, when)`.
pub(crate) fn receipts_of(c: &Connection, group: &[u8]) -> R<Vec<(Did, [u8; 32], u64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT did, up_to, received FROM atmls_receipts WHERE group_id = ?1 ORDER BY did",
    )?;
    let rows = stmt
        .query_map([group], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(d, id, at)| {
            Ok((
                Did::new(&d).map_err(|_| StorageError::Corrupt("receipt did"))?,
                id.try_into()
                    .map_err(|_| StorageError::Corrupt("receipt id"))?,
                to_u64(at),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Store, MIGRATIONS};
    use super::*;

    #[test]
    fn store_migration_3_backfills_ids_types_and_search() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A database as the previous version left it (user_version 2).
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute_batch(MIGRATIONS[1]).unwrap();
            c.pragma_update(None, "user_version", 2).unwrap();
            let text = Content::text("legacy hello").to_bytes().unwrap();
            for (seq, content) in [(4i64, text), (5, b"garbage".to_vec())] {
                c.execute(
                    "INSERT INTO atmls_messages (group_id, seq, sender_did, sender_installation, content, received, outgoing)
                     VALUES (?1, ?2, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', ?3, ?4, 1, 0)",
                    params![vec![1u8; 32], seq, vec![2u8; 32], content],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        let c = &store.conn;
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        let rows = page(c, &[1u8; 32], None, 10, 0).unwrap();
        assert_eq!(rows.len(), 2);
        let legacy = rows.iter().find(|r| r.seq == 4).unwrap();
        assert_eq!(legacy.type_id, "atmls.dev/text:1.0");
        assert_ne!(
            legacy.message_id,
            rows.iter().find(|r| r.seq == 5).unwrap().message_id
        );
        let found = search(c, None, "\"legacy\"", 10, 0).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].seq, 4);
        // Deterministic: the same group and position give the same id on every device.
        let mut h = Sha256::new();
        h.update(b"atmls/v1/legacy-message-id");
        h.update(32u32.to_be_bytes());
        h.update([1u8; 32]);
        h.update(4i64.to_be_bytes());
        assert_eq!(legacy.message_id[..], h.finalize()[..]);
        // Reopening does not migrate again.
        drop(store);
        assert!(Store::open(&path).is_ok());
    }
}
