//! The ratchet tree out of band (spec/large-groups.md LG-T-*): a Welcome carries no tree, only
//! a reference to it inside its encrypted GroupInfo (where to fetch it, the key to open it).
//! The committer uploads the tree once per commit, encrypted; each joiner fetches it once, and
//! openmls checks it against the GroupInfo's tree hash.

use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use openmls::messages::group_info::GroupInfo;
use openmls::prelude::{
    tls_codec::DeserializeBytes as _, Extension, Extensions, RatchetTreeIn, UnknownExtension,
    WelcomeError,
};

use super::{tagged_hash, GroupError};
use crate::transport::{TreeLocator, MAX_TREE_BLOB};

pub use crate::extensions::WELCOME_TREE_EXTENSION;

const REF_VERSION: u8 = 1;
const BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Plaintexts are padded to a multiple of this, like group payloads (DS-2).
const PAD: usize = 256;
const AAD_LABEL: &[u8] = b"atmls/v1/welcome-tree";

/// Why a Welcome's out-of-band ratchet tree was refused. Every one is permanent: a tree that
/// could not be fetched for a transient reason is a retryable transport error instead, and the
/// Welcome stays unprocessed (LG-T-5).
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// The Welcome carries neither a ratchet tree nor a reference to one.
    #[error("the Welcome has no ratchet tree and no reference to one")]
    NoTree,
    /// The reference in the GroupInfo does not decode.
    #[error("malformed tree reference")]
    BadReference,
    /// The transport has no tree under the locator (never stored, or expired).
    #[error("the ratchet tree is not stored (never uploaded, or expired)")]
    Missing,
    /// The transport refused the fetch for good.
    #[error("the ratchet tree could not be fetched: {0}")]
    Fetch(String),
    /// The blob is over [`MAX_TREE_BLOB`].
    #[error("ratchet tree blob of {size} bytes exceeds {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The blob is truncated or was altered: it does not open under the Welcome's key.
    #[error("the ratchet tree blob is truncated or tampered with")]
    Undecryptable,
    /// The blob opens but does not hold a ratchet tree.
    #[error("the ratchet tree does not decode")]
    Malformed,
    /// The tree is not the group's: it does not match the GroupInfo's tree hash, or its
    /// committer leaf does not hold the key that signed the GroupInfo (another group's or
    /// another epoch's tree).
    #[error("the ratchet tree does not match the Welcome's group")]
    Mismatch,
}

/// The reference to one commit's tree: a random locator and key, both derived from a seed the
/// committer keeps with its outgoing commit (so it can rebuild them after a restart).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TreeRef {
    pub(crate) locator: TreeLocator,
    key: [u8; 32],
}

impl std::fmt::Debug for TreeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        write!(f, "TreeRef({})", hex::encode(&self.locator.0[..6]))
    }
}

