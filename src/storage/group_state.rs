//! What this device keeps per group beside the group row (spec/storage.md STORE-4): flags and
//! times in `atmls_group_flags`, one row per group, and the per-device and per-invite records
//! in tables of their own. Before schema 13 they were values of the account table under keys
//! spelled from the group id (`needs_update:<group>`, …); migration 13 moves them here.

use rusqlite::{params, Connection, OptionalExtension};

use super::tables::to_i64;
use super::StorageError;

type R<T> = Result<T, StorageError>;

/// Migration 13: per-group state as columns and tables.
pub(super) const MIGRATION_13: &str = r#"
CREATE TABLE atmls_group_flags (
    group_id BLOB PRIMARY KEY,
    needs_update INTEGER NOT NULL DEFAULT 0,
    leaf_updated INTEGER NOT NULL DEFAULT 0,
    leave_epoch INTEGER NOT NULL DEFAULT 0,
    resync_asked INTEGER NOT NULL DEFAULT 0,
    join_requests BLOB
);
CREATE TABLE atmls_resync_requests (
    group_id BLOB NOT NULL,
    installation BLOB NOT NULL,
    leaf_key BLOB NOT NULL,
    PRIMARY KEY (group_id, installation)
);
CREATE TABLE atmls_resync_answered (
    group_id BLOB NOT NULL,
    installation BLOB NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (group_id, installation)
);
CREATE TABLE atmls_invite_cursors (
    group_id BLOB NOT NULL,
    invite_id BLOB NOT NULL,
    cursor INTEGER NOT NULL,
    PRIMARY KEY (group_id, invite_id)
);
"#;

/// A per-group value of `atmls_group_flags`: the column is the variant, never a string
/// spelled at the call site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GroupFlag {
    /// 1 when our leaf must be updated at the next chance (a shared last-resort key, KP-8).
    NeedsUpdate,
    /// When our leaf last got a new signature key (unix seconds, GROUP-10); 0: never.
    LeafUpdated,
    /// The epoch in which we asked to leave (GOV-6); 0: we did not.
    LeaveEpoch,
    /// When we last asked to be re-added (unix seconds, AGREE-8); 0: we did not.
    ResyncAsked,
}

impl GroupFlag {
    fn column(self) -> &'static str {
        match self {
            GroupFlag::NeedsUpdate => "needs_update",
            GroupFlag::LeafUpdated => "leaf_updated",
            GroupFlag::LeaveEpoch => "leave_epoch",
            GroupFlag::ResyncAsked => "resync_asked",
        }
    }
}

/// The value of `flag` for `group`; 0 when never set.
pub(crate) fn flag(c: &Connection, group: &[u8], flag: GroupFlag) -> R<u64> {
    let sql = format!(
        "SELECT {} FROM atmls_group_flags WHERE group_id = ?1",
        flag.column()
    );
    let v: Option<i64> = c
        .prepare_cached(&sql)?
        .query_row(params![group], |r| r.get(0))
        .optional()?;
    Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

/// Sets `flag` of `group` to `value`.
pub(crate) fn set_flag(c: &Connection, group: &[u8], flag: GroupFlag, value: u64) -> R<()> {
    let col = flag.column();
    let sql = format!(
        "INSERT INTO atmls_group_flags (group_id, {col}) VALUES (?1, ?2)
         ON CONFLICT(group_id) DO UPDATE SET {col} = excluded.{col}"
    );
    c.prepare_cached(&sql)?
        .execute(params![group, to_i64(value)])?;
    Ok(())
}

/// The pending join requests of `group` (invites, INV-*), as their owner encoded them.
pub(crate) fn join_requests(c: &Connection, group: &[u8]) -> R<Option<Vec<u8>>> {
    let v: Option<Option<Vec<u8>>> = c
        .prepare_cached("SELECT join_requests FROM atmls_group_flags WHERE group_id = ?1")?
        .query_row(params![group], |r| r.get(0))
        .optional()?;
    Ok(v.flatten())
}

/// Replaces the pending join requests of `group`.
pub(crate) fn set_join_requests(c: &Connection, group: &[u8], bytes: &[u8]) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_group_flags (group_id, join_requests) VALUES (?1, ?2)
         ON CONFLICT(group_id) DO UPDATE SET join_requests = excluded.join_requests",
    )?
    .execute(params![group, bytes])?;
    Ok(())
}

