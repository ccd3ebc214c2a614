//! Canonical TLS encodings of the credential identity and of the leaf proof.

use openmls::prelude::{BasicCredential, Credential, CredentialType, Extension, UnknownExtension};
use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use super::CredentialError;
use crate::identity::{Did, InstallationCertificate, PublicKey};

/// Version byte of [`AtmlsIdentity`] (CRED-1).
pub const IDENTITY_VERSION: u8 = 1;

pub use crate::extensions::LEAF_PROOF_EXTENSION;

/// MLS signature scheme code point of Ed25519, used for the identity key.
const ED25519: u16 = 0x0807;

/// Longest identity encoding we decode: bounds allocation on hostile input.
const MAX_IDENTITY_LEN: usize = 4096;

#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct IdentityWire {
    version: u8,
    did: VLBytes,
    identity_key_scheme: u16,
    identity_key: VLBytes,
    installation_key: VLBytes,
    created: u64,
    expires: u64,
    certificate_signature: VLBytes,
}

/// The content of a leaf's BasicCredential identity: which account and device it is, with the
/// identity key's certificate for the device. Constant for the life of the installation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AtmlsIdentity {
    /// The installation certificate (carries DID, identity key and installation key).
    pub certificate: InstallationCertificate,
}

impl AtmlsIdentity {
    /// The canonical bytes (spec/credential.md, "identity encoding").
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.certificate;
        IdentityWire {
            version: IDENTITY_VERSION,
            did: c.did.as_str().as_bytes().to_vec().into(),
            identity_key_scheme: ED25519,
            identity_key: c.identity_key.0.to_vec().into(),
            installation_key: c.installation_key.0.to_vec().into(),
            created: c.created,
            expires: c.expires,
            certificate_signature: c.signature.clone().into(),
        }
        .tls_serialize_detached()
        // Our own bounded fields (DID ≤ 2,048 bytes) always encode; empty bytes would in any
        // case be refused by every reader (CRED-1), never mistaken for an identity.
        .unwrap_or_default()
    }

    /// Decodes identity bytes (untrusted), checking structure only (CRED-1, CRED-2).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CredentialError> {
        if bytes.len() > MAX_IDENTITY_LEN {
            return Err(CredentialError::Malformed("identity too long"));
        }
        if let Some(&v) = bytes.first() {
            if v != IDENTITY_VERSION {
                return Err(CredentialError::UnsupportedVersion(v));
            }
        }
        let (w, rest) = IdentityWire::tls_deserialize_bytes(bytes)
            .map_err(|_| CredentialError::Malformed("identity encoding"))?;
        if !rest.is_empty() {
            return Err(CredentialError::Malformed("trailing bytes"));
        }
        if w.identity_key_scheme != ED25519 {
            return Err(CredentialError::Malformed("identity key scheme"));
        }
        // Keys of another length are a malformed encoding, not a bad key (CRED-1).
        if w.identity_key.as_slice().len() != 32 || w.installation_key.as_slice().len() != 32 {
            return Err(CredentialError::Malformed("key length"));
        }
        let did = std::str::from_utf8(w.did.as_slice())
            .map_err(|_| CredentialError::Malformed("DID is not UTF-8"))?;
        let did = Did::new(did)?;
        Ok(AtmlsIdentity {
            certificate: InstallationCertificate {
                did,
                // Points are checked by the signature checks that use them (LG-12).
                identity_key: PublicKey::from_slice_unchecked(
                    w.identity_key.as_slice(),
                    "identity",
                )?,
                installation_key: PublicKey::from_slice_unchecked(
                    w.installation_key.as_slice(),
                    "installation",
                )?,
                created: w.created,
                expires: w.expires,
                signature: w.certificate_signature.as_slice().to_vec(),
            },
        })
    }

    /// The MLS credential carrying these bytes.
    pub fn to_credential(&self) -> Credential {
        BasicCredential::new(self.to_bytes()).into()
    }

    /// Decodes the identity of an MLS credential (CRED-1).
    pub fn from_credential(credential: &Credential) -> Result<Self, CredentialError> {
        if credential.credential_type() != CredentialType::Basic {
            return Err(CredentialError::NotBasic);
        }
        let basic =
            BasicCredential::try_from(credential.clone()).map_err(|_| CredentialError::NotBasic)?;
        Self::from_bytes(basic.identity())
    }
}

#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct LeafProofWire {
    version: u8,
    signature: VLBytes,
}

/// The installation's signature over a leaf's MLS signature key (CRED-5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafProof {
    /// Ed25519 signature by the installation key over the leaf-proof TBS.
    pub signature: Vec<u8>,
}

impl LeafProof {
    /// As a leaf-node extension.
    pub fn to_extension(&self) -> Extension {
        let bytes = LeafProofWire {
            version: 1,
            signature: self.signature.clone().into(),
        }
        .tls_serialize_detached()
        // A 64-byte signature always encodes; an empty payload would fail CRED-5 anyway.
        .unwrap_or_default();
        Extension::Unknown(LEAF_PROOF_EXTENSION, UnknownExtension(bytes))
    }

