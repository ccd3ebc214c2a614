//! Proof-of-work stamps on strangers' posts (spec/ds.md DS-17): anyone may post to a Welcome
//! mailbox (an invitation, a join request), so what a flood costs must fall on whoever floods.
//!
//! A stamp is a nonce such that
//! `SHA-256(uint32(len(label)) ‖ label ‖ mailbox ‖ idempotency key ‖ SHA-256(payload) ‖
//! uint64(nonce))` starts with at least the required number of zero bits. It is bound to the
//! post (mailbox, key and payload), so it cannot be spent twice: a repeat with the same key is
//! the same post (DS-5), and a new key or payload needs new work. The service asks for
//! [`MIN_STAMP_BITS`] or more and raises the price for a mailbox under a flood; it says the
//! price in its refusal, so an honest poster pays it once and gets through.

use sha2::{Digest, Sha256};

use crate::MailboxId;

/// The header a stamp travels in: the nonce as 16 hex digits.
pub const STAMP_HEADER: &str = "atmls-stamp";
/// The most bits a client pays for (2^28 hashes, some seconds of one core); a service that
/// asks for more is refused by the client rather than paid.
pub const MAX_STAMP_BITS: u8 = 28;
/// The fewest bits a service may ask for: 0 means "no stamp needed".
pub const MIN_STAMP_BITS: u8 = 0;

const LABEL: &[u8] = b"atmls/v1/stamp";

/// The hash state after the post's fixed part, so that each try hashes only the nonce.
fn prefix(mailbox: &MailboxId, idem: &[u8; 16], payload: &[u8]) -> Sha256 {
    let mut h = Sha256::new();
    h.update((LABEL.len() as u32).to_be_bytes());
    h.update(LABEL);
    h.update(mailbox.0);
    h.update(idem);
    h.update(Sha256::digest(payload));
    h
}

