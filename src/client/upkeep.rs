//! What keeps a device's groups alive for years, run by every sync: queued messages delivered
//! (spec/group.md GROUP-11), device certificates renewed before they expire (spec/identity.md
//! ID-7), and leaf keys rotated on a schedule (spec/group.md GROUP-10).

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::outgoing::Intent;
use super::state::Ctx;
use super::{Client, Error, Session};
use crate::directory::DeviceRecord;
use crate::group::{GroupId, GroupStatus};
use crate::identity::{
    IdentityKeyPair, InstallationCertificate, PublicKey, DEFAULT_CERT_LIFETIME_SECS,
};
use crate::storage::group_state::{self, GroupFlag};
use crate::storage::{tables, StorageError};

/// How long before its end a certificate is renewed by default (ID-7).
pub const DEFAULT_CERT_RENEWAL_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often a device rotates its leaf keys in each group by default (GROUP-10).
pub const DEFAULT_LEAF_ROTATION_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The rotation interval varies by up to this many percent either way, per group and device.
const ROTATION_JITTER_PERCENT: i128 = 15;
/// Scheduled self-updates one sync commits at most; the rest come with the next syncs.
const MAX_ROTATIONS_PER_SYNC: usize = 16;
/// A device holding the identity key reads its account's device records at least this often.
const RENEWAL_SCAN_SECS: u64 = 24 * 3600;

/// The schedule a client keeps (builder options), and when the holder of the identity key
/// next reads the device records (in memory: a restarted client reads them at its first
/// sync).
#[derive(Clone, Debug)]
pub(crate) struct Upkeep {
    /// Renew a certificate with less than this left (capped at a third of its lifetime);
    /// zero: never.
    pub renewal_window: Duration,
    /// Rotate leaf keys this often (±15%); `None`: never.
    pub leaf_rotation: Option<Duration>,
    /// Unix seconds; 0: at the next sync.
    pub next_scan: u64,
}

impl Default for Upkeep {
    fn default() -> Self {
        Upkeep {
            renewal_window: DEFAULT_CERT_RENEWAL_WINDOW,
            leaf_rotation: Some(DEFAULT_LEAF_ROTATION_INTERVAL),
            next_scan: 0,
        }
    }
}

/// How long before its end `c` is renewed (ID-7): the window, but at most a third of the
/// certificate's lifetime, so a fresh certificate is never due.
fn renewal_lead(c: &InstallationCertificate, window: u64) -> u64 {
    window.min(c.expires.saturating_sub(c.created) / 3)
}

/// Whether `c` is due for renewal at `now` (ID-7).
pub(crate) fn renewal_due(c: &InstallationCertificate, now: u64, window: u64) -> bool {
    c.expires.saturating_sub(now) < renewal_lead(c, window)
}

/// Records that our leaf in `group` got a new signature key now (GROUP-10): called where our
/// own commit is merged.
pub(crate) fn leaf_rotated(cx: &Ctx<'_>, group: &GroupId) -> Result<(), StorageError> {
    group_state::set_flag(cx.c, &group.0, GroupFlag::LeafUpdated, cx.now())
}

/// When the leaf last rotated at `last` is due again (GROUP-10): `interval` ± 15%, the offset
/// fixed by the group, the device and `last`, so that devices (and groups) spread out and a
/// device does not draw again at every sync.
pub(crate) fn rotation_due(
    last: u64,
    interval: u64,
    group: &GroupId,
    installation: &PublicKey,
) -> u64 {
    let mut h = Sha256::new();
    h.update(b"atmls/v1/rotation-jitter");
    h.update(&group.0);
    h.update(installation.as_bytes());
    h.update(last.to_be_bytes());
    let d = h.finalize();
    let mut x = [0u8; 8];
    x.copy_from_slice(&d[..8]);
    // -1000 ..= 1000 thousandths of the jitter.
    let r = i128::from(u64::from_be_bytes(x) % 2001) - 1000;
    let offset = i128::from(interval) * ROTATION_JITTER_PERCENT * r / 100_000;
    let due = i128::from(last) + i128::from(interval) + offset;
    u64::try_from(due.max(0)).unwrap_or(u64::MAX)
}

