//! Proof that a reader owns a Welcome mailbox (spec/ds.md DS-W-1): only the device whose
//! installation key names the mailbox may read it or hear of its items.
//!
//! A Welcome mailbox's id is a hash of the device's public installation key (GROUP-5), which
//! anyone can look up, so anyone may post to it; reading takes a signature by the private key,
//! over the mailbox id and a time. The service learns the public key, which it could already
//! derive the id from, and nothing new: the proof carries no other identifier, and a fresh one
//! is made for every sync.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::MailboxId;

/// How far a proof's time may be from the service's clock, either way (seconds): clocks of
/// phones drift, and a proof is made once per sync.
pub const WELCOME_READ_WINDOW_SECS: u64 = 300;

const LABEL: &[u8] = b"atmls/v1/welcome-read";

/// Why a proof was refused.
///
/// ```
/// use atmls_ds_wire::{WelcomeReadError, WelcomeReadProof, WELCOME_READ_WINDOW_SECS};
/// let proof = WelcomeReadProof::sign(&[9; 32], 1_000_000);
/// let late = 1_000_000 + WELCOME_READ_WINDOW_SECS + 1;
/// assert_eq!(proof.verify(late), Err(WelcomeReadError::Expired));
/// assert_eq!(
///     WelcomeReadProof::from_header(proof.mailbox, "not-a-proof"),
///     Err(WelcomeReadError::Malformed)
/// );
/// assert_eq!(WelcomeReadError::Expired.to_string(), "welcome read proof is out of its time window");
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum WelcomeReadError {
    /// Not `<key hex>.<time>.<signature hex>`.
    #[error("welcome read proof is malformed")]
    Malformed,
    /// The key does not name this mailbox.
    #[error("welcome read proof is for another mailbox")]
    WrongMailbox,
    /// Made too long ago or too far ahead (retrying with a fresh proof helps if the clock is
    /// right).
    #[error("welcome read proof is out of its time window")]
    Expired,
    /// The signature does not verify.
    #[error("welcome read proof has a bad signature")]
    BadSignature,
}

/// A signed statement "the holder of this installation key reads its Welcome mailbox now".
///
/// ```
/// use atmls_ds_wire::{welcome_mailbox_of, WelcomeReadProof};
/// // The client signs with its installation key's secret and sends the header...
/// let proof = WelcomeReadProof::sign(&[9; 32], 1_000_000);
/// assert_eq!(proof.mailbox, welcome_mailbox_of(&proof.installation_key));
/// let header = proof.to_header();
/// // ...the service reads it for the mailbox of the request and checks it.
/// let read = WelcomeReadProof::from_header(proof.mailbox, &header)?;
/// assert_eq!(read, proof);
/// read.verify(1_000_010)?;
/// # Ok::<(), atmls_ds_wire::WelcomeReadError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WelcomeReadProof {
    /// The mailbox read.
    pub mailbox: MailboxId,
    /// The device's public installation key; hashes to `mailbox`.
    pub installation_key: [u8; 32],
    /// When it was made (unix seconds).
    pub issued_at: u64,
    /// Ed25519 by the installation key over [`WelcomeReadProof::signed_bytes`].
    pub signature: [u8; 64],
}

/// The Welcome mailbox of an installation key (GROUP-5).
///
/// ```
/// use atmls_ds_wire::{welcome_mailbox_of, MailboxId, WelcomeReadProof};
/// let proof = WelcomeReadProof::sign(&[9; 32], 0);
/// assert_eq!(welcome_mailbox_of(&proof.installation_key), proof.mailbox);
/// // A Welcome mailbox is not the group mailbox of the same 32 bytes.
/// assert_ne!(
///     welcome_mailbox_of(&proof.installation_key),
///     MailboxId::for_capability(&proof.installation_key)
/// );
/// ```
pub fn welcome_mailbox_of(installation_key: &[u8; 32]) -> MailboxId {
    MailboxId(crate::tagged_hash(
        b"atmls/v1/welcome-mailbox",
        installation_key,
    ))
}

