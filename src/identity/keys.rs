//! Ed25519 keys, the identity declaration and installation certificates.

use std::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use tls_codec::{Serialize as _, TlsSerialize, TlsSize, VLBytes};
use zeroize::Zeroizing;

use super::{context, Did, IdentityError};

/// Default validity of an installation certificate: one year.
pub const DEFAULT_CERT_LIFETIME_SECS: u64 = 365 * 24 * 3600;

/// Clock skew tolerated when checking `created` (spec/identity.md ID-5).
pub(crate) const CLOCK_SKEW_SECS: u64 = 300;

/// An Ed25519 public key (identity, installation or leaf key).
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Reads a public key from raw bytes, checking it is a valid Ed25519 point.
    pub fn from_slice(bytes: &[u8], what: &'static str) -> Result<Self, IdentityError> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| IdentityError::InvalidKey(what))?;
        VerifyingKey::from_bytes(&arr).map_err(|_| IdentityError::InvalidKey(what))?;
        Ok(PublicKey(arr))
    }

    /// Reads a 32-byte key without checking that it is an Ed25519 point: for keys inside MLS
    /// credentials, decoded on every commit for the member list. Every signature check
    /// decodes its key and refuses one that is not a point (`InvalidKey`), so a credential
    /// with such a key never passes validation (spec/credential.md CRED-1, LG-12).
    pub(crate) fn from_slice_unchecked(
        bytes: &[u8],
        what: &'static str,
    ) -> Result<Self, IdentityError> {
        bytes
            .try_into()
            .map(PublicKey)
            .map_err(|_| IdentityError::InvalidKey(what))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Human-comparable fingerprint: the first 16 bytes of SHA-256 of the key, hex in groups of 4.
    pub fn fingerprint(&self) -> String {
        let h = Sha256::digest(self.0);
        h.iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|c| c.concat())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Verifies `sig` over a to-be-signed encoding (strict Ed25519 verification). A TBS that
    /// could not be encoded (`None`) never verifies.
    pub(crate) fn verify(
        &self,
        msg: Option<&[u8]>,
        sig: &[u8],
        what: &'static str,
    ) -> Result<(), IdentityError> {
        let msg = msg.ok_or(IdentityError::BadSignature(what))?;
        let vk = VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::InvalidKey(what))?;
        let sig = Signature::from_slice(sig).map_err(|_| IdentityError::BadSignature(what))?;
        vk.verify_strict(msg, &sig)
            .map_err(|_| IdentityError::BadSignature(what))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0[..8]))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

fn generate_signing_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// Signs a to-be-signed encoding. Our TBS fields are bounded (a DID is at most 2,048 bytes,
/// keys 32), so encoding them cannot fail; should it ever, the signature is left empty, which
/// never verifies, rather than a signature over empty bytes.
fn sign_tbs(key: &SigningKey, tbs: Option<&[u8]>) -> Vec<u8> {
    tbs.map(|m| key.sign(m).to_bytes().to_vec())
        .unwrap_or_default()
}

fn signing_key_from(bytes: &[u8], what: &'static str) -> Result<SigningKey, IdentityError> {
    let arr: Zeroizing<[u8; 32]> = Zeroizing::new(
        bytes
            .try_into()
            .map_err(|_| IdentityError::InvalidKey(what))?,
    );
    Ok(SigningKey::from_bytes(&arr))
}

/// The to-be-signed encoding of a declaration (spec/identity.md ID-3).
#[derive(TlsSize, TlsSerialize)]
struct DeclarationTbs<'a> {
    context: VLBytes,
    did: &'a VLBytes,
    identity_key: VLBytes,
    created: u64,
}

/// The to-be-signed encoding of an installation certificate (spec/identity.md ID-4).
#[derive(TlsSize, TlsSerialize)]
struct CertificateTbs {
    context: VLBytes,
    did: VLBytes,
    identity_key: VLBytes,
    installation_key: VLBytes,
    created: u64,
    expires: u64,
}

/// The to-be-signed encoding of a leaf proof (spec/credential.md CRED-5).
#[derive(TlsSize, TlsSerialize)]
pub(crate) struct LeafProofTbs {
    pub(crate) context: VLBytes,
    pub(crate) did: VLBytes,
    pub(crate) installation_key: VLBytes,
    pub(crate) leaf_signature_key: VLBytes,
    pub(crate) ciphersuite: u16,
}

