//! The signer of our own leaf, kept ready between operations.
//!
//! openmls's stock signer (`SignatureKeyPair`) holds the Ed25519 secret as bytes and expands
//! it (a fixed-base scalar multiplication, about as costly as the signature itself) on every
//! signature; and it was read from storage on every send and commit. A [`LeafSigner`] holds
//! the expanded key and is cached by public key beside the loaded groups (LG-15).

use ed25519_dalek::Signer as _;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::signatures::{Signer, SignerError};
use openmls_traits::types::SignatureScheme;

/// Signs with our leaf's key; signatures are the same as the stored key pair's.
#[derive(Debug)]
pub(crate) enum LeafSigner {
    /// Ed25519 with its key expanded once.
    Ed25519(ed25519_dalek::SigningKey),
    /// Any other scheme: openmls's own signer.
    Other(SignatureKeyPair),
}

impl LeafSigner {
    /// The signer for a stored key pair.
    pub(crate) fn new(pair: SignatureKeyPair) -> Self {
        if pair.signature_scheme() == SignatureScheme::ED25519 {
            if let Some(k) = ed25519_key(&pair) {
                return LeafSigner::Ed25519(k);
            }
        }
        LeafSigner::Other(pair)
    }
}

/// The pair's Ed25519 key. openmls exposes the secret only through the pair's serde form
/// (the form it stores), which names it `private`.
fn ed25519_key(pair: &SignatureKeyPair) -> Option<ed25519_dalek::SigningKey> {
    #[derive(serde::Deserialize)]
    struct Secret {
        private: Vec<u8>,
    }
    let value = zeroize::Zeroizing::new(serde_json::to_vec(pair).ok()?);
    let secret: Secret = serde_json::from_slice(&value).ok()?;
    let private = zeroize::Zeroizing::new(secret.private);
    ed25519_dalek::SigningKey::try_from(private.as_slice()).ok()
}

impl Signer for LeafSigner {
    fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignerError> {
        match self {
            LeafSigner::Ed25519(k) => Ok(k.sign(payload).to_bytes().to_vec()),
            LeafSigner::Other(p) => p.sign(payload),
        }
    }

    fn signature_scheme(&self) -> SignatureScheme {
        match self {
            LeafSigner::Ed25519(_) => SignatureScheme::ED25519,
            LeafSigner::Other(p) => p.signature_scheme(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LG-15: the kept signer signs exactly as openmls's stored key pair does (Ed25519 is
    /// deterministic), and under the same scheme.
    #[test]
    fn lg_15_same_signatures_as_the_key_pair() {
        let pair = SignatureKeyPair::new(SignatureScheme::ED25519).unwrap();
        let want = pair.sign(b"payload").unwrap();
        let public = pair.public().to_vec();
        let s = LeafSigner::new(pair);
        assert!(matches!(s, LeafSigner::Ed25519(_)));
        assert_eq!(s.sign(b"payload").unwrap(), want);
        assert_eq!(s.signature_scheme(), SignatureScheme::ED25519);
        let vk = ed25519_dalek::VerifyingKey::try_from(public.as_slice()).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&want).unwrap();
        assert!(vk.verify_strict(b"payload", &sig).is_ok());
    }

    /// LG-15: other schemes keep openmls's signer.
    #[test]
    fn lg_15_other_schemes_unchanged() {
        let pair = SignatureKeyPair::new(SignatureScheme::ECDSA_SECP256R1_SHA256).unwrap();
        let s = LeafSigner::new(pair);
        assert!(matches!(s, LeafSigner::Other(_)));
        assert_eq!(
            s.signature_scheme(),
            SignatureScheme::ECDSA_SECP256R1_SHA256
        );
        assert!(!s.sign(b"payload").unwrap().is_empty());
    }
}
