//! Recovery: the identity key exported under a passphrase (Argon2id + ChaCha20-Poly1305), so a
//! user who loses every device restores the same identity and contacts see no change
//! (spec/trust.md TRUST-11).

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

use super::{Did, IdentityError, IdentityKeyPair};

const MAGIC: &[u8; 8] = b"atmlsrk1";
const CONTEXT: &[u8] = b"atmls/v1/identity-recovery";
/// Argon2id cost used for new exports: 64 MiB, 3 passes, one lane.
pub const RECOVERY_MEMORY_KIB: u32 = 64 * 1024;
const RECOVERY_PASSES: u32 = 3;
/// The weakest cost an import accepts (OWASP's minimum for Argon2id: 19 MiB, 2 passes), so a
/// tampered blob cannot make brute force cheap; the largest (1 GiB) so it cannot exhaust
/// memory.
const MIN_MEMORY_KIB: u32 = 19 * 1024;
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_PASSES: u32 = 10;
const HEADER_LEN: usize = 8 + 4 + 4 + 16 + 12;
const BLOB_LEN: usize = HEADER_LEN + 32 + 16;

fn derive(
    passphrase: &str,
    salt: &[u8],
    m_kib: u32,
    t: u32,
) -> Result<Zeroizing<[u8; 32]>, IdentityError> {
    if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&m_kib) || !(2..=MAX_PASSES).contains(&t) {
        return Err(IdentityError::Malformed("recovery key cost parameters"));
    }
    let params = Params::new(m_kib, t, 1, Some(32))
        .map_err(|_| IdentityError::Malformed("recovery key cost parameters"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out[..])
        .map_err(|_| IdentityError::Malformed("recovery key derivation"))?;
    Ok(out)
}

fn aad(did: &Did, header: &[u8]) -> Vec<u8> {
    [CONTEXT, did.as_str().as_bytes(), header].concat()
}

impl IdentityKeyPair {
    /// Exports this key encrypted under `passphrase` for `did`: store the bytes anywhere (a
    /// file, a password manager, the PDS as a blob); without the passphrase they reveal
    /// nothing.
    ///
    /// ```
    /// use atmls::identity::{Did, IdentityKeyPair};
    /// let did = Did::new("did:plc:abcdefghijklmnopqrstuvwx")?;
    /// let key = IdentityKeyPair::generate();
    /// let blob = key.export_encrypted(&did, "correct horse battery staple")?;
    /// let back = IdentityKeyPair::import_encrypted(&blob, &did, "correct horse battery staple")?;
    /// assert_eq!(back.public(), key.public());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn export_encrypted(&self, did: &Did, passphrase: &str) -> Result<Vec<u8>, IdentityError> {
        let salt: [u8; 16] = rand::random();
        let nonce: [u8; 12] = rand::random();
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&RECOVERY_MEMORY_KIB.to_be_bytes());
        header.extend_from_slice(&RECOVERY_PASSES.to_be_bytes());
        header.extend_from_slice(&salt);
        header.extend_from_slice(&nonce);
        let k = derive(passphrase, &salt, RECOVERY_MEMORY_KIB, RECOVERY_PASSES)?;
        let secret = self.secret_bytes();
        let ct = ChaCha20Poly1305::new(Key::from_slice(&k[..]))
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &secret[..],
                    aad: &aad(did, &header),
                },
            )
            .map_err(|_| IdentityError::Malformed("recovery encryption"))?;
        header.extend_from_slice(&ct);
        Ok(header)
    }

    /// Restores a key exported by [`IdentityKeyPair::export_encrypted`] for the same `did`.
    /// A wrong passphrase, another DID or tampered bytes give
    /// [`IdentityError::BadSignature`]`("recovery passphrase or data")`.
    pub fn import_encrypted(
        blob: &[u8],
        did: &Did,
        passphrase: &str,
    ) -> Result<IdentityKeyPair, IdentityError> {
        let parts = RecoveryBlob::parse(blob)?;
        let k = derive(passphrase, parts.salt, parts.m_kib, parts.t)?;
        parts.open(&k, did)
    }
}

/// The fields of an exported blob, checked for framing and cost before any work.
pub(crate) struct RecoveryBlob<'a> {
    header: &'a [u8],
    pub(crate) m_kib: u32,
    pub(crate) t: u32,
    salt: &'a [u8],
    nonce: &'a [u8],
    ct: &'a [u8],
}

