//! The roster of a group: leaf index → account, device and identity key (spec/large-groups.md
//! LG-8). Kept beside the cached group and updated from each merged commit's changes, so
//! that authorization, member lists and the stale/revoked leaf checks do not decode every
//! member's credential (two Ed25519 point decompressions per leaf) on every commit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use openmls::prelude::{LeafNodeIndex, MlsGroup, Proposal, Sender, StagedCommit};
use rayon::prelude::*;

use super::Member;
use crate::credential::AtmlsIdentity;
use crate::identity::{Did, PublicKey};

/// One member leaf, decoded from its (already validated) credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RosterLeaf {
    /// The account and device.
    pub member: Member,
    /// The identity key that certified the device.
    pub identity_key: PublicKey,
}

impl RosterLeaf {
    fn decode(cred: &openmls::prelude::Credential) -> Option<Self> {
        let c = AtmlsIdentity::from_credential(cred).ok()?.certificate;
        Some(RosterLeaf {
            member: Member {
                did: c.did,
                installation: c.installation_key,
            },
            identity_key: c.identity_key,
        })
    }
}

/// Every non-blank leaf of one ratchet tree, named by the tree hash of that tree (LG-8): a
/// roster is used only for a group whose tree hash is the same, so it can never describe
/// another tree than the group's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Roster {
    tree_hash: Vec<u8>,
    leaves: BTreeMap<u32, RosterLeaf>,
    /// Non-blank leaves whose credential does not decode (none in practice: every leaf is
    /// validated before it enters the tree). They still occupy their slot.
    opaque: BTreeSet<u32>,
    /// Leaves per account.
    accounts: HashMap<Did, BTreeSet<u32>>,
}

/// What a commit does to the leaves, read from the staged commit before it is merged.
#[derive(Debug)]
pub(crate) struct RosterChange {
    removed: Vec<u32>,
    /// Leaves whose content the commit replaces (updates, the committer's path).
    updated: Vec<u32>,
    /// Added leaves in proposal order, with their signature keys (to check where they went).
    added: Vec<(Option<RosterLeaf>, Vec<u8>)>,
}

impl RosterChange {
    /// The changes of `staged`, committed by `committer`; `None` when it holds a proposal
    /// whose effect on the leaves is not modelled here (the roster is then rebuilt).
    pub(crate) fn of(staged: &StagedCommit, committer: LeafNodeIndex) -> Option<Self> {
        let mut updated = vec![committer.u32()];
        for q in staged.queued_proposals() {
            match q.proposal() {
                Proposal::Add(_) | Proposal::Remove(_) | Proposal::GroupContextExtensions(_) => {}
                Proposal::Update(_) => match q.sender() {
                    Sender::Member(i) => updated.push(i.u32()),
                    _ => return None,
                },
                _ => return None,
            }
        }
        Some(RosterChange {
            removed: staged
                .remove_proposals()
                .map(|r| r.remove_proposal().removed().u32())
                .collect(),
            updated,
            added: staged
                .add_proposals()
                .map(|a| {
                    let leaf = a.add_proposal().key_package().leaf_node();
                    (
                        RosterLeaf::decode(leaf.credential()),
                        leaf.signature_key().as_slice().to_vec(),
                    )
                })
                .collect(),
        })
    }
}

impl Roster {
    /// Decodes every leaf of `g` (on all cores).
    pub(crate) fn of(g: &MlsGroup) -> Self {
        let members: Vec<_> = g.members().collect();
        let decoded: Vec<(u32, Option<RosterLeaf>)> = members
            .par_iter()
            .map(|m| (m.index.u32(), RosterLeaf::decode(&m.credential)))
            .collect();
        let mut r = Roster {
            tree_hash: g.public_group().group_context().tree_hash().to_vec(),
            leaves: BTreeMap::new(),
            opaque: BTreeSet::new(),
            accounts: HashMap::new(),
        };
        for (i, leaf) in decoded {
            r.insert(i, leaf);
        }
        r
    }

    /// Whether this is the roster of `g`'s current tree.
    pub(crate) fn fits(&self, g: &MlsGroup) -> bool {
        self.tree_hash == g.public_group().group_context().tree_hash()
    }

