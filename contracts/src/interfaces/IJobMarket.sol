// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title IJobMarket
/// @notice Matches signed job orders with signed bids (EIP-712, domain `veritrain` / `1`), escrows the price, locks
///         the solver's job stake, records the committed trajectory, draws the audit, and settles the job.
/// @dev Job states: Matched → Committed → (Disputed) → Finalized | Slashed | Expired. The job id is the EIP-712
///      digest of the order, so an order can be matched at most once on one chain.
interface IJobMarket {
    /// @notice A training job as the submitter signed it. `deadline` is the unix time by which the trajectory must be
    ///         committed (a bid can be accepted until `deadline - bid.workTime`). Steps, interval and times are uint64.
    struct JobOrder {
        address submitter;
        bytes32 specHash;
        bytes32 datasetHash;
        bytes32 initStateRoot;
        uint64 totalSteps;
        uint64 checkpointInterval;
        uint256 maxPrice;
        uint64 deadline;
        uint256 nonce;
    }

    /// @notice A solver's offer on one order (`orderHash` is the order's EIP-712 digest = its job id). `workTime` is
    ///         the seconds the solver needs between acceptance and commit: the bid can only be accepted while
    ///         `block.timestamp + workTime <= order.deadline`, so no one can accept it too late to be met.
    struct Bid {
        address solver;
        bytes32 orderHash;
        uint256 price;
        uint256 stake;
        uint64 expiry;
        uint256 nonce;
        uint64 workTime;
    }

    enum JobState {
        None,
        Matched,
        Committed,
        Disputed,
        Finalized,
        Slashed,
        Expired,
        Voided // a dispute could not draw a full committee in time: submitter refunded, stake unlocked, no pay
    }

    /// @notice On-chain record of a job. Spec and dataset hashes are in the `JobMatched` event only.
    struct Job {
        address submitter;
        uint64 deadline;
        JobState state;
        address solver;
        uint64 numLeaves;
        uint128 price;
        uint128 stake;
        bytes32 initStateRoot;
        bytes32 trajectoryRoot;
        bytes32 finalStateRoot;
        uint64 committedAt;
        uint64 auditEnd;
        uint64 seedBlock;
        uint64 windowLeft; // audit window left when the current dispute opened (the window pauses meanwhile)
        bytes32 seed;
    }

    /// @notice All parameters, fixed at deployment. Basis points are out of 10_000.
    struct Params {
        uint256 minJobStake; // floor of the solver's job stake
        uint256 stakeMultiplierBps; // job stake >= price · this / 10_000
        uint64 auditWindow; // seconds after commit during which audits and disputes happen
        uint64 disputeGrace; // after a dispute the solver won, the window lasts at least this much longer
        uint16 auditRateBps; // share of segments sampled
        uint16 maxSampledSegments; // cap on sampled segments
        uint8 verifiersPerJob; // verifiers assigned to each job
        uint16 auditFeeBps; // share of the price paid to attesting verifiers
        uint16 expirySlashBps; // share of the job stake slashed (to the submitter) on a missed deadline
        uint16 slashWinnerBps; // share of a loser's slashed stake paid to the dispute winner
        uint16 slashArbiterBps; // share paid to the majority arbiters (the rest is burned)
        uint64 maxLeaves; // upper bound on N = totalSteps / checkpointInterval
    }

    error NotGame(address caller);
    error NotDeployer(address caller);
    error AlreadyBound();
    error ZeroAddress();
    error InvalidParams();
    /// @notice The signature does not recover to `expected`.
    error InvalidSignature(address expected);
    /// @notice Only the order's submitter may accept bids on it.
    error NotSubmitter(address caller, address submitter);
    /// @notice `nonce` of `signer` was used or cancelled.
    error NonceUsed(address signer, uint256 nonce);
    error OrderExpired(uint64 deadline);
    error BidExpired(uint64 expiry);
    /// @notice Accepted now, the solver's signed `workTime` would end at `readyAt`, after the order's deadline.
    error TooLateToAccept(uint256 readyAt, uint64 deadline);
    error BidForOtherOrder(bytes32 bidOrderHash, bytes32 orderHash);
    error PriceAboveMax(uint256 price, uint256 maxPrice);
    error StakeTooLow(uint256 stake, uint256 required);
    /// @notice totalSteps must be a positive multiple of checkpointInterval and give at most maxLeaves leaves.
    error InvalidSchedule(uint64 totalSteps, uint64 checkpointInterval);
    error JobExists(bytes32 jobId);
    error UnknownJob(bytes32 jobId);
    /// @notice The job is in state `actual`, not the state this call needs.
    error WrongJobState(bytes32 jobId, JobState actual);
    error NotSolver(address caller, address solver);
    error DeadlinePassed(uint64 deadline);
    error DeadlineNotPassed(uint64 deadline);
    error WrongLeafCount(uint64 given, uint64 expected);
    error ZeroRoot();
    /// @notice `root` is a reserved value (zero or UNAVAILABLE) that no checkpoint may take (see ReservedRoots).
    error ReservedRoot(bytes32 root);
    /// @notice The final state root is not leaf N-1 of the committed trajectory.
    error FinalStateNotLastLeaf();
    error AuditWindowClosed(uint64 auditEnd);
    error AuditWindowOpen(uint64 auditEnd);
    /// @notice The audit seed block has not been mined yet; retry after block `seedBlock`.
    error SeedNotReady(uint64 seedBlock);
    error SeedAlreadyDrawn(bytes32 jobId);
    error SeedNotDrawn(bytes32 jobId);
    error NotAssignedVerifier(address caller);
    error AlreadyAttested(address verifier);