impl<'a> RecoveryBlob<'a> {
    /// Splits `blob` (untrusted) into its fields.
    pub(crate) fn parse(blob: &'a [u8]) -> Result<Self, IdentityError> {
        if blob.len() != BLOB_LEN || !blob.starts_with(MAGIC) {
            return Err(IdentityError::Malformed("recovery blob"));
        }
        let (header, ct) = blob.split_at(HEADER_LEN);
        let word = |i: usize| -> Result<u32, IdentityError> {
            header
                .get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or(IdentityError::Malformed("recovery blob"))
        };
        let (m_kib, t) = (word(8)?, word(12)?);
        let salt = header
            .get(16..32)
            .ok_or(IdentityError::Malformed("recovery blob"))?;
        let nonce = header
            .get(32..44)
            .ok_or(IdentityError::Malformed("recovery blob"))?;
        Ok(RecoveryBlob {
            header,
            m_kib,
            t,
            salt,
            nonce,
            ct,
        })
    }

    /// Decrypts the key under `k` (derived from the passphrase) for `did`.
    pub(crate) fn open(&self, k: &[u8; 32], did: &Did) -> Result<IdentityKeyPair, IdentityError> {
        let secret = Zeroizing::new(
            ChaCha20Poly1305::new(Key::from_slice(&k[..]))
                .decrypt(
                    Nonce::from_slice(self.nonce),
                    Payload {
                        msg: self.ct,
                        aad: &aad(did, self.header),
                    },
                )
                .map_err(|_| IdentityError::BadSignature("recovery passphrase or data"))?,
        );
        IdentityKeyPair::from_secret_bytes(&secret)
    }
}

/// The checks [`derive`] makes on a blob's cost parameters, for the fuzz target (which skips
/// the Argon2id work itself: up to 1 GiB and ten passes by design).
#[cfg(feature = "fuzzing")]
pub(crate) fn cost_allowed(m_kib: u32, t: u32) -> bool {
    (MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&m_kib) && (2..=MAX_PASSES).contains(&t)
}

/// Seals a secret as [`IdentityKeyPair::export_encrypted`] does, under a given key and cost
/// words (the fuzz seeds; no Argon2id).
#[cfg(feature = "fuzzing")]
pub(crate) fn seal_with_key(
    k: &[u8; 32],
    did: &Did,
    m_kib: u32,
    t: u32,
    secret: &[u8],
) -> Option<Vec<u8>> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&m_kib.to_be_bytes());
    header.extend_from_slice(&t.to_be_bytes());
    header.extend_from_slice(&[7; 16]);
    header.extend_from_slice(&[9; 12]);
    let ct = ChaCha20Poly1305::new(Key::from_slice(&k[..]))
        .encrypt(
            Nonce::from_slice(&[9; 12]),
            Payload {
                msg: secret,
                aad: &aad(did, &header),
            },
        )
        .ok()?;
    header.extend_from_slice(&ct);
    Some(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did(c: char) -> Did {
        Did::new(&format!("did:plc:{}", c.to_string().repeat(24))).unwrap()
    }

    #[test]
    fn trust_11_round_trip_and_refusals() {
        let key = IdentityKeyPair::generate();
        let blob = key.export_encrypted(&did('a'), "pass phrase").unwrap();
        assert_eq!(blob.len(), BLOB_LEN);
        let back = IdentityKeyPair::import_encrypted(&blob, &did('a'), "pass phrase").unwrap();
        assert_eq!(back.public(), key.public());
        let bad = IdentityError::BadSignature("recovery passphrase or data");
        assert_eq!(
            IdentityKeyPair::import_encrypted(&blob, &did('a'), "wrong").err(),
            Some(bad.clone())
        );
        assert_eq!(
            IdentityKeyPair::import_encrypted(&blob, &did('b'), "pass phrase").err(),
            Some(bad.clone())
        );
        // Tampering with the salt, nonce or ciphertext fails authentication.
        for i in [20, 40, HEADER_LEN + 3, BLOB_LEN - 1] {
            let mut t = blob.clone();
            t[i] ^= 1;
            assert_eq!(
                IdentityKeyPair::import_encrypted(&t, &did('a'), "pass phrase").err(),
                Some(bad.clone()),
                "byte {i}"
            );
        }
        // Weakened or absurd cost parameters are refused before any work.
        for (m, t) in [
            (1024u32, 3u32),
            (u32::MAX, 3),
            (RECOVERY_MEMORY_KIB, 1),
            (RECOVERY_MEMORY_KIB, 1000),
        ] {
            let mut x = blob.clone();
            x[8..12].copy_from_slice(&m.to_be_bytes());
            x[12..16].copy_from_slice(&t.to_be_bytes());
            assert!(matches!(
                IdentityKeyPair::import_encrypted(&x, &did('a'), "pass phrase"),
                Err(IdentityError::Malformed(_))
            ));
        }
        for n in [0, 10, BLOB_LEN - 1] {
            assert!(matches!(
                IdentityKeyPair::import_encrypted(&blob[..n], &did('a'), "pass phrase"),
                Err(IdentityError::Malformed(_))
            ));
        }
    }
}
