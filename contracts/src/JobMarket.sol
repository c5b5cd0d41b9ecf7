// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {BlockHeader} from "./libraries/BlockHeader.sol";
import {DrawSeed} from "./libraries/DrawSeed.sol";
import {RFC9162} from "./libraries/RFC9162.sol";
import {ReservedRoots} from "./libraries/ReservedRoots.sol";
import {Sampling} from "./libraries/Sampling.sol";
import {SlashSplit} from "./libraries/SlashSplit.sol";

/// @title JobMarket
/// @notice See IJobMarket. Holds no tokens itself: escrow and stakes live in the StakeManager.
contract JobMarket is IJobMarket, EIP712 {
    /// @dev EIP-712 type strings; protocol/eip712.py holds the same strings and a test checks both digests agree.
    bytes32 public constant JOB_ORDER_TYPEHASH = keccak256(
        "JobOrder(address submitter,bytes32 specHash,bytes32 datasetHash,bytes32 initStateRoot,uint64 totalSteps,"
        "uint64 checkpointInterval,uint256 maxPrice,uint64 deadline,uint256 nonce)"
    );
    bytes32 public constant BID_TYPEHASH = keccak256(
        "Bid(address solver,bytes32 orderHash,uint256 price,uint256 stake,uint64 expiry,uint256 nonce,uint64 workTime)"
    );

    uint256 private constant BPS = SlashSplit.BPS;
    /// @dev Domain separator between the audit seed and the verifier draw derived from it.
    bytes32 private constant VERIFIER_DRAW_TAG = keccak256("veritrain.verifiers");

    IStakeManager public immutable stakeManager;
    address private immutable deployer;
    address public game;
    Params private _params;

    mapping(bytes32 jobId => Job) private jobs;
    mapping(bytes32 jobId => address[]) private assigned;
    /// @dev 1 = assigned, 2 = attested.
    mapping(bytes32 jobId => mapping(address verifier => uint8)) private auditStatus;
    mapping(bytes32 jobId => uint256) private attestations;
    /// @dev Unordered nonces, 256 to a word (as Permit2).
    mapping(address signer => mapping(uint256 word => uint256 bits)) private nonceBitmap;

    modifier onlyGame() {
        if (msg.sender != game) revert NotGame(msg.sender);
        _;
    }

    constructor(IStakeManager stakeManager_, Params memory params_) EIP712("veritrain", "1") {
        if (address(stakeManager_) == address(0)) revert ZeroAddress();
        if (
            params_.stakeMultiplierBps < BPS || params_.auditWindow == 0 || params_.auditRateBps == 0
                || params_.auditRateBps > BPS || params_.maxSampledSegments == 0 || params_.auditFeeBps > BPS
                || params_.expirySlashBps > BPS || uint256(params_.slashWinnerBps) + params_.slashArbiterBps > BPS
                || params_.maxLeaves == 0
        ) revert InvalidParams();
        stakeManager = stakeManager_;
        _params = params_;
        deployer = msg.sender;
    }

    /// @notice Binds the DisputeGame; callable once, by the deployer.
    function bindGame(address game_) external {
        if (msg.sender != deployer) revert NotDeployer(msg.sender);
        if (game != address(0)) revert AlreadyBound();
        if (game_ == address(0)) revert ZeroAddress();
        game = game_;
        emit GameBound(game_);
    }

    // ------------------------------------------------------------------ EIP-712

    /// @inheritdoc IJobMarket
    function hashOrder(JobOrder calldata o) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    JOB_ORDER_TYPEHASH,
                    o.submitter,
                    o.specHash,
                    o.datasetHash,
                    o.initStateRoot,
                    o.totalSteps,
                    o.checkpointInterval,
                    o.maxPrice,
                    o.deadline,
                    o.nonce
                )
            )
        );
    }

    /// @inheritdoc IJobMarket
    function hashBid(Bid calldata b) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(BID_TYPEHASH, b.solver, b.orderHash, b.price, b.stake, b.expiry, b.nonce, b.workTime))
        );
    }

    /// @notice The EIP-712 domain separator (chain id and this contract's address are part of it).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @inheritdoc IJobMarket
    function nonceUsed(address signer, uint256 nonce) public view returns (bool) {
        // forge-lint: disable-next-line(incorrect-shift)
        return nonceBitmap[signer][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    /// @inheritdoc IJobMarket
    function cancelNonce(uint256 nonce) external {
        _useNonce(msg.sender, nonce);
        emit NonceCancelled(msg.sender, nonce);
    }

    // ---------------------------------------------------------------- matching

    /// @inheritdoc IJobMarket
    function requiredStake(uint256 price) public view returns (uint256) {
        uint256 proportional = price * _params.stakeMultiplierBps / BPS;
        return proportional > _params.minJobStake ? proportional : _params.minJobStake;
    }

    /// @inheritdoc IJobMarket
    function acceptBid(JobOrder calldata order, bytes calldata orderSig, Bid calldata bid, bytes calldata bidSig)
        external
        returns (bytes32 jobId)
    {
        // INVARIANT: only the submitter spends its escrow; a relayer cannot pick a bid for it.
        if (msg.sender != order.submitter) revert NotSubmitter(msg.sender, order.submitter);
        jobId = _checkTerms(order, bid);
        if (!SignatureChecker.isValidSignatureNow(order.submitter, jobId, orderSig)) {
            revert InvalidSignature(order.submitter);
        }
        if (!SignatureChecker.isValidSignatureNow(bid.solver, hashBid(bid), bidSig)) {
            revert InvalidSignature(bid.solver);
        }
        _useNonce(order.submitter, order.nonce);
        _useNonce(bid.solver, bid.nonce);
        _recordMatch(jobId, order, bid);
        // Interactions last: both are calls into our own StakeManager, which pulls the escrow from the submitter.
        stakeManager.lock(bid.solver, jobId, bid.stake);
        if (bid.price != 0) stakeManager.escrow(jobId, order.submitter, bid.price);
    }

    /// @dev Everything about a match that needs no signature: times, schedule, price, stake, freshness.
    function _checkTerms(JobOrder calldata order, Bid calldata bid) private view returns (bytes32 jobId) {
        if (block.timestamp >= order.deadline) revert OrderExpired(order.deadline);
        if (block.timestamp >= bid.expiry) revert BidExpired(bid.expiry);
        // INVARIANT: the solver gets the working time it signed before the deadline (no last-second acceptance).
        uint256 readyAt = block.timestamp + bid.workTime;
        if (readyAt > order.deadline) revert TooLateToAccept(readyAt, order.deadline);
        if (
            order.checkpointInterval == 0 || order.totalSteps == 0 || order.totalSteps % order.checkpointInterval != 0
                || order.totalSteps / order.checkpointInterval > _params.maxLeaves
        ) revert InvalidSchedule(order.totalSteps, order.checkpointInterval);
        if (ReservedRoots.isReserved(order.initStateRoot)) revert ReservedRoot(order.initStateRoot);
        jobId = hashOrder(order);
        if (bid.orderHash != jobId) revert BidForOtherOrder(bid.orderHash, jobId);
        if (bid.price > order.maxPrice) revert PriceAboveMax(bid.price, order.maxPrice);
        uint256 required = requiredStake(bid.price);
        if (bid.stake < required) revert StakeTooLow(bid.stake, required);
        if (bid.price > type(uint128).max || bid.stake > type(uint128).max) revert InvalidParams();
        if (jobs[jobId].state != JobState.None) revert JobExists(jobId);
    }

    function _recordMatch(bytes32 jobId, JobOrder calldata order, Bid calldata bid) private {
        Job storage job = jobs[jobId];
        job.submitter = order.submitter;
        job.deadline = order.deadline;
        job.state = JobState.Matched;
        job.solver = bid.solver;
        job.numLeaves = order.totalSteps / order.checkpointInterval;
        job.price = uint128(bid.price);
        job.stake = uint128(bid.stake);
        job.initStateRoot = order.initStateRoot;
        emit JobMatched(
            jobId,
            order.submitter,
            bid.solver,
            order.specHash,
            order.datasetHash,
            order.initStateRoot,
            order.totalSteps,
            order.checkpointInterval,
            bid.price,
            bid.stake,
            order.deadline
        );
    }

    // ------------------------------------------------------------------ commit

    /// @inheritdoc IJobMarket
    function commit(
        bytes32 jobId,
        bytes32 trajectoryRoot,
        uint64 numLeaves,
        bytes32 finalStateRoot,
        bytes32[] calldata finalProof,
        string calldata uri
    ) external {
        Job storage job = _job(jobId);
        if (job.state != JobState.Matched) revert WrongJobState(jobId, job.state);
        if (msg.sender != job.solver) revert NotSolver(msg.sender, job.solver);
        if (block.timestamp >= job.deadline) revert DeadlinePassed(job.deadline);
        if (numLeaves != job.numLeaves) revert WrongLeafCount(numLeaves, job.numLeaves);
        if (trajectoryRoot == bytes32(0)) revert ZeroRoot();
        // INVARIANT: no committed checkpoint is a reserved value (an UNAVAILABLE leaf would turn honest votes around).
        if (ReservedRoots.isReserved(finalStateRoot)) revert ReservedRoot(finalStateRoot);
        // INVARIANT: the final model the submitter downloads is the last committed leaf.
        if (!RFC9162.verifyInclusion(
                trajectoryRoot, RFC9162.hashLeaf(finalStateRoot), numLeaves - 1, numLeaves, finalProof
            )) revert FinalStateNotLastLeaf();
        job.trajectoryRoot = trajectoryRoot;
        job.finalStateRoot = finalStateRoot;
        job.state = JobState.Committed;
        uint64 now_ = uint64(block.timestamp);
        job.committedAt = now_;
        job.auditEnd = now_ + _params.auditWindow;
        // INVARIANT: the audit seed comes from a block mined after this one, unknown to the solver now.
        job.seedBlock = DrawSeed.next();
        emit JobCommitted(jobId, trajectoryRoot, numLeaves, finalStateRoot, uri, job.auditEnd, job.seedBlock);
    }

    // ------------------------------------------------------------------- audit

    /// @inheritdoc IJobMarket
    function drawAudit(bytes32 jobId, bytes calldata seedHeader) external {
        Job storage job = _job(jobId);
        if (job.state != JobState.Committed && job.state != JobState.Disputed) revert WrongJobState(jobId, job.state);
        if (job.seed != bytes32(0)) revert SeedAlreadyDrawn(jobId);
        if (block.number <= job.seedBlock) revert SeedNotReady(job.seedBlock);
        if (blockhash(job.seedBlock) == bytes32(0)) {
            // Seed block older than 256 blocks: pick the next block instead (still unknown to everyone now).
            job.seedBlock = DrawSeed.next();
            emit AuditSeedRearmed(jobId, job.seedBlock);
            return;
        }
        // INVARIANT: the seed is the seed block's RANDAO value, which its builder cannot grind, and the verifiers are
        // drawn by the weights of a block before the seed was fixed, which nobody could adjust knowing it.
        bytes32 randao = BlockHeader.randaoOf(seedHeader, job.seedBlock);
        bytes32 seed = keccak256(abi.encode(randao, jobId, job.trajectoryRoot));
        job.seed = seed;
        address[] memory exclude = new address[](2);
        exclude[0] = job.solver;
        exclude[1] = job.submitter;
        address[] memory verifiers = stakeManager.drawDistinct(
            keccak256(abi.encode(seed, VERIFIER_DRAW_TAG)),
            _params.verifiersPerJob,
            exclude,
            0,
            DrawSeed.weightsBlock(job.seedBlock)
        );
        for (uint256 i = 0; i < verifiers.length; ++i) {
            assigned[jobId].push(verifiers[i]);
            auditStatus[jobId][verifiers[i]] = 1;
        }
        emit AuditDrawn(jobId, seed, verifiers, _sample(seed, job.numLeaves));
    }

    /// @inheritdoc IJobMarket
    function sampledSegments(bytes32 jobId) external view returns (uint256[] memory) {
        Job storage job = _job(jobId);
        if (job.seed == bytes32(0)) revert SeedNotDrawn(jobId);
        return _sample(job.seed, job.numLeaves);
    }

    /// @inheritdoc IJobMarket
    function assignedVerifiers(bytes32 jobId) external view returns (address[] memory) {
        return assigned[jobId];
    }

    /// @inheritdoc IJobMarket
    function hasAttested(bytes32 jobId, address verifier) external view returns (bool) {
        return auditStatus[jobId][verifier] == 2;
    }

    /// @inheritdoc IJobMarket
    function attest(bytes32 jobId) external {
        Job storage job = _job(jobId);
        if (job.state != JobState.Committed && job.state != JobState.Disputed) revert WrongJobState(jobId, job.state);
        // INVARIANT: while a dispute runs the window is paused (windowLeft > 0 remains), so auditEnd, which may have
        // passed meanwhile, does not bound attestations; only a Committed job's running window does.
        if (job.state == JobState.Committed && block.timestamp >= job.auditEnd) revert AuditWindowClosed(job.auditEnd);
        uint8 status = auditStatus[jobId][msg.sender];
        if (status == 0) revert NotAssignedVerifier(msg.sender);
        if (status == 2) revert AlreadyAttested(msg.sender);
        auditStatus[jobId][msg.sender] = 2;
        ++attestations[jobId];
        emit Attested(jobId, msg.sender);
    }

    // -------------------------------------------------------------- settlement

    /// @inheritdoc IJobMarket
    function finalize(bytes32 jobId) external {
        Job storage job = _job(jobId);
        if (job.state != JobState.Committed) revert WrongJobState(jobId, job.state);
        if (block.timestamp < job.auditEnd) revert AuditWindowOpen(job.auditEnd);
        job.state = JobState.Finalized;

        uint256 price = job.price;
        uint256 feeBudget = price * _params.auditFeeBps / BPS;
        uint256 perVerifier = _params.verifiersPerJob == 0 ? 0 : feeBudget / _params.verifiersPerJob;
        // Equal fee per attesting verifier; the rounding dust of the division stays in the submitter's refund.
        // slither-disable-next-line divide-before-multiply
        uint256 fees = perVerifier * attestations[jobId];
        uint256 solverPaid = price - feeBudget;
        uint256 refunded = feeBudget - fees;
        emit JobFinalized(jobId, solverPaid, fees, refunded);

        address[] storage verifiers = assigned[jobId];
        for (uint256 i = 0; i < verifiers.length; ++i) {
            if (auditStatus[jobId][verifiers[i]] == 2) _pay(jobId, verifiers[i], perVerifier);
        }
        _pay(jobId, job.solver, solverPaid);
        _pay(jobId, job.submitter, refunded);
        stakeManager.unlock(job.solver, jobId);
    }

    /// @inheritdoc IJobMarket
    function expire(bytes32 jobId) external {
        Job storage job = _job(jobId);
        if (job.state != JobState.Matched) revert WrongJobState(jobId, job.state);
        if (block.timestamp < job.deadline) revert DeadlineNotPassed(job.deadline);
        job.state = JobState.Expired;
        uint256 slashAmount = uint256(job.stake) * _params.expirySlashBps / BPS;
        emit JobExpired(jobId, slashAmount, job.price);
        _pay(jobId, job.submitter, job.price);
        if (slashAmount == 0) {
            stakeManager.unlock(job.solver, jobId);
        } else {
            address[] memory to = new address[](1);
            uint256[] memory amounts = new uint256[](1);
            to[0] = job.submitter;
            amounts[0] = slashAmount;
            stakeManager.slash(job.solver, jobId, slashAmount, to, amounts);
        }
    }

    /// @inheritdoc IJobMarket
    function beginDispute(bytes32 jobId, uint256 disputeId) external onlyGame {
        Job storage job = _job(jobId);
        if (job.state != JobState.Committed) revert WrongJobState(jobId, job.state);
        if (block.timestamp >= job.auditEnd) revert AuditWindowClosed(job.auditEnd);
        job.state = JobState.Disputed;
        // INVARIANT: the audit window pauses while a dispute runs (auditEnd > now here).
        job.windowLeft = job.auditEnd - uint64(block.timestamp);
        emit JobDisputed(jobId, disputeId);
    }

    /// @inheritdoc IJobMarket
    function settleDispute(bytes32 jobId, bool solverLost, address challenger, address[] calldata arbiters)
        external
        onlyGame
    {
        Job storage job = _job(jobId);
        if (job.state != JobState.Disputed) revert WrongJobState(jobId, job.state);
        if (!solverLost) {
            job.state = JobState.Committed;
            uint64 left = job.windowLeft > _params.disputeGrace ? job.windowLeft : _params.disputeGrace;
            job.auditEnd = uint64(block.timestamp) + left;
            emit JobReopened(jobId, job.auditEnd);
            return;
        }
        job.state = JobState.Slashed;
        uint256 stake = job.stake;
        emit JobSlashed(jobId, challenger, stake, job.price);
        _pay(jobId, job.submitter, job.price);
        (address[] memory to, uint256[] memory amounts) =
            SlashSplit.split(stake, challenger, arbiters, _params.slashWinnerBps, _params.slashArbiterBps);
        stakeManager.slash(job.solver, jobId, stake, to, amounts);
    }

    /// @inheritdoc IJobMarket
    function voidDispute(bytes32 jobId) external onlyGame {
        Job storage job = _job(jobId);
        if (job.state != JobState.Disputed) revert WrongJobState(jobId, job.state);
        job.state = JobState.Voided;
        emit JobVoided(jobId, job.price);
        _pay(jobId, job.submitter, job.price);
        stakeManager.unlock(job.solver, jobId);
    }

    // ------------------------------------------------------------------- views

    function getJob(bytes32 jobId) external view returns (Job memory) {
        return jobs[jobId];
    }

    function params() external view returns (Params memory) {
        return _params;
    }

    // ---------------------------------------------------------------- internal

    function _job(bytes32 jobId) private view returns (Job storage job) {
        job = jobs[jobId];
        if (job.state == JobState.None) revert UnknownJob(jobId);
    }

    function _sample(bytes32 seed, uint256 n) private view returns (uint256[] memory) {
        return Sampling.sample(seed, n, Sampling.sampleCount(n, _params.auditRateBps, _params.maxSampledSegments));
    }

    function _useNonce(address signer, uint256 nonce) private {
        // forge-lint: disable-next-line(incorrect-shift)
        uint256 bit = 1 << (nonce & 0xff);
        uint256 word = nonceBitmap[signer][nonce >> 8];
        if (word & bit != 0) revert NonceUsed(signer, nonce);
        nonceBitmap[signer][nonce >> 8] = word | bit;
    }

    function _pay(bytes32 jobId, address to, uint256 amount) private {
        if (amount != 0) stakeManager.releaseEscrow(jobId, to, amount);
    }
}