    fn insert(&mut self, i: u32, leaf: Option<RosterLeaf>) {
        self.remove(i);
        match leaf {
            Some(l) => {
                self.accounts
                    .entry(l.member.did.clone())
                    .or_default()
                    .insert(i);
                self.leaves.insert(i, l);
            }
            None => {
                self.opaque.insert(i);
            }
        }
    }

    fn remove(&mut self, i: u32) {
        self.opaque.remove(&i);
        if let Some(old) = self.leaves.remove(&i) {
            if let Some(set) = self.accounts.get_mut(&old.member.did) {
                set.remove(&i);
                if set.is_empty() {
                    self.accounts.remove(&old.member.did);
                }
            }
        }
    }

    /// The leftmost blank leaf (where openmls puts the next added member).
    fn first_blank(&self) -> u32 {
        let mut occupied = self.leaves.keys().merge_sorted(self.opaque.iter());
        let mut want = 0u32;
        while occupied.next() == Some(want) {
            want += 1;
        }
        want
    }

    /// Applies `change` once its commit is merged into `g`: O(changes). Returns `false`
    /// (and leaves the roster unusable for `g`) if the leaves `g` holds are not the ones the
    /// change predicts; the caller then rebuilds.
    pub(crate) fn advance(&mut self, change: RosterChange, g: &MlsGroup) -> bool {
        let tree = g.public_group();
        for &i in &change.updated {
            match tree.leaf(LeafNodeIndex::new(i)) {
                Some(l) => self.insert(i, RosterLeaf::decode(l.credential())),
                None => self.remove(i),
            }
        }
        for &i in &change.removed {
            self.remove(i);
        }
        for (leaf, key) in change.added {
            let i = self.first_blank();
            match tree.leaf(LeafNodeIndex::new(i)) {
                Some(l) if l.signature_key().as_slice() == key.as_slice() => self.insert(i, leaf),
                _ => return false,
            }
        }
        self.tree_hash = g.public_group().group_context().tree_hash().to_vec();
        // Every test build checks the incremental result against a full decode.
        debug_assert_eq!(*self, Roster::of(g), "roster diverged from the tree");
        true
    }

    /// The member at leaf `i`.
    pub(crate) fn get(&self, i: LeafNodeIndex) -> Option<&RosterLeaf> {
        self.leaves.get(&i.u32())
    }

    /// The account at leaf `i`.
    pub(crate) fn did(&self, i: LeafNodeIndex) -> Option<&Did> {
        self.get(i).map(|l| &l.member.did)
    }

    /// How many leaves `did` has.
    pub(crate) fn count(&self, did: &Did) -> usize {
        self.accounts.get(did).map_or(0, BTreeSet::len)
    }

    /// The leaves of `did`, in leaf order.
    pub(crate) fn leaves_of(&self, did: &Did) -> impl Iterator<Item = LeafNodeIndex> + '_ {
        self.accounts
            .get(did)
            .into_iter()
            .flatten()
            .map(|i| LeafNodeIndex::new(*i))
    }

    /// Whether `did` has a leaf.
    pub(crate) fn contains(&self, did: &Did) -> bool {
        self.count(did) > 0
    }

    /// The accounts with a leaf (unordered).
    pub(crate) fn accounts(&self) -> impl Iterator<Item = &Did> {
        self.accounts.keys()
    }

    /// Member leaves in leaf order.
    pub(crate) fn leaves(&self) -> impl Iterator<Item = (LeafNodeIndex, &RosterLeaf)> {
        self.leaves.iter().map(|(i, l)| (LeafNodeIndex::new(*i), l))
    }

    /// The members in leaf order.
    pub(crate) fn members(&self) -> Vec<Member> {
        self.leaves.values().map(|l| l.member.clone()).collect()
    }
}

/// Merges two ascending iterators (the occupied leaves and the opaque ones).
trait MergeSorted<'a>: Iterator<Item = &'a u32> + Sized {
    fn merge_sorted<J: Iterator<Item = &'a u32>>(self, other: J) -> impl Iterator<Item = u32> {
        let mut a = self.copied().peekable();
        let mut b = other.copied().peekable();
        std::iter::from_fn(move || match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x <= y => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        })
    }
}

impl<'a, I: Iterator<Item = &'a u32>> MergeSorted<'a> for I {}

#[cfg(test)]
#[path = "roster_tests.rs"]
mod tests;
