// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerifier} from "./IVerifier.sol";
import {ClaimDigest} from "./ClaimDigest.sol";
import {Signature} from "./Signature.sol";

/// @title A verifier that trusts a set of attestor keys, kept by an owner.
/// @notice The seal is a 65-byte ECDSA signature (r || s || v) by one of the attestors over the
/// EIP-712 hash of `Attestation(bytes32 claimDigest,address prover)` in the domain
/// {name: "TiffinAttestation", version: "1"}: a seal is made out to one prover, and verifies for
/// no other account. An attestor is Tiffin's verifier service: it signs a claim only after verifying
/// the receipt (a succinct STARK) with RISC Zero's verifier. Trusting this contract therefore
/// means trusting those keys, those services and the owner who picks them; nothing is proven
/// on-chain. The owner (the deployer, until it hands ownership on) adds and removes attestors,
/// so a leaked key is rotated out without redeploying the market; removing every attestor
/// pauses fulfilment. The domain has no chain id or contract address on purpose: "a valid
/// receipt for this claim exists" is true on every chain.
contract AttestationVerifier is IVerifier {
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256("Attestation(bytes32 claimDigest,address prover)");
    bytes32 public constant DOMAIN_SEPARATOR = keccak256(
        abi.encode(keccak256("EIP712Domain(string name,string version)"), keccak256("TiffinAttestation"), keccak256("1"))
    );
    address public owner;
    mapping(address => bool) public isAttestor;

    event AttestorAdded(address indexed attestor);
    event AttestorRemoved(address indexed attestor);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error InvalidAttestation();
    error MalformedSeal(uint256 length);
    error ZeroAttestor();
    error ZeroOwner();
    error NotOwner(address caller);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor(address attestor_) {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
        _addAttestor(attestor_);
    }

    function addAttestor(address attestor_) external onlyOwner {
        _addAttestor(attestor_);
    }

    /// Seals by `attestor_` stop verifying at once (fulfilments already made stay made).
    function removeAttestor(address attestor_) external onlyOwner {
        if (!isAttestor[attestor_]) return;
        isAttestor[attestor_] = false;
        emit AttestorRemoved(attestor_);
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroOwner();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// The hash an attestor signs for a claim proven for `prover`.
    function attestationHash(bytes32 claim, address prover) public pure returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(ATTESTATION_TYPEHASH, claim, prover));
        return keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR, structHash));
    }

    function claimDigest(bytes32 imageId, bytes32 journalDigest) external pure returns (bytes32) {
        return ClaimDigest.ok(imageId, journalDigest);
    }

    function verify(bytes calldata seal, bytes32 imageId, bytes32 journalDigest, address prover) external view {
        if (seal.length != 65) revert MalformedSeal(seal.length);
        address signer = Signature.recover(attestationHash(ClaimDigest.ok(imageId, journalDigest), prover), seal);
        if (signer == address(0) || !isAttestor[signer]) revert InvalidAttestation();
    }

    function _addAttestor(address attestor_) private {
        if (attestor_ == address(0)) revert ZeroAttestor();
        if (isAttestor[attestor_]) return;
        isAttestor[attestor_] = true;
        emit AttestorAdded(attestor_);
    }
}
