//! Rotating the account's messaging identity key with groups carrying on (spec/trust.md
//! TRUST-14): the device holding the key endorses a successor, re-certifies every device of
//! the account under it, and each device re-credentials its leaves by an ordinary update.

use super::outgoing::Intent;
use super::state::{K_CERT, K_IDENTITY};
use super::{Client, Error, Session};
use crate::directory::DeviceRecord;
use crate::group::{GroupError, GroupId, GroupStatus};
use crate::identity::{
    succession, IdentityKeyPair, InstallationCertificate, PublicKey, Succession,
    DEFAULT_CERT_LIFETIME_SECS,
};
use crate::storage::{tables, trust as store, StorageError};
use crate::trust::{ChangeKind, TrustError};

/// A successor key generated but not yet known to be published: kept so that a crash
/// between publishing and recording never loses the account's only identity key.
const K_NEXT_IDENTITY: &str = "identity_secret_next";
/// Set with a new certificate, cleared once every group carries it: a crash in between is
/// finished by the next rotation call or own-rotation check.
const K_RECREDENTIAL: &str = "recredential_pending";

impl Session<'_> {
    /// Publishes `next` as the successor of our identity key and re-certifies the account's
    /// devices under it; returns this device's new certificate.
    async fn publish_rotation(
        &mut self,
        current: &IdentityKeyPair,
        next: &IdentityKeyPair,
    ) -> Result<InstallationCertificate, Error> {
        let did = self.inner.device.did.clone();
        let now = self.inner.now();
        let record = self
            .inner
            .io(self.directory.account(&did))
            .await?
            .ok_or_else(|| crate::directory::DirectoryError::NoIdentity(did.clone()))?;
        let declared = &record.declaration;
        declared.verify()?;
        if declared.identity_key != next.public() {
            // Only a declaration we signed (or an endorsed successor we do not hold) is ours
            // to extend: anything else was written by someone holding the PDS password.
            if declared.identity_key != current.public() {
                return Err(TrustError::UnacceptedKeyChange {
                    did: did.clone(),
                    old: current.public(),
                    new: declared.identity_key,
                    verified: false,
                }
                .into());
            }
            let at = now.max(declared.created.saturating_add(1));
            self.inner
                .io(self
                    .directory
                    .publish_declaration(&current.rotate(declared, next, at)?))
                .await?;
        }
        // Every valid device of ours gets a certificate from the new key, so readers, who
        // check devices against the declared key, keep seeing all of them.
        let revoked = declared.revoked();
        let me = self.inner.device.installation.public();
        let mut devices: Vec<(PublicKey, Option<String>)> = record
            .devices
            .iter()
            .filter(|d| {
                let c = &d.certificate;
                c.did == did
                    && (c.identity_key == current.public() || c.identity_key == next.public())
                    && !revoked.contains(&c.installation_key)
                    && c.verify(now).is_ok()
            })
            .map(|d| (d.certificate.installation_key, d.display_name.clone()))
            .collect();
        // Our own record may be missing (deleted by someone else): we re-certify ourselves.
        if !devices.iter().any(|(k, _)| *k == me) {
            devices.push((me, None));
        }
        let mut own = None;
        for (installation, display_name) in devices {
            let cert = next.certify(&did, &installation, now, now + DEFAULT_CERT_LIFETIME_SECS);
            self.inner
                .io(self.directory.publish_device(&DeviceRecord {
                    certificate: cert.clone(),
                    display_name,
                }))
                .await?;
            if installation == me {
                own = Some(cert);
            }
        }
        own.ok_or(Error::InvalidArgument("own device not certified"))
    }

    /// Takes `cert` (from our account's new key) as this device's certificate, stored with
    /// the new pin of our own DID in one transaction; `identity` replaces the identity key
    /// this device holds (`Some(None)`: it no longer holds one).
    fn install_certificate(
        &mut self,
        cert: InstallationCertificate,
        identity: Option<Option<IdentityKeyPair>>,
        declared_at: u64,
        predecessors: &[PublicKey],
    ) -> Result<(), Error> {
        let did = self.inner.device.did.clone();
        let bytes = serde_json::to_vec(&cert).map_err(|_| StorageError::Corrupt("certificate"))?;
        let new_key = cert.identity_key;
        self.inner.atomic(|cx| {
            tables::account_set(cx.c, K_CERT, &bytes)?;
            match &identity {
                Some(Some(k)) => tables::account_set(cx.c, K_IDENTITY, &k.secret_bytes()[..])?,
                Some(None) => tables::account_delete(cx.c, K_IDENTITY)?,
                None => {}
            }
            tables::account_delete(cx.c, K_NEXT_IDENTITY)?;
            tables::account_set(cx.c, K_RECREDENTIAL, &[1])?;
            if store::pinned_key(cx.c, &did)? != Some(new_key) {
                store::change_key(
                    cx.c,
                    &did,
                    &new_key,
                    declared_at,
                    ChangeKind::Endorsed,
                    cx.now(),
                )?;
            }
            store::predecessors_set(cx.c, &did, predecessors)?;
            Ok::<_, Error>(())
        })?;
        self.inner.device.certificate = cert;
        if let Some(k) = identity {
            self.inner.device.identity_key = k;
        }
        Ok(())
    }

    /// After a new certificate: KeyPackages carrying the old one are withdrawn and replaced,
    /// and every group gets an update carrying the new credential.
    pub(super) async fn recredential(&mut self) -> Result<(), Error> {
        let did = self.inner.device.did.clone();
        // Withdrawn now; their private keys stay for the grace period of KP-6, for inviters
        // who already picked them.
        let keep = self.inner.now() + super::incoming::KEY_PACKAGE_GRACE_SECS;
        for k in self.inner.read(tables::kp_all)? {
            self.inner
                .atomic(|cx| super::keys::retire_own(cx.c, &k.kp_ref, keep))?;
        }
        for r in self.inner.read(tables::kp_deletions)? {
            self.inner
                .io(self.directory.delete_key_package(&did, &r))
                .await?;
            self.inner.atomic(|cx| tables::kp_deleted(cx.c, &r))?;
        }
        self.maintain_key_packages().await?;
        let groups = self.inner.read(tables::groups_all)?;
        for row in groups.iter().filter(|r| r.status == GroupStatus::Active) {
            let gid = GroupId(row.group_id.clone());
            // Our account asked to leave from another device: this leaf goes with the request
            // (and openmls refuses a commit of ours that must include it).
            if self
                .inner
                .ctx_read(|cx| Ok(cx.peek(&gid, super::upkeep::own_removal_pending)?))?
            {
                continue;
            }
            match self.run_commit(&gid, Intent::Update).await {
                // Removed meanwhile: no leaf of ours there to carry the new credential.
                Err(Error::Group(GroupError::NotMember | GroupError::UnknownGroup)) => {}
                r => r?,
            }
        }
        self.inner
            .atomic(|cx| tables::account_delete(cx.c, K_RECREDENTIAL))?;
        Ok(())
    }

    pub(super) fn recredential_pending(&self) -> Result<bool, Error> {
        Ok(self
            .inner
            .read(|c| tables::account_get(c, K_RECREDENTIAL))?
            .is_some())
    }

    /// Takes a renewed certificate from the same identity key (spec/identity.md ID-7): stored
    /// with the re-credential flag in one transaction, then KeyPackages and every group's leaf
    /// carry it (the flag finishes the job after a crash).
    pub(super) async fn adopt_certificate(
        &mut self,
        cert: InstallationCertificate,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(&cert).map_err(|_| StorageError::Corrupt("certificate"))?;
        self.inner.atomic(|cx| {
            tables::account_set(cx.c, K_CERT, &bytes)?;
            tables::account_set(cx.c, K_RECREDENTIAL, &[1])
        })?;
        self.inner.device.certificate = cert;
        self.recredential().await
    }

    /// Follows a rotation of our own account made on another device (TRUST-14): if the
    /// declared key is an endorsed successor of ours and the directory holds a certificate
    /// for this installation from it, takes it and re-credentials. Returns whether it did.
    pub(crate) async fn follow_own_rotation(&mut self) -> Result<bool, Error> {
        if self.recredential_pending()? {
            self.recredential().await?;
            return Ok(true);
        }
        let did = self.inner.device.did.clone();
        let ours = self.inner.device.certificate.identity_key;
        let Some(record) = self.inner.io(self.directory.account(&did)).await? else {
            return Ok(false);
        };
        let declared = &record.declaration;
        if declared.identity_key == ours
            || declared.verify().is_err()
            || !matches!(succession(&ours, declared), Ok(Succession::Endorsed(_)))
        {
            return Ok(false);
        }
        let me = self.inner.device.installation.public();
        let now = self.inner.now();
        let Some(cert) = record
            .devices
            .iter()
            .map(|d| &d.certificate)
            .find(|c| {
                c.did == did
                    && c.installation_key == me
                    && c.identity_key == declared.identity_key
                    && c.verify(now).is_ok()
            })
            .cloned()
        else {
            return Ok(false);
        };
        // An identity key this device held is superseded: keeping it would let a restart
        // republish it over the successor.
        let identity = self.inner.device.identity_key.is_some().then_some(None);
        self.install_certificate(cert, identity, declared.created, &declared.predecessors())?;
        self.inner
            .deferred_events
            .push(super::Event::IdentityKeyRotated {
                did,
                old: ours,
                new: declared.identity_key,
            });
        self.recredential().await?;
        Ok(true)
    }
}

