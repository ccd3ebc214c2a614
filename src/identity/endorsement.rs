//! Endorsements: when an account replaces its identity key, the old key signs the new one, so
//! a contact who pinned the old key can follow the chain (spec/identity.md ID-6).

use ed25519_dalek::Signer as _;
use tls_codec::{Serialize as _, TlsSerialize, TlsSize, VLBytes};

use super::{context, Did, IdentityError, IdentityKeyPair, PublicKey};

/// The to-be-signed encoding of an endorsement (ID-6).
#[derive(TlsSize, TlsSerialize)]
struct EndorsementTbs {
    context: VLBytes,
    did: VLBytes,
    previous_key: VLBytes,
    next_key: VLBytes,
    created: u64,
}

/// A predecessor identity key's signature naming its successor for the same DID.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endorsement {
    /// The earlier identity key, which signs.
    pub previous_key: PublicKey,
    /// When it was made (unix seconds).
    pub created: u64,
    /// Ed25519 signature by `previous_key` over the to-be-signed encoding.
    pub signature: Vec<u8>,
}

fn tbs(did: &Did, previous: &PublicKey, next: &PublicKey, created: u64) -> Vec<u8> {
    EndorsementTbs {
        context: context::ENDORSEMENT.to_vec().into(),
        did: did.as_str().as_bytes().to_vec().into(),
        previous_key: previous.0.to_vec().into(),
        next_key: next.0.to_vec().into(),
        created,
    }
    .tls_serialize_detached()
    .unwrap_or_default()
}

impl Endorsement {
    /// Checks that `previous_key` endorsed `next` as the identity key of `did`.
    pub fn verify(&self, did: &Did, next: &PublicKey) -> Result<(), IdentityError> {
        self.previous_key.verify(
            &tbs(did, &self.previous_key, next, self.created),
            &self.signature,
            "identity key endorsement",
        )
    }

    /// Checks a chain, oldest first: each endorsement is signed by its `previous_key` and
    /// names the next one's `previous_key`, the last naming `current` (ID-6).
    pub fn verify_chain(
        chain: &[Endorsement],
        did: &Did,
        current: &PublicKey,
    ) -> Result<(), IdentityError> {
        for (i, e) in chain.iter().enumerate() {
            let next = chain.get(i + 1).map(|n| &n.previous_key).unwrap_or(current);
            if &e.previous_key == next {
                return Err(IdentityError::Mismatch("endorsement of a key by itself"));
            }
            e.verify(did, next)?;
        }
        Ok(())
    }
}

impl IdentityKeyPair {
    /// Endorses `next` as this DID's identity key after this one (made before retiring this key).
    ///
    /// ```
    /// use atmls::identity::{Did, Endorsement, IdentityKeyPair};
    /// let did: Did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".parse().unwrap();
    /// let (old, new) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let e = old.endorse(&did, &new.public(), 1_700_000_000);
    /// assert!(Endorsement::verify_chain(&[e], &did, &new.public()).is_ok());
    /// ```
    pub fn endorse(&self, did: &Did, next: &PublicKey, created: u64) -> Endorsement {
        let previous_key = self.public();
        let signature = self
            .signing_key()
            .sign(&tbs(did, &previous_key, next, created))
            .to_bytes()
            .to_vec();
        Endorsement {
            previous_key,
            created,
            signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did() -> Did {
        Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap()
    }

    #[test]
    fn id_6_chain_verifies_and_binds_every_field() {
        let (k0, k1, k2) = (
            IdentityKeyPair::generate(),
            IdentityKeyPair::generate(),
            IdentityKeyPair::generate(),
        );
        let chain = vec![
            k0.endorse(&did(), &k1.public(), 10),
            k1.endorse(&did(), &k2.public(), 20),
        ];
        assert!(Endorsement::verify_chain(&chain, &did(), &k2.public()).is_ok());
        assert!(Endorsement::verify_chain(&[], &did(), &k2.public()).is_ok());
        // Another current key, another DID, a broken link, a changed time: all refused.
        assert!(Endorsement::verify_chain(&chain, &did(), &k1.public()).is_err());
        let other = Did::new("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").unwrap();
        assert!(Endorsement::verify_chain(&chain, &other, &k2.public()).is_err());
        assert!(Endorsement::verify_chain(&chain[1..], &did(), &k1.public()).is_err());
        let mut t = chain.clone();
        t[0].created = 11;
        assert_eq!(
            Endorsement::verify_chain(&t, &did(), &k2.public()),
            Err(IdentityError::BadSignature("identity key endorsement"))
        );
        let self_endorsed = vec![k2.endorse(&did(), &k2.public(), 5)];
        assert!(Endorsement::verify_chain(&self_endorsed, &did(), &k2.public()).is_err());
    }
}
