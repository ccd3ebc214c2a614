//! Signatures already verified, remembered by digest (spec/large-groups.md LG-11). A joiner of
//! a large group meets each member's installation certificate twice: in the account's
//! directory record (pinned first, LG-7) and in the member's leaf (CRED-2). Ed25519
//! verification is deterministic, so a signature that verified over the same key and bytes
//! verifies again: the second check is a lookup. Only successes are remembered; the digest
//! covers the key, the signed bytes and the signature, so any change is a new entry.

use std::collections::HashSet;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{IdentityError, PublicKey};

/// Entries kept before the set is emptied (32 bytes each: 200,000 is about 10 MB).
const MAX_ENTRIES: usize = 200_000;

/// Successful verifications by digest, shared by the threads of a parallel check.
#[derive(Default)]
pub(crate) struct VerifiedSignatures {
    set: Mutex<HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for VerifiedSignatures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifiedSignatures")
    }
}

fn digest(key: &PublicKey, msg: &[u8], sig: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"atmls/v1/verified-signature");
    h.update(key.as_bytes());
    h.update((sig.len() as u64).to_be_bytes());
    h.update(sig);
    h.update(msg);
    h.finalize().into()
}

impl VerifiedSignatures {
    /// [`PublicKey::verify`], answered from the set when this exact signature verified before.
    pub(crate) fn verify(
        &self,
        key: &PublicKey,
        msg: Option<&[u8]>,
        sig: &[u8],
        what: &'static str,
    ) -> Result<(), IdentityError> {
        let Some(m) = msg else {
            return key.verify(msg, sig, what);
        };
        let d = digest(key, m, sig);
        if self.set.lock().map(|s| s.contains(&d)).unwrap_or(false) {
            return Ok(());
        }
        key.verify(msg, sig, what)?;
        if let Ok(mut s) = self.set.lock() {
            if s.len() >= MAX_ENTRIES {
                s.clear();
            }
            s.insert(d);
        }
        Ok(())
    }

    /// Number of remembered signatures.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// Verifies with `cache` when there is one.
pub(crate) fn verify_with(
    cache: Option<&VerifiedSignatures>,
    key: &PublicKey,
    msg: Option<&[u8]>,
    sig: &[u8],
    what: &'static str,
) -> Result<(), IdentityError> {
    match cache {
        Some(c) => c.verify(key, msg, sig, what),
        None => key.verify(msg, sig, what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DeviceIdentity, Did};

    #[test]
    fn lg_11_only_successes_are_remembered_and_any_change_is_checked_again() {
        let dev =
            DeviceIdentity::new_account(Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap());
        let cert = dev.certificate.clone();
        let cache = VerifiedSignatures::default();
        let now = cert.created + 1;
        cert.verify_with(now, Some(&cache)).unwrap();
        assert_eq!(cache.len(), 1);
        cert.verify_with(now, Some(&cache)).unwrap();
        assert_eq!(cache.len(), 1);
        // A flipped signature bit, another key or other bytes: verified again, and refused.
        let mut bad = cert.clone();
        bad.signature[0] ^= 1;
        assert!(bad.verify_with(now, Some(&cache)).is_err());
        let mut other = cert.clone();
        other.expires += 1;
        assert!(other.verify_with(now, Some(&cache)).is_err());
        let mut moved = cert.clone();
        moved.identity_key = moved.installation_key;
        assert!(moved.verify_with(now, Some(&cache)).is_err());
        assert_eq!(cache.len(), 1);
        // The validity window is checked at every call, cached or not.
        assert!(matches!(
            cert.verify_with(cert.expires, Some(&cache)),
            Err(IdentityError::Expired { .. })
        ));
    }
}
