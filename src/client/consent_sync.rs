//! The account's own devices keep the same consent (spec/consent.md CONSENT-7): a group of the
//! account's devices only (`GroupKind::Account`, never shown), in which each device posts the
//! whole table of its decisions after every change, and which every device merges, newest
//! decision first.

use serde::{Deserialize, Serialize};

use super::state::Ctx;
use super::{Error, Session};
use crate::content::{ContentTypeId, EncodedContent};
use crate::group::{GroupId, GroupKind, GroupStatus};
use crate::storage::consent::{self as store, Decision};
use crate::storage::tables;
use crate::trust::AccountConsent;

/// Largest table a device posts or reads (about 40 bytes per account).
const MAX_SNAPSHOT_BYTES: usize = 2 * 1024 * 1024;

/// The content type of a consent table (never shown; only read in an account's own group).
pub(crate) fn type_id() -> Result<ContentTypeId, Error> {
    Ok(ContentTypeId::new("atmls.dev", "consent", 1, 0)?)
}

/// Whether `t` is a consent table (asked of every message received: no allocation).
pub(crate) fn is_table(t: &ContentTypeId) -> bool {
    t.authority() == "atmls.dev"
        && t.type_id() == "consent"
        && t.version_major() == 1
        && t.version_minor() == 0
}

/// What one device posts: every decision it holds, each with when it was made.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct Snapshot {
    v: u8,
    /// (DID, state as stored, unix seconds).
    accounts: Vec<(String, i64, u64)>,
    /// (policy as in the lexicon, unix seconds); `None`: never set.
    policy: Option<(String, u64)>,
    /// Conversations the user declined, as hex group ids (absent from tables of devices
    /// that predate it).
    #[serde(default)]
    declined: Vec<String>,
}

fn snapshot(table: &store::Decisions) -> Result<Vec<u8>, Error> {
    let s = Snapshot {
        v: 1,
        accounts: table
            .accounts
            .iter()
            .map(|d| (d.did.clone(), d.state.to_i64(), d.at))
            .collect(),
        policy: table
            .policy
            .as_ref()
            .map(|(p, at)| (p.as_str().to_owned(), *at)),
        declined: table.declined.iter().map(hex::encode).collect(),
    };
    serde_json::to_vec(&s).map_err(|_| Error::InvalidArgument("consent table does not encode"))
}

/// CONSENT-7: merges a table posted by one of the account's own devices; newer decisions
/// win, and on the same second a block wins over an allow, an allow over forgetting.
/// Effects that need the network (leaving what is now blocked) wait for the next
/// `settle_consent`.
pub(crate) fn merge(cx: &Ctx<'_>, raw: &[u8]) -> Result<(), crate::storage::StorageError> {
    if raw.len() > MAX_SNAPSHOT_BYTES {
        return Ok(());
    }
    let Ok(s) = serde_json::from_slice::<Snapshot>(raw) else {
        tracing::info!("unreadable consent table from an own device: ignored");
        return Ok(());
    };
    if s.v != 1 {
        return Ok(());
    }
    for (did, state, at) in s.accounts {
        let Ok(parsed) = crate::identity::Did::new(&did) else {
            continue;
        };
        let d = Decision {
            did,
            state: AccountConsent::from_i64(state),
            at,
        };
        if store::merge_decision(cx.c, &d)? {
            match d.state {
                AccountConsent::Blocked => super::consent::mark_blocked(cx.c, &parsed, cx.now())?,
                AccountConsent::Allowed => super::consent::release_from(cx.c, &d.did)?,
                _ => {}
            }
        }
    }
    if let Some((p, at)) = s.policy {
        store::merge_policy(cx.c, &crate::trust::IncomingPolicy::from_lexicon(&p), at)?;
    }
    // Leaving them waits for `settle_consent`, like a block's.
    for g in s.declined.iter().filter_map(|h| hex::decode(h).ok()) {
        store::merge_declined(cx.c, &g)?;
    }
    Ok(())
}

impl Session<'_> {
    /// The account's own-device groups this device is in.
    fn account_groups(&self) -> Result<Vec<GroupId>, Error> {
        Ok(self
            .inner
            .read(tables::groups_all)?
            .into_iter()
            .filter(|r| r.kind == GroupKind::Account && r.status == GroupStatus::Active)
            .map(|r| GroupId(r.group_id))
            .collect())
    }

    /// CONSENT-7: posts this device's table to every own-device group, creating one (with
    /// the account's other devices) when there is none. Called with the account lock, after
    /// every decision; a failure leaves the table marked unshared for the next sync.
    pub(crate) async fn share_consent(&mut self) -> Result<(), Error> {
        self.inner.atomic(|cx| store::set_unshared(cx.c, true))?;
        let groups = self.account_groups()?;
        if groups.is_empty() {
            // Creating it adds the account's other devices, and posts the table (run_commit).
            self.create(GroupKind::Account, &[]).await?;
        }
        for g in groups {
            self.share_consent_in(&g).await?;
        }
        self.inner.atomic(|cx| store::set_unshared(cx.c, false))?;
        Ok(())
    }

    /// Posts this device's table to the own-device group `g` (e.g. after adding a device).
    pub(crate) async fn share_consent_in(&mut self, g: &GroupId) -> Result<(), Error> {
        let table = snapshot(&self.inner.read(store::decisions)?)?;
        let content = EncodedContent::new(type_id()?, table);
        self.send(g, &content, true).await?;
        Ok(())
    }

    /// Shares the table after a decision; a failure is logged and left for the next sync
    /// (the decision itself stands).
    pub(crate) async fn share_consent_or_later(&mut self) {
        if let Err(e) = self.share_consent().await {
            tracing::warn!(error = %e, "consent not shared with own devices yet");
        }
    }

    /// Shares the table if an earlier share failed (a sync step).
    pub(crate) async fn share_consent_if_unshared(&mut self) -> Result<(), Error> {
        if self.inner.read(store::unshared)? {
            self.share_consent().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_table_knows_its_own_type_only() {
        assert!(is_table(&type_id().unwrap()));
        for (a, t, maj, min) in [
            ("atmls.dev", "consent", 1, 1),
            ("atmls.dev", "consent", 2, 0),
            ("atmls.dev", "text", 1, 0),
            ("example.com", "consent", 1, 0),
        ] {
            assert!(!is_table(&ContentTypeId::new(a, t, maj, min).unwrap()));
        }
    }
}
