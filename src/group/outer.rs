//! Outer encryption of group payloads for the transport (spec/ds.md DS-2): every MLS message of
//! a group mailbox travels sealed under a key exported from the epoch it belongs to, so the
//! delivery service sees neither the PrivateMessage header (group id, epoch, content type) nor
//! the exact size.

use openmls::prelude::MlsGroup;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::AeadType;

use super::GroupError;
use crate::identity::Did;

/// Format version of a sealed payload (its first byte).
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Plaintexts are padded to a multiple of this, hiding exact sizes (DS-2).
pub(crate) const PAD: usize = 256;
const AAD: &[u8] = b"atmls/v1/outer";
const KEY_LABEL: &str = "atmls/v1/outer-key";
/// At most this many accounts are named in a hint (LG-14); a commit adding more names the
/// first ones, and receivers look the others up after staging it, as without a hint.
pub(crate) const MAX_HINT_DIDS: usize = 1000;

fn key(group: &MlsGroup, crypto: &impl OpenMlsCrypto) -> Result<Vec<u8>, GroupError> {
    group
        .export_secret(crypto, KEY_LABEL, &[], 32)
        .map_err(|e| GroupError::Mls(e.to_string()))
}

/// Seals an MLS message of `group`'s current epoch for its mailbox. Public for tools that
/// drive openmls directly (interop and conformance tests); clients seal everything they send.
pub fn seal(
    group: &MlsGroup,
    crypto: &impl OpenMlsCrypto,
    mls: &[u8],
) -> Result<Vec<u8>, GroupError> {
    seal_hinted(group, crypto, mls, &[])
}

/// [`seal`] with a hint naming the accounts a commit adds (LG-14, spec/large-groups.md), so
/// that receivers can look them up before processing it rather than after. Clients send the
/// hint with every commit they make; public for tools and tests that drive openmls directly.
pub fn seal_hinted(
    group: &MlsGroup,
    crypto: &impl OpenMlsCrypto,
    mls: &[u8],
    adds: &[Did],
) -> Result<Vec<u8>, GroupError> {
    let len = u32::try_from(mls.len()).map_err(|_| GroupError::Mls("payload too long".into()))?;
    let hint = encode_hint(adds);
    let body = 4 + mls.len() + hint.len();
    let padded = body.div_ceil(PAD) * PAD;
    let mut plain = Vec::with_capacity(padded);
    plain.extend_from_slice(&len.to_be_bytes());
    plain.extend_from_slice(mls);
    plain.extend_from_slice(&hint);
    plain.resize(padded, 0);
    seal_plain(crypto, &key(group, crypto)?, &plain)
}

/// `VERSION ‖ nonce ‖ ChaCha20-Poly1305(key, plain)`: the framing of [`seal_hinted`], apart
/// from the group so that the fuzz targets can seal any plaintext under a fixed key.
pub(crate) fn seal_plain(
    crypto: &impl OpenMlsCrypto,
    key: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, GroupError> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let ct = crypto
        .aead_encrypt(AeadType::ChaCha20Poly1305, key, plain, &nonce, AAD)
        .map_err(|e| GroupError::Mls(format!("outer seal: {e:?}")))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// An opened payload: the MLS message. A hint (LG-14) that older senders put after it is
/// checked for framing and otherwise ignored: nothing named in a message is looked up before
/// the message passes the agreement checks (spec/agreement.md AGREE-2).
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) mls: Vec<u8>,
}

/// Opens a sealed payload with `group`'s current epoch key. Anything that was not sealed by a
/// member in this epoch (a stranger's or removed member's post, a tampered or truncated
/// payload, a message of another epoch) is `Undecryptable`.
pub(crate) fn open(
    group: &MlsGroup,
    crypto: &impl OpenMlsCrypto,
    sealed: &[u8],
) -> Result<Opened, GroupError> {
    open_with(crypto, || key(group, crypto), sealed)
}

