//! The TOFU store: pinned identity keys per contact, verification and key-change history
//! (spec/trust.md TRUST-5, TRUST-6). Unendorsed keys waiting for the user are kept in memory
//! only: seeing one changes nothing stored.

use rusqlite::{params, Connection, OptionalExtension};

use super::tables::to_i64;
use super::StorageError;
use crate::identity::{Did, PublicKey};
use crate::trust::{ChangeKind, ContactTrust, KeyChange, PinnedKeys};

type R<T> = Result<T, StorageError>;

fn key(v: Vec<u8>, what: &'static str) -> R<PublicKey> {
    let arr: [u8; 32] = v.try_into().map_err(|_| StorageError::Corrupt(what))?;
    Ok(PublicKey(arr))
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The key pinned for `did`, if any: what leaf validation checks certificates against.
pub(crate) fn pinned_key(c: &Connection, did: &Did) -> R<Option<PublicKey>> {
    let v: Option<Vec<u8>> = c
        .query_row(
            "SELECT identity_key FROM atmls_pins WHERE did = ?1",
            [did.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    v.map(|v| key(v, "pinned key")).transpose()
}

/// The key pinned for `did` with its endorsed predecessors (TRUST-14), if pinned.
pub(crate) fn pinned_keys(c: &Connection, did: &Did) -> R<Option<PinnedKeys>> {
    let Some(current) = pinned_key(c, did)? else {
        return Ok(None);
    };
    let mut stmt = c.prepare_cached("SELECT key FROM atmls_pin_predecessors WHERE did = ?1")?;
    let predecessors = stmt
        .query_map([did.as_str()], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|v| key(v, "predecessor key"))
        .collect::<R<Vec<_>>>()?;
    Ok(Some(PinnedKeys {
        current,
        predecessors,
    }))
}

/// Replaces the endorsed predecessors remembered for `did` (TRUST-14).
pub(crate) fn predecessors_set(c: &Connection, did: &Did, keys: &[PublicKey]) -> R<()> {
    c.execute(
        "DELETE FROM atmls_pin_predecessors WHERE did = ?1",
        [did.as_str()],
    )?;
    for k in keys {
        c.execute(
            "INSERT OR IGNORE INTO atmls_pin_predecessors (did, key) VALUES (?1, ?2)",
            params![did.as_str(), k.0.to_vec()],
        )?;
    }
    Ok(())
}

/// Everything pinned about `did`, with its history.
pub(crate) fn contact(c: &Connection, did: &Did) -> R<Option<ContactTrust>> {
    type Row = (Vec<u8>, i64, i64, i64);
    let row: Option<Row> = c
        .query_row(
            "SELECT identity_key, verified, first_seen, declared_at FROM atmls_pins WHERE did = ?1",
            [did.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((k, verified, first_seen, declared_at)) = row else {
        return Ok(None);
    };
    let mut stmt = c.prepare(
        "SELECT old_key, new_key, kind, was_verified, at FROM atmls_pin_history
         WHERE did = ?1 ORDER BY id",
    )?;
    let history = stmt
        .query_map([did.as_str()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|(o, n, kind, v, at)| {
            Ok(KeyChange {
                old_key: key(o, "history key")?,
                new_key: key(n, "history key")?,
                kind: ChangeKind::parse(&kind).ok_or(StorageError::Corrupt("change kind"))?,
                was_verified: v != 0,
                at: u(at),
            })
        })
        .collect::<R<Vec<_>>>()?;
    Ok(Some(ContactTrust {
        did: did.clone(),
        identity_key: key(k, "pinned key")?,
        verified: verified != 0,
        first_seen: u(first_seen),
        declared_at: u(declared_at),
        pending: None,
        history,
    }))
}

/// Pins `key` for a DID seen for the first time (TOFU); no effect if one is pinned.
pub(crate) fn pin_first(
    c: &Connection,
    did: &Did,
    k: &PublicKey,
    declared_at: u64,
    now: u64,
) -> R<()> {
    c.execute(
        "INSERT OR IGNORE INTO atmls_pins (did, identity_key, first_seen, declared_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![did.as_str(), k.0.to_vec(), to_i64(now), to_i64(declared_at)],
    )?;
    Ok(())
}

/// Moves the pin to `new`, recording the change. An endorsed change keeps the verified
/// flag (the verified key vouched for its successor); an accepted one clears it.
pub(crate) fn change_key(
    c: &Connection,
    did: &Did,
    new: &PublicKey,
    declared_at: u64,
    kind: ChangeKind,
    now: u64,
) -> R<()> {
    let Some(cur) = contact(c, did)? else {
        return Err(StorageError::Corrupt("key change for an unpinned contact"));
    };
    c.execute(
        "INSERT INTO atmls_pin_history (did, old_key, new_key, kind, was_verified, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            did.as_str(),
            cur.identity_key.0.to_vec(),
            new.0.to_vec(),
            kind.as_str(),
            i64::from(cur.verified),
            to_i64(now)
        ],
    )?;
    let verified = kind == ChangeKind::Endorsed && cur.verified;
    c.execute(
        "UPDATE atmls_pins SET identity_key = ?2, verified = ?3, declared_at = ?4 WHERE did = ?1",
        params![
            did.as_str(),
            new.0.to_vec(),
            i64::from(verified),
            to_i64(declared_at)
        ],
    )?;
    Ok(())
}

/// Marks a contact verified or not.
pub(crate) fn set_verified(c: &Connection, did: &Did, verified: bool) -> R<()> {
    c.execute(
        "UPDATE atmls_pins SET verified = ?2 WHERE did = ?1",
        params![did.as_str(), i64::from(verified)],
    )?;
    Ok(())
}

/// All pinned contacts' DIDs.
pub(crate) fn contacts(c: &Connection) -> R<Vec<Did>> {
    let mut stmt = c.prepare("SELECT did FROM atmls_pins ORDER BY did")?;
    let dids = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    dids.iter()
        .map(|d| Did::new(d).map_err(|_| StorageError::Corrupt("pinned DID")))
        .collect()
}

/// Remembers revoked installations of `did` (TRUST-12): kept even if the record later drops
/// them.
pub(crate) fn revoked_add(c: &Connection, did: &Did, keys: &[PublicKey], now: u64) -> R<()> {
    for k in keys {
        c.execute(
            "INSERT OR IGNORE INTO atmls_revoked (installation, did, seen) VALUES (?1, ?2, ?3)",
            params![k.0.to_vec(), did.as_str(), to_i64(now)],
        )?;
    }
    Ok(())
}

/// Whether an installation was revoked.
pub(crate) fn is_revoked(c: &Connection, installation: &PublicKey) -> R<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM atmls_revoked WHERE installation = ?1")?
            .query_row([installation.0.to_vec()], |_| Ok(()))
            .optional()?
            .is_some(),
    )
}

/// All revoked installations (usually none: checked once per commit we build).
pub(crate) fn revoked_all(c: &Connection) -> R<std::collections::HashSet<PublicKey>> {
    let mut stmt = c.prepare("SELECT installation FROM atmls_revoked")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|v| key(v, "revoked installation"))
        .collect()
}

/// Queues `did` for a check of its identity key against the directory from `next_try` on
/// (TRUST-23); an earlier time wins over a queued later one. `0` is urgent: checked before
/// the sync pass goes on.
pub(crate) fn verify_enqueue(c: &Connection, did: &Did, next_try: u64) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_verify_queue (did, next_try, attempts) VALUES (?1, ?2, 0)
         ON CONFLICT (did) DO UPDATE SET next_try = MIN(next_try, excluded.next_try)",
    )?
    .execute(params![did.as_str(), to_i64(next_try)])?;
    Ok(())
}

