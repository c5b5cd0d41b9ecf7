// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title IDisputeGame
/// @notice The bisection game over a committed trajectory (DESIGN §8). A staked challenger opens a dispute with a bond;
///         the solver reveals the two children of the current node, the challenger picks the side that holds the leaf
///         its replay found wrong, until one leaf (segment) is left. The solver opens that leaf with its pre-state
///         (C_init for leaf 0, else leaf i-1 proved against the trajectory root). A committee of stakers drawn with
///         fresh randomness (both parties and the submitter excluded) replays the segment and votes by commit–reveal; the majority
///         decides: result == opened leaf → solver wins, anything else (UNAVAILABLE included) → challenger wins.
/// @dev Each party has a chess clock spent only on its own turns; running out loses (`timeout`). Arbiters have
///      deadlines; a non-revealing arbiter loses its arbiter stake. Every phase has a way out, so every dispute ends.
interface IDisputeGame {
    enum Phase {
        None,
        AwaitingReveal, // solver: reveal the children of `node`
        AwaitingChoice, // challenger: pick left or right
        AwaitingLeaf, // solver: open the single remaining leaf
        AwaitingCommittee, // anyone: draw the committee once the seed block is mined
        Voting, // arbiters: commit, then reveal
        Resolved,
        Queued, // filed while another dispute on the job ran: starts, in filing order, when the ones before it end
        AwaitingData // availability challenge, solver: publish leaf `lo` on the StatePublisher before its clock ends
    }

    enum Outcome {
        None,
        SolverWon,
        ChallengerWon,
        NoDecision, // the committee produced no majority: bond returned, job reopened
        Superseded, // still queued when an earlier dispute slashed or voided the job: bond returned, never played
        NoCommittee, // fewer than R eligible arbiters until committeeWait: job voided, nobody paid or slashed
        Published // availability challenge answered: the leaf is on chain, the job reopens, the solver earns a fee
    }

    enum VoteStatus {
        None,
        Committed,
        Revealed
    }

    struct Params {
        uint256 disputeBond; // floor of the challenger's bond, locked from its free stake
        uint256 arbiterStake; // floor of what each drawn arbiter locks (forfeited if it does not reveal)
        uint64 clockBudget; // seconds each party may spend on its own moves, in total
        uint64 commitPeriod; // seconds arbiters have to commit after the draw
        uint64 revealPeriod; // seconds arbiters have to reveal after the commit phase
        uint8 committeeSize; // R, odd
        uint64 committeeWait; // seconds after the leaf opening a short pool (< R eligible) only re-arms the draw
        uint16 arbiterStakeBps; // each arbiter locks max(arbiterStake, job stake · this / 10_000)
        uint16 wrongVoteSlashBps; // share of its lock a revealed vote against the final majority loses
        uint16 disputeBondBps; // bond = max(disputeBond, (job stake + price) · this / 10_000) (docs/parameters.md)
        uint16 availabilityFeeBps; // share of the bond an answered availability challenge pays the solver
    }

    struct Dispute {
        bytes32 jobId;
        bytes32 node; // current node hash (trajectory root at the start, then the chosen child, finally a leaf hash)
        bytes32 left; // last revealed children of `node`
        bytes32 right;
        bytes32 postStateRoot; // opened leaf C_i
        bytes32 preStateRoot; // opened pre-state (C_init or leaf i-1)
        address challenger;
        uint64 lastMoveAt;
        Phase phase;
        Outcome outcome;
        bool availability; // an availability challenge of leaf `lo`, not a descent
        address solver;
        uint48 solverClock; // seconds left
        uint48 challengerClock;
        uint64 lo; // the node covers leaves [lo, hi)
        uint64 hi;
        uint64 numLeaves;
        uint64 seedBlock; // committee seed block
        uint128 bond;
        uint48 commitDeadline;
        uint48 revealDeadline;
        uint8 commits;
        uint8 reveals;
        uint8 votesForSolver;
        uint8 votesForChallenger;
        uint128 arbiterLock; // what each arbiter of this dispute locked (see Params.arbiterStakeBps)
    }

    struct Vote {
        bytes32 commitment; // sha256(result ‖ salt ‖ arbiter)
        bytes32 result; // revealed state root or UNAVAILABLE
        VoteStatus status;
    }

