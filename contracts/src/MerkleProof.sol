// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Inclusion proofs in Tiffin's SHA-256 Merkle tree of claim digests.
/// @notice Leaves are claim digests, unhashed. An inner node is the SHA-256 of its two children
/// concatenated smaller first (as unsigned 256-bit numbers), so a proof is just the list of
/// siblings from the leaf up, without left/right flags. A level with an odd count carries its last
/// node up unchanged. The root of a one-leaf tree is the leaf. docs/market.md has the details.
library MerkleProof {
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return a < b ? sha256(abi.encodePacked(a, b)) : sha256(abi.encodePacked(b, a));
    }

    function rootOf(bytes32 leaf, bytes32[] calldata proof) internal pure returns (bytes32 node) {
        node = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            node = hashPair(node, proof[i]);
        }
    }
}
