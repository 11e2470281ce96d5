// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Input, Offer, Predicate, ProofRequest, Requirements} from "./ProofTypes.sol";

/// @title EIP-712 struct hashes of proof requests (what a requestor signs off-chain).
library RequestHashing {
    bytes32 internal constant PREDICATE_TYPEHASH = keccak256("Predicate(uint8 predicateType,bytes data)");
    bytes32 internal constant REQUIREMENTS_TYPEHASH =
        keccak256("Requirements(bytes32 imageId,Predicate predicate)Predicate(uint8 predicateType,bytes data)");
    bytes32 internal constant INPUT_TYPEHASH = keccak256("Input(uint8 inputType,bytes data)");
    bytes32 internal constant OFFER_TYPEHASH = keccak256(
        "Offer(uint256 minPrice,uint256 maxPrice,uint64 biddingStart,uint32 rampUpPeriod,uint32 lockTimeout,uint32 timeout,uint256 lockCollateral)"
    );
    bytes32 internal constant PROOF_REQUEST_TYPEHASH = keccak256(
        "ProofRequest(uint256 id,Requirements requirements,string imageUrl,Input input,Offer offer)"
        "Input(uint8 inputType,bytes data)"
        "Offer(uint256 minPrice,uint256 maxPrice,uint64 biddingStart,uint32 rampUpPeriod,uint32 lockTimeout,uint32 timeout,uint256 lockCollateral)"
        "Predicate(uint8 predicateType,bytes data)"
        "Requirements(bytes32 imageId,Predicate predicate)"
    );

    function hash(ProofRequest calldata request) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                PROOF_REQUEST_TYPEHASH,
                request.id,
                hashRequirements(request.requirements),
                keccak256(bytes(request.imageUrl)),
                hashInput(request.input),
                hashOffer(request.offer)
            )
        );
    }

    function hashRequirements(Requirements calldata requirements) private pure returns (bytes32) {
        return keccak256(abi.encode(REQUIREMENTS_TYPEHASH, requirements.imageId, hashPredicate(requirements.predicate)));
    }

    function hashPredicate(Predicate calldata predicate) private pure returns (bytes32) {
        return keccak256(abi.encode(PREDICATE_TYPEHASH, predicate.predicateType, keccak256(predicate.data)));
    }

    function hashInput(Input calldata input) private pure returns (bytes32) {
        return keccak256(abi.encode(INPUT_TYPEHASH, input.inputType, keccak256(input.data)));
    }

    function hashOffer(Offer calldata offer) private pure returns (bytes32) {
        return keccak256(abi.encode(OFFER_TYPEHASH, offer));
    }
}
