//! Envelopes atmls puts around MLS messages on the transport: the Welcome envelope, in clear
//! (version 1) or sealed to its one recipient (version 2) (spec/group.md GROUP-8, GROUP-12).

use openmls::prelude::Ciphersuite;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::HpkeCiphertext;
use tls_codec::{
    DeserializeBytes as _, Serialize as _, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes,
};

use crate::group::GroupError;

/// Version byte of a Welcome envelope in clear (GROUP-8).
pub(crate) const CLEAR: u8 = 1;
/// Version byte of a Welcome envelope sealed to its recipient (GROUP-12).
pub(crate) const SEALED: u8 = 2;
/// HPKE `info` of the seal: domain separation from MLS's own use of the init key (whose
/// `info` is an `EncryptContext` with the label "MLS 1.0 Welcome", RFC 9420 §5.1.3).
pub(crate) const SEAL_INFO: &[u8] = b"atmls/v1/welcome-seal";
/// The smallest sealed envelope: every one is padded to a power of two from here (GROUP-12).
pub(crate) const SEAL_BUCKET_MIN: usize = 1024;
/// Tag length of every AEAD an MLS ciphersuite names (AES-GCM, ChaCha20-Poly1305).
const TAG_LEN: usize = 16;

#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct WelcomeWire {
    version: u8,
    commit_seq: u64,
    welcome: VLBytes,
}

/// The plaintext of a sealed envelope, before its zero padding.
#[derive(TlsSize, TlsSerialize, TlsDeserializeBytes)]
struct SealedContent {
    commit_seq: u64,
    welcome: VLBytes,
}

/// A Welcome with the mailbox position of the commit that added the device, so the joiner
/// reads the group's mailbox from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WelcomeEnvelope {
    /// The position after which the joiner reads the mailbox.
    pub commit_seq: u64,
    pub welcome: Vec<u8>,
    /// The capability of the group's current mailbox (GROUP-4a), sealed only; `None`: the one
    /// derived from the group id (GROUP-4).
    pub capability: Option<[u8; 32]>,
}

/// The byte after the Welcome in a sealed plaintext that says a mailbox capability follows;
/// padding is zeros, so an envelope without one reads as before (GROUP-12).
const CAPABILITY_FOLLOWS: u8 = 1;

/// A Welcome envelope as received, before it is opened.
#[derive(Debug)]
pub(crate) enum Received<'a> {
    /// Version 1: the envelope in clear.
    Clear(WelcomeEnvelope),
    /// Version 2: sealed to one of the recipient's KeyPackages.
    Sealed(Sealed<'a>),
}

/// A sealed envelope's HPKE encapsulation and ciphertext.
#[derive(Debug)]
pub(crate) struct Sealed<'a> {
    enc: &'a [u8],
    ct: &'a [u8],
}

/// `Nenc` of the ciphersuite's KEM (RFC 9180 §7.1): the length of the encapsulation.
fn enc_len(cs: Ciphersuite) -> Option<usize> {
    match cs.hpke_kem_algorithm() as u16 {
        0x0010 => Some(65),
        0x0011 => Some(97),
        0x0012 => Some(133),
        0x0020 => Some(32),
        0x0021 => Some(56),
        _ => None,
    }
}

/// Bytes a sealed envelope adds around its padded plaintext: version, encapsulation, tag.
pub(crate) fn seal_overhead(cs: Ciphersuite) -> Option<usize> {
    Some(1 + enc_len(cs)? + TAG_LEN)
}

/// The size of the sealed envelope of a plaintext of `len` bytes: the next power of two,
/// at least [`SEAL_BUCKET_MIN`].
pub(crate) fn sealed_size(len: usize, overhead: usize) -> usize {
    (len + overhead).max(SEAL_BUCKET_MIN).next_power_of_two()
}