/// Records a member device's request to be re-added to `group` (AGREE-8), with the leaf key
/// it still holds there.
pub(crate) fn add_resync_request(
    c: &Connection,
    group: &[u8],
    installation: &[u8; 32],
    leaf_key: &[u8],
) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_resync_requests (group_id, installation, leaf_key) VALUES (?1, ?2, ?3)
         ON CONFLICT(group_id, installation) DO UPDATE SET leaf_key = excluded.leaf_key",
    )?
    .execute(params![group, installation.as_slice(), leaf_key])?;
    Ok(())
}

/// The re-add requests waiting in `group`: installation key and leaf key, oldest device first.
pub(crate) fn resync_requests(c: &Connection, group: &[u8]) -> R<Vec<([u8; 32], Vec<u8>)>> {
    let mut st = c.prepare_cached(
        "SELECT installation, leaf_key FROM atmls_resync_requests WHERE group_id = ?1
         ORDER BY installation",
    )?;
    let rows = st.query_map(params![group], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (installation, leaf_key) = row?;
        let installation = <[u8; 32]>::try_from(installation)
            .map_err(|_| StorageError::Corrupt("resync request installation key"))?;
        out.push((installation, leaf_key));
    }
    Ok(out)
}

/// Drops a re-add request once answered (or found not ours to answer).
pub(crate) fn delete_resync_request(
    c: &Connection,
    group: &[u8],
    installation: &[u8; 32],
) -> R<()> {
    c.prepare_cached(
        "DELETE FROM atmls_resync_requests WHERE group_id = ?1 AND installation = ?2",
    )?
    .execute(params![group, installation.as_slice()])?;
    Ok(())
}

/// When we last answered a re-add request of `installation` in `group`; 0: never.
pub(crate) fn resync_answered(c: &Connection, group: &[u8], installation: &[u8; 32]) -> R<u64> {
    let v: Option<i64> = c
        .prepare_cached(
            "SELECT at FROM atmls_resync_answered WHERE group_id = ?1 AND installation = ?2",
        )?
        .query_row(params![group, installation.as_slice()], |r| r.get(0))
        .optional()?;
    Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

/// Records that we answered `installation`'s re-add request in `group` at `at`.
pub(crate) fn set_resync_answered(
    c: &Connection,
    group: &[u8],
    installation: &[u8; 32],
    at: u64,
) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_resync_answered (group_id, installation, at) VALUES (?1, ?2, ?3)
         ON CONFLICT(group_id, installation) DO UPDATE SET at = excluded.at",
    )?
    .execute(params![group, installation.as_slice(), to_i64(at)])?;
    Ok(())
}

/// How far this device read the mailbox of invite `invite` of `group` (INV-*); 0: not yet.
pub(crate) fn invite_cursor(c: &Connection, group: &[u8], invite: &[u8]) -> R<u64> {
    let v: Option<i64> = c
        .prepare_cached(
            "SELECT cursor FROM atmls_invite_cursors WHERE group_id = ?1 AND invite_id = ?2",
        )?
        .query_row(params![group, invite], |r| r.get(0))
        .optional()?;
    Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

/// Moves the cursor of invite `invite`'s mailbox in `group` to `cursor`.
pub(crate) fn set_invite_cursor(c: &Connection, group: &[u8], invite: &[u8], cursor: u64) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_invite_cursors (group_id, invite_id, cursor) VALUES (?1, ?2, ?3)
         ON CONFLICT(group_id, invite_id) DO UPDATE SET cursor = excluded.cursor",
    )?
    .execute(params![group, invite, to_i64(cursor)])?;
    Ok(())
}