impl WelcomeReadProof {
    /// A proof, made at `now`, for the mailbox of the Ed25519 key whose 32-byte secret is
    /// `seed`: a device's installation key, or the reader key of a secret channel (invite
    /// links, pairing), whose mailboxes are read the same way.
    ///
    /// ```
    /// use atmls_ds_wire::WelcomeReadProof;
    /// let proof = WelcomeReadProof::sign(&[9; 32], 1_000_000);
    /// assert_eq!(proof.issued_at, 1_000_000);
    /// assert_eq!(proof.verify(1_000_000), Ok(()));
    /// // Another seed is another key and another mailbox.
    /// assert_ne!(WelcomeReadProof::sign(&[10; 32], 1_000_000).mailbox, proof.mailbox);
    /// ```
    pub fn sign(seed: &[u8; 32], now: u64) -> WelcomeReadProof {
        let secret = SigningKey::from_bytes(seed);
        let installation_key = secret.verifying_key().to_bytes();
        let mailbox = welcome_mailbox_of(&installation_key);
        let signature = secret.sign(&Self::signed_bytes(&mailbox, now)).to_bytes();
        WelcomeReadProof {
            mailbox,
            installation_key,
            issued_at: now,
            signature,
        }
    }

    /// What is signed: the length-prefixed label, the mailbox id and the time (big-endian).
    ///
    /// ```
    /// use atmls_ds_wire::{MailboxId, WelcomeReadProof};
    /// let m = WelcomeReadProof::signed_bytes(&MailboxId([7; 32]), 5);
    /// // uint32 label length, the label, the mailbox id, then the time as a big-endian u64.
    /// let label = b"atmls/v1/welcome-read";
    /// assert_eq!(m[..4], (label.len() as u32).to_be_bytes());
    /// assert_eq!(&m[4..4 + label.len()], label);
    /// assert_eq!(m[4 + label.len()..m.len() - 8], [7; 32]);
    /// assert_eq!(m[m.len() - 8..], 5u64.to_be_bytes());
    /// ```
    pub fn signed_bytes(mailbox: &MailboxId, issued_at: u64) -> Vec<u8> {
        let mut m = Vec::with_capacity(4 + LABEL.len() + 40);
        m.extend_from_slice(&(LABEL.len() as u32).to_be_bytes());
        m.extend_from_slice(LABEL);
        m.extend_from_slice(&mailbox.0);
        m.extend_from_slice(&issued_at.to_be_bytes());
        m
    }

    /// The `atmls-welcome-proof` header value: `<key hex>.<issued_at>.<signature hex>`.
    ///
    /// ```
    /// use atmls_ds_wire::WelcomeReadProof;
    /// let proof = WelcomeReadProof::sign(&[9; 32], 1_000_000);
    /// let header = proof.to_header();
    /// let parts: Vec<&str> = header.split('.').collect();
    /// assert_eq!(parts.len(), 3);
    /// assert_eq!(parts[0], hex::encode(proof.installation_key));
    /// assert_eq!(parts[1], "1000000");
    /// assert_eq!(parts[2].len(), 128);
    /// ```
    pub fn to_header(&self) -> String {
        format!(
            "{}.{}.{}",
            hex::encode(self.installation_key),
            self.issued_at,
            hex::encode(self.signature)
        )
    }

    /// Reads a header value as a proof for `mailbox` (not yet verified).
    ///
    /// ```
    /// use atmls_ds_wire::{WelcomeReadError, WelcomeReadProof};
    /// let proof = WelcomeReadProof::sign(&[9; 32], 7);
    /// assert_eq!(WelcomeReadProof::from_header(proof.mailbox, &proof.to_header()), Ok(proof));
    /// // The time is decimal digits only.
    /// let signed = proof.to_header().replace(".7.", ".+7.");
    /// assert_eq!(
    ///     WelcomeReadProof::from_header(proof.mailbox, &signed),
    ///     Err(WelcomeReadError::Malformed)
    /// );
    /// ```
    pub fn from_header(mailbox: MailboxId, value: &str) -> Result<Self, WelcomeReadError> {
        let mut parts = value.split('.');
        let (Some(key), Some(time), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(WelcomeReadError::Malformed);
        };
        let mut installation_key = [0u8; 32];
        let mut signature = [0u8; 64];
        hex::decode_to_slice(key, &mut installation_key)
            .map_err(|_| WelcomeReadError::Malformed)?;
        hex::decode_to_slice(sig, &mut signature).map_err(|_| WelcomeReadError::Malformed)?;
        // Digits only: `u64::from_str` would take a leading `+`.
        if time.is_empty() || time.len() > 20 || !time.bytes().all(|b| b.is_ascii_digit()) {
            return Err(WelcomeReadError::Malformed);
        }
        let issued_at = time.parse().map_err(|_| WelcomeReadError::Malformed)?;
        Ok(WelcomeReadProof {
            mailbox,
            installation_key,
            issued_at,
            signature,
        })
    }