impl Client {
    /// Rotates the account's messaging identity key (TRUST-14): publishes a declaration for a
    /// fresh key endorsed by the current one, re-certifies every device of the account under
    /// it, replaces this device's KeyPackages, and updates this device's leaf in every group.
    /// Contacts follow the endorsement without a warning; the account's other devices follow
    /// at their next [`Client::check_contacts`], [`Client::self_check`] or watch round.
    /// Only a device holding the identity key can rotate. Returns the new key.
    ///
    /// Safe to retry: the successor is stored before it is published, and a retry after a
    /// failure finishes the same rotation.
    ///
    /// ```no_run
    /// # async fn f(client: atmls::Client) -> Result<(), atmls::Error> {
    /// let new_key = client.rotate_identity_key().await?;
    /// println!("identity key is now {}", new_key.fingerprint());
    /// # Ok(()) }
    /// ```
    pub async fn rotate_identity_key(&self) -> Result<PublicKey, Error> {
        let mut s = self.account_session().await;
        if s.recredential_pending()? {
            s.recredential().await?;
            return Ok(s.inner.device.certificate.identity_key);
        }
        // A copy: the key in `inner` is replaced once the rotation is recorded.
        let current = s
            .inner
            .device
            .identity_key
            .as_ref()
            .map(|k| IdentityKeyPair::from_secret_bytes(&k.secret_bytes()[..]))
            .transpose()?
            .ok_or(Error::InvalidArgument(
                "this device does not hold the identity key",
            ))?;
        let next = match s.inner.read(|c| tables::account_get(c, K_NEXT_IDENTITY))? {
            Some(secret) => IdentityKeyPair::from_secret_bytes(&secret)?,
            None => {
                let next = IdentityKeyPair::generate();
                s.inner.atomic(|cx| {
                    tables::account_set(cx.c, K_NEXT_IDENTITY, &next.secret_bytes()[..])
                })?;
                next
            }
        };
        let cert = s.publish_rotation(&current, &next).await?;
        let record = s
            .inner
            .io(s.directory.account(&s.inner.device.did.clone()))
            .await?
            .ok_or(Error::InvalidArgument("declaration vanished"))?;
        let new_key = next.public();
        s.install_certificate(
            cert,
            Some(Some(next)),
            record.declaration.created,
            &record.declaration.predecessors(),
        )?;
        s.recredential().await?;
        Ok(new_key)
    }
}
