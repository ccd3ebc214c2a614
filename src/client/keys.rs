//! Publishing this device's identity and KeyPackages; looking up and pinning other accounts.

use openmls::prelude::KeyPackage;
use openmls_traits::storage::StorageProvider as _;
use openmls_traits::OpenMlsProvider as _;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use super::{Error, Session};
use crate::directory::{DeviceRecord, VerifiedAccount};
use crate::identity::{Did, PublicKey};
use crate::keypackage::{self, select_per_device};
use crate::storage::tables;

/// Retires one of our KeyPackages (`kp_ref`: the raw hash): withdrawn from the directory at
/// the next round, its private keys deleted from openmls's storage after `keep_until`.
pub(crate) fn retire_own(
    c: &rusqlite::Connection,
    kp_ref: &[u8],
    keep_until: u64,
) -> Result<(), crate::storage::StorageError> {
    use openmls::prelude::tls_codec::Serialize as _;
    tables::kp_retire(c, kp_ref)?;
    // A KeyPackageRef is a hash in a variable-length vector: the same encoding as VLBytes,
    // which is how the grace table keys openmls's storage.
    let key = openmls::prelude::tls_codec::VLBytes::new(kp_ref.to_vec())
        .tls_serialize_detached()
        .map_err(|_| crate::storage::StorageError::Corrupt("key package ref"))?;
    tables::kp_grace_add(c, &key, keep_until)
}

/// Most init keys a sealed Welcome is tried with (GROUP-12): the work a Welcome can cost, at
/// most this many HPKE decapsulations, whoever sent it.
pub(crate) const MAX_WELCOME_KEYS: usize = 64;