    error ZeroAddress();
    error InvalidParams();
    error UnknownDispute(uint256 disputeId);
    /// @notice The dispute is in phase `actual`, not the phase this move needs.
    error WrongPhase(uint256 disputeId, Phase actual);
    error NotSolver(address caller);
    error NotChallenger(address caller);
    error NotArbiter(address caller);
    error SolverCannotChallenge();
    /// @notice The revealed children do not hash to the current node.
    error ChildrenMismatch(bytes32 node);
    /// @notice The opened leaf does not hash to the current node.
    error LeafMismatch(bytes32 node);
    /// @notice The opened leaf or pre-state is a reserved value (zero or UNAVAILABLE), which no checkpoint may be.
    error ReservedLeaf(bytes32 root);
    /// @notice Leaf 0's pre-state must be the job's C_init.
    error PreStateNotInit(bytes32 given, bytes32 initStateRoot);
    /// @notice The inclusion proof of leaf i-1 against the trajectory root failed.
    error InvalidPreStateProof(uint64 index);
    /// @notice The mover's clock ran out; the other side may call `timeout`.
    error ClockExpired(uint256 disputeId);
    error ClockNotExpired(uint256 disputeId, uint256 expiresAt);
    error SeedNotReady(uint64 seedBlock);
    error CommitPeriodOver(uint48 deadline);
    error RevealNotOpen(uint256 disputeId);
    error RevealPeriodOver(uint48 deadline);
    error AlreadyCommitted(address arbiter);
    error NotCommitted(address arbiter);
    error AlreadyRevealed(address arbiter);
    /// @notice The reveal does not match the commitment.
    error CommitmentMismatch(address arbiter);
    error VotingNotOver(uint256 disputeId);
    /// @notice A queued dispute can be dropped only once the job is Slashed or Voided (it would start otherwise).
    error JobNotSettled(bytes32 jobId);
    /// @notice The job's bond (`disputeBondFor`) does not fit the dispute record's 128 bits.
    error BondTooLarge(uint256 bond);
    /// @notice An availability challenge names a leaf the trajectory does not have.
    error NoSuchLeaf(uint64 leaf, uint64 numLeaves);
    /// @notice The challenged leaf is not published (yet).
    error NotPublished(bytes32 jobId, uint64 leaf);
    /// @notice The leaf is on chain already (StatePublisher): read it there, no challenge needed.
    error LeafAlreadyPublished(bytes32 jobId, uint64 leaf);
    /// @notice `settleAvailabilityFee`: the dispute holds no fee (not a Published availability challenge, or settled).
    error NoFeeHeld(uint256 disputeId);
    /// @notice `settleAvailabilityFee`: the job is still open, so whether its solver lied is not known yet.
    error JobNotEnded(bytes32 jobId);

    event DisputeOpened(
        uint256 indexed disputeId, bytes32 indexed jobId, address indexed challenger, address solver, uint256 bond
    );
    /// @notice Another dispute on the job is running: this one waits at `position` (1 = next) of the job's queue.
    event DisputeQueued(uint256 indexed disputeId, bytes32 indexed jobId, uint256 position);
    /// @notice Dispute `disputeId` is an availability challenge: the solver must publish leaf `leaf`.
    event AvailabilityRequested(uint256 indexed disputeId, bytes32 indexed jobId, uint64 leaf);
    /// @notice A held availability fee went to `to`: the solver of a job that ended without a proven lie, else back to
    ///         the challenger.
    event AvailabilityFeeSettled(uint256 indexed disputeId, bytes32 indexed jobId, address indexed to, uint256 fee);
    /// @notice A queued dispute started (its clocks run from now) because the one before it ended.
    event DisputeStarted(uint256 indexed disputeId, bytes32 indexed jobId);
    event ChildrenRevealed(uint256 indexed disputeId, uint64 lo, uint64 hi, bytes32 left, bytes32 right);
    event SideChosen(uint256 indexed disputeId, bool right, uint64 lo, uint64 hi, bytes32 node);
    event LeafOpened(uint256 indexed disputeId, uint64 index, bytes32 postStateRoot, bytes32 preStateRoot);
    event CommitteeSeedRearmed(uint256 indexed disputeId, uint64 seedBlock);
    /// @notice Only `drawn` < R eligible arbiters exist: no committee yet; the draw is re-armed at `seedBlock`.
    event CommitteeShort(uint256 indexed disputeId, uint256 drawn, uint64 seedBlock);
    event CommitteeDrawn(uint256 indexed disputeId, bytes32 seed, address[] arbiters, uint48 commitDeadline);
    event VoteCommitted(uint256 indexed disputeId, address indexed arbiter, bytes32 commitment);
    event VoteRevealed(uint256 indexed disputeId, address indexed arbiter, bytes32 result, bytes32 salt);
    /// @notice `winner`/`loser` are zero for NoDecision; `slashed` is what the loser lost (job stake or bond).
    event DisputeResolved(
        uint256 indexed disputeId,
        bytes32 indexed jobId,
        Outcome outcome,
        address winner,
        address loser,
        uint256 slashed,
        address[] majorityArbiters
    );

