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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use atmls::identity::{unix_now, DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::{DeviceRecord, Directory, MemoryDirectory};
/// let dir = MemoryDirectory::new();
/// let device = DeviceRecord {
///     certificate: dev.certificate.clone(),
///     display_name: Some("laptop".into()),
/// };
/// dir.publish_declaration(&id_key.declare(&did, unix_now())).await?;
/// dir.publish_device(&device).await?;
/// let account = dir.account(&did).await?.ok_or("not published")?;
/// assert_eq!(account.devices, [device]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRecord {
    /// The identity key's certificate for the installation.
    pub certificate: InstallationCertificate,
    /// Optional name shown to the user ("alice's laptop").
    pub display_name: Option<String>,
}

/// What a directory returns for a DID (untrusted until verified).
///
/// ```
/// # use atmls::identity::{unix_now, DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::{AccountRecord, DeviceRecord};
/// let record = AccountRecord {
///     declaration: id_key.declare(&did, unix_now()),
///     devices: vec![DeviceRecord { certificate: dev.certificate.clone(), display_name: None }],
/// };
/// let verified = record.verify(&did, unix_now())?;
/// assert_eq!(verified.devices, [dev.installation.public()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    ///
    /// ```
    /// # use atmls::identity::{unix_now, DeviceIdentity, Did};
    /// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// # let dev = DeviceIdentity::new_account(did.clone());
    /// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
    /// use atmls::directory::{AccountRecord, DeviceRecord};
    /// use atmls::identity::IdentityError;
    /// # let other = DeviceIdentity::new_account(did.clone());
    /// let record = AccountRecord {
    ///     declaration: id_key.declare(&did, unix_now()),
    ///     devices: vec![
    ///         DeviceRecord { certificate: dev.certificate.clone(), display_name: None },
    ///         // Certified by another identity key: not a device of this account.
    ///         DeviceRecord { certificate: other.certificate.clone(), display_name: None },
    ///     ],
    /// };
    /// let verified = record.verify(&did, unix_now())?;
    /// assert_eq!(verified.devices, [dev.installation.public()]);
    /// assert_eq!(verified.rejected_devices.len(), 1);
    /// let someone_else: Did = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?;
    /// let refused = record.verify(&someone_else, unix_now());
    /// assert_eq!(refused, Err(IdentityError::Mismatch("declaration DID")));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use atmls::directory::{DirectoryError, MemoryDirectory};
