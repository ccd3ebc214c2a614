//! The directory: where accounts publish their identity declaration, devices and KeyPackages,
//! and where others look them up. A trait, so the same client runs on the in-memory
//! directory (tests, demo) and on a real PDS. Everything read from a directory is untrusted
//! until [`AccountRecord::verify`] (and, for KeyPackages, `keypackage::validate_record`) pass.

mod memory;
#[cfg(feature = "pds")]
pub mod pds;

pub use memory::MemoryDirectory;
// Defined where they are used first: an account's verified identity, and a KeyPackage's
// record, which the keypackage layer validates.
pub use crate::identity::VerifiedAccount;
pub use crate::keypackage::KeyPackageRecord;

use async_trait::async_trait;

use crate::identity::{
    Did, IdentityDeclaration, IdentityError, InstallationCertificate, PublicKey,
};

/// A published device: its certificate from the identity key.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRecord {
    /// The identity key's certificate for the installation.
    pub certificate: InstallationCertificate,
    /// Optional name shown to the user ("alice's laptop").
    pub display_name: Option<String>,
}

/// What a directory returns for a DID (untrusted until verified).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountRecord {
    /// The identity declaration.
    pub declaration: IdentityDeclaration,
    /// The published devices.
    pub devices: Vec<DeviceRecord>,
}

impl AccountRecord {
    /// Checks the declaration (ID-3) is for `did`, and each device certificate (ID-4, ID-5) is
    /// for `did` under the declared key. Bad devices are skipped and reported.
    pub fn verify(&self, did: &Did, now: u64) -> Result<VerifiedAccount, IdentityError> {
        self.verify_with(did, now, None)
    }

    /// [`verify`](Self::verify), device certificates answered from `cache` when they verified
    /// before (LG-11).
    pub(crate) fn verify_with(
        &self,
        did: &Did,
        now: u64,
        cache: Option<&crate::identity::VerifiedSignatures>,
    ) -> Result<VerifiedAccount, IdentityError> {
        if &self.declaration.did != did {
            return Err(IdentityError::Mismatch("declaration DID"));
        }
        self.declaration.verify()?;
        let key = self.declaration.identity_key;
        let revoked = self.declaration.revoked();
        let mut devices = Vec::new();
        let mut rejected_devices = Vec::new();
        for d in &self.devices {
            let c = &d.certificate;
            let verdict = if revoked.contains(&c.installation_key) {
                Err(IdentityError::Revoked)
            } else if &c.did != did {
                Err(IdentityError::Mismatch("device DID"))
            } else if c.identity_key != key {
                Err(IdentityError::Mismatch("device identity key"))
            } else {
                c.verify_with(now, cache)
            };
            match verdict {
                Ok(()) if !devices.contains(&c.installation_key) => {
                    devices.push(c.installation_key)
                }
                Ok(()) => {}
                Err(e) => rejected_devices.push((c.installation_key, e)),
            }
        }
        Ok(VerifiedAccount {
            did: did.clone(),
            identity_key: key,
            declared_at: self.declaration.created,
            predecessors: self.declaration.predecessors(),
            devices,
            rejected_devices,
        })
    }
}

/// Errors of a directory.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DirectoryError {
    /// The directory could not be reached or failed; retrying may help.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The directory refused the request (not allowed, bad record); retrying will not help.
    #[error("directory refused: {0}")]
    Refused(String),
    /// The DID has no messaging identity published.
    #[error("{0} has no messaging identity")]
    NoIdentity(Did),
}

impl DirectoryError {
    /// Whether retrying can help.
    pub fn is_retryable(&self) -> bool {
        match self {
            DirectoryError::Unavailable(_) => true,
            DirectoryError::Refused(_) | DirectoryError::NoIdentity(_) => false,
        }
    }
}

/// Where identities, devices and KeyPackages are published and found.
///
/// Implementations: [`MemoryDirectory`] here; the PDS directory behind the `pds` feature.
/// Publishing methods act for the account the directory is logged in as (the in-memory one
/// accepts any DID, which lets tests play an attacker who holds a PDS password).
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// The account's declaration and devices, or `None` if it has none.
    async fn account(&self, did: &Did) -> Result<Option<AccountRecord>, DirectoryError>;
    /// All KeyPackages published by the account's devices.
    async fn key_packages(&self, did: &Did) -> Result<Vec<KeyPackageRecord>, DirectoryError>;
    /// Publishes (or replaces) the account's identity declaration.
    async fn publish_declaration(
        &self,
        declaration: &IdentityDeclaration,
    ) -> Result<(), DirectoryError>;
    /// Publishes (or replaces) a device record.
    async fn publish_device(&self, device: &DeviceRecord) -> Result<(), DirectoryError>;
    /// Removes a device record.
    async fn remove_device(
        &self,
        did: &Did,
        installation: &PublicKey,
    ) -> Result<(), DirectoryError>;
    /// Publishes a KeyPackage.
    async fn publish_key_package(&self, record: &KeyPackageRecord) -> Result<(), DirectoryError>;
    /// Deletes a KeyPackage by its ref; deleting a missing one is not an error.
    async fn delete_key_package(
        &self,
        did: &Did,
        key_package_ref: &[u8],
    ) -> Result<(), DirectoryError>;
    /// Deletes the account's KeyPackage records that expired by `now`, including ones this
    /// device no longer tracks (KP-7). Returns how many were deleted.
    async fn prune_key_packages(&self, did: &Did, now: u64) -> Result<usize, DirectoryError> {
        let _ = (did, now);
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DeviceIdentity, IdentityKeyPair, InstallationKeyPair};

    #[test]
    fn account_verify_skips_bad_devices() {
        let did = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
        let dev = DeviceIdentity::new_account(did.clone());
        let id = dev.identity_key.as_ref().unwrap();
        let now = crate::identity::unix_now();
        let forged = IdentityKeyPair::generate().certify(
            &did,
            &InstallationKeyPair::generate().public(),
            now,
            now + 10,
        );
        let rec = AccountRecord {
            declaration: id.declare(&did, now),
            devices: vec![
                DeviceRecord {
                    certificate: dev.certificate.clone(),
                    display_name: None,
                },
                DeviceRecord {
                    certificate: forged,
                    display_name: None,
                },
            ],
        };
        let v = rec.verify(&did, now).unwrap();
        assert_eq!(v.devices, vec![dev.installation.public()]);
        assert_eq!(v.rejected_devices.len(), 1);
        let other = Did::new("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
        assert_eq!(
            rec.verify(&other, now),
            Err(IdentityError::Mismatch("declaration DID"))
        );
    }
}
