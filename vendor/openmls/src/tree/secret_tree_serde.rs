//! LG-P3: the stored form of a [`SecretTree`].
//!
//! The four slot vectors are stored sparse (only their present entries, see
//! [`sparse_slots`](crate::tree::sparse_slots)), so that writing the secret
//! tree after each message costs in proportion to the secrets in use, not to
//! the group size.
//!
//! Values written by earlier versions (dense vectors) still read:
//! - in self-describing formats (JSON) the fields keep their names and a
//!   dense vector is a sequence where a sparse one is a map;
//! - in positional formats (postcard, bincode) the sparse form starts with a
//!   marker field, `u32::MAX`, where the earlier form started with the owner's
//!   leaf index, which is never that large.

use serde::{
    de::{self, SeqAccess, Visitor},
    ser::SerializeStruct,
    Deserialize, Deserializer, Serialize, Serializer,
};

use super::{SecretTree, SecretTreeNode};
use crate::{
    binary_tree::{
        array_representation::{TreeSize, MAX_TREE_SIZE},
        LeafNodeIndex,
    },
    tree::{
        sender_ratchet::SenderRatchet,
        sparse_slots::{Slots, SparseRef},
    },
};

/// First field of the sparse form in positional formats.
const SPARSE_MARKER: u32 = u32::MAX;
const NAME: &str = "SecretTree";
const BINARY_FIELDS: &[&str] = &[
    "sparse",
    "own_index",
    "leaf_nodes",
    "parent_nodes",
    "handshake_sender_ratchets",
    "application_sender_ratchets",
    "size",
];

impl Serialize for SecretTree {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let human = serializer.is_human_readable();
        let mut st = serializer.serialize_struct(NAME, if human { 6 } else { 7 })?;
        if !human {
            st.serialize_field("sparse", &SPARSE_MARKER)?;
        }
        st.serialize_field("own_index", &self.own_index)?;
        st.serialize_field("leaf_nodes", &SparseRef(&self.leaf_nodes))?;
        st.serialize_field("parent_nodes", &SparseRef(&self.parent_nodes))?;
        st.serialize_field(
            "handshake_sender_ratchets",
            &SparseRef(&self.handshake_sender_ratchets),
        )?;
        st.serialize_field(
            "application_sender_ratchets",
            &SparseRef(&self.application_sender_ratchets),
        )?;
        st.serialize_field("size", &self.size)?;
        st.end()
    }
}

/// A decoded secret tree before its slots are checked.
#[derive(Deserialize)]
#[serde(rename = "SecretTree")]
struct Stored {
    own_index: LeafNodeIndex,
    leaf_nodes: Slots<SecretTreeNode>,
    parent_nodes: Slots<SecretTreeNode>,
    handshake_sender_ratchets: Slots<SenderRatchet>,
    application_sender_ratchets: Slots<SenderRatchet>,
    size: TreeSize,
}

impl Stored {
    fn check(self) -> Result<SecretTree, String> {
        // Every vector has one slot per leaf (`SecretTree::new`); a stored
        // length beyond that, or a tree beyond the largest one, is corrupt.
        if self.size.u32() > MAX_TREE_SIZE {
            return Err("secret tree: size too large".to_owned());
        }
        let max = self.size.leaf_count();
        let e = |e: crate::tree::sparse_slots::SlotsError| e.to_string();
        Ok(SecretTree {
            own_index: self.own_index,
            leaf_nodes: self.leaf_nodes.into_vec(max).map_err(e)?,
            parent_nodes: self.parent_nodes.into_vec(max).map_err(e)?,
            handshake_sender_ratchets: self.handshake_sender_ratchets.into_vec(max).map_err(e)?,
            application_sender_ratchets: self
                .application_sender_ratchets
                .into_vec(max)
                .map_err(e)?,
            size: self.size,
        })
    }
}

impl<'de> Deserialize<'de> for SecretTree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = if deserializer.is_human_readable() {
            Stored::deserialize(deserializer)?
        } else {
            deserializer.deserialize_struct(NAME, BINARY_FIELDS, PositionalVisitor)?
        };
        stored.check().map_err(de::Error::custom)
    }
}

/// The sparse form (after its marker) or the dense form of earlier versions,
/// in positional formats.
struct PositionalVisitor;

fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    index: usize,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, &"a secret tree"))
}

impl<'de> Visitor<'de> for PositionalVisitor {
    type Value = Stored;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a secret tree")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stored, A::Error> {
        let first: u32 = next(&mut seq, 0)?;
        if first == SPARSE_MARKER {
            Ok(Stored {
                own_index: next(&mut seq, 1)?,
                leaf_nodes: next(&mut seq, 2)?,
                parent_nodes: next(&mut seq, 3)?,
                handshake_sender_ratchets: next(&mut seq, 4)?,
                application_sender_ratchets: next(&mut seq, 5)?,
                size: next(&mut seq, 6)?,
            })
        } else {
            // Earlier versions: the owner's leaf index, then dense vectors.
            Ok(Stored {
                own_index: LeafNodeIndex::new(first),
                leaf_nodes: Slots::Dense(next(&mut seq, 1)?),
                parent_nodes: Slots::Dense(next(&mut seq, 2)?),
                handshake_sender_ratchets: Slots::Dense(next(&mut seq, 3)?),
                application_sender_ratchets: Slots::Dense(next(&mut seq, 4)?),
                size: next(&mut seq, 5)?,
            })
        }
    }
}

/// The dense form of earlier versions (for tests).
#[cfg(test)]
#[derive(Serialize)]
#[serde(rename = "SecretTree")]
pub(crate) struct DenseForm<'a> {
    own_index: &'a LeafNodeIndex,
    leaf_nodes: &'a [Option<SecretTreeNode>],
    parent_nodes: &'a [Option<SecretTreeNode>],
    handshake_sender_ratchets: &'a [Option<SenderRatchet>],
    application_sender_ratchets: &'a [Option<SenderRatchet>],
    size: &'a TreeSize,
}

#[cfg(test)]
impl SecretTree {
    /// This tree as earlier versions serialized it.
    pub(crate) fn dense_form(&self) -> DenseForm<'_> {
        DenseForm {
            own_index: &self.own_index,
            leaf_nodes: self.leaf_nodes.as_slice(),
            parent_nodes: self.parent_nodes.as_slice(),
            handshake_sender_ratchets: self.handshake_sender_ratchets.as_slice(),
            application_sender_ratchets: self.application_sender_ratchets.as_slice(),
            size: &self.size,
        }
    }
}
