// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title A verifier of zkVM receipts, as the proof market sees it.
/// @notice `verify` returns normally when `seal` proves that a RISC Zero execution of the program
/// `imageId` halted with exit code 0 and committed a journal whose SHA-256 digest is
/// `journalDigest`, and was made out to `prover` (the account the market pays); it reverts
/// otherwise. Binding the seal to its prover makes a seal copied from calldata or events useless
/// to anyone else. The market does not care how: the default
/// `AttestationVerifier` checks a Tiffin attestor's signature, a Groth16 verifier would check a
/// SNARK. Swapping one for the other changes no market code.
interface IVerifier {
    function verify(bytes calldata seal, bytes32 imageId, bytes32 journalDigest, address prover) external view;
}