    /// Decodes the extension payload (untrusted).
    pub fn from_extension_bytes(bytes: &[u8]) -> Result<Self, CredentialError> {
        let (w, rest) = LeafProofWire::tls_deserialize_bytes(bytes)
            .map_err(|_| CredentialError::BadLeafProof)?;
        if !rest.is_empty() || w.version != 1 {
            return Err(CredentialError::BadLeafProof);
        }
        Ok(LeafProof {
            signature: w.signature.as_slice().to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceIdentity;

    fn identity() -> AtmlsIdentity {
        let d = DeviceIdentity::new_account(Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap());
        AtmlsIdentity {
            certificate: d.certificate,
        }
    }

    /// RFC 9420 §2.1.2: a vector length takes the fewest bytes; a longer prefix is refused.
    #[test]
    fn cred_1_non_minimal_length_prefix_is_refused() {
        let bytes = identity().to_bytes();
        // bytes[1] is the DID's one-byte length (< 64); re-encode it on two bytes.
        let len = bytes[1];
        assert!(len < 64);
        let mut long = vec![bytes[0], 0x40, len];
        long.extend_from_slice(&bytes[2..]);
        assert_eq!(
            AtmlsIdentity::from_bytes(&long),
            Err(CredentialError::Malformed("identity encoding"))
        );
    }

    #[test]
    fn cred_1_round_trip() {
        let id = identity();
        assert_eq!(AtmlsIdentity::from_bytes(&id.to_bytes()).unwrap(), id);
        assert_eq!(
            AtmlsIdentity::from_credential(&id.to_credential()).unwrap(),
            id
        );
    }

    #[test]
    fn cred_1_rejects_every_truncation_and_trailing_bytes() {
        let bytes = identity().to_bytes();
        for n in 0..bytes.len() {
            assert!(
                AtmlsIdentity::from_bytes(&bytes[..n]).is_err(),
                "prefix {n}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            AtmlsIdentity::from_bytes(&long),
            Err(CredentialError::Malformed("trailing bytes"))
        );
    }

    #[test]
    fn cred_1_rejects_unknown_version() {
        let mut bytes = identity().to_bytes();
        bytes[0] = 2;
        assert_eq!(
            AtmlsIdentity::from_bytes(&bytes),
            Err(CredentialError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn cred_2_rejects_invalid_did() {
        let id = identity();
        let c = &id.certificate;
        let bytes = IdentityWire {
            version: 1,
            did: b"did:evil:x".to_vec().into(),
            identity_key_scheme: ED25519,
            identity_key: c.identity_key.0.to_vec().into(),
            installation_key: c.installation_key.0.to_vec().into(),
            created: c.created,
            expires: c.expires,
            certificate_signature: c.signature.clone().into(),
        }
        .tls_serialize_detached()
        .unwrap();
        assert!(matches!(
            AtmlsIdentity::from_bytes(&bytes),
            Err(CredentialError::Certificate(
                crate::identity::IdentityError::InvalidDid(_)
            ))
        ));
    }

    #[test]
    fn cred_5_leaf_proof_round_trip_and_garbage() {
        let p = LeafProof {
            signature: vec![7; 64],
        };
        let Extension::Unknown(t, UnknownExtension(b)) = p.to_extension() else {
            panic!()
        };
        assert_eq!(t, LEAF_PROOF_EXTENSION);
        assert_eq!(LeafProof::from_extension_bytes(&b).unwrap(), p);
        assert_eq!(
            LeafProof::from_extension_bytes(&b[..3]),
            Err(CredentialError::BadLeafProof)
        );
    }

    /// 32 bytes that do not decode as an Ed25519 point.
    fn not_a_point() -> [u8; 32] {
        (0u8..=255)
            .map(|i| [i; 32])
            .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
            .unwrap()
    }

    #[test]
    fn lg_12_cred_1_a_key_that_is_not_a_point_fails_the_certificate_check() {
        let id = identity();
        let now = id.certificate.created + 1;
        for (which, bad_identity) in [("identity", true), ("installation", false)] {
            let mut c = id.certificate.clone();
            if bad_identity {
                c.identity_key = PublicKey(not_a_point());
            } else {
                c.installation_key = PublicKey(not_a_point());
            }
            let bytes = AtmlsIdentity {
                certificate: c.clone(),
            }
            .to_bytes();
            // Decoding reads the 32 bytes; the signature checks refuse the key.
            let decoded = AtmlsIdentity::from_bytes(&bytes).unwrap();
            let e = decoded.certificate.verify(now).unwrap_err();
            if bad_identity {
                // The certificate's signing key is refused before any arithmetic.
                assert!(
                    matches!(e, crate::identity::IdentityError::InvalidKey(_)),
                    "{which}: {e:?}"
                );
            } else {
                // The certificate covers the installation key: another key breaks it (and the
                // leaf proof, CRED-5, would refuse it as its signing key).
                assert!(
                    matches!(e, crate::identity::IdentityError::BadSignature(_)),
                    "{which}: {e:?}"
                );
                assert!(matches!(
                    c.installation_key
                        .verify(Some(b"x"), &[0; 64], "leaf proof"),
                    Err(crate::identity::IdentityError::InvalidKey(_))
                ));
            }
        }
        // Not 32 bytes: refused at decoding.
        let c = &id.certificate;
        let bytes = IdentityWire {
            version: 1,
            did: c.did.as_str().as_bytes().to_vec().into(),
            identity_key_scheme: ED25519,
            identity_key: vec![1u8; 31].into(),
            installation_key: c.installation_key.0.to_vec().into(),
            created: c.created,
            expires: c.expires,
            certificate_signature: c.signature.clone().into(),
        }
        .tls_serialize_detached()
        .unwrap();
        assert_eq!(
            AtmlsIdentity::from_bytes(&bytes),
            Err(CredentialError::Malformed("key length"))
        );
    }
}