impl WelcomeEnvelope {
    /// Version 1, in clear (GROUP-8).
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        WelcomeWire {
            version: CLEAR,
            commit_seq: self.commit_seq,
            welcome: self.welcome.clone().into(),
        }
        .tls_serialize_detached()
        .unwrap_or_default()
    }

    /// Version 1 only: what [`Self::to_bytes`] writes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, GroupError> {
        let w = WelcomeWire::tls_deserialize_exact_bytes(bytes)
            .map_err(|_| GroupError::Malformed("welcome envelope".into()))?;
        if w.version != CLEAR {
            return Err(GroupError::Malformed("welcome envelope version".into()));
        }
        Ok(WelcomeEnvelope {
            commit_seq: w.commit_seq,
            welcome: w.welcome.as_slice().to_vec(),
            capability: None,
        })
    }

    /// The padded plaintext of the sealed envelope (GROUP-12): `commit_seq ‖ welcome<V>`,
    /// then `0x01 ‖ capability[32]` if it names a mailbox (GROUP-4a), then zeros, to the
    /// envelope size of [`sealed_size`].
    pub(crate) fn sealed_plaintext(&self, overhead: usize) -> Result<Vec<u8>, GroupError> {
        let mut plain = SealedContent {
            commit_seq: self.commit_seq,
            welcome: self.welcome.clone().into(),
        }
        .tls_serialize_detached()
        .map_err(|_| GroupError::Malformed("welcome too large to seal".into()))?;
        if let Some(cap) = &self.capability {
            plain.push(CAPABILITY_FOLLOWS);
            plain.extend_from_slice(cap);
        }
        plain.resize(sealed_size(plain.len(), overhead) - overhead, 0);
        Ok(plain)
    }

    /// Version 2: sealed with HPKE (RFC 9180, base mode, the ciphersuite's KEM, KDF and AEAD)
    /// to `init_key`, the HPKE init key of the recipient's KeyPackage (GROUP-12):
    /// `0x02 ‖ enc ‖ ciphertext`, padded to a power of two of at least 1 KiB.
    pub(crate) fn seal(
        &self,
        crypto: &impl OpenMlsCrypto,
        cs: Ciphersuite,
        init_key: &[u8],
    ) -> Result<Vec<u8>, GroupError> {
        let overhead =
            seal_overhead(cs).ok_or(GroupError::Malformed("ciphersuite's KEM".into()))?;
        seal_plain(crypto, cs, init_key, &self.sealed_plaintext(overhead)?)
    }

    /// Reads an envelope as received: version 1 decoded, version 2 split for opening.
    pub(crate) fn received(bytes: &[u8], cs: Ciphersuite) -> Result<Received<'_>, GroupError> {
        match bytes.first() {
            Some(&CLEAR) => Self::from_bytes(bytes).map(Received::Clear),
            Some(&SEALED) => {
                let n = enc_len(cs).ok_or(GroupError::Malformed("ciphersuite's KEM".into()))?;
                let (enc, ct) = bytes[1..]
                    .split_at_checked(n)
                    .ok_or(GroupError::Malformed("sealed welcome envelope".into()))?;
                if ct.len() < TAG_LEN {
                    return Err(GroupError::Malformed("sealed welcome envelope".into()));
                }
                Ok(Received::Sealed(Sealed { enc, ct }))
            }
            _ => Err(GroupError::Malformed("welcome envelope version".into())),
        }
    }
}

