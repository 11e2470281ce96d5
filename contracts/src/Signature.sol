// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Recovery of the signer of a 65-byte ECDSA signature (r || s || v).
library Signature {
    /// Upper bound of a canonical `s` (half the secp256k1 order): rejects malleable twins.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// The signer of `digest`, or the zero address for a malformed or non-canonical signature.
    function recover(bytes32 digest, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_ORDER || (v != 27 && v != 28)) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
