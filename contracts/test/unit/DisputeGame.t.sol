// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {UnitBase} from "./UnitBase.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {IStatePublisher} from "../../src/interfaces/IStatePublisher.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";

contract DisputeGameTest is UnitBase {
    address internal alice = makeAddr("alice");

    uint64 internal constant N = 16;
    uint256 internal constant LIE = 11; // the solver lies from leaf 11 on; the challenger targets it

    function _phase(uint256 id) internal view returns (IDisputeGame.Phase) {
        return game.getDispute(id).phase;
    }

    function _outcome(uint256 id) internal view returns (IDisputeGame.Outcome) {
        return game.getDispute(id).outcome;
    }

    function _commitAll(uint256 id, address[] memory arbiters, bytes32[] memory results) internal {
        for (uint256 i = 0; i < arbiters.length; ++i) {
            _commitVote(id, arbiters[i], results[i]);
        }
    }

    /// @dev The bond a challenge of `jobId` locks (DisputeGame.disputeBondFor of its stake and price).
    function _bond(bytes32 jobId) internal view returns (uint256) {
        IJobMarket.Job memory job = market.getJob(jobId);
        return game.disputeBondFor(job.stake, job.price);
    }

    function _same(bytes32 r, uint256 n) internal pure returns (bytes32[] memory results) {
        results = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            results[i] = r;
        }
    }

    // ------------------------------------------------------------ deployment

    function test_constructor_revertsWhenZeroAddress() public {
        vm.expectRevert(IDisputeGame.ZeroAddress.selector);
        new DisputeGame(IJobMarket(address(0)), stakes, publisher, gp);
        vm.expectRevert(IDisputeGame.ZeroAddress.selector);
        new DisputeGame(market, IStakeManager(address(0)), publisher, gp);
        vm.expectRevert(IDisputeGame.ZeroAddress.selector);
        new DisputeGame(market, stakes, IStatePublisher(address(0)), gp);
    }

    function test_constructor_revertsWhenParamsInvalid() public {
        IDisputeGame.Params[] memory bad = new IDisputeGame.Params[](12);
        for (uint256 i = 0; i < bad.length; ++i) {
            bad[i] = gp;
        }
        bad[0].disputeBond = 0;
        bad[1].arbiterStake = 0;
        bad[2].arbiterStake = stakes.minVerifierStake() + 1;
        bad[3].clockBudget = 0;
        bad[4].commitPeriod = 0;
        bad[5].revealPeriod = 0;
        bad[6].committeeSize = 0;
        bad[7].committeeSize = 4; // even: ties
        bad[8].clockBudget = uint64(type(uint48).max) + 1;
        bad[9].disputeBond = uint256(type(uint128).max) + 1;
        bad[10].disputeBondBps = 10_001;
        bad[11].availabilityFeeBps = 10_001;
        for (uint256 i = 0; i < bad.length; ++i) {
            vm.expectRevert(IDisputeGame.InvalidParams.selector);
            new DisputeGame(market, stakes, publisher, bad[i]);
        }
    }

    // ----------------------------------------------------------- openDispute

    function test_openDispute_locksBondAndStartsAtRoot() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 bond = _bond(jobId);
        assertEq(bond, (2 * PRICE + PRICE) * gp.disputeBondBps / 10_000, "bps of stake + price above the floor");
        vm.expectEmit(address(game));
        emit IDisputeGame.DisputeOpened(1, jobId, challenger, solver, bond);
        uint256 id = _openDispute(jobId);
        assertEq(id, 1);
        assertEq(game.disputeCount(), 1);
        assertEq(game.latestDisputeOf(jobId), 1);
        IDisputeGame.Dispute memory d = game.getDispute(id);
        assertEq(d.jobId, jobId);
        assertEq(d.node, _root(leaves, 0, N));
        assertEq(d.challenger, challenger);
        assertEq(d.solver, solver);
        assertEq(uint8(d.phase), uint8(IDisputeGame.Phase.AwaitingReveal));
        assertEq(d.lo, 0);
        assertEq(d.hi, N);
        assertEq(d.numLeaves, N);
        assertEq(d.solverClock, gp.clockBudget);
        assertEq(d.challengerClock, gp.clockBudget);
        assertEq(d.bond, bond);
        assertEq(stakes.lockedUnder(challenger, _bondKey(id)), bond);
        assertEq(_pos(challenger).free, 1_000 ether - bond);
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Disputed));
    }

    function test_openDispute_singleLeafJobGoesStraightToLeaf() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(1, 0);
        uint256 id = _openDispute(jobId);
        assertEq(uint8(_phase(id)), uint8(IDisputeGame.Phase.AwaitingLeaf));
        _openLeaf(id, leaves, 0);
        assertEq(uint8(_phase(id)), uint8(IDisputeGame.Phase.AwaitingCommittee));
    }

    function test_openDispute_revertsWhenSolverChallenges() public {
        (bytes32 jobId,) = _committedJob(N, LIE);
        vm.prank(solver);
        vm.expectRevert(IDisputeGame.SolverCannotChallenge.selector);
        game.openDispute(jobId);
    }

    function test_openDispute_revertsWhenUnknownJob() public {
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.UnknownJob.selector, keccak256("nope")));
        game.openDispute(keccak256("nope"));
    }

    function test_openDispute_revertsWhenJobNotCommitted() public {
        bytes32 jobId = _match(N, 1);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Matched));
        game.openDispute(jobId);
    }

    function test_openDispute_queuesWhenAlreadyDisputed() public {
        (bytes32 jobId,) = _committedJob(N, LIE);
        uint256 first = _openDispute(jobId);
        vm.prank(verifiers[0]);
        vm.expectEmit(address(game));
        emit IDisputeGame.DisputeQueued(first + 1, jobId, 1);
        uint256 second = game.openDispute(jobId);
        assertEq(uint8(game.getDispute(second).phase), uint8(IDisputeGame.Phase.Queued));
        assertEq(game.activeDisputeOf(jobId), first);
        assertEq(game.latestDisputeOf(jobId), second);
        assertEq(stakes.positionOf(verifiers[0]).locked, _bond(jobId), "bond locked while queued");
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, second, IDisputeGame.Phase.Queued));
        game.timeout(second);
    }

    function test_openDispute_revertsWhenAuditWindowClosed() public {
        (bytes32 jobId,) = _committedJob(N, LIE);
        uint64 auditEnd = market.getJob(jobId).auditEnd;
        vm.warp(auditEnd);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.AuditWindowClosed.selector, auditEnd));
        game.openDispute(jobId);
    }

    function test_openDispute_revertsWhenBondAboveFreeStake() public {
        (bytes32 jobId,) = _committedJob(N, LIE);
        _stake(alice, 10 ether, false);
        uint256 bond = _bond(jobId);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, alice, bond, 10 ether));
        game.openDispute(jobId);
    }

    function test_disputeBondFor_isBpsOfStakePlusPriceWithFloor() public view {
        uint256 bps = gp.disputeBondBps;
        assertEq(game.disputeBondFor(0, 0), gp.disputeBond, "floor");
        uint256 atFloor = gp.disputeBond * 10_000 / bps;
        assertEq(game.disputeBondFor(atFloor - 1 ether, 1 ether), gp.disputeBond, "floor up to the break-even");
        assertEq(game.disputeBondFor(2_000 ether, 1_000 ether), 3_000 ether * bps / 10_000);
        assertEq(game.disputeBondFor(2_000 ether, 0), 2_000 ether * bps / 10_000, "price counts too");
        assertGt(game.disputeBondFor(2_000 ether, 1_000 ether), game.disputeBondFor(2_000 ether, 0));
    }

    // ---------------------------------------------------------------- descent

    function test_reveal_revertsWhenUnknownDispute() public {
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.UnknownDispute.selector, 99));
        game.reveal(99, bytes32(0), bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.UnknownDispute.selector, 0));
        game.timeout(0);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.UnknownDispute.selector, 7));
        game.drawCommittee(7, "");
    }

    function test_reveal_revertsWhenWrongPhase() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        bytes32 l = _root(leaves, 0, 8);
        bytes32 r = _root(leaves, 8, 16);
        vm.prank(solver);
        game.reveal(id, l, r);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.AwaitingChoice));
        game.reveal(id, l, r);
    }

    function test_reveal_revertsWhenNotSolver() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        bytes32 l = _root(leaves, 0, 8);
        bytes32 r = _root(leaves, 8, 16);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotSolver.selector, challenger));
        game.reveal(id, l, r);
    }

    function test_reveal_revertsWhenChildrenMismatch() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        bytes32 root = _root(leaves, 0, N);
        bytes32 l = _root(leaves, 0, 8);
        bytes32 r = _root(leaves, 8, 16);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ChildrenMismatch.selector, root));
        game.reveal(id, r, l); // swapped
    }

    function test_reveal_revertsWhenClockExpired() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        bytes32 l = _root(leaves, 0, 8);
        bytes32 r = _root(leaves, 8, 16);
        vm.warp(block.timestamp + gp.clockBudget + 1);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ClockExpired.selector, id));
        game.reveal(id, l, r);
    }

    function test_choose_revertsWhenWrongPhase() public {
        (bytes32 jobId,) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.AwaitingReveal));
        game.choose(id, true);
    }

    function test_choose_revertsWhenNotChallenger() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        bytes32 l = _root(leaves, 0, 8);
        bytes32 r = _root(leaves, 8, 16);
        vm.prank(solver);
        game.reveal(id, l, r);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotChallenger.selector, solver));
        game.choose(id, true);
    }

    function test_choose_revertsWhenClockExpired() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        bytes32 l = _root(leaves, 0, 8);
        bytes32 r = _root(leaves, 8, 16);
        vm.prank(solver);
        game.reveal(id, l, r);
        vm.warp(block.timestamp + gp.clockBudget + 1);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ClockExpired.selector, id));
        game.choose(id, true);
    }

    function test_clocks_chargeOnlyTheMover() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        bytes32 l = _root(leaves, 0, 8);
        bytes32 r = _root(leaves, 8, 16);
        vm.warp(block.timestamp + 100);
        vm.prank(solver);
        game.reveal(id, l, r);
        vm.warp(block.timestamp + 30);
        vm.prank(challenger);
        game.choose(id, true);
        IDisputeGame.Dispute memory d = game.getDispute(id);
        assertEq(d.solverClock, gp.clockBudget - 100);
        assertEq(d.challengerClock, gp.clockBudget - 30);
        assertEq(d.lastMoveAt, block.timestamp);
        assertEq(d.lo, 8);
        assertEq(d.hi, 16);
        assertEq(d.node, r);
    }

    function test_descent_fiveLeavesEveryTargetTakesItsDepth() public {
        _stake(solver, 1_000 ether, false);
        for (uint256 target = 0; target < 5; ++target) {
            (bytes32 jobId, bytes32[] memory leaves) = _committedJob(5, target);
            uint256 id = _openDispute(jobId);
            uint256 rounds = _descend(id, leaves, target);
            assertEq(rounds, RFC9162.leafDepth(target, 5));
            assertEq(rounds, target == 4 ? 1 : 3, "leaf 4 sits right of the 4|1 split");
            IDisputeGame.Dispute memory d = game.getDispute(id);
            assertEq(uint8(d.phase), uint8(IDisputeGame.Phase.AwaitingLeaf));
            assertEq(d.lo, target);
            assertEq(d.hi, target + 1);
            assertEq(d.node, RFC9162.hashLeaf(leaves[target]));
            _openLeaf(id, leaves, target);
            assertEq(uint8(_phase(id)), uint8(IDisputeGame.Phase.AwaitingCommittee));
        }
    }

    function test_descent_sixteenLeavesTakesFourRounds() public {
        uint256[4] memory targets = [uint256(0), 5, 11, 15];
        for (uint256 t = 0; t < targets.length; ++t) {
            (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, targets[t]);
            uint256 id = _openDispute(jobId);
            assertEq(_descend(id, leaves, targets[t]), 4);
            IDisputeGame.Dispute memory d = game.getDispute(id);
            assertEq(d.lo, targets[t]);
            assertEq(d.node, RFC9162.hashLeaf(leaves[targets[t]]));
        }
    }

    // ---------------------------------------------------------------- openLeaf

    function test_openLeaf_leafZeroWithInitRoot() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, 0);
        uint256 id = _openDispute(jobId);
        _descend(id, leaves, 0);
        bytes32[] memory none = new bytes32[](0);
        bytes32 post = leaves[0];
        vm.expectEmit(address(game));
        emit IDisputeGame.LeafOpened(id, 0, post, INIT_ROOT);
        vm.prank(solver);
        game.openLeaf(id, post, INIT_ROOT, none);
        IDisputeGame.Dispute memory d = game.getDispute(id);
        assertEq(d.postStateRoot, post);
        assertEq(d.preStateRoot, INIT_ROOT);
        assertEq(d.seedBlock, block.number + 1);
        assertEq(uint8(d.phase), uint8(IDisputeGame.Phase.AwaitingCommittee));
    }

    function test_openLeaf_revertsWhenPreStateNotInit() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, 0);
        uint256 id = _openDispute(jobId);
        _descend(id, leaves, 0);
        bytes32[] memory none = new bytes32[](0);
        bytes32 post = leaves[0];
        bytes32 fake = keccak256("fake init");
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.PreStateNotInit.selector, fake, INIT_ROOT));
        game.openLeaf(id, post, fake, none);
    }

    function test_openLeaf_leafWithPreStateProof() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        _descend(id, leaves, LIE);
        (bytes32 pre, bytes32[] memory proof) = _preState(leaves, LIE);
        bytes32 post = leaves[LIE];
        vm.expectEmit(address(game));
        emit IDisputeGame.LeafOpened(id, uint64(LIE), post, pre);
        vm.prank(solver);
        game.openLeaf(id, post, pre, proof);
        assertEq(game.getDispute(id).preStateRoot, leaves[LIE - 1]);
    }

    function test_openLeaf_revertsWhenInvalidPreStateProof() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        _descend(id, leaves, LIE);
        bytes32 post = leaves[LIE];
        bytes32[] memory proofOf9 = _path(leaves, 9, 0, N);
        bytes32[] memory proofOf10 = _path(leaves, 10, 0, N);
        // leaf 9 with its own valid proof: a valid inclusion, but of the wrong index
        bytes32 pre9 = leaves[9];
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.InvalidPreStateProof.selector, uint64(LIE - 1)));
        game.openLeaf(id, post, pre9, proofOf9);
        // a made-up pre-state with the right index's proof
        bytes32 fake = keccak256("fake pre-state");
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.InvalidPreStateProof.selector, uint64(LIE - 1)));
        game.openLeaf(id, post, fake, proofOf10);
    }

    function test_openLeaf_revertsWhenLeafMismatch() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        _descend(id, leaves, LIE);
        (bytes32 pre, bytes32[] memory proof) = _preState(leaves, LIE);
        bytes32 node = RFC9162.hashLeaf(leaves[LIE]);
        bytes32 honest = _honestResult(leaves, LIE); // not what was committed
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.LeafMismatch.selector, node));
        game.openLeaf(id, honest, pre, proof);
    }

    function test_openLeaf_revertsWhenNotSolver() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        _descend(id, leaves, LIE);
        (bytes32 pre, bytes32[] memory proof) = _preState(leaves, LIE);
        bytes32 post = leaves[LIE];
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotSolver.selector, challenger));
        game.openLeaf(id, post, pre, proof);
    }

    function test_openLeaf_revertsWhenWrongPhase() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        (bytes32 pre, bytes32[] memory proof) = _preState(leaves, LIE);
        bytes32 post = leaves[LIE];
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.AwaitingReveal));
        game.openLeaf(id, post, pre, proof);
    }

    function test_openLeaf_revertsWhenClockExpired() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        _descend(id, leaves, LIE);
        (bytes32 pre, bytes32[] memory proof) = _preState(leaves, LIE);
        bytes32 post = leaves[LIE];
        vm.warp(block.timestamp + gp.clockBudget + 1);
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ClockExpired.selector, id));
        game.openLeaf(id, post, pre, proof);
    }

    // ---------------------------------------------------------- committee draw

    function test_drawCommittee_revertsWhenWrongPhase() public {
        (bytes32 jobId,) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.AwaitingReveal));
        game.drawCommittee(id, "");
    }

    function test_drawCommittee_revertsWhenSeedNotReady() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        uint64 sb = game.getDispute(id).seedBlock;
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.SeedNotReady.selector, sb));
        game.drawCommittee(id, "");
        vm.roll(sb);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.SeedNotReady.selector, sb));
        game.drawCommittee(id, "");
    }

    function test_drawCommittee_rearmsWhenBlockhashUnavailable() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        uint64 sb = game.getDispute(id).seedBlock;
        vm.roll(sb + 257);
        uint64 rearmed = uint64(block.number) + 1;
        vm.expectEmit(address(game));
        emit IDisputeGame.CommitteeSeedRearmed(id, rearmed);
        game.drawCommittee(id, _committeeHeader(id));
        assertEq(game.getDispute(id).seedBlock, rearmed);
        assertEq(uint8(_phase(id)), uint8(IDisputeGame.Phase.AwaitingCommittee));
        assertEq(_drawCommittee(id).length, gp.committeeSize);
    }

    function test_drawCommittee_locksArbiterStakeAndSetsDeadlines() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        assertEq(arbiters.length, gp.committeeSize);
        IDisputeGame.Dispute memory d = game.getDispute(id);
        assertEq(uint8(d.phase), uint8(IDisputeGame.Phase.Voting));
        assertEq(d.commitDeadline, block.timestamp + gp.commitPeriod);
        assertEq(d.revealDeadline, block.timestamp + gp.commitPeriod + gp.revealPeriod);
        for (uint256 i = 0; i < arbiters.length; ++i) {
            assertEq(stakes.lockedUnder(arbiters[i], _arbiterKey(id)), game.getDispute(id).arbiterLock);
            assertEq(_pos(arbiters[i]).free, 500 ether - game.getDispute(id).arbiterLock);
            for (uint256 j = 0; j < i; ++j) {
                assertTrue(arbiters[i] != arbiters[j]);
            }
        }
    }

    function test_drawCommittee_excludesSolverChallengerAndSubmitter() public {
        // Every party is a registered verifier with a large weight; only three other verifiers are eligible.
        vm.prank(solver);
        stakes.setVerifier(true);
        vm.startPrank(submitter);
        stakes.deposit(500 ether);
        stakes.setVerifier(true);
        vm.stopPrank();
        _leavePool(verifiers[3]);
        _leavePool(verifiers[4]);
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        assertEq(arbiters.length, 3, "exactly the three eligible verifiers");
        for (uint256 i = 0; i < arbiters.length; ++i) {
            assertTrue(arbiters[i] != solver, "solver judges its own dispute");
            assertTrue(arbiters[i] != challenger, "challenger judges its own dispute");
            assertTrue(arbiters[i] != submitter, "submitter judges the dispute on its job");
            assertTrue(arbiters[i] == verifiers[0] || arbiters[i] == verifiers[1] || arbiters[i] == verifiers[2]);
        }
    }

    /// @dev Regression (reported in /tmp/vt-contract-bugs.md, fixed by drawSkipping): drawDistinct used to
    ///      rejection-sample over the whole pool, so a party with a dominant verifier stake starved the committee.
    function test_drawCommittee_fullCommitteeDespiteDominantExcludedStake() public {
        _stake(solver, 1_000_000 ether, false);
        vm.prank(solver);
        stakes.setVerifier(true);
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        // five eligible verifiers exist: a committee of three must be drawn
        assertEq(arbiters.length, gp.committeeSize, "committee starved by the excluded solver's weight");
    }

    function test_drawCommittee_emptyPool_waitsThenVoidsTheJob() public {
        _leavePool(challenger);
        for (uint256 i = 0; i < verifiers.length; ++i) {
            _leavePool(verifiers[i]);
        }
        (bytes32 jobId,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        uint64 sb = game.getDispute(id).seedBlock;
        vm.expectEmit(address(game));
        emit IDisputeGame.CommitteeShort(id, 0, sb + 2);
        assertEq(_drawCommittee(id).length, 0);
        assertEq(uint8(_phase(id)), uint8(IDisputeGame.Phase.AwaitingCommittee), "waits for a full pool");
        vm.warp(game.getDispute(id).lastMoveAt + gp.committeeWait);
        assertEq(_drawCommittee(id).length, 0);
        assertEq(uint8(_phase(id)), uint8(IDisputeGame.Phase.Resolved));
        assertEq(uint8(_outcome(id)), uint8(IDisputeGame.Outcome.NoCommittee));
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Voided));
        assertEq(_pos(challenger).free, 1_000 ether, "bond returned");
        assertEq(_pos(submitter).claimable, PRICE, "submitter refunded");
        assertEq(_pos(solver).locked, 0, "job stake unlocked, not slashed");
        assertEq(_pos(solver).claimable, 0, "solver not paid");
    }

    // ------------------------------------------------------------------ voting

    function test_commitVote_revertsWhenWrongPhase() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        vm.prank(verifiers[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.AwaitingCommittee)
        );
        game.commitVote(id, bytes32(uint256(1)));
    }

    function test_commitVote_revertsWhenNotArbiter() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        _drawCommittee(id);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotArbiter.selector, alice));
        game.commitVote(id, bytes32(uint256(1)));
    }

    function test_commitVote_revertsWhenAlreadyCommitted() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address a = _drawCommittee(id)[0];
        vm.prank(a);
        game.commitVote(id, bytes32(uint256(1)));
        vm.prank(a);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.AlreadyCommitted.selector, a));
        game.commitVote(id, bytes32(uint256(2)));
    }

    function test_commitVote_revertsWhenCommitPeriodOver() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address a = _drawCommittee(id)[0];
        uint48 deadline = game.getDispute(id).commitDeadline;
        vm.warp(deadline);
        vm.prank(a);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.CommitPeriodOver.selector, deadline));
        game.commitVote(id, bytes32(uint256(1)));
    }

    function test_revealVote_revertsWhenRevealNotOpen() public {
        (, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, LIE);
        _commitVote(id, arbiters[0], result);
        _commitVote(id, arbiters[1], result); // the third has not committed: the commit phase is still on
        bytes32 salt = _salt(arbiters[0]);
        vm.prank(arbiters[0]);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.RevealNotOpen.selector, id));
        game.revealVote(id, result, salt);
    }

    function test_revealVote_opensEarlyWhenEveryoneCommitted() public {
        (, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        _commitAll(id, arbiters, _same(_honestResult(leaves, LIE), arbiters.length));
        IDisputeGame.Dispute memory d = game.getDispute(id);
        assertEq(d.commitDeadline, block.timestamp);
        assertEq(d.revealDeadline, block.timestamp + gp.revealPeriod);
        _revealVote(id, arbiters[0], _honestResult(leaves, LIE)); // same block: allowed
        assertEq(uint8(game.voteOf(id, arbiters[0]).status), uint8(IDisputeGame.VoteStatus.Revealed));
    }

    function test_revealVote_revertsWhenRevealPeriodOver() public {
        (, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, LIE);
        _commitAll(id, arbiters, _same(result, arbiters.length));
        uint48 deadline = game.getDispute(id).revealDeadline;
        vm.warp(deadline);
        bytes32 salt = _salt(arbiters[0]);
        vm.prank(arbiters[0]);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.RevealPeriodOver.selector, deadline));
        game.revealVote(id, result, salt);
    }

    function test_revealVote_revertsWhenNotCommitted() public {
        (, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, LIE);
        _commitVote(id, arbiters[0], result);
        vm.warp(game.getDispute(id).commitDeadline);
        bytes32 salt = _salt(arbiters[1]);
        vm.prank(arbiters[1]);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.NotCommitted.selector, arbiters[1]));
        game.revealVote(id, result, salt);
    }

    function test_revealVote_revertsWhenAlreadyRevealed() public {
        (, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, LIE);
        _commitAll(id, arbiters, _same(result, arbiters.length));
        _revealVote(id, arbiters[0], result);
        bytes32 salt = _salt(arbiters[0]);
        vm.prank(arbiters[0]);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.AlreadyRevealed.selector, arbiters[0]));
        game.revealVote(id, result, salt);
    }

    function test_revealVote_revertsWhenCommitmentMismatch() public {
        (, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, LIE);
        _commitAll(id, arbiters, _same(result, arbiters.length));
        bytes32 salt = _salt(arbiters[0]);
        bytes32 other = leaves[LIE];
        // changed result
        vm.prank(arbiters[0]);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.CommitmentMismatch.selector, arbiters[0]));
        game.revealVote(id, other, salt);
        // changed salt
        vm.prank(arbiters[0]);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.CommitmentMismatch.selector, arbiters[0]));
        game.revealVote(id, result, keccak256("other salt"));
        // another arbiter's commitment cannot be copied: the arbiter address is inside the hash
        bytes32 copied = game.voteCommitment(result, salt, arbiters[0]);
        assertTrue(copied != game.voteCommitment(result, salt, arbiters[1]));
        assertEq(copied, sha256(abi.encodePacked(result, salt, arbiters[0])));
    }

    function test_revealVote_revertsWhenWrongPhase() public {
        (, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, LIE);
        _commitAll(id, arbiters, _same(result, arbiters.length));
        for (uint256 i = 0; i < arbiters.length; ++i) {
            _revealVote(id, arbiters[i], result);
        }
        // the last reveal settled the dispute: a late reveal (or resolve) finds it Resolved
        bytes32 salt = _salt(arbiters[0]);
        vm.prank(arbiters[0]);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.Resolved));
        game.revealVote(id, result, salt);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.Resolved));
        game.resolve(id);
    }

    function test_resolve_revertsWhenVotingNotOver() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        _drawCommittee(id);
        vm.warp(game.getDispute(id).revealDeadline - 1);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.VotingNotOver.selector, id));
        game.resolve(id);
    }

    function test_resolve_revertsWhenWrongPhase() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.AwaitingCommittee)
        );
        game.resolve(id);
    }

    // ---------------------------------------------------------------- outcomes

    function test_resolve_challengerWinsSlashesJobStake() public {
        (bytes32 jobId, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, LIE);
        _commitAll(id, arbiters, _same(result, 3));
        _revealVote(id, arbiters[0], result);
        _revealVote(id, arbiters[1], result);
        vm.expectEmit(address(game));
        emit IDisputeGame.DisputeResolved(
            id, jobId, IDisputeGame.Outcome.ChallengerWon, challenger, solver, 2 * PRICE, arbiters
        );
        _revealVote(id, arbiters[2], result); // the last reveal settles

        uint256 stake = 2 * PRICE;
        uint256 winnerShare = stake * mp.slashWinnerBps / 10_000; // 100
        uint256 each = stake * mp.slashArbiterBps / 10_000 / 3; // 40 / 3
        assertEq(uint8(_outcome(id)), uint8(IDisputeGame.Outcome.ChallengerWon));
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Slashed));
        assertEq(_pos(challenger).claimable, winnerShare);
        assertEq(_pos(challenger).free, 1_000 ether, "bond returned");
        assertEq(_pos(challenger).locked, 0);
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(_pos(arbiters[i]).claimable, each);
            assertEq(_pos(arbiters[i]).free, 500 ether, "arbiter stake unlocked");
        }
        assertEq(token.balanceOf(DEAD), stake - winnerShare - 3 * each, "30 % (+ dust) burned");
        assertEq(_pos(submitter).claimable, PRICE, "price refunded");
        assertEq(stakes.escrowOf(jobId), 0);
        assertEq(_pos(solver).locked, 0);
        assertEq(_pos(solver).free, 1_000 ether - stake);
    }

    function test_resolve_solverWinsSlashesBondAndReopensJob() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, NO_LIE);
        uint64 auditEnd = market.getJob(jobId).auditEnd;
        uint256 id = _openDispute(jobId); // a false accusation of leaf 5
        _descend(id, leaves, 5);
        _openLeaf(id, leaves, 5);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, 5);
        assertEq(result, leaves[5]);
        _commitAll(id, arbiters, _same(result, 3));
        for (uint256 i = 0; i < 3; ++i) {
            _revealVote(id, arbiters[i], result);
        }
        uint256 bond = _bond(jobId);
        uint256 each = bond * mp.slashArbiterBps / 10_000 / 3;
        assertEq(uint8(_outcome(id)), uint8(IDisputeGame.Outcome.SolverWon));
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Committed));
        assertEq(market.getJob(jobId).auditEnd, auditEnd, "window was still long enough");
        assertEq(_pos(solver).claimable, bond / 2);
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(_pos(arbiters[i]).claimable, each);
        }
        assertEq(token.balanceOf(DEAD), bond - bond / 2 - 3 * each);
        assertEq(_pos(challenger).free, 1_000 ether - bond);
        assertEq(_pos(challenger).locked, 0);
        assertEq(stakes.lockedUnder(solver, jobId), 2 * PRICE, "job stake still locked");
        // the job can be disputed again, and finalized after the window
        vm.prank(verifiers[0]);
        assertEq(game.openDispute(jobId), 2);
        assertEq(game.latestDisputeOf(jobId), 2);
    }

    function test_resolve_unavailableMajorityMakesChallengerWin() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, NO_LIE); // honest, but it withheld blobs
        uint256 id = _openDispute(jobId);
        _descend(id, leaves, 7);
        _openLeaf(id, leaves, 7);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 unavailable = game.UNAVAILABLE();
        assertEq(unavailable, keccak256("veritrain.UNAVAILABLE"));
        bytes32[] memory results = new bytes32[](3);
        (results[0], results[1], results[2]) = (unavailable, leaves[7], unavailable);
        _commitAll(id, arbiters, results);
        for (uint256 i = 0; i < 3; ++i) {
            _revealVote(id, arbiters[i], results[i]);
        }
        IDisputeGame.Dispute memory d = game.getDispute(id);
        assertEq(d.votesForSolver, 1);
        assertEq(d.votesForChallenger, 2);
        assertEq(uint8(d.outcome), uint8(IDisputeGame.Outcome.ChallengerWon));
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Slashed));
        uint256 lock = d.arbiterLock;
        assertEq(lock, 2 * PRICE * gp.arbiterStakeBps / 10_000, "the lock scales with the job stake");
        uint256 penalty = lock * gp.wrongVoteSlashBps / 10_000;
        uint256 each = 2 * PRICE * mp.slashArbiterBps / 10_000 / 2 + penalty / 2;
        assertEq(_pos(arbiters[0]).claimable, each, "majority: job-stake share + half the wrong vote's penalty");
        assertEq(_pos(arbiters[1]).claimable, 0, "minority gets nothing");
        assertEq(_pos(arbiters[1]).free, 500 ether - penalty, "and loses part of its lock: it voted wrong");
        assertEq(_pos(arbiters[1]).locked, 0);
        assertEq(_pos(arbiters[2]).claimable, each);
    }

    function test_resolve_nonRevealingArbiterStakeGoesToMajority() public {
        (bytes32 jobId, bytes32[] memory leaves, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        address[] memory arbiters = _drawCommittee(id);
        bytes32 result = _honestResult(leaves, LIE);
        _commitAll(id, arbiters, _same(result, 3));
        _revealVote(id, arbiters[0], result);
        _revealVote(id, arbiters[1], result);
        // arbiters[2] never reveals
        vm.warp(game.getDispute(id).revealDeadline);
        game.resolve(id);

        uint256 stake = 2 * PRICE;
        uint256 jobShare = stake * mp.slashArbiterBps / 10_000 / 2; // 20 each
        uint256 forfeitShare = game.getDispute(id).arbiterLock / 2; // 5 each
        assertEq(uint8(_outcome(id)), uint8(IDisputeGame.Outcome.ChallengerWon));
        assertEq(_pos(arbiters[0]).claimable, jobShare + forfeitShare);
        assertEq(_pos(arbiters[1]).claimable, jobShare + forfeitShare);
        assertEq(_pos(arbiters[2]).claimable, 0);
        assertEq(_pos(arbiters[2]).locked, 0);
        assertEq(
            _pos(arbiters[2]).free,
            500 ether - game.getDispute(id).arbiterLock,
            "non-revealer forfeits its arbiter stake"
        );
        assertEq(_pos(challenger).claimable, stake / 2);
        assertEq(token.balanceOf(DEAD), stake - stake / 2 - 2 * jobShare, "the forfeit is fully shared");
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Slashed));
    }

    function test_resolve_noRevealsIsNoDecision() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        vm.warp(block.timestamp + 23 hours + 30 minutes); // the solver stalls within its clock
        _descend(id, leaves, LIE);
        _openLeaf(id, leaves, LIE);
        address[] memory arbiters = _drawCommittee(id);
        vm.warp(game.getDispute(id).revealDeadline);
        address[] memory none = new address[](0);
        vm.expectEmit(address(game));
        emit IDisputeGame.DisputeResolved(id, jobId, IDisputeGame.Outcome.NoDecision, address(0), address(0), 0, none);
        game.resolve(id);

        assertEq(uint8(_outcome(id)), uint8(IDisputeGame.Outcome.NoDecision));
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Committed), "job reopened");
        // The window paused while the dispute ran: it resumes with what was left when the dispute opened.
        assertGt(job.windowLeft, mp.disputeGrace);
        assertEq(job.auditEnd, block.timestamp + job.windowLeft, "window resumes where it paused");
        assertEq(_pos(challenger).free, 1_000 ether, "bond returned");
        assertEq(_pos(challenger).locked, 0);
        for (uint256 i = 0; i < arbiters.length; ++i) {
            assertEq(_pos(arbiters[i]).locked, 0);
            assertEq(_pos(arbiters[i]).free, 500 ether - game.getDispute(id).arbiterLock);
        }
        assertEq(
            token.balanceOf(DEAD), arbiters.length * game.getDispute(id).arbiterLock, "no majority to share the forfeit"
        );
        assertEq(stakes.lockedUnder(solver, jobId), 2 * PRICE);
        // the reopened job can be finalized once the extended window is over
        vm.warp(job.auditEnd);
        market.finalize(jobId);
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Finalized));
    }

    // ---------------------------------------------------------------- timeouts

    function test_timeout_solverClockRunsOutChallengerWins() public {
        (bytes32 jobId,) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        uint256 expiresAt = block.timestamp + gp.clockBudget;
        vm.warp(expiresAt);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ClockNotExpired.selector, id, expiresAt));
        game.timeout(id);
        vm.warp(expiresAt + 1);
        vm.prank(alice); // anyone may call it
        game.timeout(id);
        assertEq(uint8(_outcome(id)), uint8(IDisputeGame.Outcome.ChallengerWon));
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Slashed));
        assertEq(_pos(challenger).claimable, PRICE, "half of the 2x job stake");
        assertEq(_pos(challenger).free, 1_000 ether);
        assertEq(token.balanceOf(DEAD), PRICE, "no arbiters: their share is burned too");
        assertEq(_pos(submitter).claimable, PRICE);
    }

    function test_timeout_solverClockRunsOutAtLeaf() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        vm.warp(block.timestamp + 1000);
        _descend(id, leaves, LIE); // solver spent 1000 s on its first reveal
        uint256 expiresAt = block.timestamp + gp.clockBudget - 1000;
        vm.warp(expiresAt);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ClockNotExpired.selector, id, expiresAt));
        game.timeout(id);
        vm.warp(expiresAt + 1);
        game.timeout(id);
        assertEq(uint8(_outcome(id)), uint8(IDisputeGame.Outcome.ChallengerWon));
        assertEq(uint8(_state(jobId)), uint8(IJobMarket.JobState.Slashed));
    }

    function test_settle_windowPausesDuringDisputeSoAStallingChallengerCannotRunItOut() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        vm.warp(block.timestamp + 6 hours);
        uint256 left = market.getJob(jobId).auditEnd - block.timestamp; // 18 hours left
        uint256 id = _openDispute(jobId);
        assertEq(market.getJob(jobId).windowLeft, left);
        // The solver reveals; the (sybil) challenger stalls its whole clock, past the original window end.
        (bytes32 l, bytes32 r) = (_root(leaves, 0, 8), _root(leaves, 8, 16));
        vm.prank(solver);
        game.reveal(id, l, r);
        vm.warp(block.timestamp + gp.clockBudget + 1);
        game.timeout(id);
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Committed));
        assertEq(job.auditEnd, block.timestamp + left, "honest challengers still get the 18 hours");
    }

    function test_settle_windowResumesWithAtLeastDisputeGrace() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        vm.warp(market.getJob(jobId).auditEnd - 10 minutes);
        uint256 id = _openDispute(jobId);
        assertEq(market.getJob(jobId).windowLeft, 10 minutes);
        (bytes32 l, bytes32 r) = (_root(leaves, 0, 8), _root(leaves, 8, 16));
        vm.prank(solver);
        game.reveal(id, l, r);
        vm.warp(block.timestamp + gp.clockBudget + 1); // the challenger stalls and loses
        game.timeout(id);
        assertEq(market.getJob(jobId).auditEnd, block.timestamp + mp.disputeGrace);
    }

    function test_timeout_challengerClockRunsOutSolverWins() public {
        (bytes32 jobId, bytes32[] memory leaves) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        bytes32 l = _root(leaves, 0, 8);
        bytes32 r = _root(leaves, 8, 16);
        vm.prank(solver);
        game.reveal(id, l, r);
        uint256 expiresAt = block.timestamp + gp.clockBudget;
        vm.warp(expiresAt);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ClockNotExpired.selector, id, expiresAt));
        game.timeout(id);
        vm.warp(expiresAt + 1);
        game.timeout(id);
        assertEq(uint8(_outcome(id)), uint8(IDisputeGame.Outcome.SolverWon));
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Committed));
        assertEq(job.auditEnd, block.timestamp + job.windowLeft);
        uint256 bond = game.disputeBondFor(job.stake, job.price);
        assertEq(_pos(solver).claimable, bond / 2);
        assertEq(_pos(challenger).free, 1_000 ether - bond);
        assertEq(token.balanceOf(DEAD), bond / 2);
    }

    function test_timeout_revertsWhenWrongPhase() public {
        (,, uint256 id) = _disputeAtCommittee(N, LIE, LIE);
        vm.warp(block.timestamp + 10 * uint256(gp.clockBudget));
        vm.expectRevert(
            abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.AwaitingCommittee)
        );
        game.timeout(id);
        _drawCommittee(id);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.Voting));
        game.timeout(id);
    }

    function test_timeout_revertsWhenResolved() public {
        (bytes32 jobId,) = _committedJob(N, LIE);
        uint256 id = _openDispute(jobId);
        vm.warp(block.timestamp + gp.clockBudget + 1);
        game.timeout(id);
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, id, IDisputeGame.Phase.Resolved));
        game.timeout(id);
    }
}