/// Urgent checks left over (over budget, or failed without a retry time): due at `now`.
pub(crate) fn verify_defer_urgent(c: &Connection, now: u64) -> R<()> {
    c.prepare_cached("UPDATE atmls_verify_queue SET next_try = ?1 WHERE next_try = 0")?
        .execute([to_i64(now)])?;
    Ok(())
}

/// Whether an urgent check is queued.
pub(crate) fn verify_urgent(c: &Connection) -> R<bool> {
    Ok(
        c.prepare_cached("SELECT 1 FROM atmls_verify_queue WHERE next_try = 0 LIMIT 1")?
            .exists([])?,
    )
}

/// Up to `limit` queued accounts due at `now`, oldest due first.
pub(crate) fn verify_due(c: &Connection, now: u64, limit: usize) -> R<Vec<(Did, u32)>> {
    let mut stmt = c.prepare_cached(
        "SELECT did, attempts FROM atmls_verify_queue WHERE next_try <= ?1
         ORDER BY next_try, did LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![to_i64(now), to_i64(limit as u64)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(d, a)| {
            let did = Did::new(&d).map_err(|_| StorageError::Corrupt("queued DID"))?;
            Ok((did, u32::try_from(a).unwrap_or(u32::MAX)))
        })
        .collect()
}

/// The check of `did` is done (its key is pinned now, or it will never be).
pub(crate) fn verify_done(c: &Connection, did: &Did) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_verify_queue WHERE did = ?1")?
        .execute([did.as_str()])?;
    Ok(())
}

/// The check of `did` failed; try again at `next_try`.
pub(crate) fn verify_retry_at(c: &Connection, did: &Did, next_try: u64, error: &str) -> R<()> {
    c.prepare_cached(
        "UPDATE atmls_verify_queue SET next_try = ?2, attempts = attempts + 1, last_error = ?3
         WHERE did = ?1",
    )?
    .execute(params![did.as_str(), to_i64(next_try), error])?;
    Ok(())
}