    event GameBound(address game);
    event NonceCancelled(address indexed signer, uint256 nonce);
    event JobMatched(
        bytes32 indexed jobId,
        address indexed submitter,
        address indexed solver,
        bytes32 specHash,
        bytes32 datasetHash,
        bytes32 initStateRoot,
        uint64 totalSteps,
        uint64 checkpointInterval,
        uint256 price,
        uint256 stake,
        uint64 deadline
    );
    event JobCommitted(
        bytes32 indexed jobId,
        bytes32 trajectoryRoot,
        uint64 numLeaves,
        bytes32 finalStateRoot,
        string uri,
        uint64 auditEnd,
        uint64 seedBlock
    );
    /// @notice The audit seed block was too old to read (256+ blocks); a new one was set.
    event AuditSeedRearmed(bytes32 indexed jobId, uint64 seedBlock);
    event AuditDrawn(bytes32 indexed jobId, bytes32 seed, address[] verifiers, uint256[] segments);
    event Attested(bytes32 indexed jobId, address indexed verifier);
    event JobDisputed(bytes32 indexed jobId, uint256 indexed disputeId);
    event JobReopened(bytes32 indexed jobId, uint64 auditEnd);
    event JobFinalized(bytes32 indexed jobId, uint256 solverPaid, uint256 feesPaid, uint256 refunded);
    event JobSlashed(bytes32 indexed jobId, address indexed challenger, uint256 slashed, uint256 refunded);
    event JobExpired(bytes32 indexed jobId, uint256 slashed, uint256 refunded);
    event JobVoided(bytes32 indexed jobId, uint256 refunded);

    // EIP-712
    function hashOrder(JobOrder calldata order) external view returns (bytes32);
    function hashBid(Bid calldata bid) external view returns (bytes32);
    function nonceUsed(address signer, uint256 nonce) external view returns (bool);
    /// @notice Marks the caller's `nonce` used, so no order or bid signed with it can be matched.
    function cancelNonce(uint256 nonce) external;

    /// @notice The submitter accepts `bid` on `order`: checks both signatures, nonces and expiries, escrows the price
    ///         (token approval to the StakeManager) and locks `bid.stake` of the solver's free stake.
    function acceptBid(JobOrder calldata order, bytes calldata orderSig, Bid calldata bid, bytes calldata bidSig)
        external
        returns (bytes32 jobId);
    /// @notice Job stake required for `price`: max(minJobStake, price · stakeMultiplierBps / 10_000).
    function requiredStake(uint256 price) external view returns (uint256);

    /// @notice The solver commits its trajectory root over N = totalSteps / checkpointInterval leaves before the
    ///         deadline, proving that `finalStateRoot` is leaf N-1 with `finalProof` (RFC 9162 audit path).
    function commit(
        bytes32 jobId,
        bytes32 trajectoryRoot,
        uint64 numLeaves,
        bytes32 finalStateRoot,
        bytes32[] calldata finalProof,
        string calldata uri
    ) external;
    /// @notice Draws the audit seed from the RANDAO value of the seed block (mined after the commit; `seedHeader` is
    ///         its RLP header, checked against its block hash), then the assigned verifiers by the draw weights at the
    ///         end of seedBlock - 2 (before the commit's block). Anyone may call it once the seed block is mined; if its
    ///         hash is no longer readable (256 blocks later) the seed block is re-armed instead.
    function drawAudit(bytes32 jobId, bytes calldata seedHeader) external;
    /// @notice The sampled segment indices of a committed job (requires the audit seed).
    function sampledSegments(bytes32 jobId) external view returns (uint256[] memory);
    function assignedVerifiers(bytes32 jobId) external view returns (address[] memory);
    function hasAttested(bytes32 jobId, address verifier) external view returns (bool);
    /// @notice An assigned verifier declares that its replay of every sampled segment matched.
    function attest(bytes32 jobId) external;
    /// @notice After the audit window with no open dispute: pays the solver, the attesting verifiers' fees, refunds
    ///         unused fees, unlocks the job stake.
    function finalize(bytes32 jobId) external;
    /// @notice A Matched job past its deadline: refunds the submitter and slashes part of the job stake to it.
    function expire(bytes32 jobId) external;

    /// @notice DisputeGame: marks the job Disputed (must be Committed, window open).
    function beginDispute(bytes32 jobId, uint256 disputeId) external;
    /// @notice DisputeGame: settles a dispute. If the solver lost, the job is Slashed (submitter refunded, job stake
    ///         slashed to the challenger and `arbiters`); otherwise it is Committed again and the audit window, paused
    ///         while the dispute ran, resumes with what was left of it (at least `disputeGrace`), so a stalling sybil
    ///         challenger cannot run the window out for honest ones.
    function settleDispute(bytes32 jobId, bool solverLost, address challenger, address[] calldata arbiters) external;

    /// @notice DisputeGame: a dispute found no full committee within its wait: the job is Voided, the submitter
    ///         refunded, the job stake unlocked; the solver is neither paid nor slashed.
    function voidDispute(bytes32 jobId) external;

    function getJob(bytes32 jobId) external view returns (Job memory);
    function params() external view returns (Params memory);
}
