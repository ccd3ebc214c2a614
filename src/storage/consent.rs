//! Consent records (spec/consent.md): the decision on each account, the account's incoming
//! policy, and the conversations held back as requests or being left.

use rusqlite::{params, Connection, OptionalExtension};

use super::tables::{account_get, account_set, to_i64};
use super::StorageError;
use crate::trust::{AccountConsent, DeclineReason, IncomingPolicy};

type R<T> = Result<T, StorageError>;

/// Migration 14: consent. Accounts with a DM this device had before are allowed: the device
/// showed those conversations before consent existed (CONSENT-1).
pub(super) const MIGRATION_14: &str = r#"
CREATE TABLE atmls_consent (did TEXT PRIMARY KEY, state INTEGER NOT NULL, updated INTEGER NOT NULL);
CREATE TABLE atmls_group_consent (
    group_id BLOB PRIMARY KEY,
    state INTEGER NOT NULL,
    inviter TEXT NOT NULL,
    since INTEGER NOT NULL,
    reason INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE atmls_join_asked (invite_id BLOB PRIMARY KEY, at INTEGER NOT NULL);
INSERT OR IGNORE INTO atmls_consent (did, state, updated)
    SELECT dm_peer, 1, 0 FROM atmls_groups WHERE dm_peer IS NOT NULL AND status != 3;
"#;

const K_POLICY: &str = "incoming_policy";
const K_POLICY_AT: &str = "incoming_policy_at";
const K_UNSHARED: &str = "consent_unshared";
const K_REQUESTS: &str = "message_requests";

/// Whether unknown accounts' conversations are held back as requests (CONSENT-3); on until
/// turned off.
pub(crate) fn requests_on(c: &Connection) -> R<bool> {
    Ok(account_get(c, K_REQUESTS)?.is_none_or(|v| v != [0]))
}

/// Turns message requests on or off.
pub(crate) fn set_requests(c: &Connection, on: bool) -> R<()> {
    account_set(c, K_REQUESTS, &[u8::from(on)])
}

/// A conversation this device joined but does not show as accepted (CONSENT-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeldBack {
    pub(crate) state: HeldState,
    /// The account whose Welcome added us.
    pub(crate) inviter: String,
    /// When it was joined (unix seconds).
    pub(crate) since: u64,
}

/// Why a conversation is held back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeldState {
    /// A message request, waiting for the user.
    Request,
    /// Waiting for the follow list (policy `following`, CONSENT-4).
    AwaitFollows,
    /// Declined: being left.
    Declined(DeclineReason),
}

impl HeldState {
    fn to_i64(self) -> (i64, i64) {
        match self {
            HeldState::Request => (1, 0),
            HeldState::AwaitFollows => (2, 0),
            HeldState::Declined(r) => (3, r.to_i64()),
        }
    }

    fn from_i64(state: i64, reason: i64) -> Self {
        match state {
            1 => HeldState::Request,
            2 => HeldState::AwaitFollows,
            _ => HeldState::Declined(DeclineReason::from_i64(reason)),
        }
    }
}

/// The decision on `did`.
pub(crate) fn account(c: &Connection, did: &str) -> R<AccountConsent> {
    let v: Option<i64> = c
        .prepare_cached("SELECT state FROM atmls_consent WHERE did = ?1")?
        .query_row(params![did], |r| r.get(0))
        .optional()?;
    Ok(v.map(AccountConsent::from_i64).unwrap_or_default())
}

/// Records this device's decision on `did`. `Unknown` is kept too, so that the account's other
/// devices learn that a block was lifted (CONSENT-7). Its time is the clock's, or one past the
/// newest decision this device knows if that is later: a decision made after reading another
/// device's is newer than it, whatever the clocks say.
pub(crate) fn set_account(c: &Connection, did: &str, consent: AccountConsent, now: u64) -> R<()> {
    let newest: Option<i64> = c
        .prepare_cached("SELECT MAX(updated) FROM atmls_consent")?
        .query_row([], |r| r.get(0))?;
    let at = newest.map_or(now, |n| now.max(n.max(0) as u64 + 1));
    write_account(c, did, consent, at)
}