/// Migration 13's data step: every per-group value of the account table moves to its column
/// or table, and its key is deleted. Keys whose group or device part is not hex of the right
/// length were never written by atmls; they are dropped.
pub(super) fn move_account_values_13(c: &Connection) -> R<()> {
    let rows: Vec<(String, Vec<u8>)> = {
        let mut st = c.prepare("SELECT k, v FROM atmls_account")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (key, value) in rows {
        if move_one(c, &key, &value)? {
            c.execute("DELETE FROM atmls_account WHERE k = ?1", params![key])?;
        }
    }
    Ok(())
}

/// Moves one account value if its key is a per-group one; whether it was.
fn move_one(c: &Connection, key: &str, value: &[u8]) -> R<bool> {
    let Some((kind, rest)) = key.split_once(':') else {
        return Ok(false);
    };
    let u64_of = |v: &[u8]| <[u8; 8]>::try_from(v).map(u64::from_be_bytes).unwrap_or(0);
    let (group, second) = match rest.split_once(':') {
        Some((g, s)) => (hex::decode(g).ok(), Some(s)),
        None => (hex::decode(rest).ok(), None),
    };
    let installation = second.and_then(|s| hex::decode(s).ok()?.try_into().ok());
    let flag = match kind {
        "needs_update" => Some(GroupFlag::NeedsUpdate),
        "leaf_updated" => Some(GroupFlag::LeafUpdated),
        "leave_epoch" => Some(GroupFlag::LeaveEpoch),
        "resyncing" => Some(GroupFlag::ResyncAsked),
        "join_requests" | "resync" | "resync_done" | "invite_cursor" => None,
        _ => return Ok(false),
    };
    let Some(group) = group else {
        return Ok(true);
    };
    match (kind, flag, installation, second) {
        (_, Some(flag), _, None) => set_flag(c, &group, flag, u64_of(value))?,
        ("join_requests", _, _, None) => set_join_requests(c, &group, value)?,
        ("resync", _, Some(inst), _) => add_resync_request(c, &group, &inst, value)?,
        ("resync_done", _, Some(inst), _) => set_resync_answered(c, &group, &inst, u64_of(value))?,
        ("invite_cursor", _, _, Some(invite)) => {
            if let Ok(invite) = hex::decode(invite) {
                set_invite_cursor(c, &group, &invite, u64_of(value))?;
            }
        }
        _ => {}
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    // unwrap: tests on an in-memory database they create.
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE atmls_account (k TEXT PRIMARY KEY, v BLOB NOT NULL);")
            .unwrap();
        c.execute_batch(MIGRATION_13).unwrap();
        c
    }

    #[test]
    fn store_4_flags_default_to_zero_and_are_per_group_and_column() {
        let c = db();
        let (g, h) = ([1u8; 32], [2u8; 32]);
        assert_eq!(flag(&c, &g, GroupFlag::LeaveEpoch).unwrap(), 0);
        set_flag(&c, &g, GroupFlag::LeaveEpoch, 7).unwrap();
        set_flag(&c, &g, GroupFlag::NeedsUpdate, 1).unwrap();
        assert_eq!(flag(&c, &g, GroupFlag::LeaveEpoch).unwrap(), 7);
        assert_eq!(flag(&c, &g, GroupFlag::NeedsUpdate).unwrap(), 1);
        assert_eq!(flag(&c, &g, GroupFlag::ResyncAsked).unwrap(), 0);
        assert_eq!(flag(&c, &h, GroupFlag::LeaveEpoch).unwrap(), 0);
        set_join_requests(&c, &g, b"req").unwrap();
        assert_eq!(join_requests(&c, &g).unwrap(), Some(b"req".to_vec()));
        assert_eq!(join_requests(&c, &h).unwrap(), None);
        assert_eq!(flag(&c, &g, GroupFlag::LeaveEpoch).unwrap(), 7);
    }

    #[test]
    fn store_4_resync_requests_and_invite_cursors() {
        let c = db();
        let g = [1u8; 32];
        add_resync_request(&c, &g, &[9; 32], b"old").unwrap();
        add_resync_request(&c, &g, &[9; 32], b"new").unwrap();
        add_resync_request(&c, &g, &[3; 32], b"k").unwrap();
        assert_eq!(
            resync_requests(&c, &g).unwrap(),
            vec![([3; 32], b"k".to_vec()), ([9; 32], b"new".to_vec())]
        );
        delete_resync_request(&c, &g, &[3; 32]).unwrap();
        assert_eq!(resync_requests(&c, &g).unwrap().len(), 1);
        set_resync_answered(&c, &g, &[9; 32], 50).unwrap();
        assert_eq!(resync_answered(&c, &g, &[9; 32]).unwrap(), 50);
        assert_eq!(resync_answered(&c, &g, &[3; 32]).unwrap(), 0);
        set_invite_cursor(&c, &g, b"inv", 4).unwrap();
        assert_eq!(invite_cursor(&c, &g, b"inv").unwrap(), 4);
        assert_eq!(invite_cursor(&c, &g, b"other").unwrap(), 0);
    }

    /// STORE-4: migration 13 moves every per-group account value to its place, deletes its
    /// key, and leaves the account's own values alone.
    #[test]
    fn store_4_migration_13_moves_the_account_values_of_groups() {
        let c = db();
        let g = hex::encode([1u8; 32]);
        let inst = hex::encode([9u8; 32]);
        let invite = hex::encode([5u8; 16]);
        let put = |k: &str, v: &[u8]| {
            c.execute(
                "INSERT INTO atmls_account (k, v) VALUES (?1, ?2)",
                params![k, v],
            )
            .unwrap();
        };
        put(&format!("needs_update:{g}"), &1u64.to_be_bytes());
        put(&format!("leaf_updated:{g}"), &100u64.to_be_bytes());
        put(&format!("leave_epoch:{g}"), &3u64.to_be_bytes());
        put(&format!("resyncing:{g}"), &200u64.to_be_bytes());
        put(&format!("join_requests:{g}"), b"reqs");
        put(&format!("resync:{g}:{inst}"), b"leaf");
        put(&format!("resync_done:{g}:{inst}"), &300u64.to_be_bytes());
        put(&format!("invite_cursor:{g}:{invite}"), &8u64.to_be_bytes());
        put("resync:zz:yy", b"not ours");
        put("did", b"did:plc:a");
        put("welcome_cursor", &5u64.to_be_bytes());
        move_account_values_13(&c).unwrap();
        let g = [1u8; 32];
        assert_eq!(flag(&c, &g, GroupFlag::NeedsUpdate).unwrap(), 1);
        assert_eq!(flag(&c, &g, GroupFlag::LeafUpdated).unwrap(), 100);
        assert_eq!(flag(&c, &g, GroupFlag::LeaveEpoch).unwrap(), 3);
        assert_eq!(flag(&c, &g, GroupFlag::ResyncAsked).unwrap(), 200);
        assert_eq!(join_requests(&c, &g).unwrap(), Some(b"reqs".to_vec()));
        assert_eq!(
            resync_requests(&c, &g).unwrap(),
            vec![([9; 32], b"leaf".to_vec())]
        );
        assert_eq!(resync_answered(&c, &g, &[9; 32]).unwrap(), 300);
        assert_eq!(invite_cursor(&c, &g, &[5; 16]).unwrap(), 8);
        let left: Vec<String> = c
            .prepare("SELECT k FROM atmls_account ORDER BY k")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(left, ["did", "welcome_cursor"]);
    }
}
