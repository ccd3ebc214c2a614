//! Leaf verdicts cached by leaf content (spec/large-groups.md LG-5): a leaf is validated
//! (CRED-1 … CRED-6: two Ed25519 verifications and the decoding) once, however many times it
//! comes back (the retry of a join after pinning, every commit that carries it again, every
//! KeyPackage that becomes a leaf). The key is the SHA-256 of the ciphersuite and the leaf's
//! full TLS encoding, signature included, so any change to the leaf is a new entry. Only
//! successes are kept. The verdict needs no clock (spec/agreement.md AGREE-3): every member
//! reaches the same one; the certificate's validity window is returned with it for the trust
//! checks (TRUST-21). Many leaves are validated in parallel (rayon).

use std::collections::HashMap;
use std::sync::Mutex;

use openmls::prelude::{tls_codec::Serialize as _, Ciphersuite, LeafNode};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::validate::validate_leaf_window;
use super::{CredentialError, LeafIdentity};
use crate::identity::VerifiedSignatures;

/// Entries kept before the cache is emptied (a crude bound: 200,000 leaves is ~40 MB).
const MAX_ENTRIES: usize = 200_000;

/// A leaf that passed the agreement checks on credentials (CRED-1 … CRED-6 without a clock),
/// with its certificate's validity window for the trust checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AgreedLeaf {
    /// Who it belongs to.
    pub id: LeafIdentity,
    /// When its certificate starts (unix seconds).
    pub created: u64,
    /// When its certificate ends (unix seconds).
    pub expires: u64,
}

/// Valid leaves by content hash. Shared by the threads of a parallel validation.
#[derive(Default)]
pub(crate) struct VerdictCache {
    map: Mutex<HashMap<[u8; 32], AgreedLeaf>>,
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
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of cached verdicts.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no verdict is cached.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The clock-free checks of [`validate_leaf`](super::validate_leaf) (AGREE-3), answered
    /// from the cache when this exact leaf passed before.
    pub(crate) fn agree(
        &self,
        leaf: &LeafNode,
        cs: Ciphersuite,
    ) -> Result<AgreedLeaf, CredentialError> {
        let k = key(leaf, cs);
        if let Some(k) = &k {
            if let Some(v) = self.map.lock().ok().and_then(|m| m.get(k).cloned()) {
                return Ok(v);
            }
        }
        let (id, created, expires) = validate_leaf_window(leaf, cs, None, Some(&self.sigs))?;
        let v = AgreedLeaf {
            id,
            created,
            expires,
        };
        if let (Some(k), Ok(mut m)) = (k, self.map.lock()) {
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
            m.insert(k, v.clone());
        }
        Ok(v)
    }

    /// The certificate signatures verified so far, for checks of directory records (LG-11).
    pub(crate) fn signatures(&self) -> &VerifiedSignatures {
        &self.sigs
    }

    /// [`agree`](Self::agree) on many leaves on all cores; results in input order.
    pub(crate) fn agree_all(
        &self,
        leaves: &[&LeafNode],
        cs: Ciphersuite,
    ) -> Vec<Result<AgreedLeaf, CredentialError>> {
        leaves
            .par_iter()
            .with_min_len(64)
            .map(|l| self.agree(l, cs))
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
    fn lg_5_agree_3_a_leaf_is_validated_once_without_a_clock() {
        let cache = VerdictCache::new();
        let l = leaf("alice");
        let first = cache.agree(&l, CS).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.agree(&l, CS).unwrap(), first);
        assert_eq!(cache.len(), 1);
        // The window is reported for the trust checks, not judged here.
        assert!(first.expires > first.created);
        assert_eq!(
            first.id,
            crate::credential::validate_leaf(&l, CS, unix_now()).unwrap()
        );
        // Another ciphersuite is another verdict (and this leaf's proof names CS).
        let other = openmls::prelude::Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
        assert_eq!(
            cache.agree(&l, other).map(|v| v.id),
            Err(CredentialError::BadLeafProof)
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn lg_5_failures_are_not_cached_and_parallel_results_keep_their_order() {
        let cache = VerdictCache::new();
        let good: Vec<LeafNode> = ["a", "b", "c"].iter().map(|n| leaf(n)).collect();
        // A leaf whose proof names another ciphersuite fails every time, uncached.
        let other = openmls::prelude::Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
        assert!(cache.agree(&good[0], other).is_err());
        assert!(cache.agree(&good[0], other).is_err());
        assert!(cache.is_empty());
        let now = unix_now();
        let all: Vec<&LeafNode> = good.iter().chain(good.iter()).collect();
        let r = cache.agree_all(&all, CS);
        assert_eq!(r.len(), 6);
        for (l, v) in all.iter().zip(&r) {
            assert_eq!(
                v.as_ref().unwrap().id,
                crate::credential::validate_leaf(l, CS, now).unwrap()
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
        cache.agree(&l, CS).unwrap();
        assert_eq!(cache.signatures().len(), 1);
        // A fresh cache verifies it and remembers it.
        let fresh = VerdictCache::new();
        fresh.agree(&l, CS).unwrap();
        assert_eq!(fresh.signatures().len(), 1);
    }
}
