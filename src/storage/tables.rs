//! Typed access to our own tables (openmls's are managed by its storage provider).
#![allow(clippy::type_complexity)] // row tuples read straight from SQL

use rusqlite::{params, Connection, OptionalExtension};

use super::StorageError;
use crate::group::{GroupKind, GroupStatus};
use crate::identity::Did;
use crate::transport::{Mailbox, MailboxId};

type R<T> = Result<T, StorageError>;

/// Account values (`atmls_account`).
pub(crate) fn account_get(c: &Connection, k: &str) -> R<Option<Vec<u8>>> {
    Ok(
        c.prepare_cached("SELECT v FROM atmls_account WHERE k = ?1")?
            .query_row([k], |r| r.get(0))
            .optional()?,
    )
}

pub(crate) fn account_set(c: &Connection, k: &str, v: &[u8]) -> R<()> {
    c.prepare_cached("INSERT INTO atmls_account (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v")?.execute(params![k, v],
    )?;
    Ok(())
}

pub(crate) fn account_delete(c: &Connection, k: &str) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_account WHERE k = ?1")?
        .execute([k])?;
    Ok(())
}

pub(crate) fn account_u64(c: &Connection, k: &str) -> R<u64> {
    Ok(account_get(c, k)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

pub(crate) fn account_set_u64(c: &Connection, k: &str, v: u64) -> R<()> {
    account_set(c, k, &v.to_be_bytes())
}

/// Migration 12: mailboxes that move (spec/group.md GROUP-4a).
pub(super) const MIGRATION_12: &str = r#"
ALTER TABLE atmls_groups ADD COLUMN capability BLOB;
CREATE TABLE atmls_past_mailboxes (
    id INTEGER PRIMARY KEY,
    group_id BLOB NOT NULL,
    capability BLOB NOT NULL
);
CREATE INDEX atmls_past_mailboxes_group ON atmls_past_mailboxes(group_id, id);
ALTER TABLE atmls_message_outbox ADD COLUMN capability BLOB;
"#;

/// One row of `atmls_groups`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupRow {
    pub group_id: Vec<u8>,
    /// The id of the current mailbox (the hash of [`Self::capability`]).
    pub mailbox: [u8; 32],
    /// The current mailbox's capability; `None` until the first removal: the one derived from
    /// the group id (GROUP-4, GROUP-4a).
    pub capability: Option<[u8; 32]>,
    /// The last position processed in the current mailbox.
    pub cursor: u64,
    pub kind: GroupKind,
    pub dm_peer: Option<Did>,
    pub status: GroupStatus,
    pub created: u64,
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl GroupRow {
    /// The group's current mailbox, with its capability.
    pub(crate) fn current_mailbox(&self) -> Mailbox {
        match self.capability {
            Some(cap) => Mailbox::from_capability(cap),
            None => crate::group::mailbox_for(&self.group_id),
        }
    }
}

type RawGroup = (
    Vec<u8>,
    Vec<u8>,
    i64,
    i64,
    Option<String>,
    i64,
    i64,
    Option<Vec<u8>>,
);

fn row_to_group(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawGroup> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn decode_group(t: RawGroup) -> R<GroupRow> {
    let (group_id, mailbox, cursor, kind, dm_peer, status, created, capability) = t;
    Ok(GroupRow {
        group_id,
        mailbox: mailbox
            .try_into()
            .map_err(|_| StorageError::Corrupt("mailbox"))?,
        capability: capability
            .map(|c| c.try_into())
            .transpose()
            .map_err(|_| StorageError::Corrupt("mailbox capability"))?,
        cursor: u64::try_from(cursor).map_err(|_| StorageError::Corrupt("cursor"))?,
        kind: GroupKind::from_i64(kind).ok_or(StorageError::Corrupt("group kind"))?,
        dm_peer: dm_peer
            .map(|d| Did::new(&d))
            .transpose()
            .map_err(|_| StorageError::Corrupt("dm peer"))?,
        status: GroupStatus::from_i64(status).ok_or(StorageError::Corrupt("group status"))?,
        created: u64::try_from(created).unwrap_or(0),
    })
}

const GROUP_COLS: &str = "group_id, mailbox, cursor, kind, dm_peer, status, created, capability";

pub(crate) fn group_get(c: &Connection, group_id: &[u8]) -> R<Option<GroupRow>> {
    c.prepare_cached(&format!(
        "SELECT {GROUP_COLS} FROM atmls_groups WHERE group_id = ?1"
    ))?
    .query_row([group_id], row_to_group)
    .optional()?
    .map(decode_group)
    .transpose()
}

pub(crate) fn groups_all(c: &Connection) -> R<Vec<GroupRow>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {GROUP_COLS} FROM atmls_groups ORDER BY created, group_id"
    ))?;
    let rows = stmt
        .query_map([], row_to_group)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(decode_group).collect()
}