impl TreeRef {
    /// The locator and key of a fresh random seed's tree.
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        TreeRef {
            locator: TreeLocator(tagged_hash(b"atmls/v1/tree-locator", seed)),
            key: tagged_hash(b"atmls/v1/tree-key", seed),
        }
    }

    /// The GroupInfo extension telling joiners where the tree is and how to open it (LG-T-2).
    pub(crate) fn extension(&self) -> Extension {
        let mut v = Vec::with_capacity(65);
        v.push(REF_VERSION);
        v.extend_from_slice(&self.locator.0);
        v.extend_from_slice(&self.key);
        Extension::Unknown(WELCOME_TREE_EXTENSION, UnknownExtension(v))
    }

    /// The reference in a GroupInfo's extensions, if there is one.
    pub(crate) fn from_group_info(ext: &Extensions<GroupInfo>) -> Result<Option<Self>, TreeError> {
        let Some(UnknownExtension(v)) = ext.unknown(WELCOME_TREE_EXTENSION) else {
            return Ok(None);
        };
        let (&version, rest) = v.split_first().ok_or(TreeError::BadReference)?;
        if version != REF_VERSION || rest.len() != 64 {
            return Err(TreeError::BadReference);
        }
        let (l, k) = rest.split_at(32);
        Ok(Some(TreeRef {
            locator: TreeLocator(l.try_into().map_err(|_| TreeError::BadReference)?),
            key: k.try_into().map_err(|_| TreeError::BadReference)?,
        }))
    }

    fn aad(&self) -> Vec<u8> {
        [AAD_LABEL, &self.locator.0].concat()
    }

    /// Encrypts `tree` for upload (LG-T-3):
    /// `0x01 ‖ nonce[12] ‖ ChaCha20-Poly1305(key, nonce, pad(tree), aad = label ‖ locator)`.
    /// `tree` is an exported [`RatchetTree`](openmls::treesync::RatchetTree) or, without
    /// the clone, the group's borrowed export (`MlsGroup::export_ratchet_tree_ref`, LG-P7):
    /// both encode the same.
    pub(crate) fn seal<T>(&self, tree: &T) -> Result<Vec<u8>, GroupError>
    where
        T: openmls::prelude::tls_codec::Serialize + openmls::prelude::tls_codec::Size,
    {
        // Built in one buffer and encrypted in place: at 10,000 members the tree is 5.5 MB,
        // and every copy of it counts in an add commit.
        let nonce: [u8; NONCE_LEN] = rand::random();
        let head = 1 + NONCE_LEN;
        let cap = head + (4 + tree.tls_serialized_len()).div_ceil(PAD) * PAD + TAG_LEN;
        let mut out = Vec::with_capacity(cap);
        out.push(BLOB_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&[0; 4]);
        tree.tls_serialize(&mut out)
            .map_err(|e| GroupError::Mls(format!("ratchet tree: {e}")))?;
        let len = out.len() - head - 4;
        let len32 = u32::try_from(len).map_err(|_| GroupError::Mls("tree too long".into()))?;
        if let Some(l) = out.get_mut(head..head + 4) {
            l.copy_from_slice(&len32.to_be_bytes());
        }
        out.resize(head + (4 + len).div_ceil(PAD) * PAD, 0);
        let tag = ChaCha20Poly1305::new((&self.key).into())
            .encrypt_in_place_detached((&nonce).into(), &self.aad(), &mut out[head..])
            .map_err(|_| GroupError::Mls("tree seal".into()))?;
        out.extend_from_slice(&tag);
        if out.len() > MAX_TREE_BLOB {
            return Err(GroupError::Mls(format!(
                "ratchet tree of {} bytes exceeds the transport's {MAX_TREE_BLOB}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Opens a fetched blob (LG-T-5). Anything not sealed under this reference's key and
    /// locator, or cut short, is `Undecryptable`; what opens but is not a tree, `Malformed`.
    pub(crate) fn open(&self, blob: &[u8]) -> Result<RatchetTreeIn, TreeError> {
        if blob.len() > MAX_TREE_BLOB {
            return Err(TreeError::TooLarge {
                size: blob.len(),
                limit: MAX_TREE_BLOB,
            });
        }
        let (&version, rest) = blob.split_first().ok_or(TreeError::Undecryptable)?;
        if version != BLOB_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
            return Err(TreeError::Undecryptable);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let plain = ChaCha20Poly1305::new((&self.key).into())
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ct,
                    aad: &self.aad(),
                },
            )
            .map_err(|_| TreeError::Undecryptable)?;
        let (len, body) = plain.split_at_checked(4).ok_or(TreeError::Malformed)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| TreeError::Malformed)?) as usize;
        let (tree, pad) = body.split_at_checked(len).ok_or(TreeError::Malformed)?;
        if pad.iter().any(|&b| b != 0) {
            return Err(TreeError::Malformed);
        }
        RatchetTreeIn::tls_deserialize_exact_bytes(tree).map_err(|_| TreeError::Malformed)
    }
}

/// Classifies openmls's refusal to stage a Welcome. With a tree given out of band, openmls
/// verifies the GroupInfo's signature with the signer's key from that tree, then the tree
/// against the GroupInfo's tree hash: either failing means the tree is not the group's
/// (LG-T-5). Anything else is the Welcome's fault.
pub(crate) fn staging_error<S: std::fmt::Debug>(
    e: &WelcomeError<S>,
    out_of_band: bool,
) -> GroupError {
    use openmls::prelude::CreationFromExternalError as FromTree;
    match e {
        WelcomeError::PublicGroupError(FromTree::TreeHashMismatch) => {
            GroupError::WelcomeTree(TreeError::Mismatch)
        }
        WelcomeError::InvalidGroupInfoSignature
        | WelcomeError::PublicGroupError(FromTree::InvalidGroupInfoSignature)
            if out_of_band =>
        {
            GroupError::WelcomeTree(TreeError::Mismatch)
        }
        WelcomeError::MissingRatchetTree => GroupError::WelcomeTree(TreeError::NoTree),
        _ => GroupError::Welcome(format!("{e:?}").chars().take(200).collect()),
    }
}

#[cfg(test)]
#[path = "tree_tests.rs"]
mod tests;
