//! Identity-key succession: a retiring key endorses its successor, and a declaration carries
//! the chain of endorsements so that a contact who pinned any earlier key can follow it
//! (spec/trust.md TRUST-1 … TRUST-3).

use tls_codec::{Serialize as _, TlsSerialize, TlsSize, VLBytes};

use super::{context, Did, IdentityDeclaration, IdentityError, IdentityKeyPair, PublicKey};

/// Longest endorsement chain a declaration may carry; longer ones are refused as malformed
/// (bounds the work a hostile record can cause).
pub const MAX_ENDORSEMENTS: usize = 32;

/// A retiring identity key's signed statement that `new_key` succeeds it for `did`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endorsement {
    /// The account.
    pub did: Did,
    /// The retiring key, which signs.
    pub previous_key: PublicKey,
    /// Its successor.
    pub new_key: PublicKey,
    /// When (unix seconds).
    pub created: u64,
    /// Ed25519 signature by `previous_key`.
    pub signature: Vec<u8>,
}

#[derive(TlsSize, TlsSerialize)]
struct EndorsementTbs {
    context: VLBytes,
    did: VLBytes,
    previous_key: VLBytes,
    new_key: VLBytes,
    created: u64,
}

impl Endorsement {
    fn tbs(&self) -> Option<Vec<u8>> {
        EndorsementTbs {
            context: context::ENDORSEMENT.to_vec().into(),
            did: self.did.as_str().as_bytes().to_vec().into(),
            previous_key: self.previous_key.0.to_vec().into(),
            new_key: self.new_key.0.to_vec().into(),
            created: self.created,
        }
        .tls_serialize_detached()
        .ok()
    }

    /// Checks the signature by the previous key and that it is for `did` (TRUST-2).
    pub fn verify(&self, did: &Did) -> Result<(), IdentityError> {
        if &self.did != did {
            return Err(IdentityError::ForgedEndorsement);
        }
        self.previous_key
            .verify(self.tbs().as_deref(), &self.signature, "endorsement")
            .map_err(|_| IdentityError::ForgedEndorsement)
    }
}

impl IdentityDeclaration {
    /// The keys that may sign for this account: the declared key and every key in its
    /// endorsement chain whose endorsement verifies.
    pub fn account_keys(&self) -> Vec<PublicKey> {
        let mut keys = vec![self.identity_key];
        keys.extend(
            self.endorsements
                .iter()
                .filter(|e| e.verify(&self.did).is_ok())
                .map(|e| e.previous_key),
        );
        keys
    }

    /// The earlier keys of the account, oldest first: those whose endorsement in this
    /// declaration verifies (TRUST-14).
    pub fn predecessors(&self) -> Vec<PublicKey> {
        let mut keys = self.account_keys();
        keys.remove(0);
        keys.retain(|k| *k != self.identity_key);
        keys
    }

    /// Installations revoked by a valid revocation (TRUST-12).
    pub fn revoked(&self) -> Vec<PublicKey> {
        let keys = self.account_keys();
        self.revocations
            .iter()
            .filter(|r| r.verify(&self.did, &keys).is_ok())
            .map(|r| r.installation_key)
            .collect()
    }
}

impl IdentityKeyPair {
    /// Endorses `new_key` as this key's successor for `did`.
    pub fn endorse(&self, did: &Did, new_key: &PublicKey, created: u64) -> Endorsement {
        let mut e = Endorsement {
            did: did.clone(),
            previous_key: self.public(),
            new_key: *new_key,
            created,
            signature: Vec::new(),
        };
        e.signature = self.sign_raw(e.tbs().as_deref());
        e
    }

    /// Rotates from this key to `next`: the declaration `next` signs, carrying `current`'s
    /// chain plus this key's endorsement of `next` (TRUST-1). `current` must be this key's
    /// declaration.
    ///
    /// ```
    /// use atmls::identity::{succession, Did, IdentityKeyPair, Succession};
    /// let did = Did::new("did:plc:abcdefghijklmnopqrstuvwx")?;
    /// let (k0, k1) = (IdentityKeyPair::generate(), IdentityKeyPair::generate());
    /// let d0 = k0.declare(&did, 1);
    /// let d1 = k0.rotate(&d0, &k1, 2)?;
    /// assert!(matches!(succession(&k0.public(), &d1), Ok(Succession::Endorsed(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rotate(
        &self,
        current: &IdentityDeclaration,
        next: &IdentityKeyPair,
        created: u64,
    ) -> Result<IdentityDeclaration, IdentityError> {
        if current.identity_key != self.public() {
            return Err(IdentityError::Mismatch("declaration identity key"));
        }
        if current.endorsements.len() >= MAX_ENDORSEMENTS {
            return Err(IdentityError::Malformed("endorsement chain too long"));
        }
        let mut d = next.declare(&current.did, created.max(current.created + 1));
        d.endorsements = current.endorsements.clone();
        d.revocations = current.revocations.clone();
        d.endorsements
            .push(self.endorse(&current.did, &next.public(), d.created));
        Ok(d)
    }
}

