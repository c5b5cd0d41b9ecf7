// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {IDisputeGame} from "./interfaces/IDisputeGame.sol";
import {IJobMarket} from "./interfaces/IJobMarket.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {IStatePublisher} from "./interfaces/IStatePublisher.sol";
import {BlockHeader} from "./libraries/BlockHeader.sol";
import {DrawSeed} from "./libraries/DrawSeed.sol";
import {RFC9162} from "./libraries/RFC9162.sol";
import {ReservedRoots} from "./libraries/ReservedRoots.sol";
import {SlashSplit} from "./libraries/SlashSplit.sol";

/// @title DisputeGame
/// @notice See IDisputeGame. Money moves through the StakeManager (bond and arbiter stakes are locks there) and the
///         job's fate through the JobMarket, both inside the resolving transaction.
contract DisputeGame is IDisputeGame {
    /// @inheritdoc IDisputeGame
    bytes32 public constant UNAVAILABLE = ReservedRoots.UNAVAILABLE;
    bytes32 private constant BOND_TAG = keccak256("veritrain.dispute.bond");
    bytes32 private constant ARBITER_TAG = keccak256("veritrain.dispute.arbiter");
    bytes32 private constant COMMITTEE_TAG = keccak256("veritrain.committee");
    bytes32 private constant FEE_TAG = keccak256("veritrain.dispute.availability-fee");

    IJobMarket public immutable market;
    IStakeManager public immutable stakeManager;
    IStatePublisher public immutable publisher;
    uint256 private immutable winnerBps;
    uint256 private immutable arbiterBps;
    Params private _params;

    uint256 public disputeCount;
    mapping(uint256 disputeId => Dispute) private disputes;
    mapping(uint256 disputeId => address[]) private committees;
    mapping(uint256 disputeId => mapping(address arbiter => Vote)) private votes;
    mapping(bytes32 jobId => uint256 disputeId) public latestDisputeOf;
    mapping(bytes32 jobId => uint256 disputeId) public activeDisputeOf;
    /// @dev FIFO of waiting disputes per job: entries [queueHead, length) are still queued.
    mapping(bytes32 jobId => uint256[]) private queues;
    mapping(bytes32 jobId => uint256) private queueHead;

    constructor(IJobMarket market_, IStakeManager stakeManager_, IStatePublisher publisher_, Params memory params_) {
        if (address(market_) == address(0) || address(stakeManager_) == address(0) || address(publisher_) == address(0))
        {
            revert ZeroAddress();
        }
        if (
            params_.disputeBond == 0 || params_.arbiterStake == 0
                || params_.arbiterStake > stakeManager_.minVerifierStake() || params_.clockBudget == 0
                || params_.commitPeriod == 0 || params_.revealPeriod == 0 || params_.committeeSize == 0
                || params_.committeeWait == 0 || params_.arbiterStakeBps > SlashSplit.BPS
                || params_.wrongVoteSlashBps > SlashSplit.BPS || params_.disputeBondBps > SlashSplit.BPS
                || params_.availabilityFeeBps > SlashSplit.BPS || params_.committeeSize % 2 == 0
                || params_.clockBudget > type(uint48).max || params_.disputeBond > type(uint128).max
        ) revert InvalidParams();
        market = market_;
        stakeManager = stakeManager_;
        publisher = publisher_;
        IJobMarket.Params memory mp = market_.params();
        winnerBps = mp.slashWinnerBps;
        arbiterBps = mp.slashArbiterBps;
        _params = params_;
    }

    // ------------------------------------------------------------------ descent

    /// @inheritdoc IDisputeGame
    function openDispute(bytes32 jobId) external returns (uint256 disputeId) {
        return _open(jobId, false, 0);
    }

    /// @inheritdoc IDisputeGame
    function requestAvailability(bytes32 jobId, uint64 leaf) external returns (uint256 disputeId) {
        return _open(jobId, true, leaf);
    }

    function _open(bytes32 jobId, bool availability, uint64 leaf) private returns (uint256 disputeId) {
        disputeId = ++disputeCount;
        IJobMarket.Job memory job = market.getJob(jobId);
        if (msg.sender == job.solver) revert SolverCannotChallenge();
        if (availability) {
            if (leaf >= job.numLeaves) revert NoSuchLeaf(leaf, job.numLeaves);
            if (publisher.publishedAt(jobId, leaf) != 0) revert LeafAlreadyPublished(jobId, leaf);
            emit AvailabilityRequested(disputeId, jobId, leaf);
        }
        latestDisputeOf[jobId] = disputeId;
        Dispute storage d = disputes[disputeId];
        d.jobId = jobId;
        d.challenger = msg.sender;
        d.solver = job.solver;
        d.availability = availability;
        d.lo = leaf;
        // INVARIANT: the bond grows with what the dispute decides, so griefing an honest job with a captured
        // committee loses money in expectation for an attacker with up to a third of the draw weight (parameters.md).
        uint256 bond = disputeBondFor(job.stake, job.price);
        if (bond > type(uint128).max) revert BondTooLarge(bond);
        // forge-lint: disable-next-line(unsafe-typecast)
        d.bond = uint128(bond); // fits, checked above
        if (job.state == IJobMarket.JobState.Disputed) {
            // INVARIANT: a challenge filed while another runs waits its turn in filing order; nobody can jump it.
            d.phase = Phase.Queued;
            queues[jobId].push(disputeId);
            emit DisputeOpened(disputeId, jobId, msg.sender, job.solver, bond);
            emit DisputeQueued(disputeId, jobId, queues[jobId].length - queueHead[jobId]);
        } else {
            // State first, then the market call (which reverts unless the job is in its audit window).
            // Root and leaf count are fixed at commit, so the job read above is the one that starts.
            _start(disputeId, d, job);
            market.beginDispute(jobId, disputeId);
            emit DisputeOpened(disputeId, jobId, msg.sender, job.solver, bond);
        }
        stakeManager.lock(msg.sender, _key(BOND_TAG, disputeId), bond);
    }

    /// @inheritdoc IDisputeGame
    function dropSuperseded(uint256 disputeId) external {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.Queued);
        bytes32 jobId = d.jobId;
        IJobMarket.JobState state = market.getJob(jobId).state;
        if (state != IJobMarket.JobState.Slashed && state != IJobMarket.JobState.Voided) revert JobNotSettled(jobId);
        d.phase = Phase.Resolved;
        d.outcome = Outcome.Superseded;
        emit DisputeResolved(disputeId, jobId, Outcome.Superseded, address(0), address(0), 0, new address[](0));
        stakeManager.unlock(d.challenger, _key(BOND_TAG, disputeId));
    }

    /// @dev Starts the descent (or the availability challenge) of `d` on `job` (now Disputed): clocks run from now.
    function _start(uint256 disputeId, Dispute storage d, IJobMarket.Job memory job) private {
        activeDisputeOf[d.jobId] = disputeId;
        d.node = job.trajectoryRoot;
        d.lastMoveAt = uint64(block.timestamp);
        d.solverClock = uint48(_params.clockBudget);
        d.challengerClock = uint48(_params.clockBudget);
        d.numLeaves = job.numLeaves;
        if (d.availability) {
            d.phase = Phase.AwaitingData;
            d.hi = d.lo + 1;
            return;
        }
        // A one-leaf trajectory has no descent: the root is the leaf.
        d.phase = job.numLeaves == 1 ? Phase.AwaitingLeaf : Phase.AwaitingReveal;
        d.hi = job.numLeaves;
    }

    /// @inheritdoc IDisputeGame
    function confirmPublished(uint256 disputeId) external {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.AwaitingData);
        if (publisher.publishedAt(d.jobId, d.lo) == 0) revert NotPublished(d.jobId, d.lo);
        _settle(disputeId, d, Outcome.Published);
    }

    /// @inheritdoc IDisputeGame
    function settleAvailabilityFee(uint256 disputeId) external {
        Dispute storage d = _dispute(disputeId);
        bytes32 key = _key(FEE_TAG, disputeId);
        address challenger = d.challenger;
        uint256 fee = stakeManager.lockedUnder(challenger, key);
        if (fee == 0) revert NoFeeHeld(disputeId);
        bytes32 jobId = d.jobId;
        IJobMarket.JobState state = market.getJob(jobId).state;
        if (state == IJobMarket.JobState.Committed || state == IJobMarket.JobState.Disputed) revert JobNotEnded(jobId);
        if (state == IJobMarket.JobState.Slashed) {
            emit AvailabilityFeeSettled(disputeId, jobId, challenger, fee);
            stakeManager.unlock(challenger, key);
        } else {
            address solver = d.solver;
            emit AvailabilityFeeSettled(disputeId, jobId, solver, fee);
            address[] memory to = new address[](1);
            uint256[] memory amounts = new uint256[](1);
            (to[0], amounts[0]) = (solver, fee);
            stakeManager.slash(challenger, key, fee, to, amounts);
        }
    }

    /// @dev After a dispute on `jobId` ended without slashing it: the next queued dispute, if any, starts now.
    function _startNext(bytes32 jobId) private {
        uint256 head = queueHead[jobId];
        if (head == queues[jobId].length) return;
        uint256 next = queues[jobId][head];
        queueHead[jobId] = head + 1;
        Dispute storage d = disputes[next];
        emit DisputeStarted(next, jobId);
        _start(next, d, market.getJob(jobId));
        market.beginDispute(jobId, next);
    }

    /// @inheritdoc IDisputeGame
    function reveal(uint256 disputeId, bytes32 left, bytes32 right) external {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.AwaitingReveal);
        if (msg.sender != d.solver) revert NotSolver(msg.sender);
        _spendSolverClock(d, disputeId);
        // INVARIANT: the revealed children are the ones the committed root binds (collision resistance of SHA-256).
        if (RFC9162.hashNode(left, right) != d.node) revert ChildrenMismatch(d.node);
        d.left = left;
        d.right = right;
        d.phase = Phase.AwaitingChoice;
        emit ChildrenRevealed(disputeId, d.lo, d.hi, left, right);
    }

    /// @inheritdoc IDisputeGame
    function choose(uint256 disputeId, bool right) external {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.AwaitingChoice);
        if (msg.sender != d.challenger) revert NotChallenger(msg.sender);
        _spendChallengerClock(d, disputeId);
        uint64 lo = d.lo;
        uint64 hi = d.hi;
        // INVARIANT: the split follows RFC 9162 (largest power of two below the width), as pymerkle builds the tree.
        uint64 mid = lo + uint64(RFC9162.splitPoint(hi - lo));
        if (right) {
            d.node = d.right;
            lo = mid;
            d.lo = lo;
        } else {
            d.node = d.left;
            hi = mid;
            d.hi = hi;
        }
        d.phase = hi - lo == 1 ? Phase.AwaitingLeaf : Phase.AwaitingReveal;
        emit SideChosen(disputeId, right, lo, hi, d.node);
    }

    /// @inheritdoc IDisputeGame
    function openLeaf(uint256 disputeId, bytes32 postStateRoot, bytes32 preStateRoot, bytes32[] calldata preProof)
        external
    {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.AwaitingLeaf);
        if (msg.sender != d.solver) revert NotSolver(msg.sender);
        _spendSolverClock(d, disputeId);
        if (RFC9162.hashLeaf(postStateRoot) != d.node) revert LeafMismatch(d.node);
        // INVARIANT: the opened leaf can never equal a reserved vote: UNAVAILABLE always counts against the solver.
        if (ReservedRoots.isReserved(postStateRoot)) revert ReservedLeaf(postStateRoot);
        if (ReservedRoots.isReserved(preStateRoot)) revert ReservedLeaf(preStateRoot);
        uint64 index = d.lo;
        IJobMarket.Job memory job = market.getJob(d.jobId);
        if (index == 0) {
            if (preStateRoot != job.initStateRoot) revert PreStateNotInit(preStateRoot, job.initStateRoot);
        } else if (!RFC9162.verifyInclusion(
                job.trajectoryRoot, RFC9162.hashLeaf(preStateRoot), index - 1, d.numLeaves, preProof
            )) {
            revert InvalidPreStateProof(index - 1);
        }
        d.postStateRoot = postStateRoot;
        d.preStateRoot = preStateRoot;
        d.phase = Phase.AwaitingCommittee;
        // INVARIANT: the committee comes from a block mined after the leaf was opened.
        d.seedBlock = DrawSeed.next();
        emit LeafOpened(disputeId, index, postStateRoot, preStateRoot);
    }

    // -------------------------------------------------------------- arbitration

    /// @inheritdoc IDisputeGame
    function drawCommittee(uint256 disputeId, bytes calldata seedHeader) external {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.AwaitingCommittee);
        if (block.number <= d.seedBlock) revert SeedNotReady(d.seedBlock);
        if (blockhash(d.seedBlock) == bytes32(0)) {
            d.seedBlock = DrawSeed.next();
            emit CommitteeSeedRearmed(disputeId, d.seedBlock);
            return;
        }
        // INVARIANT: the seed is the seed block's RANDAO value; the arbiters are drawn by the weights of a block before
        // the seed was fixed (DrawSeed), so nobody can move stake onto the committee after seeing the seed.
        bytes32 seed = keccak256(abi.encode(BlockHeader.randaoOf(seedHeader, d.seedBlock), disputeId, COMMITTEE_TAG));
        // INVARIANT: no party with a stake in the outcome judges it (solver, challenger, and the submitter, who is
        // refunded if the solver loses).
        address[] memory exclude = new address[](3);
        exclude[0] = d.solver;
        exclude[1] = d.challenger;
        IJobMarket.Job memory job = market.getJob(d.jobId);
        exclude[2] = job.submitter;
        // INVARIANT: what an arbiter risks grows with the stake its vote decides; only members able to lock it sit.
        uint256 lockAmount = arbiterLockFor(job.stake);
        address[] memory arbiters = stakeManager.drawDistinct(
            seed, _params.committeeSize, exclude, lockAmount, DrawSeed.weightsBlock(d.seedBlock)
        );
        if (arbiters.length < _params.committeeSize) {
            // INVARIANT: only a full committee of R distinct members votes; a short pool waits (re-armed draw) up to
            // committeeWait after the leaf opening, then voids the job, which pays neither side.
            if (block.timestamp < uint256(d.lastMoveAt) + _params.committeeWait) {
                d.seedBlock = DrawSeed.next();
                emit CommitteeShort(disputeId, arbiters.length, d.seedBlock);
            } else {
                _settle(disputeId, d, Outcome.NoCommittee);
            }
            return;
        }
        uint48 commitDeadline = uint48(block.timestamp + _params.commitPeriod);
        d.commitDeadline = commitDeadline;
        d.revealDeadline = uint48(commitDeadline + _params.revealPeriod);
        d.phase = Phase.Voting;
        d.arbiterLock = uint128(lockAmount);
        committees[disputeId] = arbiters;
        emit CommitteeDrawn(disputeId, seed, arbiters, commitDeadline);
        bytes32 key = _key(ARBITER_TAG, disputeId);
        for (uint256 i = 0; i < arbiters.length; ++i) {
            stakeManager.lock(arbiters[i], key, lockAmount);
        }
    }

    /// @inheritdoc IDisputeGame
    function commitVote(uint256 disputeId, bytes32 commitment) external {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.Voting);
        if (block.timestamp >= d.commitDeadline) revert CommitPeriodOver(d.commitDeadline);
        Vote storage v = votes[disputeId][msg.sender];
        if (!_isArbiter(disputeId, msg.sender)) revert NotArbiter(msg.sender);
        if (v.status != VoteStatus.None) revert AlreadyCommitted(msg.sender);
        v.commitment = commitment;
        v.status = VoteStatus.Committed;
        uint8 commits = d.commits + 1;
        d.commits = commits;
        if (commits == committees[disputeId].length) {
            // Everyone committed: open the reveal phase now instead of waiting for the deadline.
            uint48 now_ = uint48(block.timestamp);
            d.commitDeadline = now_;
            d.revealDeadline = uint48(now_ + _params.revealPeriod);
        }
        emit VoteCommitted(disputeId, msg.sender, commitment);
    }

    /// @inheritdoc IDisputeGame
    function revealVote(uint256 disputeId, bytes32 result, bytes32 salt) external {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.Voting);
        if (block.timestamp < d.commitDeadline) revert RevealNotOpen(disputeId);
        if (block.timestamp >= d.revealDeadline) revert RevealPeriodOver(d.revealDeadline);
        Vote storage v = votes[disputeId][msg.sender];
        if (v.status == VoteStatus.None) revert NotCommitted(msg.sender);
        if (v.status == VoteStatus.Revealed) revert AlreadyRevealed(msg.sender);
        if (voteCommitment(result, salt, msg.sender) != v.commitment) revert CommitmentMismatch(msg.sender);
        v.result = result;
        v.status = VoteStatus.Revealed;
        // INVARIANT: only the opened leaf counts for the solver; any other root, UNAVAILABLE included, is against it.
        if (result == d.postStateRoot) ++d.votesForSolver;
        else ++d.votesForChallenger;
        uint8 reveals = d.reveals + 1;
        d.reveals = reveals;
        emit VoteRevealed(disputeId, msg.sender, result, salt);
        if (reveals == committees[disputeId].length) _settle(disputeId, d, _majority(d));
    }

    /// @inheritdoc IDisputeGame
    function resolve(uint256 disputeId) external {
        Dispute storage d = _dispute(disputeId);
        _requirePhase(d, disputeId, Phase.Voting);
        if (block.timestamp < d.revealDeadline) revert VotingNotOver(disputeId);
        _settle(disputeId, d, _majority(d));
    }

    /// @inheritdoc IDisputeGame
    function timeout(uint256 disputeId) external {
        Dispute storage d = _dispute(disputeId);
        Phase phase = d.phase;
        if (phase == Phase.AwaitingData && publisher.publishedAt(d.jobId, d.lo) != 0) {
            _settle(disputeId, d, Outcome.Published); // published, just not confirmed: the solver answered
        } else if (phase == Phase.AwaitingReveal || phase == Phase.AwaitingLeaf || phase == Phase.AwaitingData) {
            uint256 expiresAt = uint256(d.lastMoveAt) + d.solverClock;
            if (block.timestamp <= expiresAt) revert ClockNotExpired(disputeId, expiresAt);
            _settle(disputeId, d, Outcome.ChallengerWon);
        } else if (phase == Phase.AwaitingChoice) {
            uint256 expiresAt = uint256(d.lastMoveAt) + d.challengerClock;
            if (block.timestamp <= expiresAt) revert ClockNotExpired(disputeId, expiresAt);
            _settle(disputeId, d, Outcome.SolverWon);
        } else {
            revert WrongPhase(disputeId, phase);
        }
    }

    // ------------------------------------------------------------------- views

    /// @inheritdoc IDisputeGame
    function voteCommitment(bytes32 result, bytes32 salt, address arbiter) public pure returns (bytes32) {
        return sha256(abi.encodePacked(result, salt, arbiter));
    }

    function params() external view returns (Params memory) {
        return _params;
    }

    function getDispute(uint256 disputeId) external view returns (Dispute memory) {
        return disputes[disputeId];
    }

    /// @inheritdoc IDisputeGame
    function queuedDisputes(bytes32 jobId) external view returns (uint256[] memory ids) {
        uint256[] storage q = queues[jobId];
        uint256 head = queueHead[jobId];
        ids = new uint256[](q.length - head);
        uint256 n = 0;
        for (uint256 i = head; i < q.length; ++i) {
            // entries dropped as Superseded after a slash stay in the array, resolved
            if (disputes[q[i]].phase == Phase.Queued) ids[n++] = q[i];
        }
        assembly ("memory-safe") {
            mstore(ids, n)
        }
    }

    function committee(uint256 disputeId) external view returns (address[] memory) {
        return committees[disputeId];
    }

    function voteOf(uint256 disputeId, address arbiter) external view returns (Vote memory) {
        return votes[disputeId][arbiter];
    }

    // ---------------------------------------------------------------- internal

    function _settle(uint256 disputeId, Dispute storage d, Outcome outcome) private {
        d.phase = Phase.Resolved;
        d.outcome = outcome;
        address[] memory majority = _majorityArbiters(disputeId, d, outcome);
        address solver = d.solver;
        address challenger = d.challenger;
        bytes32 jobId = d.jobId;
        uint256 bond = d.bond;
        address winner = address(0);
        address loser = address(0);
        uint256 slashed = 0;
        if (outcome == Outcome.ChallengerWon) {
            (winner, loser, slashed) = (challenger, solver, market.getJob(jobId).stake);
        } else if (outcome == Outcome.SolverWon) {
            (winner, loser, slashed) = (solver, challenger, bond);
        }
        emit DisputeResolved(disputeId, jobId, outcome, winner, loser, slashed, majority);

        _settleArbiters(disputeId, d, outcome, majority);
        bytes32 bondKey = _key(BOND_TAG, disputeId);
        if (outcome == Outcome.SolverWon) {
            (address[] memory to, uint256[] memory amounts) =
                SlashSplit.split(bond, solver, majority, winnerBps, arbiterBps);
            stakeManager.slash(challenger, bondKey, bond, to, amounts);
        } else {
            stakeManager.unlock(challenger, bondKey);
        }
        if (outcome == Outcome.Published) _holdFee(disputeId, challenger, bond);
        activeDisputeOf[jobId] = 0;
        if (outcome == Outcome.NoCommittee) {
            market.voidDispute(jobId);
            return;
        }
        market.settleDispute(jobId, outcome == Outcome.ChallengerWon, challenger, majority);
        if (outcome != Outcome.ChallengerWon) _startNext(jobId);
    }

    /// @dev The challenger asked for the data: the fee for the solver's calldata stays locked until the job ends
    ///      (settleAvailabilityFee), paid to the solver unless the job ends Slashed; the rest of the bond is free now.
    function _holdFee(uint256 disputeId, address challenger, uint256 bond) private {
        uint256 fee = bond * _params.availabilityFeeBps / SlashSplit.BPS;
        if (fee != 0) stakeManager.lock(challenger, _key(FEE_TAG, disputeId), fee);
    }

    /// @dev Majority arbiters are unlocked. A revealed vote against the decided outcome loses `wrongVoteSlashBps` of
    ///      its lock, a non-revealer all of it; both are shared equally by the majority (credits, pulled later), the
    ///      rounding dust burned. Without a decision (tie) revealers are unlocked.
    function _settleArbiters(uint256 disputeId, Dispute storage d, Outcome outcome, address[] memory majority) private {
        address[] storage arbiters = committees[disputeId];
        uint256 stake = d.arbiterLock;
        uint256 penalty = stake * _params.wrongVoteSlashBps / SlashSplit.BPS;
        bytes32 key = _key(ARBITER_TAG, disputeId);
        for (uint256 i = 0; i < arbiters.length; ++i) {
            address a = arbiters[i];
            uint8 kind = _voteKind(votes[disputeId][a], d.postStateRoot, outcome);
            if (kind == 0) {
                stakeManager.slash(a, key, stake, majority, _equalShares(stake, majority.length));
            } else if (kind == 1 && penalty != 0) {
                stakeManager.slash(a, key, penalty, majority, _equalShares(penalty, majority.length));
            } else {
                stakeManager.unlock(a, key);
            }
        }
    }

    function _equalShares(uint256 amount, uint256 n) private pure returns (uint256[] memory shares) {
        shares = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            shares[i] = amount / n;
        }
    }

    /// @dev 0 = did not reveal, 1 = revealed against the decided outcome, 2 = with it (or no decision).
    function _voteKind(Vote storage v, bytes32 post, Outcome outcome) private view returns (uint8) {
        if (v.status != VoteStatus.Revealed) return 0;
        if (outcome != Outcome.SolverWon && outcome != Outcome.ChallengerWon) return 2;
        return (v.result == post) == (outcome == Outcome.SolverWon) ? 2 : 1;
    }

    /// @inheritdoc IDisputeGame
    function arbiterLockFor(uint256 jobStake) public view returns (uint256) {
        uint256 proportional = jobStake * _params.arbiterStakeBps / SlashSplit.BPS;
        return proportional > _params.arbiterStake ? proportional : _params.arbiterStake;
    }

    /// @inheritdoc IDisputeGame
    function disputeBondFor(uint256 jobStake, uint256 price) public view returns (uint256) {
        uint256 proportional = (jobStake + price) * _params.disputeBondBps / SlashSplit.BPS;
        return proportional > _params.disputeBond ? proportional : _params.disputeBond;
    }

    function _majority(Dispute storage d) private view returns (Outcome) {
        if (d.votesForSolver > d.votesForChallenger) return Outcome.SolverWon;
        if (d.votesForChallenger > d.votesForSolver) return Outcome.ChallengerWon;
        return Outcome.NoDecision;
    }

    function _majorityArbiters(uint256 disputeId, Dispute storage d, Outcome outcome)
        private
        view
        returns (address[] memory majority)
    {
        if (outcome == Outcome.NoDecision || d.reveals == 0) return majority;
        address[] storage arbiters = committees[disputeId];
        uint256 n = outcome == Outcome.SolverWon ? d.votesForSolver : d.votesForChallenger;
        majority = new address[](n);
        uint256 k = 0;
        for (uint256 i = 0; i < arbiters.length && k < n; ++i) {
            Vote storage v = votes[disputeId][arbiters[i]];
            if (v.status != VoteStatus.Revealed) continue;
            bool forSolver = v.result == d.postStateRoot;
            if (forSolver == (outcome == Outcome.SolverWon)) majority[k++] = arbiters[i];
        }
    }

    function _spendSolverClock(Dispute storage d, uint256 disputeId) private {
        uint256 elapsed = block.timestamp - d.lastMoveAt;
        if (elapsed > d.solverClock) revert ClockExpired(disputeId);
        // forge-lint: disable-next-line(unsafe-typecast)
        d.solverClock -= uint48(elapsed); // elapsed <= the uint48 clock, checked above
        d.lastMoveAt = uint64(block.timestamp);
    }

    function _spendChallengerClock(Dispute storage d, uint256 disputeId) private {
        uint256 elapsed = block.timestamp - d.lastMoveAt;
        if (elapsed > d.challengerClock) revert ClockExpired(disputeId);
        // forge-lint: disable-next-line(unsafe-typecast)
        d.challengerClock -= uint48(elapsed); // elapsed <= the uint48 clock, checked above
        d.lastMoveAt = uint64(block.timestamp);
    }

    function _isArbiter(uint256 disputeId, address who) private view returns (bool) {
        address[] storage arbiters = committees[disputeId];
        for (uint256 i = 0; i < arbiters.length; ++i) {
            if (arbiters[i] == who) return true;
        }
        return false;
    }

    function _dispute(uint256 disputeId) private view returns (Dispute storage d) {
        d = disputes[disputeId];
        if (d.phase == Phase.None) revert UnknownDispute(disputeId);
    }

    function _requirePhase(Dispute storage d, uint256 disputeId, Phase expected) private view {
        if (d.phase != expected) revert WrongPhase(disputeId, d.phase);
    }

    function _key(bytes32 tag, uint256 disputeId) private pure returns (bytes32) {
        return keccak256(abi.encode(tag, disputeId));
    }
}