fn write_account(c: &Connection, did: &str, consent: AccountConsent, at: u64) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_consent (did, state, updated) VALUES (?1, ?2, ?3)
         ON CONFLICT(did) DO UPDATE SET state = ?2, updated = ?3",
    )?
    .execute(params![did, consent.to_i64(), to_i64(at)])?;
    Ok(())
}

/// One decision on an account, with when it was made (CONSENT-7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) did: String,
    pub(crate) state: AccountConsent,
    pub(crate) at: u64,
}

/// Every decision this device holds.
pub(crate) struct Decisions {
    pub(crate) accounts: Vec<Decision>,
    /// The incoming policy and when it was set; `None`: never set.
    pub(crate) policy: Option<(IncomingPolicy, u64)>,
    /// Conversations the user declined (CONSENT-7: the account's other devices decline them
    /// too).
    pub(crate) declined: Vec<Vec<u8>>,
}

/// The whole table, for the account's other devices.
pub(crate) fn decisions(c: &Connection) -> R<Decisions> {
    let mut st = c.prepare_cached("SELECT did, state, updated FROM atmls_consent ORDER BY did")?;
    let rows = st.query_map([], |r| {
        Ok(Decision {
            did: r.get(0)?,
            state: AccountConsent::from_i64(r.get(1)?),
            at: r.get::<_, i64>(2)?.max(0) as u64,
        })
    })?;
    let accounts = rows.collect::<Result<_, _>>()?;
    let policy = match account_get(c, K_POLICY)? {
        Some(_) => Some((policy(c)?, super::tables::account_u64(c, K_POLICY_AT)?)),
        None => None,
    };
    let declined = all_held(c)?
        .into_iter()
        .filter(|(_, h)| h.state == HeldState::Declined(DeclineReason::User))
        .map(|(g, _)| g)
        .collect();
    Ok(Decisions {
        accounts,
        policy,
        declined,
    })
}

