// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerifier} from "./IVerifier.sol";
import {ClaimDigest} from "./ClaimDigest.sol";
import {Signature} from "./Signature.sol";

/// @title A verifier that trusts one attestor key.
/// @notice The seal is a 65-byte ECDSA signature (r || s || v) by `attestor` over the EIP-712 hash
/// of `Attestation(bytes32 claimDigest)` in the domain {name: "TiffinAttestation", version: "1"}.
/// The attestor is Tiffin's verifier service: it signs a claim only after verifying the receipt
/// (a succinct STARK) with RISC Zero's verifier. Trusting this contract therefore means trusting
/// that key and that service; nothing is proven on-chain. The domain has no chain id or contract
/// address on purpose: "a valid receipt for this claim exists" is true on every chain.
contract AttestationVerifier is IVerifier {
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256("Attestation(bytes32 claimDigest)");
    bytes32 public constant DOMAIN_SEPARATOR = keccak256(
        abi.encode(keccak256("EIP712Domain(string name,string version)"), keccak256("TiffinAttestation"), keccak256("1"))
    );
    address public immutable attestor;

    error InvalidAttestation();
    error MalformedSeal(uint256 length);
    error ZeroAttestor();

    constructor(address attestor_) {
        if (attestor_ == address(0)) revert ZeroAttestor();
        attestor = attestor_;
    }

    /// The hash the attestor signs for a claim.
    function attestationHash(bytes32 claim) public pure returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(ATTESTATION_TYPEHASH, claim));
        return keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR, structHash));
    }

    function claimDigest(bytes32 imageId, bytes32 journalDigest) external pure returns (bytes32) {
        return ClaimDigest.ok(imageId, journalDigest);
    }

    function verify(bytes calldata seal, bytes32 imageId, bytes32 journalDigest) external view {
        if (seal.length != 65) revert MalformedSeal(seal.length);
        address signer = Signature.recover(attestationHash(ClaimDigest.ok(imageId, journalDigest)), seal);
        if (signer == address(0) || signer != attestor) revert InvalidAttestation();
    }
}
