//! Trust checks on group members (spec/trust.md TRUST-20 … TRUST-23). They run after a commit
//! or Welcome was merged by the agreement checks (spec/agreement.md), never before: what this
//! device knows (pins, revocations, its clock, directory answers) marks members and holds their
//! messages, and never makes it refuse what other members merge.

use std::time::Duration;

use super::state::Ctx;
use super::{Client, Error, Event, Session};
use crate::credential::AgreedLeaf;
use crate::group::{GroupId, Member};
use crate::identity::{Did, PublicKey, CLOCK_SKEW_SECS};
use crate::storage::trust as store;
use crate::trust::MemberStatus;

/// Accounts looked up per sync by the background check (TRUST-23): a 10,000-member join
/// opens at once and verifies its members over the following syncs.
pub(crate) const VERIFY_BUDGET: usize = 64;
/// How long one background lookup may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between two lookups of an account that keeps failing.
const MAX_BACKOFF_SECS: u64 = 24 * 3600;

/// This device's verdict on a member device certified by `identity_key` (TRUST-20). `existing`:
/// the leaf was already in the group, so an endorsed predecessor's certificate still counts.
pub(crate) fn status_of(
    cx: &Ctx<'_>,
    did: &Did,
    installation: &PublicKey,
    identity_key: &PublicKey,
    existing: bool,
) -> Result<MemberStatus, Error> {
    if store::is_revoked(cx.c, installation)? {
        return Ok(MemberStatus::Revoked);
    }
    Ok(match store::pinned_keys(cx.c, did)? {
        None => MemberStatus::Pending,
        Some(k) if !k.accepts(identity_key, existing) => MemberStatus::Mismatch,
        Some(_) => MemberStatus::Verified,
    })
}

/// Judges leaves a merged commit or a joined Welcome brought in (TRUST-20, TRUST-21): queues
/// the unpinned accounts for the background lookup and returns an event for every leaf that
/// is not verified (pending ones excepted: they are the normal state of a new contact).
pub(crate) fn judge_leaves(
    cx: &Ctx<'_>,
    group: &GroupId,
    leaves: &[(AgreedLeaf, bool)],
) -> Result<Vec<Event>, Error> {
    let now = cx.now();
    let mut events = Vec::new();
    for (leaf, existing) in leaves {
        let id = &leaf.id;
        if id.did == cx.dev.did && id.installation_key == cx.dev.installation.public() {
            continue;
        }
        let mut status = status_of(
            cx,
            &id.did,
            &id.installation_key,
            &id.identity_key,
            *existing,
        )?;
        match status {
            MemberStatus::Pending => store::verify_enqueue(cx.c, &id.did, now)?,
            // The account may have rotated its key (TRUST-14): checked before the sync pass
            // goes on; the event comes from that check if the mismatch stands.
            MemberStatus::Mismatch => {
                store::verify_enqueue(cx.c, &id.did, 0)?;
                continue;
            }
            _ => {}
        }
        // TRUST-21: the certificate's period against this device's clock.
        let current = now < leaf.expires && leaf.created <= now.saturating_add(CLOCK_SKEW_SECS);
        if !current && matches!(status, MemberStatus::Verified | MemberStatus::Pending) {
            status = MemberStatus::Expired;
        }
        if !matches!(status, MemberStatus::Verified | MemberStatus::Pending) {
            events.push(Event::MemberTrust {
                group: group.clone(),
                member: Member {
                    did: id.did.clone(),
                    installation: id.installation_key,
                },
                identity_key: id.identity_key,
                status,
            });
        }
    }
    Ok(events)
}

/// Back-off after `attempts` failed lookups: 1 minute, doubling, at most a day.
fn backoff(attempts: u32) -> u64 {
    60u64
        .saturating_mul(1 << attempts.min(20))
        .min(MAX_BACKOFF_SECS)
}

