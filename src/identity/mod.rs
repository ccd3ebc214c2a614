//! Identity: the account's messaging identity key, its delegation from the DID, and the
//! installation (device) keys it certifies. Formats are in `spec/identity.md`.

mod account;
mod did;
mod keys;
mod recovery;
mod revocation;
mod succession;
mod verified;

pub use account::VerifiedAccount;
pub use did::{Did, MAX_DID_LEN};
pub(crate) use keys::LeafProofTbs as LeafProofTbsPub;
pub(crate) use keys::CLOCK_SKEW_SECS;
pub use keys::{
    DeviceIdentity, IdentityDeclaration, IdentityKeyPair, InstallationCertificate,
    InstallationKeyPair, PublicKey, DEFAULT_CERT_LIFETIME_SECS,
};
pub use recovery::RECOVERY_MEMORY_KIB;
#[cfg(feature = "fuzzing")]
pub(crate) use recovery::{cost_allowed, seal_with_key as recovery_seal_with_key, RecoveryBlob};
pub use revocation::DeviceRevocation;
pub use succession::{succession, Endorsement, Succession, MAX_ENDORSEMENTS};
pub(crate) use verified::VerifiedSignatures;

/// Context strings that domain-separate every signature atmls makes (spec/identity.md ID-2).
pub mod context {
    /// Signature by the identity key binding it to a DID.
    pub const DECLARATION: &[u8] = b"atmls/v1/identity-declaration";
    /// Signature by the identity key certifying an installation key.
    pub const INSTALLATION_CERT: &[u8] = b"atmls/v1/installation-certificate";
    /// Signature by the installation key over a leaf's MLS signature key.
    pub const LEAF_PROOF: &[u8] = b"atmls/v1/leaf-signature-key";
    /// Signature by a retiring identity key endorsing its successor.
    pub const ENDORSEMENT: &[u8] = b"atmls/v1/identity-endorsement";
    /// Signature by the identity key revoking an installation.
    pub const DEVICE_REVOCATION: &[u8] = b"atmls/v1/device-revocation";
}

/// Errors of the identity layer.
///
/// ```rust
/// use atmls::identity::{DeviceIdentity, Did, IdentityError};
///
/// assert!(matches!(Did::new("alice.bsky.social"), Err(IdentityError::InvalidDid(_))));
///
/// let device = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
/// let after_expiry = device.certificate.expires;
/// match device.certificate.verify(after_expiry) {
///     Err(IdentityError::Expired { now, expires, .. }) => assert_eq!(now, expires),
///     other => panic!("expected an expired certificate, got {other:?}"),
/// }
/// # Ok::<(), IdentityError>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// Not a valid `did:plc` / `did:web` identifier.
    #[error("invalid DID: {0:?}")]
    InvalidDid(String),
    /// A key's bytes are not a valid Ed25519 key.
    #[error("invalid {0} key")]
    InvalidKey(&'static str),
    /// A signature does not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// A certificate is outside its validity period.
    #[error("certificate not valid at {now} (valid {created}..{expires})")]
    Expired {
        /// Validation time (unix seconds).
        now: u64,
        /// Start of validity.
        created: u64,
        /// End of validity.
        expires: u64,
    },
    /// A certificate or declaration names another DID or key than expected.
    #[error("{0} does not match")]
    Mismatch(&'static str),
    /// Bytes could not be decoded.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// An endorsement in a declaration does not verify or names another DID (TRUST-2).
    #[error("forged or foreign identity-key endorsement")]
    ForgedEndorsement,
    /// The device was revoked by its account (TRUST-12).
    #[error("device revoked")]
    Revoked,
    /// A declaration older than the one already pinned, or for a key that was already
    /// replaced: a replay (TRUST-4).
    #[error("replayed old identity declaration")]
    Rollback,
}

impl IdentityError {
    /// Whether retrying the same operation can help (never: these are verdicts on input).
    ///
    /// ```rust
    /// use atmls::identity::{Did, IdentityError};
    ///
    /// let err = Did::new("did:plc:").unwrap_err();
    /// assert!(matches!(err, IdentityError::InvalidDid(_)));
    /// assert!(!err.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// Seconds since the Unix epoch.
///
/// ```rust
/// use atmls::identity::{unix_now, DeviceIdentity};
///
/// let device = DeviceIdentity::new_account("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?);
/// let now = unix_now();
/// assert!(device.certificate.created <= now && now < device.certificate.expires);
/// assert!(device.certificate.verify(now).is_ok());
/// # Ok::<(), atmls::identity::IdentityError>(())
/// ```
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