/// use atmls::{identity::DeviceIdentity, storage::Store, transport::MemoryTransport, Client};
/// let (dir, net) = (Arc::new(MemoryDirectory::new()), Arc::new(MemoryTransport::new()));
/// let alice = Client::builder(dir, net, Store::in_memory()?)
///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
///     .build().await?;
/// // Nobody published an identity for this DID.
/// let stranger = "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?;
/// match alice.dm(&stranger).await {
///     Err(atmls::Error::Directory(e @ DirectoryError::NoIdentity(_))) => {
///         assert!(!e.is_retryable())
///     }
///     other => panic!("expected NoIdentity, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
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
    ///
    /// ```
    /// use atmls::directory::DirectoryError;
    /// assert!(DirectoryError::Unavailable("connection reset".into()).is_retryable());
    /// assert!(!DirectoryError::Refused("not your repository".into()).is_retryable());
    /// ```
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
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// # use atmls::identity::{unix_now, DeviceIdentity, Did};
/// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
/// # let dev = DeviceIdentity::new_account(did.clone());
/// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
/// use atmls::directory::{DeviceRecord, Directory, MemoryDirectory};
/// /// Publishes a new account's identity and first device, on any directory.
/// async fn publish(
///     dir: &dyn Directory,
///     dev: &DeviceIdentity,
/// ) -> Result<(), Box<dyn std::error::Error>> {
///     let key = dev.identity_key.as_ref().ok_or("no identity key")?;
///     dir.publish_declaration(&key.declare(&dev.did, unix_now())).await?;
///     let device = DeviceRecord { certificate: dev.certificate.clone(), display_name: None };
///     Ok(dir.publish_device(&device).await?)
/// }
/// let dir = MemoryDirectory::new();
/// publish(&dir, &dev).await?;
/// let found = dir.account(&did).await?.ok_or("not published")?;
/// assert_eq!(found.verify(&did, unix_now())?.devices, [dev.installation.public()]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    /// The account's declaration and devices, or `None` if it has none.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use atmls::identity::{unix_now, DeviceIdentity, Did};
    /// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// # let dev = DeviceIdentity::new_account(did.clone());
    /// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
    /// use atmls::directory::{Directory, MemoryDirectory};
    /// let dir = MemoryDirectory::new();
    /// assert!(dir.account(&did).await?.is_none());
    /// dir.publish_declaration(&id_key.declare(&did, unix_now())).await?;
    /// let account = dir.account(&did).await?.ok_or("not published")?;
    /// assert_eq!(account.declaration.identity_key, id_key.public());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn account(&self, did: &Did) -> Result<Option<AccountRecord>, DirectoryError>;
    /// All KeyPackages published by the account's devices.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use atmls::directory::{Directory, MemoryDirectory};
    /// use atmls::{identity::DeviceIdentity, storage::Store, transport::MemoryTransport, Client};
    /// let dir = Arc::new(MemoryDirectory::new());
    /// // Building a client publishes its device's KeyPackages.
    /// let net = Arc::new(MemoryTransport::new());
    /// let alice = Client::builder(dir.clone(), net, Store::in_memory()?)
    ///     .identity(DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?))
    ///     .build().await?;
    /// let kps = dir.key_packages(alice.did()).await?;
    /// assert!(!kps.is_empty());
    /// assert!(kps.iter().all(|k| &k.did == alice.did()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn key_packages(&self, did: &Did) -> Result<Vec<KeyPackageRecord>, DirectoryError>;
    /// Publishes (or replaces) the account's identity declaration.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use atmls::identity::{unix_now, DeviceIdentity, Did};
    /// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// # let dev = DeviceIdentity::new_account(did.clone());
    /// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
    /// use atmls::directory::{Directory, MemoryDirectory};
    /// let dir = MemoryDirectory::new();
    /// let declaration = id_key.declare(&did, unix_now());
    /// dir.publish_declaration(&declaration).await?;
    /// let found = dir.account(&did).await?.ok_or("not published")?.declaration;
    /// assert_eq!(found, declaration);
    /// assert!(found.verify().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn publish_declaration(
        &self,
        declaration: &IdentityDeclaration,
    ) -> Result<(), DirectoryError>;
    /// Publishes (or replaces) a device record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use atmls::identity::{unix_now, DeviceIdentity, Did};
    /// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// # let dev = DeviceIdentity::new_account(did.clone());
    /// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
    /// use atmls::directory::{DeviceRecord, Directory, MemoryDirectory};
    /// let dir = MemoryDirectory::new();
    /// dir.publish_declaration(&id_key.declare(&did, unix_now())).await?;
    /// let mut device = DeviceRecord { certificate: dev.certificate.clone(), display_name: None };
    /// dir.publish_device(&device).await?;
    /// device.display_name = Some("phone".into());
    /// dir.publish_device(&device).await?; // replaces the record of the same installation
    /// assert_eq!(dir.account(&did).await?.ok_or("not published")?.devices, [device]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn publish_device(&self, device: &DeviceRecord) -> Result<(), DirectoryError>;
    /// Removes a device record.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use atmls::identity::{unix_now, DeviceIdentity, Did};
    /// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// # let dev = DeviceIdentity::new_account(did.clone());
    /// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
    /// use atmls::directory::{DeviceRecord, Directory, MemoryDirectory};
    /// let dir = MemoryDirectory::new();
    /// dir.publish_declaration(&id_key.declare(&did, unix_now())).await?;
    /// let device = DeviceRecord { certificate: dev.certificate.clone(), display_name: None };
    /// dir.publish_device(&device).await?;
    /// dir.remove_device(&did, &dev.installation.public()).await?;
    /// assert!(dir.account(&did).await?.ok_or("not published")?.devices.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn remove_device(
        &self,
        did: &Did,
        installation: &PublicKey,
    ) -> Result<(), DirectoryError>;
    /// Publishes a KeyPackage.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use atmls::identity::{unix_now, DeviceIdentity, Did};
    /// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// # let dev = DeviceIdentity::new_account(did.clone());
    /// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
    /// use atmls::directory::{Directory, KeyPackageRecord, MemoryDirectory};
    /// # let now = unix_now();
    /// // A stand-in record: the memory directory stores records as given (readers validate them).
    /// let record = KeyPackageRecord {
    ///     did: did.clone(),
    ///     installation_key: dev.installation.public(),
    ///     key_package_ref: vec![1; 32],
    ///     key_package: vec![0; 64],
    ///     ciphersuite: 1,
    ///     last_resort: false,
    ///     created: now,
    ///     expires: now + 3600,
    /// };
    /// let dir = MemoryDirectory::new();
    /// dir.publish_key_package(&record).await?;
    /// assert_eq!(dir.key_packages(&did).await?, [record]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn publish_key_package(&self, record: &KeyPackageRecord) -> Result<(), DirectoryError>;
    /// Deletes a KeyPackage by its ref; deleting a missing one is not an error.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use atmls::identity::{unix_now, DeviceIdentity, Did};
    /// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// # let dev = DeviceIdentity::new_account(did.clone());
    /// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
    /// use atmls::directory::{Directory, KeyPackageRecord, MemoryDirectory};
    /// # let now = unix_now();
    /// // A stand-in record: the memory directory stores records as given (readers validate them).
    /// let record = KeyPackageRecord {
    ///     did: did.clone(),
    ///     installation_key: dev.installation.public(),
    ///     key_package_ref: vec![1; 32],
    ///     key_package: vec![0; 64],
    ///     ciphersuite: 1,
    ///     last_resort: false,
    ///     created: now,
    ///     expires: now + 3600,
    /// };
    /// let dir = MemoryDirectory::new();
    /// dir.publish_key_package(&record).await?;
    /// dir.delete_key_package(&did, &record.key_package_ref).await?;
    /// assert!(dir.key_packages(&did).await?.is_empty());
    /// dir.delete_key_package(&did, &record.key_package_ref).await?; // already gone: fine
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn delete_key_package(
        &self,
        did: &Did,
        key_package_ref: &[u8],
    ) -> Result<(), DirectoryError>;
    /// Deletes the account's KeyPackage records that expired by `now`, including ones this
    /// device no longer tracks (KP-7). Returns how many were deleted.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use atmls::identity::{unix_now, DeviceIdentity, Did};
    /// # let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// # let dev = DeviceIdentity::new_account(did.clone());
    /// # let id_key = dev.identity_key.as_ref().ok_or("no identity key")?;
    /// use atmls::directory::{Directory, KeyPackageRecord, MemoryDirectory};
    /// # let now = unix_now();
    /// // A stand-in record: the memory directory stores records as given (readers validate them).
    /// let record = KeyPackageRecord {
    ///     did: did.clone(),
    ///     installation_key: dev.installation.public(),
    ///     key_package_ref: vec![1; 32],
    ///     key_package: vec![0; 64],
    ///     ciphersuite: 1,
    ///     last_resort: false,
    ///     created: now,
    ///     expires: now + 3600,
    /// };
    /// let expired =
    ///     KeyPackageRecord { key_package_ref: vec![2; 32], expires: now - 1, ..record.clone() };
    /// let dir = MemoryDirectory::new();
    /// dir.publish_key_package(&record).await?;
    /// dir.publish_key_package(&expired).await?;
    /// assert_eq!(dir.prune_key_packages(&did, now).await?, 1);
    /// assert_eq!(dir.key_packages(&did).await?, [record]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn prune_key_packages(&self, did: &Did, now: u64) -> Result<usize, DirectoryError> {
        let _ = (did, now);
        Ok(0)
    }

    /// The accounts `did` follows (ATProto `app.bsky.graph.follow` records), which the
    /// incoming policy `following` reads (spec/consent.md CONSENT-4). `None`: this directory
    /// has no social graph; a conversation the policy would have to judge by it then becomes
    /// a message request, so that nothing is lost.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::directory::{Directory, MemoryDirectory};
    /// use atmls::identity::Did;
    /// let (alice, bob): (Did, Did) =
    ///     ("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb".parse()?);
    /// let dir = MemoryDirectory::new();
    /// dir.set_follows(&alice, vec![bob.clone()]);
    /// assert_eq!(dir.follows(&alice).await?, Some(vec![bob]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn follows(&self, did: &Did) -> Result<Option<Vec<Did>>, DirectoryError> {
        let _ = did;
        Ok(None)
    }

    /// Publishes the account's incoming policy (the declaration's `incomingPolicy`,
    /// CONSENT-2) where the directory keeps one; a directory without a published profile has
    /// nothing to do. The policy is enforced by the account's own devices either way.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::directory::{Directory, MemoryDirectory};
    /// use atmls::trust::IncomingPolicy;
    /// let dir = MemoryDirectory::new();
    /// let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// dir.publish_incoming_policy(&did, &IncomingPolicy::Following).await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    async fn publish_incoming_policy(
        &self,
        did: &Did,
        policy: &crate::trust::IncomingPolicy,
    ) -> Result<(), DirectoryError> {
        let _ = (did, policy);
        Ok(())
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