pub(crate) fn group_put(c: &Connection, g: &GroupRow) -> R<()> {
    c.execute(
        &format!(
            "INSERT INTO atmls_groups ({GROUP_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(group_id) DO UPDATE SET mailbox = excluded.mailbox, cursor = excluded.cursor,
             kind = excluded.kind, dm_peer = excluded.dm_peer, status = excluded.status,
             capability = excluded.capability"
        ),
        params![
            g.group_id,
            g.mailbox.to_vec(),
            to_i64(g.cursor),
            g.kind.to_i64(),
            g.dm_peer.as_ref().map(|d| d.as_str().to_owned()),
            g.status.to_i64(),
            to_i64(g.created),
            g.capability.map(|c| c.to_vec())
        ],
    )?;
    Ok(())
}

pub(crate) fn group_set_cursor(c: &Connection, group_id: &[u8], cursor: u64) -> R<()> {
    c.prepare_cached("UPDATE atmls_groups SET cursor = ?2 WHERE group_id = ?1")?
        .execute(params![group_id, to_i64(cursor)])?;
    Ok(())
}

/// Moves the group to the mailbox of `capability` (GROUP-4a): read from its start; the
/// capability it leaves is kept for erasures (CONTENT-25k); our positions recorded in the old
/// one mean nothing in the new one.
pub(crate) fn group_move(c: &Connection, group_id: &[u8], capability: [u8; 32]) -> R<()> {
    let row = group_get(c, group_id)?.ok_or(StorageError::Corrupt("moving an unknown group"))?;
    if let Some(old) = row.current_mailbox().post_secret {
        c.prepare_cached(
            "INSERT INTO atmls_past_mailboxes (group_id, capability) VALUES (?1, ?2)",
        )?
        .execute(params![group_id, old.to_vec()])?;
    }
    let id = MailboxId::for_capability(&capability).0;
    c.prepare_cached(
        "UPDATE atmls_groups SET capability = ?2, mailbox = ?3, cursor = 0 WHERE group_id = ?1",
    )?
    .execute(params![group_id, capability.to_vec(), id.to_vec()])?;
    c.prepare_cached("DELETE FROM atmls_own_posts WHERE group_id = ?1")?
        .execute([group_id])?;
    Ok(())
}

/// Every capability the group's mailbox had, newest first: the current one, then those it
/// moved from (GROUP-4a).
pub(crate) fn group_capabilities(c: &Connection, group_id: &[u8]) -> R<Vec<[u8; 32]>> {
    let mut out: Vec<[u8; 32]> = group_get(c, group_id)?
        .and_then(|r| r.current_mailbox().post_secret)
        .into_iter()
        .collect();
    let mut stmt = c.prepare_cached(
        "SELECT capability FROM atmls_past_mailboxes WHERE group_id = ?1 ORDER BY id DESC",
    )?;
    for v in stmt.query_map([group_id], |r| r.get::<_, Vec<u8>>(0))? {
        out.push(
            v?.try_into()
                .map_err(|_| StorageError::Corrupt("past mailbox capability"))?,
        );
    }
    Ok(out)
}

pub(crate) fn group_set_status(c: &Connection, group_id: &[u8], status: GroupStatus) -> R<()> {
    c.prepare_cached("UPDATE atmls_groups SET status = ?2 WHERE group_id = ?1")?
        .execute(params![group_id, status.to_i64()])?;
    Ok(())
}

/// Forgets a group that never got going (its creation's first commit failed): its row, its
/// outgoing commit and its own-post positions.
pub(crate) fn group_delete(c: &Connection, group_id: &[u8]) -> R<()> {
    for sql in [
        "DELETE FROM atmls_groups WHERE group_id = ?1",
        "DELETE FROM atmls_outbox WHERE group_id = ?1",
        "DELETE FROM atmls_own_posts WHERE group_id = ?1",
    ] {
        c.prepare_cached(sql)?.execute(params![group_id])?;
    }
    Ok(())
}