/// Whether a pending proposal removes our own leaf of `g` (our account is leaving).
pub(super) fn own_removal_pending(g: &openmls::prelude::MlsGroup) -> bool {
    let own = g.own_leaf_index();
    g.pending_proposals().any(
        |p| matches!(p.proposal(), openmls::prelude::Proposal::Remove(r) if r.removed() == own),
    )
}

impl Session<'_> {
    /// The sync chore: queued messages, certificate renewal, scheduled leaf rotation. Each
    /// step runs whatever the others did; the first failure is returned.
    pub(crate) async fn upkeep(&mut self) -> Result<(), Error> {
        let mut first: Option<Error> = None;
        let mut note = |r: Result<(), Error>, what: &str| {
            if let Err(e) = r {
                tracing::warn!(error = %e, what, "upkeep step failed");
                first.get_or_insert(e);
            }
        };
        note(self.flush_outbox().await, "message outbox");
        note(self.renew_certificates().await, "certificate renewal");
        note(self.rotate_leaves().await, "leaf rotation");
        first.map_or(Ok(()), Err)
    }

    /// ID-7: a certificate within its renewal window is replaced. A device holding the
    /// identity key certifies itself, and renews every device of the account listed in the
    /// directory (it reads the records at least daily); a device without the key takes the
    /// renewal its account published for it. A new certificate is published, then carried by
    /// new KeyPackages and by an update of our leaf in every group (CRED-8).
    pub(crate) async fn renew_certificates(&mut self) -> Result<(), Error> {
        // A renewal (or rotation) interrupted after its certificate was stored.
        if self.recredential_pending()? {
            self.recredential().await?;
        }
        let window = self.inner.upkeep.renewal_window.as_secs();
        if window == 0 {
            return Ok(());
        }
        let now = self.inner.now();
        let own = self.inner.device.certificate.clone();
        let own_due = renewal_due(&own, now, window);
        let holder = self
            .inner
            .device
            .identity_key
            .as_ref()
            .filter(|k| k.public() == own.identity_key)
            .map(|k| IdentityKeyPair::from_secret_bytes(&k.secret_bytes()[..]))
            .transpose()?;
        match holder {
            Some(key) => {
                if own_due || now >= self.inner.upkeep.next_scan {
                    self.renew_as_holder(&key, now, window).await?;
                }
                Ok(())
            }
            None if own_due => self.take_renewal(now, window).await,
            None => Ok(()),
        }
    }

    /// The holder's renewal: every valid, unrevoked device of ours certified by our key and
    /// due is certified again and its record published; this device's certificate last, then
    /// adopted.
    async fn renew_as_holder(
        &mut self,
        key: &IdentityKeyPair,
        now: u64,
        window: u64,
    ) -> Result<(), Error> {
        let did = self.inner.device.did.clone();
        let me = self.inner.device.installation.public();
        let Some(record) = self.inner.io(self.directory.account(&did)).await? else {
            // Nothing published (yet): the client publishes its records when built.
            return Ok(());
        };
        let declared = &record.declaration;
        if declared.verify().is_err() || declared.identity_key != key.public() {
            // Not our declaration: a rotation made elsewhere is followed (TRUST-14), anything
            // else is the self-check's finding (TRUST-9). A certificate from a replaced key
            // would help nobody.
            tracing::debug!("declared identity key is not ours: no renewal");
            self.inner.upkeep.next_scan = now + RENEWAL_SCAN_SECS;
            return Ok(());
        }
        let revoked = declared.revoked();
        let mut next_scan = now + RENEWAL_SCAN_SECS;
        let mut own_name = None;
        for d in &record.devices {
            let c = &d.certificate;
            if c.installation_key == me {
                own_name = d.display_name.clone();
                continue;
            }
            // An expired device is not revived: it is linked again (TRUST-13).
            if c.did != did
                || c.identity_key != key.public()
                || revoked.contains(&c.installation_key)
                || c.verify(now).is_err()
            {
                continue;
            }
            if !renewal_due(c, now, window) {
                next_scan = next_scan.min(c.expires.saturating_sub(renewal_lead(c, window)));
                continue;
            }
            let renewed = key.certify(
                &did,
                &c.installation_key,
                now,
                now + DEFAULT_CERT_LIFETIME_SECS,
            );
            self.inner
                .io(self.directory.publish_device(&DeviceRecord {
                    certificate: renewed,
                    display_name: d.display_name.clone(),
                }))
                .await?;
        }
        let own = self.inner.device.certificate.clone();
        let renewed = (renewal_due(&own, now, window) && !revoked.contains(&me))
            .then(|| key.certify(&did, &me, now, now + DEFAULT_CERT_LIFETIME_SECS));
        if let Some(cert) = &renewed {
            self.inner
                .io(self.directory.publish_device(&DeviceRecord {
                    certificate: cert.clone(),
                    display_name: own_name,
                }))
                .await?;
        }
        self.inner.upkeep.next_scan = next_scan;
        if let Some(cert) = renewed {
            self.adopt_certificate(cert).await?;
        }
        Ok(())
    }

    /// A device without the identity key: takes the certificate the holder published for it,
    /// from the same key, if it lasts longer than ours and is not itself due.
    async fn take_renewal(&mut self, now: u64, window: u64) -> Result<(), Error> {
        let did = self.inner.device.did.clone();
        let me = self.inner.device.installation.public();
        let own = self.inner.device.certificate.clone();
        let Some(record) = self.inner.io(self.directory.account(&did)).await? else {
            return Ok(());
        };
        let declared = &record.declaration;
        // A new key is a rotation, followed by the trust round (TRUST-14).
        if declared.verify().is_err()
            || declared.identity_key != own.identity_key
            || declared.revoked().contains(&me)
        {
            return Ok(());
        }
        let renewed = record.devices.iter().map(|d| &d.certificate).find(|c| {
            c.did == did
                && c.installation_key == me
                && c.identity_key == own.identity_key
                && c.expires > own.expires
                && c.verify(now).is_ok()
                && !renewal_due(c, now, window)
        });
        match renewed {
            Some(c) => self.adopt_certificate(c.clone()).await,
            None => Ok(()),
        }
    }

    /// GROUP-10: a self-update (new leaf signature and encryption keys) in every group whose
    /// schedule is due, at most [`MAX_ROTATIONS_PER_SYNC`] per sync. A group never rotated is
    /// scheduled from when this device created or joined it.
    pub(crate) async fn rotate_leaves(&mut self) -> Result<(), Error> {
        let Some(every) = self.inner.upkeep.leaf_rotation else {
            return Ok(());
        };
        let interval = every.as_secs().max(1);
        let me = self.inner.device.installation.public();
        let mut first = None;
        let mut done = 0;
        for row in self.inner.read(tables::groups_all)? {
            if row.status != GroupStatus::Active {
                continue;
            }
            let gid = GroupId(row.group_id.clone());
            // Our account asked to leave from another device: a commit of ours would have to
            // include the request that removes this leaf, which openmls refuses.
            if self
                .inner
                .ctx_read(|cx| Ok(cx.peek(&gid, own_removal_pending)?))?
            {
                continue;
            }
            let now = self.inner.now();
            let updated = |c: &_| group_state::flag(c, &gid.0, GroupFlag::LeafUpdated);
            let last = match self.inner.read(updated)? {
                0 => row.created,
                t => t,
            };
            if now < rotation_due(last, interval, &gid, &me) {
                continue;
            }
            if done == MAX_ROTATIONS_PER_SYNC {
                break;
            }
            done += 1;
            match self.run_commit(&gid, Intent::Update).await {
                // Recorded where the commit was merged; again here in case it changed nothing.
                Ok(()) => self.inner.atomic(|cx| leaf_rotated(cx, &gid))?,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduled self-update failed");
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Client {
    /// This device's current installation certificate (renewed by `sync` before it expires,
    /// spec/identity.md ID-7).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # use atmls::{Client, directory::MemoryDirectory, transport::MemoryTransport, storage::Store};
    /// # use atmls::identity::DeviceIdentity;
    /// # let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
    /// # let alice = Client::builder(dir.clone(), net.clone(), Store::in_memory()?)
    /// #     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?)).build().await?;
    /// let cert = alice.certificate().await;
    /// assert_eq!(&cert.did, alice.did());
    /// assert!(cert.expires > cert.created);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn certificate(&self) -> InstallationCertificate {
        self.session().await.inner.device.certificate.clone()
    }

    /// The certificate in each member leaf of `group`, as this device's group state holds it
    /// (for tests of renewal).
    #[cfg(feature = "test-utils")]
    #[doc(hidden)]
    pub async fn leaf_certificates(
        &self,
        group: &GroupId,
    ) -> Result<Vec<InstallationCertificate>, Error> {
        self.session().await.inner.ctx_read(|cx| {
            Ok(cx.peek(group, |g| {
                g.members()
                    .filter_map(|m| {
                        crate::credential::AtmlsIdentity::from_credential(&m.credential)
                            .ok()
                            .map(|id| id.certificate)
                    })
                    .collect()
            })?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Did, InstallationKeyPair};

    fn cert(created: u64, expires: u64) -> InstallationCertificate {
        let did = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        IdentityKeyPair::generate().certify(
            &did,
            &InstallationKeyPair::generate().public(),
            created,
            expires,
        )
    }

    #[test]
    fn id_7_due_within_the_window_or_the_last_third() {
        let day = 24 * 3600;
        let window = DEFAULT_CERT_RENEWAL_WINDOW.as_secs();
        // A year: due in its last 30 days.
        let c = cert(0, 365 * day);
        assert!(!renewal_due(&c, 335 * day - 1, window));
        assert!(renewal_due(&c, 335 * day + 1, window));
        // Expired: due (a holder renews itself; a linked device takes what was published).
        assert!(renewal_due(&c, 400 * day, window));
        // A day: due in its last 8 hours, never when fresh.
        let c = cert(0, day);
        assert!(!renewal_due(&c, 0, window));
        assert!(!renewal_due(&c, 16 * 3600 - 1, window));
        assert!(renewal_due(&c, 16 * 3600 + 1, window));
        // A window of zero: never.
        assert!(!renewal_due(&c, day - 1, 0));
    }

    #[test]
    fn group_10_rotation_jitter_spreads_within_15_percent() {
        let week = DEFAULT_LEAF_ROTATION_INTERVAL.as_secs();
        let device = InstallationKeyPair::generate().public();
        let last = 1_000_000;
        let dues: Vec<u64> = (0..200u8)
            .map(|i| rotation_due(last, week, &GroupId(vec![i; 32]), &device))
            .collect();
        for d in &dues {
            assert!(*d >= last + week * 85 / 100 && *d <= last + week * 115 / 100);
        }
        let (min, max) = (dues.iter().min().unwrap(), dues.iter().max().unwrap());
        assert!(max - min > week / 5, "spread over most of ±15%");
        // Fixed for a group, device and period; another period draws again.
        let g = GroupId(vec![7; 32]);
        assert_eq!(
            rotation_due(last, week, &g, &device),
            rotation_due(last, week, &g, &device)
        );
        let other = InstallationKeyPair::generate().public();
        assert_ne!(
            rotation_due(last, week, &g, &device),
            rotation_due(last, week, &g, &other)
        );
    }
}