/// CONSENT-7: a conversation another device of the account declined is declined here too,
/// if this device holds it as a request; whether it changed anything. An accepted one stays
/// (the user accepted it here).
pub(crate) fn merge_declined(c: &Connection, group: &[u8]) -> R<bool> {
    match held(c, group)? {
        Some(h) if matches!(h.state, HeldState::Request | HeldState::AwaitFollows) => {
            let declined = HeldBack {
                state: HeldState::Declined(DeclineReason::User),
                ..h
            };
            hold(c, group, &declined)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Takes `d` if it is newer than what this device holds (on the same second: a block over an
/// allow, an allow over forgetting). Whether it changed anything.
pub(crate) fn merge_decision(c: &Connection, d: &Decision) -> R<bool> {
    let held: Option<(i64, i64)> = c
        .prepare_cached("SELECT state, updated FROM atmls_consent WHERE did = ?1")?
        .query_row(params![d.did], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let newer = match held {
        None => true,
        Some((state, at)) => (to_i64(d.at), d.state.to_i64()) > (at, state),
    };
    if newer {
        write_account(c, &d.did, d.state, d.at)?;
    }
    Ok(newer && held.map(|(s, _)| s) != Some(d.state.to_i64()))
}

/// Takes the policy if it was set after this device's.
pub(crate) fn merge_policy(c: &Connection, p: &IncomingPolicy, at: u64) -> R<()> {
    let mine = account_get(c, K_POLICY)?.map(|_| super::tables::account_u64(c, K_POLICY_AT));
    let newer = match mine {
        None => true,
        Some(held) => at > held?,
    };
    if newer {
        write_policy(c, p, at)?;
    }
    Ok(())
}

/// Whether this device's table changed since it last reached the account's other devices.
pub(crate) fn unshared(c: &Connection) -> R<bool> {
    Ok(super::tables::account_u64(c, K_UNSHARED)? == 1)
}

/// Marks the table shared or not.
pub(crate) fn set_unshared(c: &Connection, on: bool) -> R<()> {
    super::tables::account_set_u64(c, K_UNSHARED, u64::from(on))
}

/// Allows `did` unless the user blocked it: starting or answering a conversation is consent,
/// but never lifts a block.
pub(crate) fn allow_unless_blocked(c: &Connection, did: &str, now: u64) -> R<()> {
    if account(c, did)? != AccountConsent::Blocked {
        set_account(c, did, AccountConsent::Allowed, now)?;
    }
    Ok(())
}

/// Accepts the held-back `group` started by `inviter`: shown, and its starter allowed.
pub(crate) fn accept(c: &Connection, group: &[u8], inviter: &str, now: u64) -> R<()> {
    release(c, group)?;
    allow_unless_blocked(c, inviter, now)
}

/// Every account with a decision in `state`.
pub(crate) fn accounts_in(c: &Connection, state: AccountConsent) -> R<Vec<String>> {
    let mut st = c.prepare_cached("SELECT did FROM atmls_consent WHERE state = ?1 ORDER BY did")?;
    let rows = st.query_map(params![state.to_i64()], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The account's incoming policy; `everyone` when never set.
pub(crate) fn policy(c: &Connection) -> R<IncomingPolicy> {
    Ok(match account_get(c, K_POLICY)? {
        Some(v) => IncomingPolicy::from_lexicon(&String::from_utf8_lossy(&v)),
        None => IncomingPolicy::Everyone,
    })
}

/// Sets the account's incoming policy at `now` (or one past the policy's time, if later; see
/// [`set_account`]).
pub(crate) fn set_policy(c: &Connection, policy: &IncomingPolicy, now: u64) -> R<()> {
    let held = super::tables::account_u64(c, K_POLICY_AT)?;
    write_policy(c, policy, now.max(held + 1))
}

fn write_policy(c: &Connection, policy: &IncomingPolicy, at: u64) -> R<()> {
    account_set(c, K_POLICY, policy.as_str().as_bytes())?;
    super::tables::account_set_u64(c, K_POLICY_AT, at)
}

/// The conversation's held-back record, if it is not accepted.
pub(crate) fn held(c: &Connection, group: &[u8]) -> R<Option<HeldBack>> {
    Ok(c.prepare_cached(
        "SELECT state, reason, inviter, since FROM atmls_group_consent WHERE group_id = ?1",
    )?
    .query_row(params![group], |r| {
        Ok(HeldBack {
            state: HeldState::from_i64(r.get(0)?, r.get(1)?),
            inviter: r.get(2)?,
            since: r.get::<_, i64>(3)?.max(0) as u64,
        })
    })
    .optional()?)
}

/// Holds the conversation back (or changes why).
pub(crate) fn hold(c: &Connection, group: &[u8], h: &HeldBack) -> R<()> {
    let (state, reason) = h.state.to_i64();
    c.prepare_cached(
        "INSERT INTO atmls_group_consent (group_id, state, inviter, since, reason)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(group_id) DO UPDATE SET state = ?2, reason = ?5",
    )?
    .execute(params![group, state, h.inviter, to_i64(h.since), reason])?;
    Ok(())
}

/// Shows the conversation as accepted.
pub(crate) fn release(c: &Connection, group: &[u8]) -> R<()> {
    c.prepare_cached("DELETE FROM atmls_group_consent WHERE group_id = ?1")?
        .execute(params![group])?;
    Ok(())
}

/// Every held-back conversation, oldest first.
pub(crate) fn all_held(c: &Connection) -> R<Vec<(Vec<u8>, HeldBack)>> {
    let mut st = c.prepare_cached(
        "SELECT group_id, state, reason, inviter, since FROM atmls_group_consent
         ORDER BY since, group_id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get(0)?,
            HeldBack {
                state: HeldState::from_i64(r.get(1)?, r.get(2)?),
                inviter: r.get(3)?,
                since: r.get::<_, i64>(4)?.max(0) as u64,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Notes that the user asked to join by the invite `invite_id` (CONSENT-3: its Welcome is
/// wanted).
pub(crate) fn note_join_asked(c: &Connection, invite_id: &[u8], now: u64) -> R<()> {
    c.prepare_cached(
        "INSERT INTO atmls_join_asked (invite_id, at) VALUES (?1, ?2)
         ON CONFLICT(invite_id) DO UPDATE SET at = ?2",
    )?
    .execute(params![invite_id, to_i64(now)])?;
    Ok(())
}

/// Whether the user asked to join by one of `invite_ids`.
pub(crate) fn join_asked(c: &Connection, invite_ids: &[[u8; 16]]) -> R<bool> {
    let mut st = c.prepare_cached("SELECT 1 FROM atmls_join_asked WHERE invite_id = ?1")?;
    for id in invite_ids {
        if st.exists(params![&id[..]])? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// CONSENT-6: whether a message from `sender` in `group` is hidden: the conversation is held
/// back, or the sender is blocked.
pub(crate) fn hides(c: &Connection, group: &[u8], sender: &str) -> R<bool> {
    Ok(held(c, group)?.is_some() || account(c, sender)? == AccountConsent::Blocked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Store;

    #[test]
    fn consent_records() {
        let s = Store::in_memory().unwrap();
        let c = &s.conn;
        assert_eq!(account(c, "did:plc:a").unwrap(), AccountConsent::Unknown);
        allow_unless_blocked(c, "did:plc:a", 5).unwrap();
        assert_eq!(account(c, "did:plc:a").unwrap(), AccountConsent::Allowed);
        set_account(c, "did:plc:b", AccountConsent::Blocked, 6).unwrap();
        allow_unless_blocked(c, "did:plc:b", 7).unwrap();
        assert_eq!(account(c, "did:plc:b").unwrap(), AccountConsent::Blocked);
        assert_eq!(
            accounts_in(c, AccountConsent::Blocked).unwrap(),
            ["did:plc:b"]
        );
        set_account(c, "did:plc:b", AccountConsent::Unknown, 8).unwrap();
        assert!(accounts_in(c, AccountConsent::Blocked).unwrap().is_empty());
        // Newer wins; on the same second a block wins; an older decision changes nothing.
        let d = |state, at| Decision {
            did: "did:plc:b".into(),
            state,
            at,
        };
        assert!(!merge_decision(c, &d(AccountConsent::Blocked, 7)).unwrap());
        assert!(merge_decision(c, &d(AccountConsent::Blocked, 8)).unwrap());
        assert!(!merge_decision(c, &d(AccountConsent::Allowed, 8)).unwrap());
        assert!(merge_decision(c, &d(AccountConsent::Allowed, 9)).unwrap());
        assert_eq!(account(c, "did:plc:b").unwrap(), AccountConsent::Allowed);
        // A decision after reading one from the future is still the newer one.
        set_account(c, "did:plc:d", AccountConsent::Allowed, 3).unwrap();
        let table = decisions(c).unwrap();
        assert_eq!((table.accounts.len(), table.accounts[2].at), (3, 10));
        assert!(!unshared(c).unwrap());
        set_unshared(c, true).unwrap();
        assert!(unshared(c).unwrap());

        assert_eq!(policy(c).unwrap(), IncomingPolicy::Everyone);
        assert!(requests_on(c).unwrap());
        set_requests(c, false).unwrap();
        assert!(!requests_on(c).unwrap());
        set_requests(c, true).unwrap();
        assert!(requests_on(c).unwrap());
        set_policy(c, &IncomingPolicy::Following, 3).unwrap();
        merge_policy(c, &IncomingPolicy::None, 2).unwrap();
        assert_eq!(policy(c).unwrap(), IncomingPolicy::Following);
        merge_policy(c, &IncomingPolicy::None, 4).unwrap();
        assert_eq!(policy(c).unwrap(), IncomingPolicy::None);
        set_policy(c, &IncomingPolicy::Following, 5).unwrap();
        assert_eq!(policy(c).unwrap(), IncomingPolicy::Following);

        let h = HeldBack {
            state: HeldState::Request,
            inviter: "did:plc:c".into(),
            since: 9,
        };
        hold(c, b"g", &h).unwrap();
        assert_eq!(held(c, b"g").unwrap(), Some(h.clone()));
        assert!(hides(c, b"g", "did:plc:a").unwrap());
        assert!(!hides(c, b"other", "did:plc:a").unwrap());
        let declined = HeldBack {
            state: HeldState::Declined(DeclineReason::User),
            ..h
        };
        hold(c, b"g", &declined).unwrap();
        assert_eq!(all_held(c).unwrap(), [(b"g".to_vec(), declined)]);
        release(c, b"g").unwrap();
        assert_eq!(held(c, b"g").unwrap(), None);

        assert!(!join_asked(c, &[[1; 16]]).unwrap());
        note_join_asked(c, &[1; 16], 10).unwrap();
        assert!(join_asked(c, &[[2; 16], [1; 16]]).unwrap());
    }
}
