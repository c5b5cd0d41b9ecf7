// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Vm} from "forge-std/Vm.sol";
import {Fixture} from "../utils/Fixture.sol";
import {VeriToken} from "../../src/VeriToken.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {StatePublisher} from "../../src/StatePublisher.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";

/// @notice Bounded random actions on the whole protocol for the invariant tests: staking, matching, committing honest
///         or lying toy trajectories, audits, settlement, and every move of the dispute game, plus time. Each action
///         picks an object in the right state (so most calls do something) and records the events it caused in ghost
///         variables. It inherits the Fixture only for its helpers (signing, toy trees); the test deploys the protocol
///         and hands it over, token ownership included, so the handler can mint.
contract ProtocolHandler is Fixture {
    uint256 internal constant SOLVER2_KEY = 0xB0B2;
    uint256 internal constant MAX_JOBS = 24;
    uint256 internal constant NO_FAULT = type(uint256).max;
    uint256 internal constant BPS = 10_000;
    /// @dev DisputeGame's private lock-key tags (keccak256(abi.encode(tag, disputeId))).
    bytes32 internal constant BOND_TAG = keccak256("veritrain.dispute.bond");
    bytes32 internal constant ARBITER_TAG = keccak256("veritrain.dispute.arbiter");
    bytes32 internal constant FEE_TAG = keccak256("veritrain.dispute.availability-fee");

    /// @dev Everyone who can hold tokens, stake or credits.
    address[] public actors;
    address[] internal solverList;
    address[] internal poolCandidates; // may register as verifiers (challenger + verifiers)
    address[] internal challengerList; // may open disputes (anyone staked but the job's solver)
    mapping(address => uint256) internal keyOf;
    uint256 internal bidNonce;

    bytes32[] public jobIds;
    mapping(bytes32 jobId => bytes32[]) internal leavesOf;
    /// @dev First segment whose replay disagrees with the committed leaf (NO_FAULT for an honest trajectory).
    mapping(bytes32 jobId => uint256) public firstFaultOf;
    mapping(uint256 disputeId => mapping(address arbiter => bytes32)) internal voteResult;
    mapping(uint256 disputeId => mapping(address arbiter => bytes32)) internal voteSalt;

    // ------------------------------------------------------------------ ghosts
    uint256 public ghost_deposited;
    uint256 public ghost_withdrawn;
    uint256 public ghost_escrowed;
    uint256 public ghost_burned;
    /// @dev Escrow of a job released to each address (from EscrowReleased).
    mapping(bytes32 jobId => mapping(address to => uint256)) public ghost_escrowPaid;
    mapping(bytes32 jobId => uint256) public ghost_escrowReleased;
    /// @dev JobFinalized + JobSlashed + JobExpired events per job.
    mapping(bytes32 jobId => uint256) public ghost_settlements;
    mapping(bytes32 jobId => uint256) public ghost_feesPaid;
    /// @dev AvailabilityFeeSettled: where each dispute's held fee went (address(0) while held or never held).
    mapping(uint256 disputeId => address) public ghost_feeTo;
    mapping(uint256 disputeId => uint256) public ghost_feeSettlements;
    /// @dev Tokens the handler minted to each address (the only way tokens enter an actor's hands from outside).
    mapping(address who => uint256) public ghost_mintedTo;
    mapping(string action => uint256) public calls;
    string[] internal actionNames;

    constructor(
        VeriToken token_,
        StakeManager stakes_,
        JobMarket market_,
        DisputeGame game_,
        address submitter_,
        address solver_,
        address solver2_,
        address challenger_,
        address[] memory verifiers_
    ) {
        token = token_;
        stakes = stakes_;
        market = market_;
        game = game_;
        publisher = StatePublisher(address(game_.publisher()));
        mp = market_.params();
        gp = game_.params();
        submitter = submitter_;
        solver = solver_;
        challenger = challenger_;
        verifiers = verifiers_;
        // Everything the vault holds before the handler runs came from the fixture's deposits.
        ghost_deposited = token_.balanceOf(address(stakes_));
        keyOf[solver_] = SOLVER_KEY;
        keyOf[solver2_] = SOLVER2_KEY;
        solverList.push(solver_);
        solverList.push(solver2_);
        actors.push(submitter_);
        actors.push(solver_);
        actors.push(solver2_);
        actors.push(challenger_);
        poolCandidates.push(challenger_);
        challengerList.push(challenger_);
        challengerList.push(submitter_);
        for (uint256 i = 0; i < verifiers_.length; ++i) {
            actors.push(verifiers_[i]);
            poolCandidates.push(verifiers_[i]);
            challengerList.push(verifiers_[i]);
        }
        string[24] memory names = [
            "deposit",
            "requestWithdrawal",
            "withdraw",
            "setVerifier",
            "matchJob",
            "commit",
            "drawAudit",
            "attest",
            "finalize",
            "expire",
            "openDispute",
            "reveal",
            "choose",
            "openLeaf",
            "drawCommittee",
            "commitVote",
            "revealVote",
            "resolve",
            "timeout",
            "warp",
            "dropSuperseded",
            "requestAvailability",
            "publish",
            "settleAvailabilityFee"
        ];
        for (uint256 i = 0; i < names.length; ++i) {
            actionNames.push(names[i]);
        }
    }

    // ================================================================= stakers

    function deposit(uint256 actorSeed, uint256 amount) external {
        address a = actors[actorSeed % actors.length];
        amount = bound(amount, 1, 300 ether);
        vm.recordLogs();
        _depositFor(a, amount);
        _done("deposit");
    }

    function requestWithdrawal(uint256 actorSeed, uint256 amount) external {
        address a = actors[actorSeed % actors.length];
        uint256 free = stakes.positionOf(a).free;
        if (free == 0) return;
        amount = bound(amount, 1, free);
        vm.recordLogs();
        vm.prank(a);
        stakes.requestWithdrawal(amount);
        _done("requestWithdrawal");
    }

    function withdraw(uint256 actorSeed) external {
        address a = actors[actorSeed % actors.length];
        IStakeManager.Position memory p = stakes.positionOf(a);
        if (p.claimable == 0 && (p.unbonding == 0 || block.timestamp < p.releaseAt)) return;
        vm.recordLogs();
        vm.prank(a);
        stakes.withdraw();
        _done("withdraw");
    }

    /// @dev Three times in four (re)join the pool, else leave it.
    function setVerifier(uint256 actorSeed) external {
        address a = poolCandidates[actorSeed % poolCandidates.length];
        bool active = (actorSeed >> 128) % 4 != 0;
        vm.recordLogs();
        vm.prank(a);
        stakes.setVerifier(active);
        _done("setVerifier");
    }

    // ==================================================================== jobs

    function matchJob(uint256 sizeSeed, uint256 price, uint256 solverSeed) external {
        if (jobIds.length >= MAX_JOBS) return;
        uint64[7] memory sizes = [uint64(1), 2, 3, 5, 8, 16, 17];
        uint64 n = sizes[sizeSeed % sizes.length];
        price = bound(price, 0, PRICE);
        address s = solverList[solverSeed % solverList.length];
        uint256 stake = market.requiredStake(price);

        vm.recordLogs();
        uint256 free = stakes.positionOf(s).free;
        if (free < stake) _depositFor(s, stake - free);
        if (token.balanceOf(submitter) < price) {
            ghost_mintedTo[submitter] += price;
            token.mint(submitter, price);
        }

        IJobMarket.JobOrder memory o = _order(n * INTERVAL, INTERVAL);
        bytes32 h = market.hashOrder(o);
        IJobMarket.Bid memory b = IJobMarket.Bid({
            solver: s,
            orderHash: h,
            price: price,
            stake: stake,
            expiry: uint64(block.timestamp + 1 hours),
            nonce: ++bidNonce,
            workTime: 1 hours
        });
        bytes memory orderSig = _sign(SUBMITTER_KEY, h);
        bytes memory bidSig = _sign(keyOf[s], market.hashBid(b));
        vm.prank(submitter);
        bytes32 jobId = market.acceptBid(o, orderSig, b, bidSig);
        jobIds.push(jobId);
        _done("matchJob");
    }

    /// @dev mode 0: honest; 1: lies from leaf `lie` onward; 2: lies at leaf `lie` only.
    function commit(uint256 jobSeed, uint256 lie, uint8 mode) external {
        (bool found, bytes32 jobId) = _pickCommittable(jobSeed);
        if (!found) return;
        _commitJob(jobId, lie, mode);
    }

    function drawAudit(uint256 jobSeed, bytes32 blockHash) external {
        (bool found, bytes32 jobId) =
            _pickJob(jobSeed, _bit(uint8(IJobMarket.JobState.Committed)) | _bit(uint8(IJobMarket.JobState.Disputed)));
        if (!found) return;
        IJobMarket.Job memory job = market.getJob(jobId);
        if (job.seed != bytes32(0)) return;
        if (block.number <= job.seedBlock) vm.roll(job.seedBlock + 1);
        // Within 256 blocks the seed block has a hash; older ones read as zero and re-arm the seed.
        if (block.number - job.seedBlock <= 256) vm.setBlockhash(job.seedBlock, _nonZero(blockHash));
        vm.recordLogs();
        market.drawAudit(jobId, _auditHeader(jobId));
        _done("drawAudit");
    }

    function attest(uint256 jobSeed, uint256 verifierSeed) external {
        (bool found, bytes32 jobId) =
            _pickJob(jobSeed, _bit(uint8(IJobMarket.JobState.Committed)) | _bit(uint8(IJobMarket.JobState.Disputed)));
        if (!found) return;
        if (block.timestamp >= market.getJob(jobId).auditEnd) return;
        address[] memory assigned = market.assignedVerifiers(jobId);
        if (assigned.length == 0) return;
        address v = assigned[verifierSeed % assigned.length];
        if (market.hasAttested(jobId, v)) return;
        vm.recordLogs();
        vm.prank(v);
        market.attest(jobId);
        _done("attest");
    }

    function finalize(uint256 jobSeed, bool warpToEnd) external {
        (bool found, bytes32 jobId) = _pickJob(jobSeed, _bit(uint8(IJobMarket.JobState.Committed)));
        if (!found) return;
        uint64 auditEnd = market.getJob(jobId).auditEnd;
        if (warpToEnd && block.timestamp < auditEnd) _warpTo(auditEnd);
        if (block.timestamp < auditEnd) return;
        vm.recordLogs();
        market.finalize(jobId);
        _done("finalize");
    }

    function expire(uint256 jobSeed, bool warpToDeadline) external {
        (bool found, bytes32 jobId) = _pickJob(jobSeed, _bit(uint8(IJobMarket.JobState.Matched)));
        if (!found) return;
        uint64 deadline = market.getJob(jobId).deadline;
        if (warpToDeadline && block.timestamp < deadline) _warpTo(deadline);
        // a live solver may have committed on the way (HonestSolverHandler)
        if (block.timestamp < deadline || market.getJob(jobId).state != IJobMarket.JobState.Matched) return;
        vm.recordLogs();
        market.expire(jobId);
        _done("expire");
    }

    // ================================================================ disputes

    /// @dev Opens a dispute on a committed job in its audit window, or queues one behind a running dispute; with
    ///      neither, commits a matched job first (honest or lying, from `lieSeed`). The challenger is the first staker
    ///      from a random offset that can post the bond.
    function openDispute(uint256 jobSeed, uint256 challengerSeed, uint256 lieSeed) external {
        (bool found, bytes32 jobId) =
            _pickJob(jobSeed, _bit(uint8(IJobMarket.JobState.Committed)) | _bit(uint8(IJobMarket.JobState.Disputed)));
        if (
            found && market.getJob(jobId).state == IJobMarket.JobState.Committed
                && block.timestamp >= market.getJob(jobId).auditEnd
        ) found = false;
        if (!found) {
            (found, jobId) = _pickCommittable(jobSeed);
            if (!found) return;
            _commitJob(jobId, lieSeed, uint8((lieSeed >> 128) % 3));
        }
        address c = _pickChallenger(jobId, challengerSeed);
        if (c == address(0)) return;
        vm.recordLogs();
        vm.prank(c);
        game.openDispute(jobId);
        _done("openDispute");
    }

    /// @dev An availability challenge of a random unpublished leaf of a committed job in its audit window (queued
    ///      behind a running dispute on a Disputed one).
    function requestAvailability(uint256 jobSeed, uint256 leafSeed, uint256 challengerSeed) external {
        (bool found, bytes32 jobId) =
            _pickJob(jobSeed, _bit(uint8(IJobMarket.JobState.Committed)) | _bit(uint8(IJobMarket.JobState.Disputed)));
        if (!found) return;
        IJobMarket.Job memory job = market.getJob(jobId);
        if (job.state == IJobMarket.JobState.Committed && block.timestamp >= job.auditEnd) return;
        uint64 leaf = uint64(leafSeed % job.numLeaves);
        if (publisher.publishedAt(jobId, leaf) != 0) return;
        address c = _pickChallenger(jobId, challengerSeed);
        if (c == address(0)) return;
        vm.recordLogs();
        vm.prank(c);
        game.requestAvailability(jobId, leaf);
        _done("requestAvailability");
    }

    /// @dev The solver answers an availability challenge: publishes the toy state bytes of the named leaf and confirms.
    ///      Only a leaf that is the toy transition of the one before has such bytes: a lie cannot be published (the
    ///      solver then loses on its clock). Returns whether it published.
    function publish(uint256 disputeSeed) external returns (bool) {
        (bool found, uint256 id) = _pickDispute(disputeSeed, _bit(uint8(IDisputeGame.Phase.AwaitingData)));
        if (!found) return false;
        IDisputeGame.Dispute memory d = game.getDispute(id);
        if (block.timestamp > _moverExpiry(d)) return false; // too late to answer
        bytes32[] memory leaves = leavesOf[d.jobId];
        bytes32 pre = d.lo == 0 ? market.getJob(d.jobId).initStateRoot : leaves[d.lo - 1];
        if (toyStep(pre) != leaves[d.lo]) return false;
        vm.recordLogs();
        if (publisher.publishedAt(d.jobId, d.lo) == 0) {
            vm.prank(d.solver);
            publisher.publish(d.jobId, d.lo, toyState(pre), true, _path(leaves, d.lo, 0, leaves.length));
        } // else answered already, for an earlier challenge of the same leaf
        game.confirmPublished(id);
        _done("publish");
        return true;
    }

    /// @dev Settles the fee a Published availability challenge holds, once its job has ended (anyone may).
    function settleAvailabilityFee(uint256 disputeSeed) external {
        uint256 n = game.disputeCount();
        for (uint256 k = 0; k < n; ++k) {
            uint256 id = (disputeSeed % (n == 0 ? 1 : n) + k) % n + 1;
            IDisputeGame.Dispute memory d = game.getDispute(id);
            if (stakes.lockedUnder(d.challenger, feeKey(id)) == 0) continue;
            IJobMarket.JobState s = market.getJob(d.jobId).state;
            if (s == IJobMarket.JobState.Committed || s == IJobMarket.JobState.Disputed) continue;
            vm.recordLogs();
            game.settleAvailabilityFee(id);
            _done("settleAvailabilityFee");
            return;
        }
    }

    /// @dev The solver reveals the children of the current node from the leaves it committed.
    function reveal(uint256 disputeSeed) external {
        (bool found, uint256 id) = _pickDispute(disputeSeed, _bit(uint8(IDisputeGame.Phase.AwaitingReveal)));
        if (!found) return;
        IDisputeGame.Dispute memory d = game.getDispute(id);
        if (block.timestamp - d.lastMoveAt > d.solverClock) return;
        bytes32[] memory leaves = leavesOf[d.jobId];
        uint256 mid = d.lo + RFC9162.splitPoint(d.hi - d.lo);
        bytes32 left = _root(leaves, d.lo, mid);
        bytes32 right = _root(leaves, mid, d.hi);
        vm.recordLogs();
        vm.prank(d.solver);
        game.reveal(id, left, right);
        _done("reveal");
    }

    /// @dev Two times in three the challenger steers toward the first wrong leaf (if there is one), else at random.
    function choose(uint256 disputeSeed, uint256 steerSeed) external {
        (bool found, uint256 id) = _pickDispute(disputeSeed, _bit(uint8(IDisputeGame.Phase.AwaitingChoice)));
        if (!found) return;
        IDisputeGame.Dispute memory d = game.getDispute(id);
        if (block.timestamp - d.lastMoveAt > d.challengerClock) return;
        uint256 fault = firstFaultOf[d.jobId];
        uint256 mid = d.lo + RFC9162.splitPoint(d.hi - d.lo);
        bool right = (steerSeed % 3 != 0 && fault != NO_FAULT) ? fault >= mid : (steerSeed >> 128) & 1 == 1;
        vm.recordLogs();
        vm.prank(d.challenger);
        game.choose(id, right);
        _done("choose");
    }

    function openLeaf(uint256 disputeSeed) external {
        (bool found, uint256 id) = _pickDispute(disputeSeed, _bit(uint8(IDisputeGame.Phase.AwaitingLeaf)));
        if (!found) return;
        IDisputeGame.Dispute memory d = game.getDispute(id);
        if (block.timestamp - d.lastMoveAt > d.solverClock) return;
        bytes32[] memory leaves = leavesOf[d.jobId];
        uint256 i = d.lo;
        bytes32 pre = i == 0 ? market.getJob(d.jobId).initStateRoot : leaves[i - 1];
        bytes32[] memory proof = i == 0 ? new bytes32[](0) : _path(leaves, i - 1, 0, leaves.length);
        bytes32 post = leaves[i];
        vm.recordLogs();
        vm.prank(d.solver);
        game.openLeaf(id, post, pre, proof);
        _done("openLeaf");
    }

    function drawCommittee(uint256 disputeSeed, bytes32 blockHash) external {
        (bool found, uint256 id) = _pickDispute(disputeSeed, _bit(uint8(IDisputeGame.Phase.AwaitingCommittee)));
        if (!found) return;
        uint64 seedBlock = game.getDispute(id).seedBlock;
        if (block.number <= seedBlock) vm.roll(seedBlock + 1);
        if (block.number - seedBlock <= 256) vm.setBlockhash(seedBlock, _nonZero(blockHash));
        vm.recordLogs();
        game.drawCommittee(id, _committeeHeader(id));
        _done("drawCommittee");
    }

    /// @dev A drawn arbiter commits a vote of `kind` (see _voteResult).
    function commitVote(uint256 disputeSeed, uint256 arbiterSeed, uint8 kind) external {
        (bool found, uint256 id) = _pickDispute(disputeSeed, _bit(uint8(IDisputeGame.Phase.Voting)));
        if (!found) return;
        IDisputeGame.Dispute memory d = game.getDispute(id);
        if (block.timestamp >= d.commitDeadline) return;
        address[] memory committee = game.committee(id);
        address a = committee[arbiterSeed % committee.length];
        if (game.voteOf(id, a).status != IDisputeGame.VoteStatus.None) return;
        kind %= 4;
        bytes32 result = _voteResult(d, kind, arbiterSeed);
        bytes32 salt = keccak256(abi.encode(arbiterSeed, id));
        voteResult[id][a] = result;
        voteSalt[id][a] = salt;
        bytes32 commitment = game.voteCommitment(result, salt, a);
        vm.recordLogs();
        vm.prank(a);
        game.commitVote(id, commitment);
        _done("commitVote");
    }

    function revealVote(uint256 disputeSeed, uint256 arbiterSeed) external {
        (bool found, uint256 id) = _pickDispute(disputeSeed, _bit(uint8(IDisputeGame.Phase.Voting)));
        if (!found) return;
        IDisputeGame.Dispute memory d = game.getDispute(id);
        if (block.timestamp < d.commitDeadline || block.timestamp >= d.revealDeadline) return;
        address[] memory committee = game.committee(id);
        address a = committee[arbiterSeed % committee.length];
        if (game.voteOf(id, a).status != IDisputeGame.VoteStatus.Committed) return;
        bytes32 result = voteResult[id][a];
        bytes32 salt = voteSalt[id][a];
        vm.recordLogs();
        vm.prank(a);
        game.revealVote(id, result, salt);
        _done("revealVote");
    }

    function resolve(uint256 disputeSeed, bool warpToEnd) external {
        (bool found, uint256 id) = _pickDispute(disputeSeed, _bit(uint8(IDisputeGame.Phase.Voting)));
        if (!found) return;
        uint48 revealDeadline = game.getDispute(id).revealDeadline;
        if (warpToEnd && block.timestamp < revealDeadline) _warpTo(revealDeadline);
        if (block.timestamp < revealDeadline) return;
        vm.recordLogs();
        game.resolve(id);
        _done("resolve");
    }

    function timeout(uint256 disputeSeed, bool warpPastClock) external {
        (bool found, uint256 id) = _pickDispute(
            disputeSeed,
            _bit(uint8(IDisputeGame.Phase.AwaitingReveal)) | _bit(uint8(IDisputeGame.Phase.AwaitingChoice))
                | _bit(uint8(IDisputeGame.Phase.AwaitingLeaf)) | _bit(uint8(IDisputeGame.Phase.AwaitingData))
        );
        if (!found) return;
        uint256 expiresAt = _moverExpiry(game.getDispute(id));
        if (warpPastClock && block.timestamp <= expiresAt) _warpTo(expiresAt + 1);
        // a live solver may have moved on the way (HonestSolverHandler): the clock that runs now decides
        IDisputeGame.Dispute memory d = game.getDispute(id);
        if (
            d.phase != IDisputeGame.Phase.AwaitingReveal && d.phase != IDisputeGame.Phase.AwaitingChoice
                && d.phase != IDisputeGame.Phase.AwaitingLeaf && d.phase != IDisputeGame.Phase.AwaitingData
        ) return;
        if (block.timestamp <= _moverExpiry(d)) return;
        vm.recordLogs();
        game.timeout(id);
        _done("timeout");
    }

    /// @dev Plays up to six moves of one open dispute in a row, each by whoever is to move (honest steering, honest
    ///      votes, the whole committee), so that a run of bounded depth also reaches the committee and its resolution.
    function advanceDispute(uint256 disputeSeed, uint256 moveSeed) external {
        uint256 open = _bit(uint8(IDisputeGame.Phase.AwaitingReveal)) | _bit(uint8(IDisputeGame.Phase.AwaitingChoice))
            | _bit(uint8(IDisputeGame.Phase.AwaitingLeaf)) | _bit(uint8(IDisputeGame.Phase.AwaitingCommittee))
            | _bit(uint8(IDisputeGame.Phase.Voting)) | _bit(uint8(IDisputeGame.Phase.Queued))
            | _bit(uint8(IDisputeGame.Phase.AwaitingData));
        (bool found, uint256 id) = _pickDispute(disputeSeed, open);
        if (!found) return;
        for (uint256 k = 0; k < 6; ++k) {
            IDisputeGame.Dispute memory d = game.getDispute(id);
            if (d.phase == IDisputeGame.Phase.AwaitingReveal) {
                this.reveal(id - 1);
            } else if (d.phase == IDisputeGame.Phase.AwaitingChoice) {
                this.choose(id - 1, moveSeed >> k);
            } else if (d.phase == IDisputeGame.Phase.AwaitingLeaf) {
                this.openLeaf(id - 1);
            } else if (d.phase == IDisputeGame.Phase.AwaitingData) {
                if (!this.publish(id - 1)) return;
            } else if (d.phase == IDisputeGame.Phase.AwaitingCommittee) {
                this.drawCommittee(id - 1, keccak256(abi.encode(moveSeed, k)));
            } else if (d.phase == IDisputeGame.Phase.Queued) {
                IJobMarket.JobState s = market.getJob(d.jobId).state;
                if (s != IJobMarket.JobState.Slashed && s != IJobMarket.JobState.Voided) return;
                vm.recordLogs();
                game.dropSuperseded(id);
                _done("dropSuperseded");
            } else if (d.phase == IDisputeGame.Phase.Voting) {
                address[] memory committee = game.committee(id);
                for (uint256 i = 0; i < committee.length; ++i) {
                    this.commitVote(id - 1, i, uint8((moveSeed >> (8 * i)) % 3));
                }
                for (uint256 i = 0; i < committee.length; ++i) {
                    this.revealVote(id - 1, i);
                }
            } else {
                return;
            }
        }
    }

    function warp(uint256 secs, uint256 blocks) external {
        _warpTo(block.timestamp + bound(secs, 1, 6 hours));
        vm.roll(block.number + bound(blocks, 1, 300));
        ++calls["warp"];
    }

    // ================================================================== views

    function jobCount() external view returns (uint256) {
        return jobIds.length;
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    function actionCount() external view returns (uint256) {
        return actionNames.length;
    }

    function actionName(uint256 i) external view returns (string memory) {
        return actionNames[i];
    }

    function feeKey(uint256 disputeId) public pure returns (bytes32) {
        return keccak256(abi.encode(FEE_TAG, disputeId));
    }

    function bondKey(uint256 disputeId) public pure returns (bytes32) {
        return keccak256(abi.encode(BOND_TAG, disputeId));
    }

    function arbiterKey(uint256 disputeId) public pure returns (bytes32) {
        return keccak256(abi.encode(ARBITER_TAG, disputeId));
    }

    // =============================================================== internal

    /// @dev Every warp of an action goes through here, so a handler with live parties can let them move first.
    function _warpTo(uint256 t) internal virtual {
        vm.warp(t);
    }

    /// @dev kind 0–1: honest replay of the opened segment; 2: UNAVAILABLE; 3: an arbitrary root.
    function _voteResult(IDisputeGame.Dispute memory d, uint8 kind, uint256 arbiterSeed)
        internal
        view
        virtual
        returns (bytes32)
    {
        return kind < 2 ? toyStep(d.preStateRoot) : kind == 2 ? game.UNAVAILABLE() : bytes32(arbiterSeed);
    }

    /// @dev When the clock of whoever is to move in a descent phase runs out (a timeout is possible after it).
    function _moverExpiry(IDisputeGame.Dispute memory d) internal pure returns (uint256) {
        uint256 clock = d.phase == IDisputeGame.Phase.AwaitingChoice ? d.challengerClock : d.solverClock;
        return uint256(d.lastMoveAt) + clock;
    }

    /// @dev The first staker from a random offset, other than the job's solver, that can post the bond of `jobId`.
    function _pickChallenger(bytes32 jobId, uint256 seed) internal view returns (address) {
        IJobMarket.Job memory job = market.getJob(jobId);
        uint256 bond = game.disputeBondFor(job.stake, job.price);
        for (uint256 k = 0; k < challengerList.length; ++k) {
            address candidate = challengerList[(seed % challengerList.length + k) % challengerList.length];
            if (candidate != job.solver && stakes.positionOf(candidate).free >= bond) return candidate;
        }
        return address(0);
    }

    function _depositFor(address a, uint256 amount) internal {
        ghost_mintedTo[a] += amount;
        token.mint(a, amount);
        vm.startPrank(a);
        token.approve(address(stakes), type(uint256).max);
        stakes.deposit(amount);
        vm.stopPrank();
    }

    function _commitJob(bytes32 jobId, uint256 lie, uint8 mode) internal virtual {
        IJobMarket.Job memory job = market.getJob(jobId);
        uint256 n = job.numLeaves;
        lie = bound(lie, 0, n - 1);
        mode %= 3;
        bytes32[] memory leaves = _toyLeaves(job.initStateRoot, n, mode == 1 ? lie : NO_FAULT);
        if (mode == 2) leaves[lie] = keccak256(abi.encode("lie", leaves[lie]));
        leavesOf[jobId] = leaves;
        firstFaultOf[jobId] = mode == 0 ? NO_FAULT : lie;

        bytes32[] memory proof = _path(leaves, n - 1, 0, n);
        bytes32 root = _root(leaves, 0, n);
        vm.recordLogs();
        vm.prank(job.solver);
        // forge-lint: disable-next-line(unsafe-typecast)
        market.commit(jobId, root, uint64(n), leaves[n - 1], proof, "http://solver.invalid/blobs");
        _done("commit");
    }

    /// @dev First Matched job from a random offset whose deadline has not passed.
    function _pickCommittable(uint256 seed) internal view returns (bool, bytes32) {
        uint256 n = jobIds.length;
        for (uint256 k = 0; k < n; ++k) {
            bytes32 jobId = jobIds[(seed % n + k) % n];
            IJobMarket.Job memory job = market.getJob(jobId);
            if (job.state == IJobMarket.JobState.Matched && block.timestamp < job.deadline) return (true, jobId);
        }
        return (false, bytes32(0));
    }

    /// @dev First job from a random offset whose state is in `stateMask`.
    function _pickJob(uint256 seed, uint256 stateMask) internal view returns (bool, bytes32) {
        uint256 n = jobIds.length;
        for (uint256 k = 0; k < n; ++k) {
            bytes32 jobId = jobIds[(seed % n + k) % n];
            if (_bit(uint8(market.getJob(jobId).state)) & stateMask != 0) return (true, jobId);
        }
        return (false, bytes32(0));
    }

    /// @dev First dispute from a random offset whose phase is in `phaseMask`.
    function _pickDispute(uint256 seed, uint256 phaseMask) internal view returns (bool, uint256) {
        uint256 n = game.disputeCount();
        for (uint256 k = 0; k < n; ++k) {
            uint256 id = (seed % n + k) % n + 1;
            if (_bit(uint8(game.getDispute(id).phase)) & phaseMask != 0) return (true, id);
        }
        return (false, 0);
    }

    function _bit(uint8 x) internal pure returns (uint256) {
        return uint256(1) << x;
    }

    function _nonZero(bytes32 h) internal pure returns (bytes32) {
        return h == bytes32(0) ? bytes32(uint256(1)) : h;
    }

    /// @dev Folds the events of the action just run into the ghost variables.
    function _done(string memory action) internal {
        ++calls[action];
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            bytes32 t0 = l.topics[0];
            if (l.emitter == address(stakes)) {
                if (t0 == IStakeManager.Deposited.selector) {
                    ghost_deposited += abi.decode(l.data, (uint256));
                } else if (t0 == IStakeManager.Withdrawn.selector) {
                    ghost_withdrawn += abi.decode(l.data, (uint256));
                } else if (t0 == IStakeManager.Escrowed.selector) {
                    ghost_escrowed += abi.decode(l.data, (uint256));
                } else if (t0 == IStakeManager.EscrowReleased.selector) {
                    uint256 amount = abi.decode(l.data, (uint256));
                    address to = address(uint160(uint256(l.topics[2])));
                    ghost_escrowPaid[l.topics[1]][to] += amount;
                    ghost_escrowReleased[l.topics[1]] += amount;
                } else if (t0 == IStakeManager.StakeSlashed.selector) {
                    (, uint256 burned) = abi.decode(l.data, (uint256, uint256));
                    ghost_burned += burned;
                }
            } else if (l.emitter == address(market)) {
                if (t0 == IJobMarket.JobFinalized.selector) {
                    (, uint256 fees,) = abi.decode(l.data, (uint256, uint256, uint256));
                    ghost_feesPaid[l.topics[1]] = fees;
                    ++ghost_settlements[l.topics[1]];
                } else if (
                    t0 == IJobMarket.JobSlashed.selector || t0 == IJobMarket.JobExpired.selector
                        || t0 == IJobMarket.JobVoided.selector
                ) {
                    ++ghost_settlements[l.topics[1]];
                }
            } else if (l.emitter == address(game) && t0 == IDisputeGame.AvailabilityFeeSettled.selector) {
                uint256 id = uint256(l.topics[1]);
                ghost_feeTo[id] = address(uint160(uint256(l.topics[3])));
                ++ghost_feeSettlements[id];
            }
        }
    }
}
