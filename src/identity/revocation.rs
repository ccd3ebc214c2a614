//! Device revocation: the identity key's signed statement that an installation no longer
//! speaks for the account (spec/trust.md TRUST-12). Carried in the declaration record; each
//! one authenticates itself, so whoever holds the PDS password can neither forge one nor
//! un-revoke a device for a client that already saw it.

use tls_codec::{Serialize as _, TlsSerialize, TlsSize, VLBytes};

use super::{context, Did, IdentityError, IdentityKeyPair, PublicKey};

/// A revoked installation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRevocation {
    /// The account.
    pub did: Did,
    /// The revoked installation key.
    pub installation_key: PublicKey,
    /// The identity key that signs.
    pub identity_key: PublicKey,
    /// When (unix seconds).
    pub revoked_at: u64,
    /// Ed25519 signature by `identity_key`.
    pub signature: Vec<u8>,
}

#[derive(TlsSize, TlsSerialize)]
struct RevocationTbs {
    context: VLBytes,
    did: VLBytes,
    installation_key: VLBytes,
    identity_key: VLBytes,
    revoked_at: u64,
}

impl DeviceRevocation {
    fn tbs(&self) -> Option<Vec<u8>> {
        RevocationTbs {
            context: context::DEVICE_REVOCATION.to_vec().into(),
            did: self.did.as_str().as_bytes().to_vec().into(),
            installation_key: self.installation_key.0.to_vec().into(),
            identity_key: self.identity_key.0.to_vec().into(),
            revoked_at: self.revoked_at,
        }
        .tls_serialize_detached()
        .ok()
    }

    /// Checks that it is for `did` and signed by one of `keys` (the declared identity key or
    /// an endorsed predecessor).
    pub fn verify(&self, did: &Did, keys: &[PublicKey]) -> Result<(), IdentityError> {
        if &self.did != did || !keys.contains(&self.identity_key) {
            return Err(IdentityError::Mismatch("revocation signer"));
        }
        self.identity_key
            .verify(self.tbs().as_deref(), &self.signature, "device revocation")
    }
}

impl IdentityKeyPair {
    /// Revokes `installation` as a device of `did`.
    pub fn revoke(&self, did: &Did, installation: &PublicKey, revoked_at: u64) -> DeviceRevocation {
        let mut r = DeviceRevocation {
            did: did.clone(),
            installation_key: *installation,
            identity_key: self.public(),
            revoked_at,
            signature: Vec::new(),
        };
        r.signature = self.sign_raw(r.tbs().as_deref());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_12_revocation_binds_every_field() {
        let did = Did::new("did:plc:abcdefghijklmnopqrstuvwx").unwrap();
        let k = IdentityKeyPair::generate();
        let dev = IdentityKeyPair::generate().public();
        let r = k.revoke(&did, &dev, 100);
        assert!(r.verify(&did, &[k.public()]).is_ok());
        let other_key = IdentityKeyPair::generate().public();
        assert!(r.verify(&did, &[other_key]).is_err());
        let other_did = Did::new("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz").unwrap();
        assert!(r.verify(&other_did, &[k.public()]).is_err());
        let mut t = r.clone();
        t.installation_key = other_key;
        assert!(t.verify(&did, &[k.public()]).is_err());
        let mut t = r.clone();
        t.revoked_at = 101;
        assert!(t.verify(&did, &[k.public()]).is_err());
        // Signed by a key that is not the one it names.
        let mut t = IdentityKeyPair::generate().revoke(&did, &dev, 100);
        t.identity_key = k.public();
        assert!(t.verify(&did, &[k.public()]).is_err());
    }
}
