//! An in-memory directory shared by the clients of one process (tests and the demo).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{AccountRecord, DeviceRecord, Directory, DirectoryError, KeyPackageRecord};
use crate::identity::{Did, IdentityDeclaration, PublicKey};

#[derive(Default)]
struct Entry {
    declaration: Option<IdentityDeclaration>,
    devices: BTreeMap<PublicKey, DeviceRecord>,
    key_packages: BTreeMap<Vec<u8>, KeyPackageRecord>,
    follows: Option<Vec<Did>>,
}

/// A directory held in memory. Like a PDS it stores what it is given without judging it;
/// readers verify.
///
/// ```
/// # tokio_test_block(async {
/// use atmls::directory::{Directory, MemoryDirectory};
/// let dir = MemoryDirectory::new();
/// let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
/// assert!(dir.account(&did).await.unwrap().is_none());
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
#[derive(Default)]
pub struct MemoryDirectory {
    entries: Mutex<HashMap<Did, Entry>>,
}

impl MemoryDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<Did, Entry>) -> R) -> Result<R, DirectoryError> {
        let mut g = self
            .entries
            .lock()
            .map_err(|_| DirectoryError::Unavailable("directory lock poisoned".into()))?;
        Ok(f(&mut g))
    }

    /// Sets the accounts `did` follows, as its `app.bsky.graph.follow` records would
    /// (spec/consent.md CONSENT-4).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use atmls::directory::{Directory, MemoryDirectory};
    /// let dir = MemoryDirectory::new();
    /// let alice = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// assert_eq!(dir.follows(&alice).await?, None);
    /// dir.set_follows(&alice, vec![]);
    /// assert_eq!(dir.follows(&alice).await?, Some(vec![]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn set_follows(&self, did: &Did, follows: Vec<Did>) {
        if let Ok(mut g) = self.entries.lock() {
            g.entry(did.clone()).or_default().follows = Some(follows);
        }
    }
}

#[async_trait]
impl Directory for MemoryDirectory {
    async fn follows(&self, did: &Did) -> Result<Option<Vec<Did>>, DirectoryError> {
        self.with(|m| m.get(did).and_then(|e| e.follows.clone()))
    }
    async fn account(&self, did: &Did) -> Result<Option<AccountRecord>, DirectoryError> {
        self.with(|m| {
            m.get(did).and_then(|e| {
                e.declaration.clone().map(|declaration| AccountRecord {
                    declaration,
                    devices: e.devices.values().cloned().collect(),
                })
            })
        })
    }

    async fn key_packages(&self, did: &Did) -> Result<Vec<KeyPackageRecord>, DirectoryError> {
        self.with(|m| {
            m.get(did)
                .map(|e| e.key_packages.values().cloned().collect())
                .unwrap_or_default()
        })
    }

    async fn publish_declaration(
        &self,
        declaration: &IdentityDeclaration,
    ) -> Result<(), DirectoryError> {
        self.with(|m| {
            m.entry(declaration.did.clone()).or_default().declaration = Some(declaration.clone())
        })
    }

    async fn publish_device(&self, device: &DeviceRecord) -> Result<(), DirectoryError> {
        let c = &device.certificate;
        self.with(|m| {
            m.entry(c.did.clone())
                .or_default()
                .devices
                .insert(c.installation_key, device.clone());
        })
    }

    async fn remove_device(
        &self,
        did: &Did,
        installation: &PublicKey,
    ) -> Result<(), DirectoryError> {
        self.with(|m| {
            if let Some(e) = m.get_mut(did) {
                e.devices.remove(installation);
                e.key_packages
                    .retain(|_, k| &k.installation_key != installation);
            }
        })
    }

    async fn publish_key_package(&self, record: &KeyPackageRecord) -> Result<(), DirectoryError> {
        self.with(|m| {
            m.entry(record.did.clone())
                .or_default()
                .key_packages
                .insert(record.key_package_ref.clone(), record.clone());
        })
    }

    async fn delete_key_package(
        &self,
        did: &Did,
        key_package_ref: &[u8],
    ) -> Result<(), DirectoryError> {
        self.with(|m| {
            if let Some(e) = m.get_mut(did) {
                e.key_packages.remove(key_package_ref);
            }
        })
    }

    async fn prune_key_packages(&self, did: &Did, now: u64) -> Result<usize, DirectoryError> {
        self.with(|m| {
            m.get_mut(did).map_or(0, |e| {
                let before = e.key_packages.len();
                e.key_packages.retain(|_, k| k.expires > now);
                before - e.key_packages.len()
            })
        })
    }
}