/// Seals an already padded plaintext (the fuzz target seals arbitrary ones).
pub(crate) fn seal_plain(
    crypto: &impl OpenMlsCrypto,
    cs: Ciphersuite,
    init_key: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, GroupError> {
    let n = enc_len(cs).ok_or(GroupError::Malformed("ciphersuite's KEM".into()))?;
    let HpkeCiphertext {
        kem_output,
        ciphertext,
    } = crypto
        .hpke_seal(cs.hpke_config(), init_key, SEAL_INFO, &[SEALED], plain)
        .map_err(|e| GroupError::Malformed(format!("sealing a Welcome: {e:?}")))?;
    if kem_output.as_slice().len() != n {
        return Err(GroupError::Malformed("HPKE encapsulation length".into()));
    }
    let mut out = Vec::with_capacity(1 + n + ciphertext.as_slice().len());
    out.push(SEALED);
    out.extend_from_slice(kem_output.as_slice());
    out.extend_from_slice(ciphertext.as_slice());
    Ok(out)
}

impl Sealed<'_> {
    /// Opens with one private init key: `None` if it is not the key the envelope was sealed
    /// to (or the envelope was altered), else the envelope, or `Err` if what was sealed is
    /// not a padded envelope plaintext (the sender's fault: no other key will do better).
    pub(crate) fn open(
        &self,
        crypto: &impl OpenMlsCrypto,
        cs: Ciphersuite,
        init_private_key: &[u8],
    ) -> Option<Result<WelcomeEnvelope, GroupError>> {
        let input = HpkeCiphertext {
            kem_output: self.enc.to_vec().into(),
            ciphertext: self.ct.to_vec().into(),
        };
        let plain = crypto
            .hpke_open(
                cs.hpke_config(),
                &input,
                init_private_key,
                SEAL_INFO,
                &[SEALED],
            )
            .ok()?;
        Some(decode_plain(&plain))
    }
}

/// The envelope in an opened plaintext: `commit_seq ‖ welcome<V>`, the mailbox capability if
/// `0x01` follows, then zeros only.
pub(crate) fn decode_plain(plain: &[u8]) -> Result<WelcomeEnvelope, GroupError> {
    let (c, rest) = SealedContent::tls_deserialize_bytes(plain)
        .map_err(|_| GroupError::Malformed("sealed welcome plaintext".into()))?;
    let (capability, padding) = match rest.split_first() {
        Some((&CAPABILITY_FOLLOWS, more)) => {
            let (cap, padding) = more
                .split_first_chunk::<32>()
                .ok_or(GroupError::Malformed("sealed welcome capability".into()))?;
            (Some(*cap), padding)
        }
        _ => (None, rest),
    };
    if padding.iter().any(|b| *b != 0) {
        return Err(GroupError::Malformed("sealed welcome padding".into()));
    }
    Ok(WelcomeEnvelope {
        commit_seq: c.commit_seq,
        welcome: c.welcome.as_slice().to_vec(),
        capability,
    })
}

#[cfg(test)]
mod tests {
    use openmls_rust_crypto::RustCrypto;

    use super::*;
    use crate::keypackage::DEFAULT_CIPHERSUITE as CS;

    fn keys(c: &RustCrypto, seed: u8) -> (Vec<u8>, Vec<u8>) {
        let kp = c
            .derive_hpke_keypair(CS.hpke_config(), &[seed; 32])
            .unwrap();
        (kp.private.to_vec(), kp.public)
    }

    fn open_with(bytes: &[u8], sk: &[u8]) -> Option<Result<WelcomeEnvelope, GroupError>> {
        match WelcomeEnvelope::received(bytes, CS).ok()? {
            Received::Sealed(s) => s.open(&RustCrypto::default(), CS, sk),
            Received::Clear(_) => panic!("not sealed"),
        }
    }

    #[test]
    fn group_8_envelope_round_trip_and_truncation() {
        let e = WelcomeEnvelope {
            commit_seq: 7,
            welcome: vec![1, 2, 3],
            capability: None,
        };
        let b = e.to_bytes();
        assert_eq!(WelcomeEnvelope::from_bytes(&b).unwrap(), e);
        assert!(matches!(
            WelcomeEnvelope::received(&b, CS),
            Ok(Received::Clear(r)) if r == e
        ));
        for n in 0..b.len() {
            assert!(WelcomeEnvelope::from_bytes(&b[..n]).is_err());
        }
    }

