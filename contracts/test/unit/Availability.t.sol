// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {UnitBase} from "./UnitBase.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStatePublisher} from "../../src/interfaces/IStatePublisher.sol";
import {ChunkedStateRoot} from "../../src/libraries/ChunkedStateRoot.sol";

/// @notice Availability challenges: a staker names a leaf; the solver publishes its state bytes on the
///         StatePublisher before its clock runs out (the job reopens; a fee for its calldata is held until the job
///         ends: the solver's if it ends without a proven lie, else the challenger's again) or loses its stake.
///         Leaves here are real chunked state roots of byte strings, so publication is checked byte for byte.
contract AvailabilityTest is UnitBase {
    uint64 internal constant N = 6;
    uint64 internal constant LEAF = 3;

    bytes32 internal jobId;
    bytes32[] internal leaves;
    mapping(uint256 => bytes) internal stateOf;

    function setUp() public override {
        super.setUp();
        jobId = _match(N, 1);
        for (uint256 i = 0; i < N; ++i) {
            // 3 chunks and a bit: several publish calls, a short last chunk
            bytes memory s = new bytes(3 * ChunkedStateRoot.CHUNK + 100 + i);
            for (uint256 k = 0; k < s.length; k += 32) {
                s[k] = bytes1(uint8(i + k / 32));
            }
            stateOf[i] = s;
            leaves.push(_stateRoot(s));
        }
        _commit(jobId, leaves);
        _drawAudit(jobId);
    }

    /// @dev The state root of `s` (DESIGN §3) as the contracts compute it, via a throwaway publisher-free hasher.
    function _stateRoot(bytes memory s) internal returns (bytes32) {
        return new RootOf().rootOf(s);
    }

    function _request(uint64 leaf) internal returns (uint256 id) {
        vm.prank(challenger);
        id = game.requestAvailability(jobId, leaf);
    }

    /// @dev The solver publishes leaf `leaf` in pieces of two chunks, the last with its inclusion proof.
    function _publish(address who, uint64 leaf) internal {
        bytes memory s = stateOf[leaf];
        bytes32[] memory proof = _path(leaves, leaf, 0, N);
        uint256 piece = 2 * ChunkedStateRoot.CHUNK;
        for (uint256 off = 0; off < s.length; off += piece) {
            bool last = off + piece >= s.length;
            uint256 end = last ? s.length : off + piece;
            bytes memory part = new bytes(end - off);
            for (uint256 k = 0; k < part.length; ++k) {
                part[k] = s[off + k];
            }
            vm.prank(who);
            publisher.publish(jobId, leaf, part, last, last ? proof : new bytes32[](0));
        }
    }

    function test_request_pausesWindow_publish_reopensJob_feeHeldThenPaid() public {
        uint256 bond = game.disputeBondFor(market.getJob(jobId).stake, PRICE);
        uint256 challengerFree = _pos(challenger).free;
        uint256 lockedBefore = _pos(challenger).locked;
        uint256 id = _request(LEAF);
        IDisputeGame.Dispute memory d = game.getDispute(id);
        assertEq(uint8(d.phase), uint8(IDisputeGame.Phase.AwaitingData));
        assertTrue(d.availability);
        assertEq(d.lo, LEAF);
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Disputed), "the window is paused");
        assertEq(_pos(challenger).free, challengerFree - bond, "the bond is locked");

        vm.warp(block.timestamp + 60);
        _publish(solver, LEAF);
        assertEq(publisher.publishedAt(jobId, LEAF), block.timestamp);
        game.confirmPublished(id);
        d = game.getDispute(id);
        assertEq(uint8(d.outcome), uint8(IDisputeGame.Outcome.Published));
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Committed), "reopened");
        assertGe(job.auditEnd, block.timestamp + mp.disputeGrace, "time to replay what was published");
        uint256 fee = bond * gp.availabilityFeeBps / 10_000;
        assertEq(_pos(challenger).free, challengerFree - fee, "the fee is held, the rest came back");
        assertEq(_pos(challenger).locked, lockedBefore + fee);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.JobNotEnded.selector, jobId));
        game.settleAvailabilityFee(id); // whether the solver lied is not known yet

        vm.warp(job.auditEnd + 1);
        market.finalize(jobId);
        uint256 solverClaimable = _pos(solver).claimable; // paid for the job
        vm.expectEmit(address(game));
        emit IDisputeGame.AvailabilityFeeSettled(id, jobId, solver, fee);
        game.settleAvailabilityFee(id);
        assertEq(_pos(solver).claimable, solverClaimable + fee, "an honest solver is paid for its calldata");
        assertEq(_pos(challenger).locked, lockedBefore);
        assertEq(_pos(challenger).free, challengerFree - fee);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NoFeeHeld.selector, id));
        game.settleAvailabilityFee(id);
    }

    /// @notice Bait and switch: the solver publishes one leaf when asked, then loses the job (here on its clock in a
    ///         second challenge): the held fee goes back to the challenger, the cheater earns nothing from it.
    function test_jobEndsSlashed_feeBackToTheChallenger() public {
        uint256 challengerFree = _pos(challenger).free;
        uint256 lockedBefore = _pos(challenger).locked;
        uint256 first = _request(LEAF);
        _publish(solver, LEAF);
        game.confirmPublished(first);
        vm.prank(verifiers[0]);
        uint256 second = game.requestAvailability(jobId, LEAF + 1);
        vm.warp(block.timestamp + gp.clockBudget + 1);
        game.timeout(second);
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Slashed));
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NoFeeHeld.selector, second));
        game.settleAvailabilityFee(second); // a lost challenge holds no fee
        uint256 solverClaimable = _pos(solver).claimable;
        vm.prank(verifiers[1]); // anyone may settle it
        game.settleAvailabilityFee(first);
        assertEq(_pos(challenger).free, challengerFree, "the whole bond came back");
        assertEq(_pos(challenger).locked, lockedBefore);
        assertEq(_pos(solver).claimable, solverClaimable, "nothing to the cheater");
    }

    function test_notPublishedInTime_solverSlashed() public {
        uint256 id = _request(LEAF);
        vm.warp(block.timestamp + gp.clockBudget);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ClockNotExpired.selector, id, block.timestamp));
        game.timeout(id);
        vm.warp(block.timestamp + 1);
        game.timeout(id);
        assertEq(uint8(game.getDispute(id).outcome), uint8(IDisputeGame.Outcome.ChallengerWon));
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Slashed));
    }

    /// @notice Published before anyone called timeout (even past the clock): the solver answered, it is not slashed.
    function test_timeoutFindsItPublished_endsPublished() public {
        uint256 id = _request(LEAF);
        vm.warp(block.timestamp + gp.clockBudget);
        _publish(solver, LEAF);
        vm.warp(block.timestamp + 10);
        game.timeout(id);
        assertEq(uint8(game.getDispute(id).outcome), uint8(IDisputeGame.Outcome.Published));
    }

    function test_confirmBeforePublication_reverts() public {
        uint256 id = _request(LEAF);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotPublished.selector, jobId, LEAF));
        game.confirmPublished(id);
    }

    function test_request_refusesMissingOrPublishedLeaf_andTheSolver() public {
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NoSuchLeaf.selector, N, N));
        game.requestAvailability(jobId, N);
        vm.prank(solver);
        vm.expectRevert(IDisputeGame.SolverCannotChallenge.selector);
        game.requestAvailability(jobId, LEAF);
        _publish(verifiers[0], LEAF); // anyone holding the bytes may publish them
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.LeafAlreadyPublished.selector, jobId, LEAF));
        game.requestAvailability(jobId, LEAF);
    }

    /// @notice Bytes that are not the committed leaf are refused at the last piece; each publisher feeds its own
    ///         copy (a griefer's garbage spoils nothing), and a publisher that fed wrong bytes can restart.
    function test_publish_onlyTheCommittedBytes_perPublisher_restartable() public {
        bytes32[] memory proof = _path(leaves, LEAF, 0, N);
        bytes memory wrong = stateOf[LEAF + 1];
        bytes32 wrongRoot = leaves[LEAF + 1];
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IStatePublisher.NotTheCommittedLeaf.selector, jobId, LEAF, wrongRoot));
        publisher.publish(jobId, LEAF, wrong, true, proof);
        // a griefer feeds garbage first
        vm.prank(challenger);
        publisher.publish(jobId, LEAF, new bytes(ChunkedStateRoot.CHUNK), false, new bytes32[](0));
        vm.prank(solver);
        publisher.publish(jobId, LEAF, new bytes(ChunkedStateRoot.CHUNK), false, new bytes32[](0));
        assertEq(publisher.bytesFed(jobId, LEAF, solver), ChunkedStateRoot.CHUNK);
        vm.prank(solver);
        publisher.restart(jobId, LEAF);
        assertEq(publisher.bytesFed(jobId, LEAF, solver), 0);
        _publish(solver, LEAF);
        assertGt(publisher.publishedAt(jobId, LEAF), 0);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IStatePublisher.AlreadyPublished.selector, jobId, LEAF));
        publisher.publish(jobId, LEAF, stateOf[LEAF], true, proof);
        vm.expectRevert(abi.encodeWithSelector(IStatePublisher.NoSuchLeaf.selector, jobId, N));
        publisher.publish(jobId, N, stateOf[0], true, proof);
    }

    /// @notice An availability challenge filed while a dispute runs queues like any other and starts after it.
    function test_queuedBehindADispute_startsWhenItEnds() public {
        vm.prank(verifiers[0]);
        uint256 first = game.openDispute(jobId);
        uint256 id = _request(LEAF);
        assertEq(uint8(game.getDispute(id).phase), uint8(IDisputeGame.Phase.Queued));
        // the first challenger never chooses: it loses on its clock, and the queued challenge starts
        vm.warp(block.timestamp + 1);
        (bytes32 left, bytes32 right) = (_root(leaves, 0, 4), _root(leaves, 4, N));
        vm.prank(solver);
        game.reveal(first, left, right);
        vm.warp(block.timestamp + gp.clockBudget + 1);
        game.timeout(first);
        assertEq(uint8(game.getDispute(id).phase), uint8(IDisputeGame.Phase.AwaitingData));
        _publish(solver, LEAF);
        game.confirmPublished(id);
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Committed));
    }
}

/// @dev Computes a state root in a fresh contract (the library needs storage for its hasher).
contract RootOf {
    using ChunkedStateRoot for ChunkedStateRoot.Hasher;

    ChunkedStateRoot.Hasher internal h;

    function rootOf(bytes calldata data) external returns (bytes32) {
        h.feed(data, true);
        return h.root();
    }
}
