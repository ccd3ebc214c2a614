//! Credentials: the MLS BasicCredential identity bytes that bind DID, identity key and
//! installation, the per-leaf proof that the installation owns the leaf's signature key, and
//! the validator run on every KeyPackage, every leaf of a joined tree and every new leaf of a
//! commit. The encoding and the checks (CRED-n) are in `spec/credential.md`.

mod encoding;
mod validate;
mod verdicts;

pub use encoding::{AtmlsIdentity, LeafProof, IDENTITY_VERSION, LEAF_PROOF_EXTENSION};
pub use validate::{check_identity_unchanged, validate_leaf, LeafIdentity};
pub(crate) use validate::{check_listed_extensions, is_default_extension, UNLISTED_EXTENSION};
pub(crate) use verdicts::{AgreedLeaf, VerdictCache};

use crate::identity::{Did, IdentityError};

/// Errors of the credential layer: why a leaf or KeyPackage was refused.
///
/// ```rust
/// use atmls::credential::{AtmlsIdentity, CredentialError, IDENTITY_VERSION};
///
/// // Identity bytes of a later encoding version, then bytes that end too soon.
/// assert_eq!(AtmlsIdentity::from_bytes(&[9]), Err(CredentialError::UnsupportedVersion(9)));
/// match AtmlsIdentity::from_bytes(&[IDENTITY_VERSION]) {
///     Err(e @ CredentialError::Malformed(_)) => assert!(!e.is_retryable()),
///     other => panic!("expected a malformed identity, got {other:?}"),
/// }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    /// CRED-1: not a BasicCredential.
    #[error("credential is not a BasicCredential")]
    NotBasic,
    /// CRED-1: identity bytes do not decode.
    #[error("malformed credential identity: {0}")]
    Malformed(&'static str),
    /// CRED-1: an identity encoding version we do not know.
    #[error("unsupported credential version {0}")]
    UnsupportedVersion(u8),
    /// CRED-2/3/4: DID, certificate signature or validity period.
    #[error("installation certificate: {0}")]
    Certificate(#[from] IdentityError),
    /// CRED-5: the leaf carries no leaf-proof extension.
    #[error("leaf has no installation proof for its signature key")]
    MissingLeafProof,
    /// CRED-5: the leaf proof does not verify.
    #[error("leaf signature key is not certified by the installation")]
    BadLeafProof,
    /// CRED-6: the leaf signature key equals the identity or installation key.
    #[error("leaf signature key reuses the identity or installation key")]
    KeyReuse,
    /// CRED-7: the identity key is not the one the directory (or our pin) has for the DID.
    #[error("identity key for {0} does not match the directory")]
    UnknownIdentityKey(Did),
    /// CRED-7: the installation is not a current device of the DID.
    #[error("installation is not a listed device of {0}")]
    UnknownDevice(Did),
    /// CRED-8: an update changed a leaf's identity bytes.
    #[error("a leaf's identity changed")]
    IdentityChanged,
    /// CRED-9: the leaf does not support what every atmls group requires (ciphersuite,
    /// extensions, Basic credentials), or carries an extension its capabilities do not list.
    #[error("unsupported ciphersuite or capabilities: {0}")]
    Unsupported(&'static str),
}

impl CredentialError {
    /// Whether retrying can help. Only a directory mismatch can (the directory may catch up).
    ///
    /// ```rust
    /// use atmls::credential::{CredentialError, LeafIdentity};
    /// use atmls::identity::{DeviceIdentity, InstallationKeyPair};
    ///
    /// let device = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
    /// let leaf = LeafIdentity {
    ///     did: device.did.clone(),
    ///     identity_key: device.certificate.identity_key,
    ///     installation_key: device.installation.public(),
    /// };
    /// // The directory does not list this device (yet): a later lookup may.
    /// let other_device = InstallationKeyPair::generate().public();
    /// let err = leaf
    ///     .check_account(&device.certificate.identity_key, Some(&[other_device]))
    ///     .unwrap_err();
    /// assert!(matches!(err, CredentialError::UnknownDevice(_)));
    /// assert!(err.is_retryable());
    /// assert!(!CredentialError::KeyReuse.is_retryable());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_retryable(&self) -> bool {
        match self {
            CredentialError::UnknownIdentityKey(_) | CredentialError::UnknownDevice(_) => true,
            CredentialError::NotBasic
            | CredentialError::Malformed(_)
            | CredentialError::UnsupportedVersion(_)
            | CredentialError::Certificate(_)
            | CredentialError::MissingLeafProof
            | CredentialError::BadLeafProof
            | CredentialError::KeyReuse
            | CredentialError::IdentityChanged
            | CredentialError::Unsupported(_) => false,
        }
    }
}
