//! Outer encryption of group payloads for the transport (spec/ds.md DS-2): every MLS message of
//! a group mailbox travels sealed under a key exported from the epoch it belongs to, so the
//! delivery service sees neither the PrivateMessage header (group id, epoch, content type) nor
//! the exact size.

use openmls::prelude::MlsGroup;
use openmls_traits::crypto::OpenMlsCrypto;
use openmls_traits::types::AeadType;

use super::GroupError;

/// Format version of a sealed payload (its first byte).
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Plaintexts are padded to a multiple of this, hiding exact sizes (DS-2).
pub(crate) const PAD: usize = 256;
const AAD: &[u8] = b"atmls/v1/outer";
const KEY_LABEL: &str = "atmls/v1/outer-key";

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
    let len = u32::try_from(mls.len()).map_err(|_| GroupError::Mls("payload too long".into()))?;
    let body = 4 + mls.len();
    let padded = body.div_ceil(PAD) * PAD;
    let mut plain = Vec::with_capacity(padded);
    plain.extend_from_slice(&len.to_be_bytes());
    plain.extend_from_slice(mls);
    plain.resize(padded, 0);
    let nonce: [u8; NONCE_LEN] = rand::random();
    let ct = crypto
        .aead_encrypt(
            AeadType::ChaCha20Poly1305,
            &key(group, crypto)?,
            &plain,
            &nonce,
            AAD,
        )
        .map_err(|e| GroupError::Mls(format!("outer seal: {e:?}")))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a sealed payload with `group`'s current epoch key. Anything that was not sealed by a
/// member in this epoch (a stranger's or removed member's post, a tampered or truncated
/// payload, a message of another epoch) is `Undecryptable`.
pub(crate) fn open(
    group: &MlsGroup,
    crypto: &impl OpenMlsCrypto,
    sealed: &[u8],
) -> Result<Vec<u8>, GroupError> {
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
        .aead_decrypt(
            AeadType::ChaCha20Poly1305,
            &key(group, crypto)?,
            ct,
            nonce,
            AAD,
        )
        .map_err(|_| bad("authentication failed"))?;
    let (len, body) = plain.split_at_checked(4).ok_or_else(|| bad("short"))?;
    let len = u32::from_be_bytes(len.try_into().map_err(|_| bad("short"))?) as usize;
    let (mls, padding) = body.split_at_checked(len).ok_or_else(|| bad("length"))?;
    if padding.iter().any(|&b| b != 0) {
        return Err(bad("padding"));
    }
    Ok(mls.to_vec())
}