/// Positions of our own posts, skipped when they come back in a fetch.
pub(crate) fn own_post_add(c: &Connection, group_id: &[u8], seq: u64) -> R<()> {
    c.prepare_cached("INSERT OR IGNORE INTO atmls_own_posts (group_id, seq) VALUES (?1, ?2)")?
        .execute(params![group_id, to_i64(seq)])?;
    Ok(())
}

pub(crate) fn own_post_take(c: &Connection, group_id: &[u8], seq: u64) -> R<bool> {
    Ok(
        c.prepare_cached("DELETE FROM atmls_own_posts WHERE group_id = ?1 AND seq = ?2")?
            .execute(params![group_id, to_i64(seq)])?
            > 0,
    )
}

/// A commit we submitted and have not yet seen resolved.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    pub epoch_tag: [u8; 32],
    pub idem: [u8; 16],
    pub commit: Vec<u8>,
    pub welcome: Option<Vec<u8>>,
    /// Welcome mailboxes of the devices being added.
    pub recipients: Vec<[u8; 32]>,
    /// Seed of the reference to the tree its Welcome points to (LG-T-2).
    pub tree_seed: Option<[u8; 32]>,
    /// The KeyPackage ref of each recipient, in the same order (LG-9); `None` in rows
    /// written before they were kept.
    pub recipient_refs: Option<Vec<Vec<u8>>>,
    /// The HPKE init key of each recipient's KeyPackage, in the same order, to which its
    /// Welcome is sealed (GROUP-12); `None` in rows written before they were kept.
    pub recipient_keys: Option<Vec<Vec<u8>>>,
}

/// Refs as `u8 length ‖ bytes` each.
fn encode_refs(refs: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for r in refs {
        out.push(u8::try_from(r.len()).ok()?);
        out.extend_from_slice(r);
    }
    Some(out)
}

fn decode_refs(mut b: &[u8]) -> R<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while let Some((&n, rest)) = b.split_first() {
        let (r, tail) = rest
            .split_at_checked(n as usize)
            .ok_or(StorageError::Corrupt("recipient refs"))?;
        out.push(r.to_vec());
        b = tail;
    }
    Ok(out)
}

/// Init keys as `uint16 length ‖ bytes` each (a post-quantum KEM's keys exceed 255 bytes).
fn encode_keys(keys: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for k in keys {
        out.extend_from_slice(&u16::try_from(k.len()).ok()?.to_be_bytes());
        out.extend_from_slice(k);
    }
    Some(out)
}

fn decode_keys(mut b: &[u8]) -> R<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (n, rest) = b
            .split_first_chunk::<2>()
            .ok_or(StorageError::Corrupt("recipient keys"))?;
        let (k, tail) = rest
            .split_at_checked(usize::from(u16::from_be_bytes(*n)))
            .ok_or(StorageError::Corrupt("recipient keys"))?;
        out.push(k.to_vec());
        b = tail;
    }
    Ok(out)
}

pub(crate) fn outbox_put(c: &Connection, group_id: &[u8], o: &Outgoing) -> R<()> {
    let rec: Vec<u8> = o.recipients.iter().flatten().copied().collect();
    let refs = o.recipient_refs.as_deref().and_then(encode_refs);
    let keys = o.recipient_keys.as_deref().and_then(encode_keys);
    c.prepare_cached("INSERT OR REPLACE INTO atmls_outbox (group_id, epoch_tag, idem, commit_msg, welcome, recipients, tree_seed, recipient_refs, recipient_keys) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(params![group_id, o.epoch_tag.to_vec(), o.idem.to_vec(), o.commit, o.welcome, rec, o.tree_seed.map(|s| s.to_vec()), refs, keys],
    )?;
    Ok(())
}