impl Session<'_> {
    /// The background check (TRUST-23): looks up queued accounts that are due (only the
    /// urgent ones with `urgent_only`), at most [`VERIFY_BUDGET`] per call of the client,
    /// each with a time limit; pins what the directory vouches for and reports member devices
    /// the answer does not vouch for. Failures, a dead account included, back off; none fails
    /// a sync.
    pub(crate) async fn verify_members(&mut self, urgent_only: bool) -> Result<(), Error> {
        let now = self.inner.now();
        let left = VERIFY_BUDGET.saturating_sub(self.lookups);
        let due_at = if urgent_only { 0 } else { now };
        let due = self.inner.read(|c| store::verify_due(c, due_at, left))?;
        for (did, attempts) in due {
            self.lookups += 1;
            let looked = self.pin_from_directory_within(&did, VERIFY_TIMEOUT).await;
            let retry = match looked {
                Ok(Ok(())) => None,
                // A definitive answer that pins nothing (an unendorsed key: its warning is
                // raised; a record that does not verify): asked again a day later.
                Ok(Err(e @ (Error::Trust(_) | Error::Identity(_) | Error::Credential(_)))) => {
                    Some((now + MAX_BACKOFF_SECS, e.to_string()))
                }
                Ok(Err(e)) => Some((now + backoff(attempts), e.to_string())),
                Err(_) => Some((now + backoff(attempts), "timed out".to_string())),
            };
            self.inner.atomic(|cx| match &retry {
                None => store::verify_done(cx.c, &did),
                Some((at, why)) => store::verify_retry_at(cx.c, &did, *at, why),
            })?;
            let ev = self.inner.ctx_read(|cx| mismatches_of(cx, &did))?;
            self.inner.deferred_events.extend(ev);
        }
        Ok(())
    }
}

/// Events for the leaves of `did`, in every group, that its newly pinned key does not vouch for.
fn mismatches_of(cx: &Ctx<'_>, did: &Did) -> Result<Vec<Event>, Error> {
    let mut out = Vec::new();
    for row in crate::storage::tables::groups_all(cx.c)? {
        if row.status == crate::group::GroupStatus::Left {
            continue;
        }
        let gid = GroupId(row.group_id.clone());
        let leaves: Vec<(Member, PublicKey)> = cx.peek(&gid, |g| {
            let r = cx.roster(&gid, g);
            r.leaves_of(did)
                .filter_map(|i| r.get(i).map(|l| (l.member.clone(), l.identity_key)))
                .collect()
        })?;
        for (member, key) in leaves {
            let status = status_of(cx, did, &member.installation, &key, true)?;
            if status.holds_content() {
                out.push(Event::MemberTrust {
                    group: gid.clone(),
                    member,
                    identity_key: key,
                    status,
                });
            }
        }
    }
    Ok(out)
}

impl Client {
    /// Behind [`Conversation::member_trust`](super::Conversation::member_trust).
    pub(crate) async fn member_trust(
        &self,
        group: &GroupId,
    ) -> Result<Vec<(Member, MemberStatus)>, Error> {
        let mut s = self.session().await;
        let now = s.inner.now();
        s.inner.ctx_read(|cx| {
            // Each leaf's certificate period, decoded once (TRUST-21).
            let leaves: Vec<(Member, PublicKey, bool)> = cx.peek(group, |g| {
                g.members()
                    .filter_map(|m| {
                        let c = crate::credential::AtmlsIdentity::from_credential(&m.credential)
                            .ok()?
                            .certificate;
                        let expired =
                            now >= c.expires || c.created > now.saturating_add(CLOCK_SKEW_SECS);
                        let member = Member {
                            did: c.did,
                            installation: c.installation_key,
                        };
                        Some((member, c.identity_key, expired))
                    })
                    .collect()
            })?;
            let mut out = Vec::with_capacity(leaves.len());
            for (m, key, expired) in leaves {
                let mut status = status_of(cx, &m.did, &m.installation, &key, true)?;
                if expired && status == MemberStatus::Verified {
                    status = MemberStatus::Expired;
                }
                out.push((m, status));
            }
            Ok(out)
        })
    }
}
