//! Attachment blobs waiting to be erased from their store (spec/content.md CONTENT-25k): a
//! deleted or expired message queues its blob's URL in the same transaction that removes the
//! message, and the client erases the queued blobs after the transaction, retrying those the
//! store could not be reached for at the next sync.

use rusqlite::{params, Connection};

use super::StorageError;
use crate::content::{AttachmentSource, Content, EncodedContent};

type R<T> = Result<T, StorageError>;

/// Migration 11: the queue.
pub(super) const MIGRATION_11: &str = r#"
CREATE TABLE atmls_blob_erasures (
    url TEXT PRIMARY KEY,
    group_id BLOB NOT NULL,
    added INTEGER NOT NULL
);
"#;

/// The blob URL of a stored message's content, if it is an attachment kept in a blob store.
fn blob_url(content: &[u8]) -> Option<String> {
    let encoded = EncodedContent::from_bytes(content).ok()?;
    match Content::decode(&encoded) {
        Content::Attachment(a) => match a.source {
            AttachmentSource::Remote(r) => Some(r.url.clone()),
            AttachmentSource::Streamed(r) => Some(r.url.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Queues the blob of `content` (a message of `group` about to be deleted), if it has one.
pub(crate) fn queue(c: &Connection, group: &[u8], content: &[u8], now: i64) -> R<()> {
    match blob_url(content) {
        Some(url) => queue_url(c, group, &url, now),
        None => Ok(()),
    }
}

/// Queues the blob at `url`, stored for `group` (a replaced avatar, GOV-7).
pub(crate) fn queue_url(c: &Connection, group: &[u8], url: &str, now: i64) -> R<()> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO atmls_blob_erasures (url, group_id, added) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![url, group, now])?;
    Ok(())
}

/// The queued blobs, oldest first, at most `limit`: `(url, group id)`.
pub(crate) fn pending(c: &Connection, limit: u32) -> R<Vec<(String, Vec<u8>)>> {
    let mut s = c.prepare_cached(
        "SELECT url, group_id FROM atmls_blob_erasures ORDER BY added, url LIMIT ?1",
    )?;
    let rows = s.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Takes `url` off the queue (erased, or found gone).
pub(crate) fn done(c: &Connection, url: &str) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_blob_erasures WHERE url = ?1")?
        .execute([url])?;
    Ok(())
}
