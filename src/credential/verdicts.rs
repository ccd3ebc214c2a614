//! Leaf verdicts cached by leaf content (spec/large-groups.md LG-5): a leaf is validated
//! (CRED-1 … CRED-6: two Ed25519 verifications and the decoding) once, however many times it
//! comes back (the retry of a join after pinning, every commit that carries it again, every
//! KeyPackage that becomes a leaf). The key is the SHA-256 of the ciphersuite and the leaf's
//! full TLS encoding, signature included, so any change to the leaf is a new entry. Only
//! successes are kept, with their certificate's validity window, which is checked again
//! against the clock at every hit. Many leaves are validated in parallel (rayon).

use std::collections::HashMap;
use std::sync::Mutex;

use openmls::prelude::{tls_codec::Serialize as _, Ciphersuite, LeafNode};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::validate::validate_leaf_window;
use super::{CredentialError, LeafIdentity};
use crate::identity::{VerifiedSignatures, CLOCK_SKEW_SECS};

/// Entries kept before the cache is emptied (a crude bound: 200,000 leaves is ~40 MB).
const MAX_ENTRIES: usize = 200_000;

#[derive(Clone)]
struct Verdict {
    id: LeafIdentity,
    created: u64,
    expires: u64,
}

/// Valid leaves by content hash. Shared by the threads of a parallel validation.
#[derive(Default)]
pub struct VerdictCache {
    map: Mutex<HashMap<[u8; 32], Verdict>>,
    /// Certificates verified from directory records or leaves (LG-11).
    sigs: VerifiedSignatures,
}

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerdictCache")
    }
}

fn key(leaf: &LeafNode, cs: Ciphersuite) -> Option<[u8; 32]> {
    let bytes = leaf.tls_serialize_detached().ok()?;
    let mut h = Sha256::new();
    h.update(u16::from(cs).to_be_bytes());
    h.update(&bytes);
    Some(h.finalize().into())
}

impl VerdictCache {
    /// A new, empty cache.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached verdicts.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no verdict is cached.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`validate_leaf`](super::validate_leaf), answered from the cache when this exact leaf
    /// was valid before and its certificate still is at `now`.
    pub fn validate(
        &self,
        leaf: &LeafNode,
        cs: Ciphersuite,
        now: u64,
    ) -> Result<LeafIdentity, CredentialError> {
        let k = key(leaf, cs);
        if let Some(k) = &k {
            let hit = self.map.lock().ok().and_then(|m| m.get(k).cloned());
            if let Some(v) = hit {
                if now < v.expires && v.created <= now.saturating_add(CLOCK_SKEW_SECS) {
                    return Ok(v.id);
                }
            }
        }
        // A miss, or a verdict whose certificate is no longer current: the full check gives
        // the precise error.
        let (id, created, expires) = validate_leaf_window(leaf, cs, now, Some(&self.sigs))?;
        if let (Some(k), Ok(mut m)) = (k, self.map.lock()) {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(
                k,
                Verdict {
                    id: id.clone(),
                    created,
                    expires,
                },
            );
        }
        Ok(id)
    }

    /// The certificate signatures verified so far, for checks of directory records (LG-11).
    pub fn signatures(&self) -> &VerifiedSignatures {
        &self.sigs
    }

    /// Validates many leaves on all cores; results in input order.
    pub fn validate_all(
        &self,
        leaves: &[&LeafNode],
        cs: Ciphersuite,
        now: u64,
    ) -> Vec<Result<LeafIdentity, CredentialError>> {
        leaves
            .par_iter()
            .with_min_len(64)
            .map(|l| self.validate(l, cs, now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{unix_now, DeviceIdentity, Did};
    use crate::keypackage::{generate, DEFAULT_CIPHERSUITE as CS};
    use openmls::prelude::{tls_codec::Deserialize as _, KeyPackageIn, ProtocolVersion};
    use openmls_rust_crypto::OpenMlsRustCrypto;
    use openmls_traits::OpenMlsProvider as _;

    fn leaf(name: &str) -> LeafNode {
        leaf_of(&DeviceIdentity::new_account(
            Did::new(&format!("did:plc:{name:a<24}")).unwrap(),
        ))
    }

    fn leaf_of(dev: &DeviceIdentity) -> LeafNode {
        let p = OpenMlsRustCrypto::default();
        let bytes = generate(&p, dev, CS, false, 86_400, unix_now())
            .unwrap()
            .key_package;
        KeyPackageIn::tls_deserialize_exact(&bytes)
            .unwrap()
            .validate(p.crypto(), ProtocolVersion::Mls10)
            .unwrap()
            .leaf_node()
            .clone()
    }

    #[test]
    fn lg_5_a_leaf_is_validated_once_and_rechecked_against_the_clock() {
        let cache = VerdictCache::new();
        let l = leaf("alice");
        let now = unix_now();
        let first = cache.validate(&l, CS, now).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.validate(&l, CS, now).unwrap(), first);
        assert_eq!(cache.len(), 1);
        // The cached verdict does not outlive the certificate.
        let later = now + 10 * 365 * 86_400;
        assert!(matches!(
            cache.validate(&l, CS, later),
            Err(CredentialError::Certificate(_))
        ));
        // Another ciphersuite is another verdict (and this leaf's proof names CS).
        let other = openmls::prelude::Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
        assert_eq!(
            cache.validate(&l, other, now),
            Err(CredentialError::BadLeafProof)
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn lg_5_failures_are_not_cached_and_parallel_results_keep_their_order() {
        let cache = VerdictCache::new();
        let good: Vec<LeafNode> = ["a", "b", "c"].iter().map(|n| leaf(n)).collect();
        // A leaf whose certificate has expired at `now` fails every time, uncached.
        let now = unix_now() + 10 * 365 * 86_400;
        assert!(cache.validate(&good[0], CS, now).is_err());
        assert!(cache.validate(&good[0], CS, now).is_err());
        assert!(cache.is_empty());
        let now = unix_now();
        let all: Vec<&LeafNode> = good.iter().chain(good.iter()).collect();
        let r = cache.validate_all(&all, CS, now);
        assert_eq!(r.len(), 6);
        for (l, v) in all.iter().zip(&r) {
            assert_eq!(
                v.as_ref().unwrap(),
                &crate::credential::validate_leaf(l, CS, now).unwrap()
            );
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn lg_11_a_certificate_verified_from_the_directory_is_not_verified_again_in_the_leaf() {
        let dev =
            DeviceIdentity::new_account(Did::new("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").unwrap());
        let l = leaf_of(&dev);
        let cache = VerdictCache::new();
        let now = unix_now();
        // The directory record's certificate (LG-7 pins before the join) ...
        dev.certificate
            .verify_with(now, Some(cache.signatures()))
            .unwrap();
        assert_eq!(cache.signatures().len(), 1);
        // ... is the one the leaf carries: the leaf's check finds it.
        cache.validate(&l, CS, now).unwrap();
        assert_eq!(cache.signatures().len(), 1);
        // A fresh cache verifies it and remembers it.
        let fresh = VerdictCache::new();
        fresh.validate(&l, CS, now).unwrap();
        assert_eq!(fresh.signatures().len(), 1);
    }
}