pub(crate) fn outbox_get(c: &Connection, group_id: &[u8]) -> R<Option<Outgoing>> {
    type Row = (
        Vec<u8>,
        Vec<u8>,
        Vec<u8>,
        Option<Vec<u8>>,
        Vec<u8>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    );
    let row: Option<Row> = c
        .prepare_cached(
            "SELECT epoch_tag, idem, commit_msg, welcome, recipients, tree_seed, recipient_refs, recipient_keys FROM atmls_outbox WHERE group_id = ?1",
        )?
        .query_row([group_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .optional()?;
    row.map(|(t, i, commit, welcome, rec, seed, refs, keys)| {
        Ok(Outgoing {
            epoch_tag: t
                .try_into()
                .map_err(|_| StorageError::Corrupt("epoch tag"))?,
            idem: i
                .try_into()
                .map_err(|_| StorageError::Corrupt("idempotency key"))?,
            commit,
            welcome,
            recipients: rec
                .chunks_exact(32)
                .map(|c| <[u8; 32]>::try_from(c).map_err(|_| StorageError::Corrupt("recipients")))
                .collect::<R<_>>()?,
            tree_seed: seed
                .map(|s| s.try_into().map_err(|_| StorageError::Corrupt("tree seed")))
                .transpose()?,
            recipient_refs: refs.as_deref().map(decode_refs).transpose()?,
            recipient_keys: keys.as_deref().map(decode_keys).transpose()?,
        })
    })
    .transpose()
}

pub(crate) fn outbox_delete(c: &Connection, group_id: &[u8]) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_outbox WHERE group_id = ?1")?
        .execute([group_id])?;
    Ok(())
}

/// Welcomes waiting to be sent (their commit was accepted).
pub(crate) fn welcome_queue(
    c: &Connection,
    mailbox: &[u8; 32],
    idem: &[u8; 16],
    payload: &[u8],
) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_welcome_outbox (mailbox, idem, payload) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![mailbox.to_vec(), idem.to_vec(), payload])?;
    Ok(())
}

pub(crate) fn welcome_pending(c: &Connection) -> R<Vec<(i64, [u8; 32], [u8; 16], Vec<u8>)>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, mailbox, idem, payload FROM atmls_welcome_outbox ORDER BY id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, m, i, p)| {
            Ok((
                id,
                m.try_into()
                    .map_err(|_| StorageError::Corrupt("welcome mailbox"))?,
                i.try_into()
                    .map_err(|_| StorageError::Corrupt("idempotency key"))?,
                p,
            ))
        })
        .collect()
}

pub(crate) fn welcome_sent(c: &Connection, id: i64) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_welcome_outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A sealed ratchet tree to upload before the Welcomes queued with it (LG-T-3).
pub(crate) fn tree_queue(c: &Connection, locator: &[u8; 32], blob: &[u8]) -> R<()> {
    c.prepare_cached("INSERT OR REPLACE INTO atmls_tree_outbox (locator, blob) VALUES (?1, ?2)")?
        .execute(params![locator.to_vec(), blob])?;
    Ok(())
}

/// Locators of the trees waiting for upload (their blobs are read one at a time: each can be
/// megabytes).
pub(crate) fn tree_pending(c: &Connection) -> R<Vec<[u8; 32]>> {
    let mut stmt = c.prepare_cached("SELECT locator FROM atmls_tree_outbox ORDER BY rowid")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|l| {
            l.try_into()
                .map_err(|_| StorageError::Corrupt("tree locator"))
        })
        .collect()
}

pub(crate) fn tree_blob(c: &Connection, locator: &[u8; 32]) -> R<Option<Vec<u8>>> {
    Ok(
        c.prepare_cached("SELECT blob FROM atmls_tree_outbox WHERE locator = ?1")?
            .query_row([locator.as_slice()], |r| r.get(0))
            .optional()?,
    )
}

pub(crate) fn tree_sent(c: &Connection, locator: &[u8; 32]) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_tree_outbox WHERE locator = ?1")?
        .execute([locator.as_slice()])?;
    Ok(())
}

/// Our own published KeyPackages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnKeyPackage {
    pub kp_ref: Vec<u8>,
    pub last_resort: bool,
    pub created: u64,
    pub expires: u64,
}

pub(crate) fn kp_add(c: &Connection, k: &OwnKeyPackage) -> R<()> {
    c.prepare_cached("INSERT OR REPLACE INTO atmls_key_packages (kp_ref, last_resort, created, expires) VALUES (?1, ?2, ?3, ?4)")?.execute(params![k.kp_ref, k.last_resort, to_i64(k.created), to_i64(k.expires)],
    )?;
    Ok(())
}

