//! LG-P2: per-node tree-hash cache of a [`TreeSync`](super::TreeSync).
//!
//! Every commit needs the tree hash of the new tree (and, for an UpdatePath,
//! the tree hashes of the copath subtrees). Without a cache each of those is
//! computed from every node below it, so a commit costs a full pass over the
//! tree (O(N) hashes) at least once. The cache keeps the tree hash of every
//! node of the merged tree; a diff reuses the cached hash of any subtree it
//! did not change and recomputes only the nodes above its changes (O(k log N)
//! hashes for k changed nodes).
//!
//! The cache is derived data: it is not serialized (a tree read from storage
//! starts with an empty cache, and the first staged diff merged into it fills
//! it), it does not take part in equality, and a missing entry only means the
//! hash is computed.

use crate::binary_tree::array_representation::{node_and_ancestors, TreeNodeIndex, TreeSize};

/// Tree hashes of the nodes of a tree, by node; `None` when not known.
#[derive(Debug, Clone, Default)]
pub(crate) struct TreeHashCache {
    leaves: Vec<Option<Vec<u8>>>,
    parents: Vec<Option<Vec<u8>>>,
}

/// A cache is not part of a tree's value: two trees with the same nodes are
/// equal whatever their caches hold.
impl PartialEq for TreeHashCache {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl TreeHashCache {
    /// The cached tree hash of `node`, if known.
    pub(super) fn get(&self, node: TreeNodeIndex) -> Option<&[u8]> {
        match node {
            TreeNodeIndex::Leaf(l) => self.leaves.get(l.usize()),
            TreeNodeIndex::Parent(p) => self.parents.get(p.usize()),
        }
        .and_then(|h| h.as_deref())
    }

    fn slot(&mut self, node: TreeNodeIndex) -> Option<&mut Option<Vec<u8>>> {
        match node {
            TreeNodeIndex::Leaf(l) => self.leaves.get_mut(l.usize()),
            TreeNodeIndex::Parent(p) => self.parents.get_mut(p.usize()),
        }
    }

    /// Bring the cache in line with a diff being merged into its tree: the
    /// tree takes `size`, the nodes `changed` are replaced, and `new_hashes`
    /// are the tree hashes the diff computed (all of them of the merged tree).
    ///
    /// Entries of changed nodes and their ancestors are dropped (their
    /// subtrees change), the cache is resized to the new tree (dropping
    /// removed nodes; new nodes start unknown), then `new_hashes` are stored.
    pub(super) fn merge(
        &mut self,
        size: TreeSize,
        changed: impl Iterator<Item = TreeNodeIndex>,
        new_hashes: Vec<(TreeNodeIndex, Vec<u8>)>,
    ) {
        self.leaves.resize(size.leaf_count() as usize, None);
        self.parents.resize(size.parent_count() as usize, None);
        for node in changed {
            for stale in node_and_ancestors(node, size) {
                if let Some(slot) = self.slot(stale) {
                    *slot = None;
                }
            }
        }
        for (node, hash) in new_hashes {
            if let Some(slot) = self.slot(node) {
                *slot = Some(hash);
            }
        }
    }

    /// Number of nodes whose hash is cached (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.leaves
            .iter()
            .chain(self.parents.iter())
            .flatten()
            .count()
    }
}

/// Tree hashes a diff computed for its own (new) nodes, carried by the staged
/// diff into [`TreeHashCache::merge`]. Not serialized: a staged diff read from
/// storage carries none, and merging it only drops the stale entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewTreeHashes(pub(super) Vec<(TreeNodeIndex, Vec<u8>)>);

/// Like the cache, not part of a staged diff's value.
impl PartialEq for NewTreeHashes {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}
