//! Re-add requests (spec/agreement.md AGREE-8): a device that has fallen out of a group (a
//! restored old database, commits pruned past retention) can no longer open anything posted in
//! the group, nor post anything members can open. It asks to be re-added with a request
//! sealed under a key derived from the group id, which every member knows, and signed by its
//! installation key. Members check the request against the tree (the device has a leaf, and
//! that leaf's signature key is not the one the device holds: it really lost its state), and
//! any member answers with an ordinary commit that removes the stale leaf and adds a fresh
//! KeyPackage of the same device.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use super::{tagged_hash, GroupError};
use crate::identity::{Did, InstallationKeyPair, PublicKey};

/// The first byte of a sealed request; group payloads start with 1 (DS-2).
pub const RESYNC_VERSION: u8 = 0x52;
const NONCE_LEN: usize = 12;
const AAD: &[u8] = b"atmls/v1/resync";
const CONTEXT: &[u8] = b"atmls/v1/resync-request";
/// Longest request accepted (a DID is at most 2 KiB).
const MAX_LEN: usize = 4096;

/// A device's request to be re-added, opened and its signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResyncRequest {
    /// The device's account.
    pub did: Did,
    /// The device.
    pub installation: PublicKey,
    /// The leaf signature key the device holds (not the tree's, if it fell out).
    pub leaf_key: Vec<u8>,
    /// When the device asked (its clock, unix seconds).
    pub created: u64,
}

fn key(group_id: &[u8]) -> [u8; 32] {
    tagged_hash(b"atmls/v1/resync-key", group_id)
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u16).to_be_bytes());
    out.extend_from_slice(field);
}

fn take<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (len, rest) = input.split_first_chunk::<2>()?;
    let (field, rest) = rest.split_at_checked(u16::from_be_bytes(*len) as usize)?;
    *input = rest;
    Some(field)
}

/// What the installation key signs: the context, the group, and the request's fields.
fn tbs(group_id: &[u8], r: &ResyncRequest) -> Vec<u8> {
    let mut out = Vec::new();
    put(&mut out, CONTEXT);
    put(&mut out, group_id);
    put(&mut out, r.did.as_str().as_bytes());
    put(&mut out, r.installation.as_bytes());
    put(&mut out, &r.leaf_key);
    out.extend_from_slice(&r.created.to_be_bytes());
    out
}

/// Seals a request for `group_id`, signed by the device's installation key.
pub(crate) fn seal(
    group_id: &[u8],
    installation: &InstallationKeyPair,
    request: &ResyncRequest,
) -> Result<Vec<u8>, GroupError> {
    let sig = installation.sign_raw(Some(&tbs(group_id, request)));
    let mut body = Vec::new();
    put(&mut body, request.did.as_str().as_bytes());
    put(&mut body, request.installation.as_bytes());
    put(&mut body, &request.leaf_key);
    body.extend_from_slice(&request.created.to_be_bytes());
    put(&mut body, &sig);
    let nonce: [u8; NONCE_LEN] = rand::random();
    let ct = ChaCha20Poly1305::new(Key::from_slice(&key(group_id)))
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &body,
                aad: AAD,
            },
        )
        .map_err(|_| GroupError::Mls("resync request encryption".into()))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(RESYNC_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens a request posted in the mailbox of `group_id` and verifies its signature. Anything
/// else (another group's request, a forgery, a truncation) is `Malformed`.
pub(crate) fn open(group_id: &[u8], payload: &[u8]) -> Result<ResyncRequest, GroupError> {
    let bad = |why: &str| GroupError::Malformed(format!("resync request: {why}"));
    if payload.len() > MAX_LEN {
        return Err(bad("too long"));
    }
    let rest = match payload.split_first() {
        Some((&RESYNC_VERSION, rest)) => rest,
        _ => return Err(bad("version")),
    };
    let (nonce, ct) = rest
        .split_at_checked(NONCE_LEN)
        .ok_or_else(|| bad("short"))?;
    let body = ChaCha20Poly1305::new(Key::from_slice(&key(group_id)))
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: AAD })
        .map_err(|_| bad("authentication failed"))?;
    let mut input = body.as_slice();
    let did = take(&mut input)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| Did::new(d).ok())
        .ok_or_else(|| bad("did"))?;
    let installation = take(&mut input)
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .map(PublicKey)
        .ok_or_else(|| bad("installation"))?;
    let leaf_key = take(&mut input).ok_or_else(|| bad("leaf key"))?.to_vec();
    let (created, mut input) = input
        .split_first_chunk::<8>()
        .map(|(c, r)| (u64::from_be_bytes(*c), r))
        .ok_or_else(|| bad("created"))?;
    let sig = take(&mut input).ok_or_else(|| bad("signature"))?;
    if !input.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let request = ResyncRequest {
        did,
        installation,
        leaf_key,
        created,
    };
    installation
        .verify(Some(&tbs(group_id, &request)), sig, "resync request")
        .map_err(|_| bad("signature"))?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(inst: &InstallationKeyPair) -> ResyncRequest {
        ResyncRequest {
            did: Did::new("did:plc:bbbbbbbbbbbbbbbbbbbbbbbb").unwrap(),
            installation: inst.public(),
            leaf_key: vec![7; 32],
            created: 1_800_000_000,
        }
    }

    #[test]
    fn agree_8_request_round_trips_and_binds_the_group_and_the_signer() {
        let inst = InstallationKeyPair::generate();
        let r = request(&inst);
        let sealed = seal(b"group", &inst, &r).unwrap();
        assert_eq!(open(b"group", &sealed).unwrap(), r);
        // Another group's key opens nothing.
        assert!(open(b"other", &sealed).is_err());
        // Signed by another key than the one it names.
        let mallory = InstallationKeyPair::generate();
        assert!(open(b"group", &seal(b"group", &mallory, &r).unwrap()).is_err());
        // Any flipped bit, any truncation.
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(open(b"group", &t).is_err());
            assert!(open(b"group", &sealed[..i]).is_err());
        }
    }
}