    #[test]
    fn group_12_sealed_envelope_opens_only_with_its_key_and_is_padded() {
        let c = RustCrypto::default();
        let (sk, pk) = keys(&c, 1);
        let (other, _) = keys(&c, 2);
        let overhead = seal_overhead(CS).unwrap();
        assert_eq!(
            overhead, 49,
            "0x02, a 32-byte X25519 encapsulation, a 16-byte tag"
        );
        for (len, size) in [(0, 1024), (400, 1024), (1024 - 49 - 10, 1024), (1000, 2048)] {
            let e = WelcomeEnvelope {
                commit_seq: 0x0102_0304_0506_0708,
                welcome: vec![0xAB; len],
                capability: None,
            };
            let sealed = e.seal(&c, CS, &pk).unwrap();
            assert_eq!(sealed.len(), size, "{len}");
            assert_eq!(sealed[0], SEALED);
            // Neither the position nor the Welcome shows.
            assert!(!sealed
                .windows(8)
                .any(|w| w == 0x0102_0304_0506_0708u64.to_be_bytes()));
            assert!(!sealed.windows(8).any(|w| w == [0xAB; 8]));
            assert_eq!(open_with(&sealed, &sk).unwrap().unwrap(), e);
            assert!(open_with(&sealed, &other).is_none());
            // Each seal is fresh: two seals of one envelope share nothing.
            assert_ne!(e.seal(&c, CS, &pk).unwrap()[1..33], sealed[1..33]);
            // Any flipped byte after the version, or a cut, and it does not open.
            for i in [1, 20, 33, 100, sealed.len() - 1] {
                let mut t = sealed.clone();
                t[i] ^= 1;
                assert!(open_with(&t, &sk).is_none(), "byte {i}");
            }
            for n in [0, 1, 33, 49, sealed.len() - 1] {
                assert!(match WelcomeEnvelope::received(&sealed[..n], CS) {
                    Ok(Received::Sealed(s)) => s.open(&c, CS, &sk).is_none(),
                    Ok(Received::Clear(_)) => false,
                    Err(_) => true,
                });
            }
        }
        assert!(WelcomeEnvelope::received(&[3, 0, 0], CS).is_err());
    }

    #[test]
    fn group_12_padding_must_be_zeros() {
        let c = RustCrypto::default();
        let (sk, pk) = keys(&c, 1);
        let e = WelcomeEnvelope {
            commit_seq: 3,
            welcome: vec![9; 10],
            capability: None,
        };
        let mut plain = e.sealed_plaintext(49).unwrap();
        assert_eq!(decode_plain(&plain).unwrap(), e);
        *plain.last_mut().unwrap() = 1;
        let sealed = seal_plain(&c, CS, &pk, &plain).unwrap();
        assert!(open_with(&sealed, &sk).unwrap().is_err());
        // No padding at all is fine too: the sender chooses the size.
        let bare = seal_plain(&c, CS, &pk, &plain[..8 + 1 + 10]).unwrap();
        assert_eq!(open_with(&bare, &sk).unwrap().unwrap(), e);
    }

    #[test]
    fn group_4a_sealed_envelope_names_the_current_mailbox() {
        let e = WelcomeEnvelope {
            commit_seq: 0,
            welcome: vec![9; 10],
            capability: Some([7; 32]),
        };
        let plain = e.sealed_plaintext(49).unwrap();
        assert_eq!(decode_plain(&plain).unwrap(), e);
        // Sealed, it does not show and opens whole.
        let c = RustCrypto::default();
        let (sk, pk) = keys(&c, 1);
        let sealed = e.seal(&c, CS, &pk).unwrap();
        assert_eq!(sealed.len(), 1024);
        assert!(!sealed.windows(8).any(|w| w == [7; 8]));
        assert_eq!(open_with(&sealed, &sk).unwrap().unwrap(), e);
        // The marker, then the capability, then zeros.
        assert_eq!(plain[19], CAPABILITY_FOLLOWS);
        assert_eq!(plain[20..52], [7; 32]);
        // Cut inside the capability: refused, not read as a shorter one.
        for n in 20..52 {
            assert!(decode_plain(&plain[..n]).is_err(), "{n}");
        }
        // Any other marker byte is not padding.
        let mut other = plain.clone();
        other[19] = 2;
        assert!(decode_plain(&other).is_err());
        // A byte after the capability that is not zero is refused.
        let mut tail = plain.clone();
        tail[52] = 1;
        assert!(decode_plain(&tail).is_err());
    }
}
