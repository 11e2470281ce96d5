// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IVerifier} from "./IVerifier.sol";
import {ClaimDigest} from "./ClaimDigest.sol";
import {MerkleProof} from "./MerkleProof.sol";
import {RequestHashing} from "./RequestHashing.sol";
import {Signature} from "./Signature.sol";
import {CollateralToken} from "./CollateralToken.sol";
import "./ProofTypes.sol";

/// @title Tiffin's proof market.
/// @notice Requestors escrow native currency for proofs; provers lock requests with collateral
/// (a `CollateralToken`), prove them and are paid when a verifier accepts the seal. Every wei and
/// token the market holds is in exactly one place: an account balance (`balanceOf`,
/// `collateralBalanceOf`) or a request's escrow (`totalEscrow`, `totalCollateralEscrow`); slashed
/// collateral is burned (`totalCollateralBurned`). A requestor never gains from a locker's
/// default: a slash returns its price and burns the collateral, so sabotaging a locker does not
/// pay. docs/market.md describes the lifecycle.
contract ProofMarket {
    /// Share of a defaulted locker's collateral paid to whoever fulfils after the lock deadline.
    uint256 public constant SECONDARY_REWARD_BPS = 5000;

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    IVerifier public immutable verifier;
    CollateralToken public immutable collateralToken;
    /// Image id of the set-builder guest, whose journal is a Merkle root of claim digests.
    bytes32 public immutable setBuilderImageId;

    mapping(address => uint256) public balanceOf;
    mapping(address => uint256) public collateralBalanceOf;
    /// Roots verified for a prover: `verifiedRoots[root][prover]`. A root's seal is made out to
    /// the prover who submits it, and only that prover fulfils through it.
    mapping(bytes32 => mapping(address => bool)) public verifiedRoots;
    uint256 public totalEscrow;
    uint256 public totalCollateralEscrow;
    uint256 public totalCollateralBurned;
    mapping(uint256 => RequestRecord) private records;

    event Deposit(address indexed account, uint256 amount);
    event Withdrawal(address indexed account, uint256 amount);
    event CollateralDeposit(address indexed account, uint256 amount);
    event CollateralWithdrawal(address indexed account, uint256 amount);
    event RequestSubmitted(uint256 indexed id, bytes32 requestDigest, ProofRequest request);
    event RequestLocked(uint256 indexed id, address indexed prover, uint256 price, uint256 collateral);
    event RootVerified(bytes32 indexed root, address indexed prover, bytes seal);
    event ProofDelivered(uint256 indexed id, bytes32 indexed root, bytes journal, bytes seal);
    event RequestFulfilled(uint256 indexed id, address indexed prover, uint256 payment, uint256 collateralReward);
    event LockForfeited(uint256 indexed id, address indexed locker, uint256 burned, uint256 requestorRefund);
    event ProverSlashed(uint256 indexed id, address indexed locker, uint256 burned, uint256 requestorRefund);
    event RequestRefunded(uint256 indexed id, uint256 amount);
    event RequestCancelled(uint256 indexed id, uint256 refund);

    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    error InsufficientCollateral(address account, uint256 balance, uint256 needed);
    error TransferFailed();
    error NotRequestor(address caller, address requestor);
    error InvalidRequest(string reason);
    error RequestExists(uint256 id);
    error UnknownRequest(uint256 id);
    error RequestDigestMismatch(uint256 id);
    error InvalidRequestSignature(uint256 id);
    error RequestNotOpen(uint256 id, uint64 biddingStart);
    error AlreadyLocked(uint256 id, address locker);
    error RequestClosed(uint256 id);
    error LockDeadlinePassed(uint256 id, uint64 lockDeadline);
    error NotLocked(uint256 id);
    error AlreadyFulfilled(uint256 id);
    error NotLocker(uint256 id, address locker);
    error RequestExpired(uint256 id, uint64 deadline);
    error JournalRejected(uint256 id);
    error RootNotVerified(bytes32 root);
    error InvalidInclusionProof(uint256 id);
    error NotSlashable(uint256 id);
    error NotRefundable(uint256 id);
    error NotCancellable(uint256 id);

    constructor(IVerifier verifier_, CollateralToken collateralToken_, bytes32 setBuilderImageId_) {
        verifier = verifier_;
        collateralToken = collateralToken_;
        setBuilderImageId = setBuilderImageId_;
    }

    // ---- accounts ----

    function deposit() public payable {
        balanceOf[msg.sender] += msg.value;
        emit Deposit(msg.sender, msg.value);
    }

    function withdraw(uint256 amount) external {
        _debit(msg.sender, amount);
        emit Withdrawal(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// Moves `amount` collateral tokens from the caller (who approved the market) to its account.
    function depositCollateral(uint256 amount) external {
        if (!collateralToken.transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
        collateralBalanceOf[msg.sender] += amount;
        emit CollateralDeposit(msg.sender, amount);
    }

    function withdrawCollateral(uint256 amount) external {
        _debitCollateral(msg.sender, amount);
        emit CollateralWithdrawal(msg.sender, amount);
        if (!collateralToken.transfer(msg.sender, amount)) revert TransferFailed();
    }

    // ---- requests ----

    /// Submits a request on-chain, escrowing its maxPrice from the requestor's balance (any value
    /// sent is deposited first).
    function submitRequest(ProofRequest calldata request) external payable {
        if (msg.value > 0) deposit();
        address requestor = requestorOf(request.id);
        if (msg.sender != requestor) revert NotRequestor(msg.sender, requestor);
        if (records[request.id].state != RequestState.None) revert RequestExists(request.id);
        _validate(request);
        if (block.timestamp > _lockDeadline(request.offer)) {
            revert LockDeadlinePassed(request.id, _lockDeadline(request.offer));
        }
        uint256 price = request.offer.maxPrice;
        _debit(requestor, price);
        totalEscrow += price;
        bytes32 digest = requestDigest(request);
        RequestRecord storage record = records[request.id];
        record.state = RequestState.Submitted;
        record.lockDeadline = _lockDeadline(request.offer);
        record.price = uint128(price);
        record.requestDigest = digest;
        emit RequestSubmitted(request.id, digest, request);
    }

    /// Locks a request for the caller at the current price, escrowing its lockCollateral. For a
    /// request submitted on-chain `signature` is ignored; otherwise it must be the requestor's
    /// EIP-712 signature and the price is taken from the requestor's balance.
    function lockRequest(ProofRequest calldata request, bytes calldata signature) external {
        RequestRecord storage record = records[request.id];
        bytes32 digest = requestDigest(request);
        if (record.state == RequestState.None) {
            _acceptSigned(request, digest, signature);
        } else if (record.state == RequestState.Locked) {
            revert AlreadyLocked(request.id, record.locker);
        } else if (record.state != RequestState.Submitted) {
            revert RequestClosed(request.id);
        } else if (record.requestDigest != digest) {
            revert RequestDigestMismatch(request.id);
        }
        Offer calldata offer = request.offer;
        if (block.timestamp < offer.biddingStart) revert RequestNotOpen(request.id, offer.biddingStart);
        if (block.timestamp > _lockDeadline(offer)) revert LockDeadlinePassed(request.id, _lockDeadline(offer));
        uint256 price = priceAt(offer, uint64(block.timestamp));
        _debitCollateral(msg.sender, offer.lockCollateral);
        totalCollateralEscrow += offer.lockCollateral;
        _escrowLockedPrice(request, record, price);
        _storeLock(request, record, digest, price);
        emit RequestLocked(request.id, msg.sender, price, offer.lockCollateral);
    }

    /// Fulfils one locked request: `seal` must convince the verifier that the request's program
    /// produced `journal`, for the caller (a seal made out to another account fails).
    function fulfill(uint256 id, bytes calldata journal, bytes calldata seal) external {
        RequestRecord storage record = _fulfillable(id, journal);
        bytes32 journalDigest = sha256(journal);
        verifier.verify(seal, record.imageId, journalDigest, msg.sender);
        emit ProofDelivered(id, ClaimDigest.ok(record.imageId, journalDigest), journal, seal);
        _settle(id, record);
    }

    /// Records `root` as verified for the caller: `seal` proves, for the caller, a run of the
    /// set-builder guest whose journal is exactly the 32 bytes of `root`. Verifying a root twice
    /// is a no-op.
    function submitRoot(bytes32 root, bytes calldata seal) public {
        if (verifiedRoots[root][msg.sender]) return;
        verifier.verify(seal, setBuilderImageId, sha256(abi.encodePacked(root)), msg.sender);
        verifiedRoots[root][msg.sender] = true;
        emit RootVerified(root, msg.sender, seal);
    }

    /// Fulfils many locked requests whose claim digests are leaves of a root verified for the
    /// caller.
    function fulfillBatch(bytes32 root, Fulfillment[] calldata fills) public {
        if (!verifiedRoots[root][msg.sender]) revert RootNotVerified(root);
        for (uint256 i = 0; i < fills.length; ++i) {
            _fulfillIncluded(root, fills[i]);
        }
    }

    function submitRootAndFulfill(bytes32 root, bytes calldata seal, Fulfillment[] calldata fills) external {
        submitRoot(root, seal);
        fulfillBatch(root, fills);
    }

    /// Slashes the locker of a request that was not fulfilled by its timeout: the requestor gets
    /// its escrowed price back and nothing more, the whole collateral is burned (a requestor who
    /// made the locker fail gains nothing). Anyone may call.
    function slash(uint256 id) external {
        RequestRecord storage record = records[id];
        if (record.state != RequestState.Locked || block.timestamp <= record.deadline) revert NotSlashable(id);
        record.state = RequestState.Slashed;
        uint256 collateral = record.collateral;
        _releaseEscrow(record.price);
        balanceOf[requestorOf(id)] += record.price;
        totalCollateralEscrow -= collateral;
        _burn(collateral);
        emit ProverSlashed(id, record.locker, collateral, record.price);
    }

    /// The requestor closes a request nobody has locked: an unused id (so a signature it gave
    /// out for an off-chain request can no longer be used to lock) or an on-chain request still
    /// waiting for a lock, whose escrowed maxPrice comes back. The id is never usable again.
    function cancel(uint256 id) external {
        address requestor = requestorOf(id);
        if (msg.sender != requestor) revert NotRequestor(msg.sender, requestor);
        RequestRecord storage record = records[id];
        RequestState state = record.state;
        if (state != RequestState.None && state != RequestState.Submitted) revert NotCancellable(id);
        record.state = RequestState.Cancelled;
        uint256 refunded = state == RequestState.Submitted ? record.price : 0;
        if (refunded > 0) {
            _releaseEscrow(refunded);
            balanceOf[requestor] += refunded;
        }
        emit RequestCancelled(id, refunded);
    }

    /// Returns the escrow of an on-chain request that nobody locked before its lock deadline.
    function refund(uint256 id) external {
        RequestRecord storage record = records[id];
        if (record.state != RequestState.Submitted || block.timestamp <= record.lockDeadline) revert NotRefundable(id);
        record.state = RequestState.Refunded;
        _releaseEscrow(record.price);
        balanceOf[requestorOf(id)] += record.price;
        emit RequestRefunded(id, record.price);
    }

    // ---- views ----

    function requestorOf(uint256 id) public pure returns (address) {
        return address(uint160(id >> 32));
    }

    /// Price in wei at time `t`: minPrice until biddingStart, then a linear ramp (rounded down) to
    /// maxPrice over rampUpPeriod, then maxPrice (locking is possible until the lock deadline).
    function priceAt(Offer calldata offer, uint64 t) public pure returns (uint256) {
        if (t <= offer.biddingStart) return offer.minPrice;
        uint256 elapsed = t - offer.biddingStart;
        if (elapsed >= offer.rampUpPeriod) return offer.maxPrice;
        return offer.minPrice + (offer.maxPrice - offer.minPrice) * elapsed / offer.rampUpPeriod;
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("TiffinProofMarket"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// The EIP-712 hash a requestor signs for an off-chain request.
    function requestDigest(ProofRequest calldata request) public view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), RequestHashing.hash(request)));
    }

    function requestRecord(uint256 id) external view returns (RequestRecord memory) {
        return records[id];
    }

    function statusOf(uint256 id) external view returns (RequestStatus) {
        RequestRecord storage record = records[id];
        RequestState state = record.state;
        if (state == RequestState.None) return RequestStatus.Unknown;
        if (state == RequestState.Submitted) {
            return block.timestamp > record.lockDeadline ? RequestStatus.Expired : RequestStatus.Open;
        }
        if (state == RequestState.Locked) {
            if (block.timestamp <= record.lockDeadline) return RequestStatus.Locked;
            return block.timestamp <= record.deadline ? RequestStatus.LockExpired : RequestStatus.Slashable;
        }
        if (state == RequestState.Fulfilled) return RequestStatus.Fulfilled;
        if (state == RequestState.Slashed) return RequestStatus.Slashed;
        return state == RequestState.Refunded ? RequestStatus.Refunded : RequestStatus.Cancelled;
    }

    // ---- internals ----

    function _validate(ProofRequest calldata request) private pure {
        Predicate calldata predicate = request.requirements.predicate;
        if (predicate.predicateType > PREDICATE_ANY) revert InvalidRequest("predicate type");
        if (predicate.predicateType == PREDICATE_DIGEST_MATCH && predicate.data.length != 32) {
            revert InvalidRequest("digest predicate needs 32 bytes");
        }
        if (predicate.predicateType == PREDICATE_PREFIX_MATCH && predicate.data.length > type(uint32).max) {
            revert InvalidRequest("prefix too long");
        }
        if (predicate.predicateType == PREDICATE_ANY && predicate.data.length != 0) {
            revert InvalidRequest("any predicate takes no data");
        }
        if (request.input.inputType > INPUT_URL) revert InvalidRequest("input type");
        Offer calldata offer = request.offer;
        if (offer.minPrice > offer.maxPrice) revert InvalidRequest("minPrice above maxPrice");
        if (offer.maxPrice > type(uint128).max || offer.lockCollateral > type(uint128).max) {
            revert InvalidRequest("amount above 2^128");
        }
        if (offer.rampUpPeriod > offer.lockTimeout || offer.lockTimeout > offer.timeout) {
            revert InvalidRequest("needs rampUpPeriod <= lockTimeout <= timeout");
        }
    }

    function _lockDeadline(Offer calldata offer) private pure returns (uint64) {
        return offer.biddingStart + offer.lockTimeout;
    }

    /// Checks a request that arrives with its lock: valid, signed by its requestor.
    function _acceptSigned(ProofRequest calldata request, bytes32 digest, bytes calldata signature) private {
        _validate(request);
        address signer = Signature.recover(digest, signature);
        if (signer == address(0) || signer != requestorOf(request.id)) revert InvalidRequestSignature(request.id);
        emit RequestSubmitted(request.id, digest, request);
    }

    /// Leaves exactly the locked price in escrow: a submitted request returns the rest of its
    /// maxPrice to the requestor, a signed one takes the price from the requestor's balance.
    function _escrowLockedPrice(ProofRequest calldata request, RequestRecord storage record, uint256 price) private {
        address requestor = requestorOf(request.id);
        if (record.state == RequestState.Submitted) {
            uint256 change = record.price - price;
            _releaseEscrow(change);
            balanceOf[requestor] += change;
        } else {
            _debit(requestor, price);
            totalEscrow += price;
        }
    }

    function _storeLock(ProofRequest calldata request, RequestRecord storage record, bytes32 digest, uint256 price)
        private
    {
        Offer calldata offer = request.offer;
        Predicate calldata predicate = request.requirements.predicate;
        record.locker = msg.sender;
        record.lockDeadline = _lockDeadline(offer);
        record.state = RequestState.Locked;
        record.predicateType = predicate.predicateType;
        record.price = uint128(price);
        record.collateral = uint128(offer.lockCollateral);
        record.deadline = offer.biddingStart + offer.timeout;
        record.requestDigest = digest;
        record.imageId = request.requirements.imageId;
        if (predicate.predicateType == PREDICATE_DIGEST_MATCH) {
            record.predicateValue = bytes32(predicate.data);
        } else if (predicate.predicateType == PREDICATE_PREFIX_MATCH) {
            record.prefixLength = uint32(predicate.data.length);
            record.predicateValue = keccak256(predicate.data);
        }
    }

    /// The record of a request that `journal` may fulfil now, or a revert saying why not.
    function _fulfillable(uint256 id, bytes calldata journal) private view returns (RequestRecord storage record) {
        record = records[id];
        if (record.state == RequestState.Fulfilled) revert AlreadyFulfilled(id);
        if (record.state != RequestState.Locked) revert NotLocked(id);
        if (block.timestamp > record.deadline) revert RequestExpired(id, record.deadline);
        if (block.timestamp <= record.lockDeadline && msg.sender != record.locker) revert NotLocker(id, record.locker);
        if (!_journalAccepted(record, journal)) revert JournalRejected(id);
    }

    function _journalAccepted(RequestRecord storage record, bytes calldata journal) private view returns (bool) {
        uint8 kind = record.predicateType;
        if (kind == PREDICATE_DIGEST_MATCH) return sha256(journal) == record.predicateValue;
        if (kind == PREDICATE_PREFIX_MATCH) {
            uint256 length = record.prefixLength;
            return journal.length >= length && keccak256(journal[0:length]) == record.predicateValue;
        }
        return true;
    }

    function _fulfillIncluded(bytes32 root, Fulfillment calldata fill) private {
        RequestRecord storage record = _fulfillable(fill.id, fill.journal);
        bytes32 claim = ClaimDigest.ok(record.imageId, sha256(fill.journal));
        if (MerkleProof.rootOf(claim, fill.proof) != root) revert InvalidInclusionProof(fill.id);
        emit ProofDelivered(fill.id, root, fill.journal, abi.encodePacked(fill.proof));
        _settle(fill.id, record);
    }

    /// Pays for a verified fulfilment by the caller. Before the lock deadline the locker gets the
    /// price and its collateral back. After it the locker has defaulted: the fulfiller gets
    /// SECONDARY_REWARD_BPS of the collateral, the rest is burned and the requestor is refunded.
    function _settle(uint256 id, RequestRecord storage record) private {
        record.state = RequestState.Fulfilled;
        uint256 price = record.price;
        uint256 collateral = record.collateral;
        _releaseEscrow(price);
        totalCollateralEscrow -= collateral;
        if (block.timestamp <= record.lockDeadline) {
            balanceOf[msg.sender] += price;
            collateralBalanceOf[msg.sender] += collateral;
            emit RequestFulfilled(id, msg.sender, price, 0);
            return;
        }
        uint256 reward = collateral * SECONDARY_REWARD_BPS / 10_000;
        balanceOf[requestorOf(id)] += price;
        collateralBalanceOf[msg.sender] += reward;
        _burn(collateral - reward);
        emit RequestFulfilled(id, msg.sender, 0, reward);
        emit LockForfeited(id, record.locker, collateral - reward, price);
    }

    function _debit(address account, uint256 amount) private {
        uint256 balance = balanceOf[account];
        if (balance < amount) revert InsufficientBalance(account, balance, amount);
        balanceOf[account] = balance - amount;
    }

    function _debitCollateral(address account, uint256 amount) private {
        uint256 balance = collateralBalanceOf[account];
        if (balance < amount) revert InsufficientCollateral(account, balance, amount);
        collateralBalanceOf[account] = balance - amount;
    }

    function _releaseEscrow(uint256 amount) private {
        totalEscrow -= amount;
    }

    function _burn(uint256 amount) private {
        totalCollateralBurned += amount;
        if (amount > 0) collateralToken.burn(amount);
    }
}