impl LeafProofTbs {
    pub(crate) fn new(
        did: &Did,
        installation: &PublicKey,
        leaf_key: &[u8],
        ciphersuite: u16,
    ) -> Self {
        LeafProofTbs {
            context: context::LEAF_PROOF.to_vec().into(),
            did: did.as_str().as_bytes().to_vec().into(),
            installation_key: installation.0.to_vec().into(),
            leaf_signature_key: leaf_key.to_vec().into(),
            ciphersuite,
        }
    }

    pub(crate) fn bytes(&self) -> Option<Vec<u8>> {
        self.tls_serialize_detached().ok()
    }
}

/// The account's messaging identity key (private). Kept only on the devices of the account
/// that hold it; it signs the declaration and certifies installations.
pub struct IdentityKeyPair(SigningKey);

impl IdentityKeyPair {
    /// A fresh random identity key.
    pub fn generate() -> Self {
        IdentityKeyPair(generate_signing_key())
    }

    /// Restores a key from its 32 secret bytes.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        Ok(IdentityKeyPair(signing_key_from(bytes, "identity")?))
    }

    /// The 32 secret bytes (for the device's own store only).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public identity key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs a to-be-signed encoding (already domain-separated by its context string).
    pub(crate) fn sign_raw(&self, tbs: Option<&[u8]>) -> Vec<u8> {
        sign_tbs(&self.0, tbs)
    }

    /// Signs a declaration binding this key to `did` (a first key: no endorsements).
    pub fn declare(&self, did: &Did, created: u64) -> IdentityDeclaration {
        let mut d = IdentityDeclaration {
            did: did.clone(),
            identity_key: self.public(),
            created,
            endorsements: Vec::new(),
            revocations: Vec::new(),
            signature: Vec::new(),
        };
        d.signature = self.sign_raw(d.tbs().as_deref());
        d
    }

    /// Certifies `installation` as a device of `did` for `[created, expires]`.
    pub fn certify(
        &self,
        did: &Did,
        installation: &PublicKey,
        created: u64,
        expires: u64,
    ) -> InstallationCertificate {
        let mut c = InstallationCertificate {
            did: did.clone(),
            identity_key: self.public(),
            installation_key: *installation,
            created,
            expires,
            signature: Vec::new(),
        };
        c.signature = self.sign_raw(c.tbs().as_deref());
        c
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKeyPair({:?})", self.public())
    }
}

/// A device's installation key (private). Never leaves the device's store.
pub struct InstallationKeyPair(SigningKey);

impl InstallationKeyPair {
    /// A fresh random installation key.
    pub fn generate() -> Self {
        InstallationKeyPair(generate_signing_key())
    }

    /// Restores a key from its 32 secret bytes.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        Ok(InstallationKeyPair(signing_key_from(
            bytes,
            "installation",
        )?))
    }

    /// The 32 secret bytes (for the device's own store only).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public installation key, which is also the installation id.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs a to-be-signed encoding (already domain-separated by its context string).
    pub(crate) fn sign_raw(&self, tbs: Option<&[u8]>) -> Vec<u8> {
        sign_tbs(&self.0, tbs)
    }

    /// Signs the proof that this installation owns the MLS leaf signature key `leaf_key`.
    pub(crate) fn sign_leaf_key(&self, did: &Did, leaf_key: &[u8], ciphersuite: u16) -> Vec<u8> {
        let tbs = LeafProofTbs::new(did, &self.public(), leaf_key, ciphersuite);
        sign_tbs(&self.0, tbs.bytes().as_deref())
    }
}

impl fmt::Debug for InstallationKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstallationKeyPair({:?})", self.public())
    }
}

/// The identity key's signed statement that it speaks for `did` (spec/identity.md ID-3).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdentityDeclaration {
    /// The account.
    pub did: Did,
    /// The messaging identity key.
    pub identity_key: PublicKey,
    /// When it was made (unix seconds).
    pub created: u64,
    /// The chain of earlier keys, oldest first: each endorsement is signed by the key it
    /// replaces (spec/trust.md TRUST-1). Not covered by `signature`: each link authenticates
    /// itself.
    #[serde(default)]
    pub endorsements: Vec<super::Endorsement>,
    /// Revoked installations, each signed by an identity key of the account (TRUST-12). Not
    /// covered by `signature`: each authenticates itself.
    #[serde(default)]
    pub revocations: Vec<super::DeviceRevocation>,
    /// Ed25519 signature by `identity_key` over the to-be-signed encoding.
    pub signature: Vec<u8>,
}