/// How a declaration's key relates to a key pinned earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Succession {
    /// The same key.
    Same,
    /// A successor, reached through these keys (after the pinned one, ending with the
    /// declared one), each endorsed by its predecessor.
    Endorsed(Vec<PublicKey>),
    /// No endorsement path from the pinned key: a trust warning (TRUST-3).
    Unendorsed,
}

/// Walks `declaration`'s endorsements from `pinned` to its key. Every endorsement must verify
/// (one forged link rejects the declaration: TRUST-2); a chain that does not reach the
/// declared key from `pinned` (a gap, or an unknown start) is [`Succession::Unendorsed`].
pub fn succession(
    pinned: &PublicKey,
    declaration: &IdentityDeclaration,
) -> Result<Succession, IdentityError> {
    if declaration.endorsements.len() > MAX_ENDORSEMENTS {
        return Err(IdentityError::Malformed("endorsement chain too long"));
    }
    for e in &declaration.endorsements {
        e.verify(&declaration.did)?;
    }
    if &declaration.identity_key == pinned {
        return Ok(Succession::Same);
    }
    let mut cur = *pinned;
    let mut path = Vec::new();
    // Each step must follow an endorsement by the current key; the bound stops cycles.
    for _ in 0..declaration.endorsements.len() {
        let Some(next) = declaration
            .endorsements
            .iter()
            .find(|e| e.previous_key == cur)
            .map(|e| e.new_key)
        else {
            break;
        };
        path.push(next);
        if next == declaration.identity_key {
            return Ok(Succession::Endorsed(path));
        }
        cur = next;
    }
    Ok(Succession::Unendorsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did() -> Did {
        Did::new("did:plc:abcdefghijklmnopqrstuvwx").unwrap()
    }

    fn chain(n: usize) -> (Vec<IdentityKeyPair>, IdentityDeclaration) {
        let keys: Vec<_> = (0..n).map(|_| IdentityKeyPair::generate()).collect();
        let mut d = keys[0].declare(&did(), 100);
        for w in keys.windows(2) {
            d = w[0].rotate(&d, &w[1], 100).unwrap();
        }
        (keys, d)
    }

    #[test]
    fn trust_1_chain_followed_from_any_earlier_key() {
        let (keys, d) = chain(4);
        assert!(d.verify().is_ok());
        assert_eq!(succession(&keys[3].public(), &d), Ok(Succession::Same));
        assert_eq!(
            succession(&keys[0].public(), &d),
            Ok(Succession::Endorsed(vec![
                keys[1].public(),
                keys[2].public(),
                keys[3].public()
            ]))
        );
        assert_eq!(
            succession(&keys[2].public(), &d),
            Ok(Succession::Endorsed(vec![keys[3].public()]))
        );
        assert!(d.created > 100, "each rotation is newer than the last");
    }

    #[test]
    fn trust_2_forged_endorsement_rejects_the_declaration() {
        let (keys, mut d) = chain(3);
        d.endorsements[1].signature[0] ^= 1;
        assert_eq!(
            succession(&keys[0].public(), &d),
            Err(IdentityError::ForgedEndorsement)
        );
        // An endorsement made for another DID does not count for this one.
        let (keys, mut d) = chain(2);
        d.endorsements[0].did = Did::new("did:plc:zzzzzzzzzzzzzzzzzzzzzzzz").unwrap();
        assert_eq!(
            succession(&keys[0].public(), &d),
            Err(IdentityError::ForgedEndorsement)
        );
    }

    #[test]
    fn trust_3_gap_or_unknown_start_is_unendorsed() {
        let (keys, mut d) = chain(4);
        d.endorsements.remove(1);
        assert_eq!(
            succession(&keys[0].public(), &d),
            Ok(Succession::Unendorsed)
        );
        let stranger = IdentityKeyPair::generate();
        let (_, d) = chain(3);
        assert_eq!(
            succession(&stranger.public(), &d),
            Ok(Succession::Unendorsed)
        );
        // An attacker's fresh key with no endorsement.
        let attacker = IdentityKeyPair::generate().declare(&did(), 200);
        assert_eq!(
            succession(&keys[3].public(), &attacker),
            Ok(Succession::Unendorsed)
        );
    }

    #[test]
    fn cycles_and_overlong_chains_terminate() {
        let (keys, mut d) = chain(2);
        // k1 endorses k0 back: a cycle that never reaches a third key.
        d.endorsements
            .push(keys[1].endorse(&did(), &keys[0].public(), 1));
        let stranger = IdentityKeyPair::generate().declare(&did(), 300);
        let mut s = stranger.clone();
        s.endorsements = d.endorsements.clone();
        assert_eq!(
            succession(&keys[0].public(), &s),
            Ok(Succession::Unendorsed)
        );
        s.endorsements = vec![d.endorsements[0].clone(); MAX_ENDORSEMENTS + 1];
        assert!(matches!(
            succession(&keys[0].public(), &s),
            Err(IdentityError::Malformed(_))
        ));
    }
}
