//! The SHA-256 Merkle tree of claim digests that one verified root covers.
//!
//! Leaves are claim digests as they are (no leaf hashing). An inner node is
//! `sha256(min(a, b) || max(a, b))`, comparing the two 32-byte children as big-endian numbers, so
//! an inclusion proof is only the list of siblings from the leaf up. Levels pair nodes 0-1, 2-3,
//! ...; a level with an odd count carries its last node up unchanged. A one-leaf tree's root is
//! the leaf. `ProofMarket` (MerkleProof.sol) and the set-builder guest build the same tree.

use crate::error::{MarketError, Result};
use alloy::primitives::B256;
use sha2::{Digest, Sha256};

/// An inner node: the SHA-256 of the two children, smaller first.
pub fn hash_pair(a: B256, b: B256) -> B256 {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    let mut hasher = Sha256::new();
    hasher.update(low);
    hasher.update(high);
    B256::from_slice(&hasher.finalize())
}

/// The root that `proof` leads to from `leaf`.
pub fn root_from_proof(leaf: B256, proof: &[B256]) -> B256 {
    proof.iter().fold(leaf, |node, sibling| hash_pair(node, *sibling))
}

/// A complete tree, kept level by level (leaves first) to hand out inclusion proofs.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<B256>>,
}

impl MerkleTree {
    pub fn new(leaves: Vec<B256>) -> Result<Self> {
        if leaves.is_empty() {
            return Err(MarketError::EmptyTree);
        }
        let mut levels = vec![leaves];
        while let Some(level) = levels.last().filter(|level| level.len() > 1) {
            let next = level
                .chunks(2)
                .map(|pair| if let [a, b] = pair { hash_pair(*a, *b) } else { pair[0] })
                .collect();
            levels.push(next);
        }
        Ok(Self { levels })
    }

    pub fn root(&self) -> B256 {
        self.levels.last().expect("a tree has at least one level")[0]
    }

    pub fn leaves(&self) -> &[B256] {
        &self.levels[0]
    }

    /// The siblings of leaf `index` from the bottom up (levels where it is carried are skipped).
    pub fn proof(&self, index: usize) -> Result<Vec<B256>> {
        let leaves = self.leaves().len();
        if index >= leaves {
            return Err(MarketError::LeafOutOfRange { index, leaves });
        }
        let mut position = index;
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(position ^ 1) {
                proof.push(*sibling);
            }
            position /= 2;
        }
        Ok(proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<B256> {
        (1..=n).map(B256::repeat_byte).collect()
    }

    #[test]
    fn every_leaf_proves_into_the_root_for_sizes_one_to_nine() {
        for n in 1..=9 {
            let tree = MerkleTree::new(leaves(n)).unwrap();
            for (i, leaf) in tree.leaves().iter().enumerate() {
                assert_eq!(
                    root_from_proof(*leaf, &tree.proof(i).unwrap()),
                    tree.root(),
                    "n={n} i={i}"
                );
            }
        }
    }

    #[test]
    fn shape_is_pairs_with_the_odd_node_carried() {
        let l = leaves(3);
        let tree = MerkleTree::new(l.clone()).unwrap();
        assert_eq!(tree.root(), hash_pair(hash_pair(l[0], l[1]), l[2]));
        assert_eq!(tree.proof(2).unwrap(), vec![hash_pair(l[0], l[1])]);
        assert_eq!(MerkleTree::new(vec![l[0]]).unwrap().root(), l[0]);
    }

    #[test]
    fn pair_order_does_not_matter_but_content_does() {
        let (a, b) = (B256::repeat_byte(7), B256::repeat_byte(9));
        assert_eq!(hash_pair(a, b), hash_pair(b, a));
        assert_ne!(hash_pair(a, b), hash_pair(a, a));
    }

    #[test]
    fn a_foreign_leaf_or_a_bad_index_is_refused() {
        let tree = MerkleTree::new(leaves(4)).unwrap();
        let proof = tree.proof(1).unwrap();
        assert_ne!(root_from_proof(B256::repeat_byte(99), &proof), tree.root());
        assert!(matches!(tree.proof(4), Err(MarketError::LeafOutOfRange { index: 4, leaves: 4 })));
        assert!(matches!(MerkleTree::new(vec![]), Err(MarketError::EmptyTree)));
    }
}