/// [`open`] with the epoch key from `key`, asked for only once the framing checks pass (the
/// fuzz targets open under a fixed key).
pub(crate) fn open_with(
    crypto: &impl OpenMlsCrypto,
    key: impl FnOnce() -> Result<Vec<u8>, GroupError>,
    sealed: &[u8],
) -> Result<Opened, GroupError> {
    let bad = |why: &str| GroupError::Undecryptable(format!("outer layer: {why}"));
    let (&version, rest) = sealed.split_first().ok_or_else(|| bad("empty"))?;
    if version != VERSION {
        return Err(bad("unknown version"));
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(bad("truncated"));
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let plain = crypto
        .aead_decrypt(AeadType::ChaCha20Poly1305, &key()?, ct, nonce, AAD)
        .map_err(|_| bad("authentication failed"))?;
    let (len, body) = plain.split_at_checked(4).ok_or_else(|| bad("short"))?;
    let len = u32::from_be_bytes(len.try_into().map_err(|_| bad("short"))?) as usize;
    let (mls, rest) = body.split_at_checked(len).ok_or_else(|| bad("length"))?;
    let (_hint, padding) = split_hint(rest).ok_or_else(|| bad("hint"))?;
    if padding.iter().any(|&b| b != 0) {
        return Err(bad("padding"));
    }
    Ok(Opened { mls: mls.to_vec() })
}

/// `uint16(len(list)) ‖ list`, the list being `uint16(len(did)) ‖ did` for each account;
/// empty (all padding) when there is nothing to name. Accounts that do not fit in 64 KiB or
/// beyond [`MAX_HINT_DIDS`] are left out.
pub(crate) fn encode_hint(adds: &[Did]) -> Vec<u8> {
    let mut list = Vec::new();
    for did in adds.iter().take(MAX_HINT_DIDS) {
        let d = did.as_str().as_bytes();
        let Ok(n) = u16::try_from(d.len()) else {
            continue;
        };
        if list.len() + 2 + d.len() > usize::from(u16::MAX) {
            break;
        }
        list.extend_from_slice(&n.to_be_bytes());
        list.extend_from_slice(d);
    }
    if list.is_empty() {
        return list;
    }
    let mut out = Vec::with_capacity(2 + list.len());
    // Fits: the loop keeps `list` within u16::MAX bytes.
    out.extend_from_slice(&(list.len() as u16).to_be_bytes());
    out.extend_from_slice(&list);
    out
}

/// Splits what follows the MLS message into the hint's list and the padding; `None` if the
/// length runs past the end. Fewer than two bytes, or a zero length, is no hint.
pub(crate) fn split_hint(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let Some((n, tail)) = rest.split_first_chunk::<2>() else {
        return Some((&[], rest));
    };
    tail.split_at_checked(usize::from(u16::from_be_bytes(*n)))
}

/// The accounts in a hint's list. A list that does not parse, or names an invalid DID, counts
/// as no hint at all (it is the sender's word; nothing depends on it).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_hint(mut list: &[u8]) -> Vec<Did> {
    let mut out = Vec::new();
    while !list.is_empty() && out.len() < MAX_HINT_DIDS {
        let Some((n, tail)) = list.split_first_chunk::<2>() else {
            return Vec::new();
        };
        let Some((d, tail)) = tail.split_at_checked(usize::from(u16::from_be_bytes(*n))) else {
            return Vec::new();
        };
        let Some(did) = std::str::from_utf8(d).ok().and_then(|d| d.parse().ok()) else {
            return Vec::new();
        };
        out.push(did);
        list = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn did(s: &str) -> Did {
        s.parse().unwrap()
    }

    fn plain(mls: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut p = (mls.len() as u32).to_be_bytes().to_vec();
        p.extend_from_slice(mls);
        p.extend_from_slice(tail);
        p.resize(p.len().div_ceil(PAD) * PAD, 0);
        p
    }

    fn open_plain(p: &[u8]) -> Option<(Vec<u8>, Vec<Did>)> {
        let (len, body) = p.split_at(4);
        let (mls, rest) = body.split_at(u32::from_be_bytes(len.try_into().ok()?) as usize);
        let (hint, pad) = split_hint(rest)?;
        pad.iter()
            .all(|&b| b == 0)
            .then(|| (mls.to_vec(), decode_hint(hint)))
    }

    /// LG-14: the hint round-trips, and no hint is the zero padding DS-2 always had.
    #[test]
    fn lg_14_hint_round_trip() {
        let adds = vec![
            did("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"),
            did("did:web:example.com"),
        ];
        let (mls, hint) = open_plain(&plain(b"mls", &encode_hint(&adds))).unwrap();
        assert_eq!((mls.as_slice(), hint), (&b"mls"[..], adds));
        assert!(encode_hint(&[]).is_empty());
        // A message exactly filling its padding (no room for a length) has no hint.
        let full = plain(&[7u8; PAD - 4], &[]);
        assert_eq!(full.len(), PAD);
        assert_eq!(open_plain(&full).unwrap().1, Vec::<Did>::new());
    }

    /// LG-14: at most MAX_HINT_DIDS accounts are named, and the list stays within 64 KiB.
    #[test]
    fn lg_14_hint_bounded() {
        let many: Vec<Did> = (0..MAX_HINT_DIDS + 5)
            .map(|i| did(&format!("did:web:host{i}.example.com")))
            .collect();
        let hint = encode_hint(&many);
        assert!(hint.len() <= 2 + usize::from(u16::MAX));
        let back = decode_hint(split_hint(&hint).unwrap().0);
        assert_eq!(back.len(), MAX_HINT_DIDS);
        assert_eq!(back[..], many[..MAX_HINT_DIDS]);
    }

    /// LG-14: a list that does not parse or names an invalid DID is no hint (it only decides
    /// what is looked up early); a length running past the plaintext is a malformed payload.
    #[test]
    fn lg_14_bad_hints() {
        // An entry whose length runs past the list.
        assert!(decode_hint(&[0, 9, b'd']).is_empty());
        // An entry that is not a DID.
        let mut l = vec![0, 3];
        l.extend_from_slice(b"bob");
        assert!(decode_hint(&l).is_empty());
        // Not UTF-8.
        assert!(decode_hint(&[0, 2, 0xff, 0xfe]).is_empty());
        // The list's length runs past the end of the plaintext.
        assert!(split_hint(&[0xff, 0xff, 1, 2]).is_none());
        // Bytes after the hint must still be zeros.
        let mut tail = encode_hint(&[did("did:web:example.com")]);
        tail.push(1);
        assert!(open_plain(&plain(b"m", &tail)).is_none());
    }
}
