//! Getting back into a group without user action (spec/agreement.md AGREE-8). A device that can
//! no longer read its group (a restored old database, commits pruned past retention) notices
//! that everything it reads is refused and asks to be re-added; members answer with an
//! ordinary commit that replaces its stale leaf; the device takes the Welcome in place of its
//! old state. The messages of the epochs in between are lost to it.

use super::outgoing::Intent;
use super::{Error, Session};
use crate::group::{GroupId, ResyncRequest};
use crate::identity::PublicKey;
use crate::storage::group_state::{self, GroupFlag};
use crate::transport::{EpochTag, IdempotencyKey};

/// Items refused in a row, none processed, after which a device believes it fell out.
pub(crate) const STALE_RUN: u32 = 3;
/// How often a device asks again, and how long after asking it takes a Welcome for a group it
/// already has; also how often members answer for one device.
pub(crate) const RESYNC_RETRY_SECS: u64 = 3600;
/// How long a device that asked takes a Welcome for a group it has in place of its state.
pub(crate) const RESYNC_ACCEPT_SECS: u64 = 24 * 3600;

impl Session<'_> {
    /// Counts what a sync pass did in `group`: `refused` items in a row at its end, or a reset
    /// when anything was processed.
    pub(crate) fn note_run(&mut self, group: &GroupId, processed: bool, refused: u32) {
        let run = self.inner.refused_runs.entry(group.clone()).or_insert(0);
        if processed {
            *run = 0;
        }
        *run = run.saturating_add(refused);
    }

    /// Asks to be re-added when the last [`STALE_RUN`] items of `group` were all refused, at
    /// most once per [`RESYNC_RETRY_SECS`]. Harmless when wrong: members answer only a device
    /// whose leaf key is not the one it holds.
    pub(crate) async fn ask_resync_if_stale(&mut self, group: &GroupId) -> Result<(), Error> {
        let entered = self.enter_group(group).await;
        let r = self.ask_resync_if_stale_in_group(group).await;
        self.leave_group(entered, group);
        r
    }

    /// [`ask_resync_if_stale`](Self::ask_resync_if_stale) with the group's ordering lock held.
    async fn ask_resync_if_stale_in_group(&mut self, group: &GroupId) -> Result<(), Error> {
        if self.inner.refused_runs.get(group).copied().unwrap_or(0) < STALE_RUN {
            return Ok(());
        }
        let now = self.inner.now();
        let asked = self
            .inner
            .read(|c| group_state::flag(c, &group.0, GroupFlag::ResyncAsked))?;
        if asked.saturating_add(RESYNC_RETRY_SECS) > now {
            return Ok(());
        }
        let leaf_key = self.inner.ctx_read(|cx| {
            Ok(cx.peek(group, |g| {
                g.own_leaf_node()
                    .map(|l| l.signature_key().as_slice().to_vec())
            })?)
        })?;
        let Some(leaf_key) = leaf_key else {
            return Ok(());
        };
        let request = ResyncRequest {
            did: self.inner.device.did.clone(),
            installation: self.inner.device.installation.public(),
            leaf_key,
            created: now,
        };
        let payload =
            crate::group::resync_seal(&group.0, &self.inner.device.installation, &request)?;
        // Under a tag of its own: it holds no epoch, and marks no commit superseded (DS-14).
        let mailbox = self.mailbox(group)?;
        self.inner
            .io(self.transport.send_message(
                &mailbox,
                &EpochTag(rand::random()),
                0,
                &payload,
                &IdempotencyKey::random(),
            ))
            .await?;
        self.inner
            .atomic(|cx| group_state::set_flag(cx.c, &group.0, GroupFlag::ResyncAsked, now))?;
        tracing::info!(%group, "asked to be re-added");
        Ok(())
    }

    /// Answers the re-add requests received in `group` (AGREE-8): one commit per device, at
    /// most once per [`RESYNC_RETRY_SECS`] per device; a request someone else answered first
    /// leaves nothing to commit.
    pub(crate) async fn answer_resyncs(&mut self, group: &GroupId) -> Result<(), Error> {
        let entered = self.enter_group(group).await;
        let r = self.answer_resyncs_in_group(group).await;
        self.leave_group(entered, group);
        r
    }

    /// [`answer_resyncs`](Self::answer_resyncs) with the group's ordering lock held.
    async fn answer_resyncs_in_group(&mut self, group: &GroupId) -> Result<(), Error> {
        // The requests `receive::resync_request` recorded.
        let waiting = self
            .inner
            .read(|c| group_state::resync_requests(c, &group.0))?;
        let now = self.inner.now();
        for (key, stale_key) in waiting {
            let installation = PublicKey(key);
            let done = |s: &mut Self| {
                s.inner
                    .atomic(|cx| group_state::delete_resync_request(cx.c, &group.0, &key))
            };
            let answered = self
                .inner
                .read(|c| group_state::resync_answered(c, &group.0, &key))?;
            let did = self.inner.ctx_read(|cx| {
                Ok(cx.peek(group, |g| {
                    cx.roster(group, g)
                        .leaves()
                        .find(|(_, l)| l.member.installation == installation)
                        .map(|(_, l)| l.member.did.clone())
                })?)
            })?;
            let Some(did) = did.filter(|_| answered.saturating_add(RESYNC_RETRY_SECS) <= now)
            else {
                done(self)?;
                continue;
            };
            match self
                .run_commit(group, Intent::Readd(did, installation, stale_key))
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_retryable() => return Err(e),
                // Not ours to answer (GOV-4), or the device has no package: others may.
                Err(e) => tracing::debug!(error = %e, "re-add request not answered"),
            }
            self.inner.atomic(|cx| {
                group_state::delete_resync_request(cx.c, &group.0, &key)?;
                group_state::set_resync_answered(cx.c, &group.0, &key, now)
            })?;
        }
        Ok(())
    }
}

/// Whether a Welcome for `group`, which this device already has, replaces its state: only
/// when the device asked to be re-added, recently (AGREE-8).
pub(crate) fn takes_resync_welcome(
    c: &rusqlite::Connection,
    group: &GroupId,
    now: u64,
) -> Result<bool, Error> {
    let asked = group_state::flag(c, &group.0, GroupFlag::ResyncAsked)?;
    Ok(asked != 0 && asked.saturating_add(RESYNC_ACCEPT_SECS) > now)
}

impl super::Client {
    /// Posts a re-add request for `group` as if this device had fallen out of it: for tests
    /// of what members answer (AGREE-8).
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn request_resync_for_test(&self, group: &GroupId) -> Result<(), Error> {
        let mut s = self.session().await;
        s.inner.refused_runs.insert(group.clone(), STALE_RUN);
        s.ask_resync_if_stale(group).await
    }
}