    /// @notice The result an arbiter reveals when the pre-state could not be fetched or did not hash to its root.
    function UNAVAILABLE() external pure returns (bytes32);
    function params() external view returns (Params memory);
    /// @notice What each arbiter locks in a dispute over a job stake of `jobStake`.
    function arbiterLockFor(uint256 jobStake) external view returns (uint256);
    /// @notice The bond a challenger locks to dispute a job of stake `jobStake` and price `price`: what a dispute
    ///         decides (the stake, and the price refunded to the submitter when the solver loses) times
    ///         `disputeBondBps`, at least `disputeBond`.
    function disputeBondFor(uint256 jobStake, uint256 price) external view returns (uint256);

    /// @notice Files a challenge with the bond. If no dispute runs on the job it starts now (the job must be Committed
    ///         with its audit window open); if one runs, it is queued and starts, in filing order, when the disputes
    ///         before it end without slashing the job (inside the settling transaction, so nobody can slip in a new
    ///         dispute between them). The audit window stays paused while the queue is not empty.
    function openDispute(bytes32 jobId) external returns (uint256 disputeId);
    /// @notice An availability challenge: like `openDispute` (same bond, same queue, the window paused), but instead
    ///         of a descent the solver must publish leaf `leaf`'s state bytes on the StatePublisher before its clock
    ///         runs out. Published (`confirmPublished`, or `timeout` finding it published): the job reopens with at
    ///         least `disputeGrace` for the challenger to replay it, and `availabilityFeeBps` of the bond stays locked
    ///         as the fee for the solver's calldata (see `settleAvailabilityFee`). Not published in time: the solver
    ///         loses the job stake as in a lost dispute.
    function requestAvailability(bytes32 jobId, uint64 leaf) external returns (uint256 disputeId);
    /// @notice Ends an availability challenge whose leaf is published (anyone may call it).
    function confirmPublished(uint256 disputeId) external;
    /// @notice Once the job has ended, pays the fee held by a Published availability challenge (anyone may call it):
    ///         to the solver unless the job ended Slashed, else back to the challenger — withholding data and then
    ///         lying earns a cheater nothing, while answering a griefing challenge is paid.
    function settleAvailabilityFee(uint256 disputeId) external;
    /// @notice A queued dispute whose job an earlier dispute slashed or voided: its bond is returned (Superseded).
    function dropSuperseded(uint256 disputeId) external;
    /// @notice The dispute running on `jobId` (0 if none).
    function activeDisputeOf(bytes32 jobId) external view returns (uint256);
    /// @notice The disputes queued on `jobId`, next first.
    function queuedDisputes(bytes32 jobId) external view returns (uint256[] memory);
    function reveal(uint256 disputeId, bytes32 left, bytes32 right) external;
    function choose(uint256 disputeId, bool right) external;
    function openLeaf(uint256 disputeId, bytes32 postStateRoot, bytes32 preStateRoot, bytes32[] calldata preProof)
        external;
    /// @notice Draws the committee once the seed block is mined: seed = the RANDAO value in `seedHeader` (the RLP
    ///         header of `seedBlock`, checked against its block hash), weights = those at the end of seedBlock - 2.
    ///         If that block's hash is no longer readable (256 blocks later) the seed block is re-armed instead.
    function drawCommittee(uint256 disputeId, bytes calldata seedHeader) external;
    function commitVote(uint256 disputeId, bytes32 commitment) external;
    function revealVote(uint256 disputeId, bytes32 result, bytes32 salt) external;
    /// @notice Ends voting once every arbiter revealed or the reveal deadline passed.
    function resolve(uint256 disputeId) external;
    /// @notice The party to move ran out of clock: it loses (an availability challenge whose leaf is published by
    ///         then ends Published instead).
    function timeout(uint256 disputeId) external;

    /// @notice sha256(result ‖ salt ‖ arbiter), the commitment an arbiter posts.
    function voteCommitment(bytes32 result, bytes32 salt, address arbiter) external pure returns (bytes32);
    function getDispute(uint256 disputeId) external view returns (Dispute memory);
    function committee(uint256 disputeId) external view returns (address[] memory);
    function voteOf(uint256 disputeId, address arbiter) external view returns (Vote memory);
    function disputeCount() external view returns (uint256);
    /// @notice Latest dispute filed on `jobId`, running or queued (0 if none).
    function latestDisputeOf(bytes32 jobId) external view returns (uint256);
}
