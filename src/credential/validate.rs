//! The leaf validator (spec/credential.md CRED-1 … CRED-8).

use openmls::prelude::{Ciphersuite, Credential, ExtensionType, LeafNode};

use super::{AtmlsIdentity, CredentialError, LeafProof, LEAF_PROOF_EXTENSION};
use crate::identity::{Did, LeafProofTbsPub, PublicKey};

/// Who a validated leaf belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeafIdentity {
    /// The account.
    pub did: Did,
    /// The account's messaging identity key that certified the installation.
    pub identity_key: PublicKey,
    /// The installation (device) key, which is also its id.
    pub installation_key: PublicKey,
}

impl LeafIdentity {
    /// CRED-7: the identity key must be the account's current one and the installation one of
    /// its listed devices (`devices = None` skips the device check, for pinned-key checks).
    pub fn check_account(
        &self,
        identity_key: &PublicKey,
        devices: Option<&[PublicKey]>,
    ) -> Result<(), CredentialError> {
        if &self.identity_key != identity_key {
            return Err(CredentialError::UnknownIdentityKey(self.did.clone()));
        }
        if let Some(devices) = devices {
            if !devices.contains(&self.installation_key) {
                return Err(CredentialError::UnknownDevice(self.did.clone()));
            }
        }
        Ok(())
    }
}

/// CRED-9's reason for a leaf carrying an extension its capabilities do not list.
pub(crate) const UNLISTED_EXTENSION: &str = "an extension is not listed in the leaf's capabilities";

/// Extension types a leaf supports without listing them (RFC 9420 §7.2).
pub(crate) fn is_default_extension(t: ExtensionType) -> bool {
    matches!(
        t,
        ExtensionType::ApplicationId
            | ExtensionType::RatchetTree
            | ExtensionType::RequiredCapabilities
            | ExtensionType::ExternalPub
            | ExtensionType::ExternalSenders
    )
}

/// RFC 9420 §7.3 (CRED-9): every extension the leaf carries is listed in its capabilities,
/// unless it is a default one. A pure function of the leaf, so an agreement check (AGREE-3).
pub(crate) fn check_listed_extensions(leaf: &LeafNode) -> Result<(), CredentialError> {
    let caps = leaf.capabilities().extensions();
    let unlisted = leaf
        .extensions()
        .iter()
        .map(|e| e.extension_type())
        .any(|t| !is_default_extension(t) && !caps.contains(&t));
    match unlisted {
        true => Err(CredentialError::Unsupported(UNLISTED_EXTENSION)),
        false => Ok(()),
    }
}

/// Runs CRED-1 … CRED-6 on one leaf: identity decodes, certificate verifies and is current,
/// the installation signed this leaf's signature key, and that key is a fresh one; and the
/// leaf lists every extension it carries (RFC 9420 §7.3, part of CRED-9).
pub fn validate_leaf(
    leaf: &LeafNode,
    ciphersuite: Ciphersuite,
    now: u64,
) -> Result<LeafIdentity, CredentialError> {
    validate_leaf_window(leaf, ciphersuite, Some(now), None).map(|(id, _, _)| id)
}

/// [`validate_leaf`], also returning the certificate's validity window (created, expires).
/// The certificate's signature is answered from `sigs` when it verified before (LG-11).
/// Without `now`, the window is not checked against a clock (AGREE-3).
pub(crate) fn validate_leaf_window(
    leaf: &LeafNode,
    ciphersuite: Ciphersuite,
    now: Option<u64>,
    sigs: Option<&crate::identity::VerifiedSignatures>,
) -> Result<(LeafIdentity, u64, u64), CredentialError> {
    let identity = AtmlsIdentity::from_credential(leaf.credential())?;
    check_listed_extensions(leaf)?;
    let cert = identity.certificate;
    match now {
        Some(now) => cert.verify_with(now, sigs)?,
        None => cert.verify_signature_with(sigs)?,
    }
    let leaf_key = leaf.signature_key().as_slice();
    if leaf_key == cert.identity_key.as_bytes() || leaf_key == cert.installation_key.as_bytes() {
        return Err(CredentialError::KeyReuse);
    }
    let ext = leaf
        .extensions()
        .unknown(LEAF_PROOF_EXTENSION)
        .ok_or(CredentialError::MissingLeafProof)?;
    let proof = LeafProof::from_extension_bytes(&ext.0)?;
    let tbs = LeafProofTbsPub::new(
        &cert.did,
        &cert.installation_key,
        leaf_key,
        u16::from(ciphersuite),
    );
    cert.installation_key
        .verify(tbs.bytes().as_deref(), &proof.signature, "leaf proof")
        .map_err(|_| CredentialError::BadLeafProof)?;
    Ok((
        LeafIdentity {
            did: cert.did,
            identity_key: cert.identity_key,
            installation_key: cert.installation_key,
        },
        cert.created,
        cert.expires,
    ))
}

/// CRED-8: a leaf's identity never changes across an update: the same DID and installation.
/// Only its certificate may be replaced (re-certified by the account's current key after a
/// rotation, or renewed, TRUST-14). Returns whether the credential changed; the caller then
/// requires the new certificate to be by the account's current key.
pub fn check_identity_unchanged(
    old: &Credential,
    new: &Credential,
) -> Result<bool, CredentialError> {
    if old.credential_type() == new.credential_type()
        && old.serialized_content() == new.serialized_content()
    {
        return Ok(false);
    }
    let (a, b) = (
        AtmlsIdentity::from_credential(old)?.certificate,
        AtmlsIdentity::from_credential(new)?.certificate,
    );
    if a.did != b.did || a.installation_key != b.installation_key {
        return Err(CredentialError::IdentityChanged);
    }
    Ok(true)
}
