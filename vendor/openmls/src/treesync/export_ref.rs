//! atmls LG-P7: the ratchet tree's TLS encoding written from the tree itself. Exporting a
//! [`RatchetTree`](super::RatchetTree) clones every node; at 10,000 members that clone and its
//! drop were a quarter of an add commit for a committer that only serializes the export (to
//! upload it for its joiners). [`RatchetTreeRef`] borrows the nodes and encodes to the same
//! bytes.

use std::io::Write;

use tls_codec::{Serialize, Size};

use super::{node::parent_node::ParentNode, LeafNode, TreeSync};

/// A borrowed [`Node`](super::Node), encoded like it (`node_type` 1 = leaf, 2 = parent).
#[derive(Debug, Clone, Copy)]
enum NodeRef<'a> {
    Leaf(&'a LeafNode),
    Parent(&'a ParentNode),
}

impl Size for NodeRef<'_> {
    fn tls_serialized_len(&self) -> usize {
        1 + match self {
            NodeRef::Leaf(l) => l.tls_serialized_len(),
            NodeRef::Parent(p) => p.tls_serialized_len(),
        }
    }
}

impl Serialize for NodeRef<'_> {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        Ok(match self {
            NodeRef::Leaf(l) => 1u8.tls_serialize(writer)? + l.tls_serialize(writer)?,
            NodeRef::Parent(p) => 2u8.tls_serialize(writer)? + p.tls_serialize(writer)?,
        })
    }
}

/// The exported ratchet tree of a [`TreeSync`], borrowed: its TLS encoding is byte for byte
/// that of [`TreeSync::export_ratchet_tree`].
#[derive(Debug, Clone)]
pub struct RatchetTreeRef<'a>(Vec<Option<NodeRef<'a>>>);

impl Size for RatchetTreeRef<'_> {
    fn tls_serialized_len(&self) -> usize {
        self.0.tls_serialized_len()
    }
}

impl Serialize for RatchetTreeRef<'_> {
    fn tls_serialize<W: Write>(&self, writer: &mut W) -> Result<usize, tls_codec::Error> {
        self.0.tls_serialize(writer)
    }
}

impl TreeSync {
    /// The nodes [`Self::export_ratchet_tree`] exports, borrowed (LG-P7).
    pub fn export_ratchet_tree_ref(&self) -> RatchetTreeRef<'_> {
        let max_length = self.rightmost_full_leaf().usize();
        let mut leaves = self.tree.leaves().map(|(_, l)| l).take(max_length + 1);
        let Some(first) = leaves.next() else {
            return RatchetTreeRef(Vec::new());
        };
        // The export pads the parents with blanks to one fewer than the leaves, so there is a
        // parent for every further leaf.
        let parents = self
            .tree
            .parents()
            .map(|(_, p)| p.node().as_ref().map(NodeRef::Parent))
            .take(max_length)
            .chain(std::iter::repeat(None));
        let mut nodes = Vec::with_capacity(2 * max_length + 1);
        nodes.push(first.node().as_ref().map(NodeRef::Leaf));
        for (leaf, parent) in leaves.zip(parents) {
            nodes.push(parent);
            nodes.push(leaf.node().as_ref().map(NodeRef::Leaf));
        }
        // Trailing blank nodes are trimmed, as `RatchetTree::trimmed` does.
        let keep = nodes.iter().rposition(Option::is_some).map_or(0, |p| p + 1);
        nodes.truncate(keep);
        RatchetTreeRef(nodes)
    }
}