    /// Checks the proof at time `now`: the key names the mailbox, the time is within
    /// [`WELCOME_READ_WINDOW_SECS`] of `now`, and the signature verifies (strictly).
    ///
    /// ```
    /// use atmls_ds_wire::{welcome_mailbox_of, WelcomeReadError, WelcomeReadProof};
    /// let proof = WelcomeReadProof::sign(&[9; 32], 1_000_000);
    /// assert_eq!(proof.verify(1_000_000), Ok(()));
    /// // Another device's proof does not open this mailbox.
    /// let mut other = WelcomeReadProof::sign(&[10; 32], 1_000_000);
    /// other.mailbox = proof.mailbox;
    /// assert_eq!(other.verify(1_000_000), Err(WelcomeReadError::WrongMailbox));
    /// // A time changed after signing breaks the signature.
    /// let mut moved = proof;
    /// moved.issued_at += 1;
    /// assert_eq!(moved.verify(1_000_000), Err(WelcomeReadError::BadSignature));
    /// assert_eq!(welcome_mailbox_of(&moved.installation_key), moved.mailbox);
    /// ```
    pub fn verify(&self, now: u64) -> Result<(), WelcomeReadError> {
        if welcome_mailbox_of(&self.installation_key) != self.mailbox {
            return Err(WelcomeReadError::WrongMailbox);
        }
        if self.issued_at.abs_diff(now) > WELCOME_READ_WINDOW_SECS {
            return Err(WelcomeReadError::Expired);
        }
        let key = VerifyingKey::from_bytes(&self.installation_key)
            .map_err(|_| WelcomeReadError::BadSignature)?;
        key.verify_strict(
            &Self::signed_bytes(&self.mailbox, self.issued_at),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| WelcomeReadError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random installation key's secret.
    fn key() -> [u8; 32] {
        rand::random()
    }

    fn public(seed: &[u8; 32]) -> [u8; 32] {
        SigningKey::from_bytes(seed).verifying_key().to_bytes()
    }

    #[test]
    fn ds_w_1_proof_round_trips_and_verifies() {
        let k = key();
        let p = WelcomeReadProof::sign(&k, 1_000_000);
        let back = WelcomeReadProof::from_header(p.mailbox, &p.to_header()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.verify(1_000_000), Ok(()));
        assert_eq!(back.verify(1_000_000 + WELCOME_READ_WINDOW_SECS), Ok(()));
        assert_eq!(back.verify(1_000_000 - WELCOME_READ_WINDOW_SECS), Ok(()));
    }

    #[test]
    fn ds_w_1_proof_refused_out_of_window_for_another_mailbox_or_forged() {
        let k = key();
        let other = key();
        let p = WelcomeReadProof::sign(&k, 1_000_000);
        let late = 1_000_000 + WELCOME_READ_WINDOW_SECS + 1;
        assert_eq!(p.verify(late), Err(WelcomeReadError::Expired));
        // Another device's mailbox with this device's proof.
        let mut q = p;
        q.mailbox = welcome_mailbox_of(&public(&other));
        assert_eq!(q.verify(1_000_000), Err(WelcomeReadError::WrongMailbox));
        // Another device's key claiming this mailbox.
        let mut r = WelcomeReadProof::sign(&other, 1_000_000);
        r.mailbox = p.mailbox;
        assert_eq!(r.verify(1_000_000), Err(WelcomeReadError::WrongMailbox));
        // A time changed after signing.
        let mut s = p;
        s.issued_at += 1;
        assert_eq!(s.verify(1_000_000), Err(WelcomeReadError::BadSignature));
        let mut t = p;
        t.signature[0] ^= 1;
        assert_eq!(t.verify(1_000_000), Err(WelcomeReadError::BadSignature));
    }

    #[test]
    fn ds_w_1_malformed_headers_are_refused() {
        let k = key();
        let p = WelcomeReadProof::sign(&k, 7);
        let good = p.to_header();
        let (key, rest) = good.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        for bad in [
            String::new(),
            "..".into(),
            format!("{key}.7"),
            format!("{key}.7.{sig}.x"),
            format!("{key}.+7.{sig}"),
            format!("{key}.-7.{sig}"),
            format!("{key}.99999999999999999999999.{sig}"),
            format!("{}.7.{sig}", &key[2..]),
            format!("{key}.7.{}", &sig[2..]),
            format!("zz{}.7.{sig}", &key[2..]),
        ] {
            assert_eq!(
                WelcomeReadProof::from_header(p.mailbox, &bad),
                Err(WelcomeReadError::Malformed),
                "{bad}"
            );
        }
    }
}