impl IdentityDeclaration {
    fn tbs(&self) -> Option<Vec<u8>> {
        let did: VLBytes = self.did.as_str().as_bytes().to_vec().into();
        DeclarationTbs {
            context: context::DECLARATION.to_vec().into(),
            did: &did,
            identity_key: self.identity_key.0.to_vec().into(),
            created: self.created,
        }
        .tls_serialize_detached()
        .ok()
    }

    /// Checks the signature (ID-3).
    pub fn verify(&self) -> Result<(), IdentityError> {
        self.identity_key.verify(
            self.tbs().as_deref(),
            &self.signature,
            "identity declaration",
        )
    }
}

/// The identity key's certificate for one installation (spec/identity.md ID-4).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstallationCertificate {
    /// The account.
    pub did: Did,
    /// The certifying identity key.
    pub identity_key: PublicKey,
    /// The certified installation key.
    pub installation_key: PublicKey,
    /// Start of validity (unix seconds).
    pub created: u64,
    /// End of validity (unix seconds).
    pub expires: u64,
    /// Ed25519 signature by `identity_key`.
    pub signature: Vec<u8>,
}

impl InstallationCertificate {
    fn tbs(&self) -> Option<Vec<u8>> {
        CertificateTbs {
            context: context::INSTALLATION_CERT.to_vec().into(),
            did: self.did.as_str().as_bytes().to_vec().into(),
            identity_key: self.identity_key.0.to_vec().into(),
            installation_key: self.installation_key.0.to_vec().into(),
            created: self.created,
            expires: self.expires,
        }
        .tls_serialize_detached()
        .ok()
    }

    /// The part of [`verify`](Self::verify) that needs no clock: the signature, and a
    /// validity period that ends after it starts. What members agree on when a leaf enters a
    /// group (spec/agreement.md AGREE-3): the period against a device clock is a trust check.
    pub(crate) fn verify_signature_with(
        &self,
        cache: Option<&super::VerifiedSignatures>,
    ) -> Result<(), IdentityError> {
        super::verified::verify_with(
            cache,
            &self.identity_key,
            self.tbs().as_deref(),
            &self.signature,
            "installation certificate",
        )?;
        if self.expires <= self.created {
            return Err(IdentityError::Expired {
                now: self.created,
                created: self.created,
                expires: self.expires,
            });
        }
        Ok(())
    }

    /// Checks the signature and validity period at `now` (ID-4, ID-5).
    pub fn verify(&self, now: u64) -> Result<(), IdentityError> {
        self.verify_with(now, None)
    }

    /// [`verify`](Self::verify), the signature answered from `cache` when it verified before
    /// (LG-11); the validity period is checked every time.
    pub(crate) fn verify_with(
        &self,
        now: u64,
        cache: Option<&super::VerifiedSignatures>,
    ) -> Result<(), IdentityError> {
        self.verify_signature_with(cache)?;
        if now >= self.expires || self.created > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(IdentityError::Expired {
                now,
                created: self.created,
                expires: self.expires,
            });
        }
        Ok(())
    }
}

/// Everything one device needs to act for its account: the DID, its installation key and
/// certificate, and (on devices that hold it) the identity key.
#[derive(Debug)]
pub struct DeviceIdentity {
    /// The account.
    pub did: Did,
    /// This device's installation key.
    pub installation: InstallationKeyPair,
    /// The identity key's certificate for `installation`.
    pub certificate: InstallationCertificate,
    /// The identity key, if this device holds it.
    pub identity_key: Option<IdentityKeyPair>,
}