/// The KeyPackages whose init keys may open a sealed Welcome (GROUP-12), in the order they
/// are tried, at most [`MAX_WELCOME_KEYS`]: the live ones (newest first: the policy tops up
/// with fresh ones as packages are used), then those in their grace period (KP-6, KP-7,
/// KP-8; kept longest first).
pub(crate) fn welcome_key_refs(
    c: &rusqlite::Connection,
) -> Result<Vec<openmls::prelude::KeyPackageRef>, crate::storage::StorageError> {
    use openmls::prelude::tls_codec::{DeserializeBytes as _, Serialize as _};
    let mut out: Vec<openmls::prelude::KeyPackageRef> = Vec::new();
    let live = tables::kp_all(c)?.into_iter().rev().filter_map(|k| {
        openmls::prelude::tls_codec::VLBytes::new(k.kp_ref)
            .tls_serialize_detached()
            .ok()
    });
    for key in live.chain(tables::kp_grace_all(c)?) {
        if out.len() == MAX_WELCOME_KEYS {
            break;
        }
        let Ok(r) = openmls::prelude::KeyPackageRef::tls_deserialize_exact_bytes(&key) else {
            continue;
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

impl Session<'_> {
    /// Publishes the declaration (if we hold the identity key), our device record, and
    /// KeyPackages.
    pub(crate) async fn publish_identity(&mut self) -> Result<(), Error> {
        let did = self.inner.device.did.clone();
        let public = self.inner.device.identity_key.as_ref().map(|k| k.public());
        if let Some(public) = public {
            let current = self.inner.io(self.directory.account(&did)).await?;
            let declared = current.as_ref().map(|a| &a.declaration);
            let ours = declared.map(|d| d.identity_key) == Some(public);
            // A successor our key endorsed (a rotation made on another device) must not be
            // overwritten by the key it replaced (TRUST-14).
            let superseded = declared.is_some_and(|d| {
                d.verify().is_ok()
                    && matches!(
                        crate::identity::succession(&public, d),
                        Ok(crate::identity::Succession::Endorsed(_))
                    )
            });
            let now = self.inner.now();
            let declaration = match &self.inner.device.identity_key {
                Some(k) if !ours && !superseded => Some(k.declare(&did, now)),
                _ => None,
            };
            if let Some(declaration) = declaration {
                self.inner
                    .io(self.directory.publish_declaration(&declaration))
                    .await?;
            }
        }
        let record = DeviceRecord {
            certificate: self.inner.device.certificate.clone(),
            display_name: None,
        };
        self.inner
            .io(self.directory.publish_device(&record))
            .await?;
        let now = self.inner.now();
        self.inner
            .io(self.directory.prune_key_packages(&did, now))
            .await?;
        self.maintain_key_packages().await
    }

    /// Deletes used and expired KeyPackages from the directory and tops the published set up
    /// to the policy (KP-6, KP-7).
    pub(crate) async fn maintain_key_packages(&mut self) -> Result<(), Error> {
        let did = self.inner.device.did.clone();
        for r in self.inner.read(tables::kp_deletions)? {
            self.inner
                .io(self.directory.delete_key_package(&did, &r))
                .await?;
            self.inner.atomic(|cx| tables::kp_deleted(cx.c, &r))?;
        }
        let now = self.inner.now();
        self.inner.atomic(|cx| {
            for r in tables::kp_grace_take_expired(cx.c, now)? {
                use openmls::prelude::tls_codec::DeserializeBytes as _;
                let Ok(r) = openmls::prelude::KeyPackageRef::tls_deserialize_exact_bytes(&r) else {
                    continue;
                };
                cx.p.storage()
                    .delete_key_package(&r)
                    .map_err(crate::storage::StorageError::Sqlite)?;
            }
            Ok::<_, Error>(())
        })?;
        let own = self.inner.read(tables::kp_all)?;
        for k in own.iter().filter(|k| k.expires <= now + 3600) {
            // Its private keys go once it has expired (a Welcome may still arrive until
            // then), so old init keys do not pile up (forward secrecy).
            self.inner
                .atomic(|cx| retire_own(cx.c, &k.kp_ref, k.expires))?;
            self.inner
                .io(self.directory.delete_key_package(&did, &k.kp_ref))
                .await?;
            self.inner
                .atomic(|cx| tables::kp_deleted(cx.c, &k.kp_ref))?;
        }
        let live: Vec<_> = own.into_iter().filter(|k| k.expires > now + 3600).collect();
        let single = live.iter().filter(|k| !k.last_resort).count();
        let has_last_resort = live.iter().any(|k| k.last_resort);
        let policy = self.inner.policy.clone();
        let mut wanted: Vec<bool> = Vec::new();
        if single < policy.replenish_below.max(1) {
            wanted.extend(std::iter::repeat_n(
                false,
                policy.single_use.saturating_sub(single),
            ));
        }
        if !has_last_resort {
            wanted.push(true);
        }
        if wanted.is_empty() {
            return Ok(());
        }
        // Topping up: also drop expired records this device does not track (KP-7).
        self.inner
            .io(self.directory.prune_key_packages(&did, now))
            .await?;
        let records = self.inner.atomic(|cx| {
            let mut out = Vec::new();
            for &lr in &wanted {
                let rec =
                    keypackage::generate(&cx.p, cx.dev, cx.cs, lr, policy.lifetime_secs, now)?;
                tables::kp_add(
                    cx.c,
                    &tables::OwnKeyPackage {
                        kp_ref: rec.key_package_ref.clone(),
                        last_resort: lr,
                        created: now,
                        expires: rec.expires,
                    },
                )?;
                out.push(rec);
            }
            Ok::<_, Error>(out)
        })?;
        for rec in &records {
            self.inner
                .io(self.directory.publish_key_package(rec))
                .await?;
        }
        Ok(())
    }

    /// Looks up an account, verifies it, and judges its identity key against our pin
    /// (spec/trust.md): endorsed changes are followed, unendorsed ones refused.
    pub(crate) async fn verified_account(&mut self, did: &Did) -> Result<VerifiedAccount, Error> {
        let record = self
            .inner
            .io(self.directory.account(did))
            .await?
            .ok_or_else(|| crate::directory::DirectoryError::NoIdentity(did.clone()))?;
        let account = record.verify_with(
            did,
            self.inner.now(),
            Some(self.inner.verdicts.signatures()),
        )?;
        self.judge(&record.declaration, false)?;
        Ok(account)
    }

    /// Looks up one account in the directory (its lookup given at most `limit`) and pins what
    /// the answer vouches for. The limit bounds only the request: a future holding the state is never
    /// cancelled half-way (`Held::io`).
    pub(crate) async fn pin_from_directory_within(
        &mut self,
        did: &Did,
        limit: std::time::Duration,
    ) -> Result<Result<(), Error>, tokio::time::error::Elapsed> {
        let looked = self
            .inner
            .io(tokio::time::timeout(limit, self.directory.account(did)))
            .await?;
        let record = match looked {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Ok(Err(crate::directory::DirectoryError::NoIdentity(
                    did.clone(),
                )
                .into()))
            }
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(self.pin_records(std::slice::from_ref(did), vec![record]))
    }

    /// Verifies fetched account records (one per DID, in order) and pins them.
    fn pin_records(
        &mut self,
        dids: &[Did],
        records: Vec<crate::directory::AccountRecord>,
    ) -> Result<(), Error> {
        let now = self.inner.now();
        let sigs = self.inner.verdicts.signatures();
        let verified: Vec<_> = records
            .par_iter()
            .zip(dids.par_iter())
            .map(|(r, d)| r.verify_with(d, now, Some(sigs)))
            .collect();
        let mut accounts = Vec::with_capacity(dids.len());
        for (record, account) in records.iter().zip(verified) {
            let account = account?;
            self.judge(&record.declaration, false)?;
            accounts.push(account);
        }
        self.pin_all(&accounts)
    }

    /// One valid KeyPackage per device of each DID, skipping `exclude` devices. A refused
    /// package (KP-1 … KP-5, e.g. one lacking a capability every group requires, CRED-9) is
    /// skipped for the device's other packages; a device with none that fits is skipped; an
    /// account with no device that fits (and none already in) fails the call before anything
    /// changes: `KeyPackagesRefused` when only verdicts on the bytes refused them, else
    /// `NoKeyPackages`. Adding
    /// thousands at once (LG-6): the lookups run first, then the accounts and KeyPackages are
    /// verified on all cores, then everything else goes in order, with the pins in one
    /// transaction.
    pub(crate) async fn collect_key_packages(
        &mut self,
        dids: &[Did],
        exclude: &[PublicKey],
        reserve: bool,
    ) -> Result<Vec<KeyPackage>, Error> {
        let mut fetched = Vec::with_capacity(dids.len());
        for did in dids {
            let record = self
                .inner
                .io(self.directory.account(did))
                .await?
                .ok_or_else(|| crate::directory::DirectoryError::NoIdentity(did.clone()))?;
            let mut records = self.inner.io(self.directory.key_packages(did)).await?;
            // Spread invitations over the published packages, and never hand the same
            // single-use package to two of our own commits (it can only be joined once).
            records.shuffle(&mut rand::thread_rng());
            let published = records.len();
            records.retain(|r| {
                r.last_resort || !self.inner.used_key_packages.contains(&r.key_package_ref)
            });
            let set_aside = records.len() < published;
            fetched.push((did, record, records, set_aside));
        }
        let (crypto, cs, now) = (&self.inner.crypto, self.inner.cs, self.inner.now());
        let sigs = self.inner.verdicts.signatures();
        let checked: Vec<_> = fetched
            .par_iter()
            .map(|(did, record, records, _)| {
                record
                    .verify_with(did, now, Some(sigs))
                    .map(|account| {
                        let selection = select_per_device(records, &account, crypto, cs, now);
                        (account, selection)
                    })
                    .map_err(Error::from)
            })
            .collect();
        let mut out = Vec::new();
        let mut to_pin = Vec::new();
        for ((did, record, _, set_aside), checked) in fetched.iter().zip(checked) {
            let did: &Did = did;
            let judged = checked.and_then(|c| self.judge(&record.declaration, false).map(|()| c));
            let (account, (chosen, refused)) = match judged {
                Ok(c) => c,
                // Our own account's records were replaced by someone else (TRUST-9): add none
                // of "our" devices, but do not let that block our own conversations. The
                // self-check reports it.
                Err(Error::Trust(_)) if did == &self.inner.device.did => continue,
                Err(e) => return Err(e),
            };
            for (rec, why) in &refused {
                tracing::warn!(did = %did, kp = %hex::encode(&rec.key_package_ref), error = %why, "skipping invalid KeyPackage");
            }
            let fresh: Vec<KeyPackage> = chosen
                .into_iter()
                .filter(|(d, _)| !exclude.contains(d))
                .map(|(_, k)| k)
                .collect();
            for k in fresh.iter().filter(|k| reserve && !k.last_resort()) {
                if let Ok(r) = k.hash_ref(&self.inner.crypto) {
                    self.inner.used_key_packages.insert(r.as_slice().to_vec());
                }
            }
            let already = account.devices.iter().any(|d| exclude.contains(d));
            if fresh.is_empty() && !already && did != &self.inner.device.did {
                // Every package refused for what it is, none set aside: a retry reads the
                // same packages and refuses them again (KP-5).
                let settled = !set_aside && refused.iter().all(|(_, e)| !e.is_retryable());
                return Err(match refused.into_iter().next() {
                    Some((_, reason)) if settled => Error::KeyPackagesRefused {
                        did: did.clone(),
                        reason,
                    },
                    _ => Error::NoKeyPackages(did.clone()),
                });
            }
            if reserve && !fresh.is_empty() {
                to_pin.push(account);
            }
            out.extend(fresh);
        }
        self.pin_all(&to_pin)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use openmls::prelude::tls_codec::{Serialize as _, VLBytes};

    use super::*;

    /// GROUP-12: live packages first (newest first), then grace entries (kept longest first),
    /// no repeats, at most [`MAX_WELCOME_KEYS`].
    #[test]
    fn group_12_keys_tried_live_first_then_grace_and_bounded() {
        let store = crate::storage::Store::in_memory().unwrap();
        let c = &store.conn;
        let raw = |i: u32| [i.to_be_bytes().as_slice(), &[0; 28]].concat();
        let encoded = |i: u32| VLBytes::new(raw(i)).tls_serialize_detached().unwrap();
        for i in 0..6u32 {
            tables::kp_add(
                c,
                &tables::OwnKeyPackage {
                    kp_ref: raw(i),
                    last_resort: i == 0,
                    created: 100 + u64::from(i),
                    expires: 10_000,
                },
            )
            .unwrap();
        }
        // A used package: both retired to the grace table and (in a race) still listed.
        tables::kp_grace_add(c, &encoded(5), 50).unwrap();
        for i in 100..200u32 {
            tables::kp_grace_add(c, &encoded(i), u64::from(i)).unwrap();
        }
        let got: Vec<Vec<u8>> = welcome_key_refs(c)
            .unwrap()
            .iter()
            .map(|r| r.as_slice().to_vec())
            .collect();
        assert_eq!(got.len(), MAX_WELCOME_KEYS);
        let want: Vec<Vec<u8>> = (0..6u32)
            .rev()
            .chain((100..200u32).rev())
            .take(MAX_WELCOME_KEYS)
            .map(raw)
            .collect();
        assert_eq!(got, want);
    }
}
