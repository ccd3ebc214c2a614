//! Safety numbers: a 60-digit code two contacts compare to verify each other's identity keys,
//! the same on both sides whoever computes it (spec/trust.md TRUST-7), and its QR payload.

use sha2::{Digest, Sha512};

use super::TrustError;
use crate::identity::{Did, PublicKey};

/// Hash iterations per side: makes grinding a key with a colliding half-number costly
/// (as Signal's numeric fingerprints do).
const ITERATIONS: usize = 5200;
const VERSION: u16 = 0;
/// Prefix of the QR payload; the version follows.
const QR_PREFIX: &str = "atmls:safety-number:1:";

/// The safety number of two accounts' identity keys.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SafetyNumber {
    digits: String,
}

impl SafetyNumber {
    /// The number for `(a, key_a)` and `(b, key_b)`; symmetric in the two parties.
    ///
    /// ```
    /// use atmls::identity::{Did, IdentityKeyPair};
    /// use atmls::trust::SafetyNumber;
    /// let (a, b) = (Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap(),
    ///               Did::new("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").unwrap());
    /// let (ka, kb) = (IdentityKeyPair::generate().public(), IdentityKeyPair::generate().public());
    /// let n = SafetyNumber::new(&a, &ka, &b, &kb);
    /// assert_eq!(n, SafetyNumber::new(&b, &kb, &a, &ka));
    /// assert_eq!(n.digits().len(), 60);
    /// ```
    pub fn new(a: &Did, key_a: &PublicKey, b: &Did, key_b: &PublicKey) -> Self {
        let mut halves = [half(a, key_a), half(b, key_b)];
        halves.sort();
        SafetyNumber {
            digits: halves.concat(),
        }
    }

    /// The 60 digits.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// Twelve groups of five digits, for display.
    pub fn display_groups(&self) -> Vec<&str> {
        (0..12)
            .filter_map(|i| self.digits.get(i * 5..i * 5 + 5))
            .collect()
    }

    /// The payload a QR code carries: scanning it on the other device compares numbers.
    pub fn qr_payload(&self) -> String {
        format!("{QR_PREFIX}{}", self.digits)
    }

    /// Compares a scanned payload with this number (TRUST-8): `Ok` when they match.
    pub fn check_qr(&self, scanned: &str) -> Result<(), TrustError> {
        let digits = scanned
            .strip_prefix(QR_PREFIX)
            .filter(|d| d.len() == 60 && d.bytes().all(|c| c.is_ascii_digit()))
            .ok_or(TrustError::BadQrPayload)?;
        if digits != self.digits {
            return Err(TrustError::SafetyNumberMismatch);
        }
        Ok(())
    }
}

/// Thirty digits for one party.
fn half(did: &Did, key: &PublicKey) -> String {
    let mut h = Sha512::new();
    h.update(VERSION.to_be_bytes());
    h.update(key.as_bytes());
    h.update(did.as_str().as_bytes());
    let mut out = h.finalize();
    for _ in 0..ITERATIONS {
        let mut h = Sha512::new();
        h.update(out);
        h.update(key.as_bytes());
        out = h.finalize();
    }
    out.chunks(5)
        .take(6)
        .map(|c| {
            let v = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", v % 100_000)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKeyPair;

    fn did(c: char) -> Did {
        Did::new(&format!("did:plc:{}", c.to_string().repeat(24))).unwrap()
    }

    #[test]
    fn trust_7_symmetric_sixty_digits_and_key_sensitive() {
        let (ka, kb) = (
            IdentityKeyPair::generate().public(),
            IdentityKeyPair::generate().public(),
        );
        let n = SafetyNumber::new(&did('a'), &ka, &did('b'), &kb);
        assert_eq!(n, SafetyNumber::new(&did('b'), &kb, &did('a'), &ka));
        assert_eq!(n.digits().len(), 60);
        assert!(n.digits().bytes().all(|c| c.is_ascii_digit()));
        assert_eq!(n.display_groups().len(), 12);
        let kc = IdentityKeyPair::generate().public();
        assert_ne!(n, SafetyNumber::new(&did('a'), &kc, &did('b'), &kb));
        assert_ne!(n, SafetyNumber::new(&did('a'), &ka, &did('b'), &kc));
        // The DID is bound too: the same key under another DID gives another number.
        assert_ne!(n, SafetyNumber::new(&did('c'), &ka, &did('b'), &kb));
    }

    #[test]
    fn trust_8_qr_round_trip_and_refusals() {
        let (ka, kb) = (
            IdentityKeyPair::generate().public(),
            IdentityKeyPair::generate().public(),
        );
        let n = SafetyNumber::new(&did('a'), &ka, &did('b'), &kb);
        let theirs = SafetyNumber::new(&did('b'), &kb, &did('a'), &ka);
        assert_eq!(n.check_qr(&theirs.qr_payload()), Ok(()));
        let other = SafetyNumber::new(&did('a'), &ka, &did('b'), &ka);
        assert_eq!(
            n.check_qr(&other.qr_payload()),
            Err(TrustError::SafetyNumberMismatch)
        );
        for bad in [
            "",
            "atmls:safety-number:1:123",
            "hello",
            "atmls:safety-number:1:",
        ] {
            assert_eq!(n.check_qr(bad), Err(TrustError::BadQrPayload), "{bad}");
        }
        let mut s = n.qr_payload();
        s.pop();
        s.push('x');
        assert_eq!(n.check_qr(&s), Err(TrustError::BadQrPayload));
    }
}