pub(crate) fn kp_all(c: &Connection) -> R<Vec<OwnKeyPackage>> {
    let mut stmt = c.prepare_cached(
        "SELECT kp_ref, last_resort, created, expires FROM atmls_key_packages ORDER BY created",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(OwnKeyPackage {
                kp_ref: r.get(0)?,
                last_resort: r.get(1)?,
                created: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                expires: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Marks a used KeyPackage for deletion from the directory (done after the local commit).
pub(crate) fn kp_retire(c: &Connection, kp_ref: &[u8]) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_key_packages WHERE kp_ref = ?1")?
        .execute([kp_ref])?;
    c.prepare_cached("INSERT OR IGNORE INTO atmls_kp_deletions (kp_ref) VALUES (?1)")?
        .execute([kp_ref])?;
    Ok(())
}

pub(crate) fn kp_deletions(c: &Connection) -> R<Vec<Vec<u8>>> {
    let mut stmt = c.prepare_cached("SELECT kp_ref FROM atmls_kp_deletions")?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn kp_deleted(c: &Connection, kp_ref: &[u8]) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_kp_deletions WHERE kp_ref = ?1")?
        .execute([kp_ref])?;
    Ok(())
}

/// The canonical DM with `peer`: the smallest group id among live DMs, so that two DMs
/// created concurrently by both sides converge on the same one (GROUP-7).
pub(crate) fn dm_for(c: &Connection, peer: &Did) -> R<Option<Vec<u8>>> {
    Ok(c.prepare_cached("SELECT group_id FROM atmls_groups WHERE dm_peer = ?1 AND kind = 2 AND status != 3 ORDER BY group_id LIMIT 1")?.query_row([peer.as_str()],
        |r| r.get(0),
    )
    .optional()?)
}

/// Used single-use KeyPackages whose private keys are kept until `until` (KP-6).
pub(crate) fn kp_grace_add(c: &Connection, kp_ref: &[u8], until: u64) -> R<()> {
    c.prepare_cached("INSERT OR REPLACE INTO atmls_kp_grace (kp_ref, until) VALUES (?1, ?2)")?
        .execute(params![kp_ref, to_i64(until)])?;
    Ok(())
}

/// Every grace entry (TLS-encoded KeyPackageRef), the longest-kept first: the init keys a
/// sealed Welcome is tried with after the live ones (GROUP-12).
pub(crate) fn kp_grace_all(c: &Connection) -> R<Vec<Vec<u8>>> {
    let mut stmt =
        c.prepare_cached("SELECT kp_ref FROM atmls_kp_grace ORDER BY until DESC, kp_ref")?;
    let rows = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    Ok(rows)
}

/// Takes the grace entries that ended by `now`.
pub(crate) fn kp_grace_take_expired(c: &Connection, now: u64) -> R<Vec<Vec<u8>>> {
    let mut stmt = c.prepare_cached("SELECT kp_ref FROM atmls_kp_grace WHERE until <= ?1")?;
    let rows = stmt
        .query_map([to_i64(now)], |r| r.get(0))?
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    c.prepare_cached("DELETE FROM atmls_kp_grace WHERE until <= ?1")?
        .execute([to_i64(now)])?;
    Ok(rows)
}

// Test code: `unwrap` only on an in-memory store the test fills itself.
#[cfg(test)]
mod tests {
    use super::*;

    /// GROUP-4a: a move starts the new mailbox from its beginning, forgets our positions in
    /// the old one and keeps its capability for erasures; a row from before the move reads as
    /// the mailbox derived from the group id.
    #[test]
    fn group_4a_a_move_keeps_the_capabilities_newest_first() {
        let store = crate::storage::Store::in_memory().unwrap();
        let c = &store.conn;
        let gid = vec![5u8; 32];
        let first = crate::group::mailbox_for(&gid);
        group_put(
            c,
            &GroupRow {
                group_id: gid.clone(),
                mailbox: first.id.0,
                capability: None,
                cursor: 9,
                kind: GroupKind::Group,
                dm_peer: None,
                status: GroupStatus::Active,
                created: 1,
            },
        )
        .unwrap();
        own_post_add(c, &gid, 10).unwrap();
        assert_eq!(
            group_get(c, &gid).unwrap().unwrap().current_mailbox(),
            first
        );
        for cap in [[1u8; 32], [2u8; 32]] {
            group_move(c, &gid, cap).unwrap();
            let row = group_get(c, &gid).unwrap().unwrap();
            assert_eq!(row.current_mailbox(), Mailbox::from_capability(cap));
            assert_eq!(row.mailbox, MailboxId::for_capability(&cap).0);
            assert_eq!(row.cursor, 0);
        }
        assert!(!own_post_take(c, &gid, 10).unwrap());
        let first_cap = first.post_secret.unwrap();
        assert_eq!(
            group_capabilities(c, &gid).unwrap(),
            vec![[2u8; 32], [1u8; 32], first_cap]
        );
        assert!(group_capabilities(c, &[6u8; 32]).unwrap().is_empty());
        assert!(group_move(c, &[6u8; 32], [3; 32]).is_err());
    }
}