fn zero_bits(d: &[u8]) -> u32 {
    let mut n = 0;
    for b in d {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn bits_of(prefix: &Sha256, nonce: u64) -> u32 {
    let mut h = prefix.clone();
    h.update(nonce.to_be_bytes());
    zero_bits(&h.finalize())
}

/// Whether `nonce` is a stamp of at least `bits` for this post.
///
/// ```
/// use atmls_ds_wire::{stamp::{make_stamp, stamp_ok}, MailboxId};
/// let mailbox = MailboxId([7; 32]);
/// let nonce = make_stamp(&mailbox, &[1; 16], b"welcome", 8).unwrap();
/// assert!(stamp_ok(&mailbox, &[1; 16], b"welcome", nonce, 8));
/// // Bound to the post: another mailbox, key or payload needs new work.
/// assert!(!stamp_ok(&MailboxId([8; 32]), &[1; 16], b"welcome", nonce, 8));
/// assert!(!stamp_ok(&mailbox, &[2; 16], b"welcome", nonce, 8));
/// assert!(!stamp_ok(&mailbox, &[1; 16], b"welcomf", nonce, 8));
/// // Zero bits asks for nothing.
/// assert!(stamp_ok(&mailbox, &[2; 16], b"anything", 0, 0));
/// ```
pub fn stamp_ok(
    mailbox: &MailboxId,
    idem: &[u8; 16],
    payload: &[u8],
    nonce: u64,
    bits: u8,
) -> bool {
    bits == 0 || bits_of(&prefix(mailbox, idem, payload), nonce) >= u32::from(bits)
}

/// The first stamp of at least `bits` for this post, searching nonces from 0 (so a retry of
/// the same post finds the same stamp). About 2^bits hashes; `None` above [`MAX_STAMP_BITS`].
///
/// ```
/// use atmls_ds_wire::{stamp::{make_stamp, stamp_ok, MAX_STAMP_BITS}, MailboxId};
/// let mailbox = MailboxId([7; 32]);
/// let nonce = make_stamp(&mailbox, &[1; 16], b"join", 10).unwrap();
/// assert!(stamp_ok(&mailbox, &[1; 16], b"join", nonce, 10));
/// // Deterministic: a retry of the same post finds the same stamp.
/// assert_eq!(make_stamp(&mailbox, &[1; 16], b"join", 10), Some(nonce));
/// // A price above the cap is not paid.
/// assert_eq!(make_stamp(&mailbox, &[1; 16], b"join", MAX_STAMP_BITS + 1), None);
/// ```
pub fn make_stamp(mailbox: &MailboxId, idem: &[u8; 16], payload: &[u8], bits: u8) -> Option<u64> {
    if bits > MAX_STAMP_BITS {
        return None;
    }
    let p = prefix(mailbox, idem, payload);
    // 2^28 tries find a 28-bit stamp with probability 1 - 1/e; the bound only stops a loop
    // that would never end, and is far above any expected count.
    (0..u64::MAX).find(|n| bits_of(&p, *n) >= u32::from(bits))
}

/// Parses a stamp header: exactly 16 lowercase or uppercase hex digits.
///
/// ```
/// use atmls_ds_wire::stamp::{parse_stamp, stamp_header};
/// assert_eq!(parse_stamp("0000000000000abc"), Some(0xabc));
/// assert_eq!(parse_stamp(&stamp_header(u64::MAX)), Some(u64::MAX));
/// assert_eq!(parse_stamp("abc"), None);
/// assert_eq!(parse_stamp("+000000000000001"), None);
/// ```
pub fn parse_stamp(v: &str) -> Option<u64> {
    if v.len() != 16 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(v, 16).ok()
}

/// A stamp as its header value.
///
/// ```
/// use atmls_ds_wire::stamp::{parse_stamp, stamp_header};
/// assert_eq!(stamp_header(0xabc), "0000000000000abc");
/// assert_eq!(parse_stamp(&stamp_header(42)), Some(42));
/// ```
pub fn stamp_header(nonce: u64) -> String {
    format!("{nonce:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: MailboxId = MailboxId([7; 32]);

    #[test]
    fn ds_17_a_stamp_is_bound_to_mailbox_key_and_payload() {
        let n = make_stamp(&M, &[1; 16], b"welcome", 12).expect("12 bits");
        assert!(stamp_ok(&M, &[1; 16], b"welcome", n, 12));
        assert!(!stamp_ok(&MailboxId([8; 32]), &[1; 16], b"welcome", n, 12));
        assert!(!stamp_ok(&M, &[2; 16], b"welcome", n, 12));
        assert!(!stamp_ok(&M, &[1; 16], b"welcomf", n, 12));
        assert_eq!(
            make_stamp(&M, &[1; 16], b"welcome", 12),
            Some(n),
            "deterministic"
        );
    }

    #[test]
    fn ds_17_zero_bits_needs_nothing_and_more_than_the_cap_is_not_paid() {
        assert!(stamp_ok(&M, &[1; 16], b"x", 0, 0));
        assert_eq!(make_stamp(&M, &[1; 16], b"x", MAX_STAMP_BITS + 1), None);
        // The first nonce of 12 bits is checked against its exact count: asking for one bit
        // more than it has is refused.
        let n = make_stamp(&M, &[3; 16], b"y", 12).expect("12 bits");
        let has = bits_of(&prefix(&M, &[3; 16], b"y"), n);
        assert!(has >= 12);
        assert!(!stamp_ok(&M, &[3; 16], b"y", n, (has + 1) as u8));
    }

    #[test]
    fn ds_17_zero_bit_counting_and_header_form() {
        assert_eq!(zero_bits(&[0, 0, 0x10]), 19);
        assert_eq!(zero_bits(&[0x80]), 0);
        assert_eq!(zero_bits(&[0; 4]), 32);
        assert_eq!(parse_stamp(&stamp_header(0xabc)), Some(0xabc));
        assert_eq!(parse_stamp("abc"), None);
        assert_eq!(parse_stamp("zzzzzzzzzzzzzzzz"), None);
        assert_eq!(parse_stamp("+000000000000001"), None);
    }
}