impl DeviceIdentity {
    /// A new account: a fresh identity key and this device's first installation.
    ///
    /// ```
    /// use atmls::identity::{DeviceIdentity, Did};
    /// let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse()?;
    /// let dev = DeviceIdentity::new_account(did.clone());
    /// assert_eq!(dev.certificate.did, did);
    /// assert!(dev.certificate.verify(atmls::identity::unix_now()).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new_account(did: Did) -> Self {
        Self::with_identity_key(did, IdentityKeyPair::generate())
    }

    /// A new device of an existing account whose identity key was restored (e.g. from
    /// [`IdentityKeyPair::import_encrypted`]): a fresh installation key certified by it.
    /// Contacts see the same identity key, so no warning (TRUST-11).
    pub fn with_identity_key(did: Did, identity: IdentityKeyPair) -> Self {
        let installation = InstallationKeyPair::generate();
        let now = super::unix_now();
        let certificate = identity.certify(
            &did,
            &installation.public(),
            now,
            now + DEFAULT_CERT_LIFETIME_SECS,
        );
        DeviceIdentity {
            did,
            installation,
            certificate,
            identity_key: Some(identity),
        }
    }

    /// A further device of an account, certified by a device holding the identity key
    /// (see [`IdentityKeyPair::certify`]). Checks that `certificate` matches `installation`.
    pub fn linked(
        installation: InstallationKeyPair,
        certificate: InstallationCertificate,
    ) -> Result<Self, IdentityError> {
        if certificate.installation_key != installation.public() {
            return Err(IdentityError::Mismatch("installation key"));
        }
        certificate.verify(super::unix_now())?;
        Ok(DeviceIdentity {
            did: certificate.did.clone(),
            installation,
            certificate,
            identity_key: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did() -> Did {
        Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap()
    }

    #[test]
    fn id_3_declaration_verifies_and_detects_tampering() {
        let k = IdentityKeyPair::generate();
        let d = k.declare(&did(), 100);
        assert!(d.verify().is_ok());
        let mut t = d.clone();
        t.did = Did::new("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
        assert_eq!(
            t.verify(),
            Err(IdentityError::BadSignature("identity declaration"))
        );
        let mut t = d.clone();
        t.identity_key = IdentityKeyPair::generate().public();
        assert!(t.verify().is_err());
    }

    #[test]
    fn id_4_certificate_binds_every_field() {
        let k = IdentityKeyPair::generate();
        let i = InstallationKeyPair::generate();
        let c = k.certify(&did(), &i.public(), 1000, 2000);
        assert!(c.verify(1500).is_ok());
        let mut t = c.clone();
        t.expires = 3000;
        assert!(matches!(
            t.verify(1500),
            Err(IdentityError::BadSignature(_))
        ));
        let mut t = c.clone();
        t.installation_key = InstallationKeyPair::generate().public();
        assert!(t.verify(1500).is_err());
        let mut t = c.clone();
        t.signature[0] ^= 1;
        assert!(t.verify(1500).is_err());
        let mut t = c;
        t.signature.truncate(10);
        assert!(t.verify(1500).is_err());
    }

    #[test]
    fn id_5_certificate_validity_period() {
        let k = IdentityKeyPair::generate();
        let i = InstallationKeyPair::generate();
        let c = k.certify(&did(), &i.public(), 10_000, 20_000);
        assert!(matches!(
            c.verify(20_000),
            Err(IdentityError::Expired { .. })
        ));
        assert!(matches!(
            c.verify(1_000),
            Err(IdentityError::Expired { .. })
        ));
        assert!(c.verify(10_000 - 10).is_ok(), "small clock skew tolerated");
    }

    #[test]
    fn id_2_contexts_are_distinct() {
        // A certificate signature must not verify as a declaration, whatever the bytes.
        assert_ne!(context::DECLARATION, context::INSTALLATION_CERT);
        assert_ne!(context::INSTALLATION_CERT, context::LEAF_PROOF);
    }

    #[test]
    fn keys_round_trip_and_reject_bad_bytes() {
        let k = IdentityKeyPair::generate();
        let k2 = IdentityKeyPair::from_secret_bytes(&k.secret_bytes()[..]).unwrap();
        assert_eq!(k.public(), k2.public());
        assert!(IdentityKeyPair::from_secret_bytes(&[1, 2, 3]).is_err());
        assert!(PublicKey::from_slice(&[0u8; 31], "x").is_err());
        assert_eq!(k.public().fingerprint().split(' ').count(), 8);
    }

    #[test]
    fn linked_device_requires_matching_certificate() {
        let dev = DeviceIdentity::new_account(did());
        let Some(id) = &dev.identity_key else {
            panic!()
        };
        let other = InstallationKeyPair::generate();
        let now = crate::identity::unix_now();
        let cert = id.certify(
            &did(),
            &InstallationKeyPair::generate().public(),
            now,
            now + 100,
        );
        assert_eq!(
            DeviceIdentity::linked(other, cert).unwrap_err(),
            IdentityError::Mismatch("installation key")
        );
    }
}
