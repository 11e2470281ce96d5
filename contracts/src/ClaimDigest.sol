// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The digest of a successful zkVM execution's claim.
/// @notice Follows RISC Zero's receipt-claim hashing for an execution that halted with exit code
/// 0, read no input and made no unresolved assumptions (docs/market.md writes it out byte by byte):
///   tagged(tag, digests, words) = sha256(sha256(tag) || digests... || words as u32 LE... || len(digests) as u16 LE)
///   output = tagged("risc0.Output", [journalDigest, 0x00..00], [])
///   claim  = tagged("risc0.ReceiptClaim", [0x00..00, imageId, SYSTEM_STATE_ZERO, output], [0, 0])
library ClaimDigest {
    /// sha256("risc0.ReceiptClaim")
    bytes32 internal constant RECEIPT_CLAIM_TAG =
        0xcb1fefcd1f2d9a64975cbbbf6e161e2914434b0cbb9960b84df5d717e86b48af;
    /// sha256("risc0.Output")
    bytes32 internal constant OUTPUT_TAG =
        0x77eafeb366a78b47747de0d7bb176284085ff5564887009a5be63da32d3559d4;
    /// tagged("risc0.SystemState", [0x00..00], [0]): the post state of every halted execution.
    bytes32 internal constant SYSTEM_STATE_ZERO =
        0xa3acc27117418996340b84e5a90f3ef4c49d22c79e44aad822ec9c313e1eb8e2;

    function ok(bytes32 imageId, bytes32 journalDigest) internal pure returns (bytes32) {
        bytes32 output = sha256(abi.encodePacked(OUTPUT_TAG, journalDigest, bytes32(0), uint16(0x0200)));
        return sha256(
            abi.encodePacked(
                RECEIPT_CLAIM_TAG,
                bytes32(0), // input: none
                imageId, // pre state: the program
                SYSTEM_STATE_ZERO, // post state
                output,
                uint32(0), // system exit code: halted
                uint32(0), // user exit code: 0
                uint16(0x0400) // four digests, as u16 little-endian
            )
        );
    }
}
