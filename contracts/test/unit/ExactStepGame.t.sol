// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {ElementChecker} from "../../src/ElementChecker.sol";
import {ElementEvaluator} from "../../src/ElementEvaluator.sol";
import {ExactStepGame} from "../../src/ExactStepGame.sol";
import {StateReader} from "../../src/StateReader.sol";
import {ElementCheck} from "../../src/libraries/ElementCheck.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";
import {SyntheticRecords} from "../utils/SyntheticRecords.sol";
import {TreeRef} from "../utils/TreeRef.sol";

/// @notice The game's machinery on synthetic traces: the record descent, the clocks, the allocation rule and the
///         program check. (Real steps, their elements and the liars are played on anvil by
///         tests/test_exact_step_game.py.)
contract ExactStepGameTest is Test {
    uint256 internal constant CLOCK = 3600;
    ExactStepGame internal game;
    address internal defender = makeAddr("defender");
    address internal challenger = makeAddr("challenger");

    function setUp() public {
        game = new ExactStepGame(new ElementChecker(new ElementEvaluator()), new StateReader(), CLOCK);
    }

    function _open(ExactStepGame.Context memory ctx) internal returns (uint256 id) {
        id = _openSegment(ctx, 1);
    }

    function _openSegment(ExactStepGame.Context memory ctx, uint64 steps) internal returns (uint256 id) {
        vm.prank(challenger);
        id = game.open(defender, ctx, _segment(steps));
    }

    function _segment(uint64 steps) internal pure returns (ExactStepGame.Segment memory) {
        return ExactStepGame.Segment({preRoot: _root(0), postRoot: _root(steps), firstStep: 40, steps: steps});
    }

    /// @dev The honest state root after `k` steps of the segment (a liar's differs after its lie).
    function _root(uint256 k) internal pure returns (bytes32) {
        return keccak256(abi.encode("state after", k));
    }

    function _ctx(bytes32[] memory programLeaves, bytes32 floatsRoot)
        internal
        view
        returns (ExactStepGame.Context memory)
    {
        return ExactStepGame.Context({
            programRoot: TreeRef.root(programLeaves, 0, programLeaves.length),
            floatsRoot: floatsRoot,
            records: uint64(programLeaves.length)
        });
    }

    /// @dev The leaf entries of a synthetic trace of `n` records.
    function _entries(uint256 n, uint256 salt) internal pure returns (bytes32[] memory e) {
        e = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            e[i] = keccak256(abi.encode(salt, i));
        }
    }

    /// @dev Descends from the committed root, the defender revealing every node, the challenger steering to `target`.
    function _descendTo(uint256 id, bytes32[] memory entries, uint256 target) internal {
        uint256 lo = 0;
        uint256 hi = entries.length;
        while (hi - lo > 1) {
            uint256 mid = lo + RFC9162.splitPoint(hi - lo);
            bytes32 left = TreeRef.root(entries, lo, mid);
            bytes32 right = TreeRef.root(entries, mid, hi);
            vm.prank(defender);
            game.reveal(id, left, right);
            bool goRight = target >= mid;
            vm.prank(challenger);
            game.choose(id, goRight);
            (lo, hi) = goRight ? (mid, hi) : (lo, mid);
        }
    }

    function testFuzz_recordDescentReachesTheChosenRecordInItsDepth(uint256 n, uint256 target) public {
        n = bound(n, 1, 3000);
        target = bound(target, 0, n - 1);
        bytes32[] memory entries = _entries(n, 7);
        uint256 id = _open(_ctx(_entries(n, 8), bytes32(0)));
        bytes32 root = TreeRef.root(entries, 0, n);
        vm.prank(defender);
        game.commitTrace(id, root, bytes32(0), 0);
        _descendTo(id, entries, target);
        ExactStepGame.Game memory g = game.getGame(id);
        assertEq(uint256(g.phase), uint256(ExactStepGame.Phase.AwaitingRecord));
        assertEq(g.lo, target);
        assertEq(g.node, RFC9162.hashLeaf(entries[target]));
        assertEq(g.recordRounds, RFC9162.leafDepth(target, n));
        assertLe(g.recordRounds, n > 1 ? _ceilLog2(n) : 0);
    }

    /// @dev A defender that lies from step `bad` on (every root after it differs) against an honest challenger: the
    ///      step descent ends at step `bad` in at most ceil(log2 steps) rounds, its pre-state root the honest one and
    ///      its post-state root the liar's; then the trace is due.
    function testFuzz_stepDescentEndsAtTheFirstLyingStep(uint64 steps, uint64 bad) public {
        steps = uint64(bound(steps, 1, 1 << 40));
        bad = uint64(bound(bad, 0, steps - 1));
        uint256 id = _openSegment(_ctx(_entries(3, 1), bytes32(0)), steps);
        ExactStepGame.Game memory g = game.getGame(id);
        while (g.phase == ExactStepGame.Phase.AwaitingStepRoot) {
            uint64 mid = (g.steps.lo + g.steps.hi) / 2;
            bytes32 claimed = mid > bad ? keccak256(abi.encode("lie", mid)) : _root(mid);
            vm.prank(defender);
            game.revealStepRoot(id, claimed);
            vm.prank(challenger);
            game.chooseStep(id, claimed == _root(mid));
            g = game.getGame(id);
        }
        assertEq(uint256(g.phase), uint256(ExactStepGame.Phase.AwaitingTrace));
        assertEq(g.steps.lo, bad);
        assertEq(g.steps.hi, bad + 1);
        assertEq(g.steps.agreed, _root(bad));
        assertEq(g.steps.disputed, bad + 1 == steps ? _root(steps) : keccak256(abi.encode("lie", bad + 1)));
        assertLe(g.steps.rounds, _ceilLog2(steps));
    }

    function test_stepDescent_movesInTurn_andASilentDefenderLoses() public {
        uint256 id = _openSegment(_ctx(_entries(3, 1), bytes32(0)), 8);
        vm.prank(defender);
        vm.expectRevert(
            abi.encodeWithSelector(ExactStepGame.WrongPhase.selector, id, ExactStepGame.Phase.AwaitingStepRoot)
        );
        game.commitTrace(id, bytes32(0), bytes32(0), 0);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ExactStepGame.NotYourMove.selector, challenger));
        game.revealStepRoot(id, _root(4));
        vm.prank(defender);
        game.revealStepRoot(id, _root(4));
        vm.prank(defender);
        vm.expectRevert(abi.encodeWithSelector(ExactStepGame.NotYourMove.selector, defender));
        game.chooseStep(id, true);
        vm.prank(challenger);
        game.chooseStep(id, true); // [4, 8)
        vm.warp(block.timestamp + CLOCK + 1);
        game.timeout(id);
        assertEq(game.getGame(id).winner, challenger);
    }

    function _ceilLog2(uint256 n) internal pure returns (uint256 k) {
        while ((uint256(1) << k) < n) {
            ++k;
        }
    }

    function test_revealOfOtherChildren_isRefused() public {
        bytes32[] memory entries = _entries(5, 1);
        uint256 id = _open(_ctx(_entries(5, 2), bytes32(0)));
        bytes32 root = TreeRef.root(entries, 0, 5);
        vm.prank(defender);
        game.commitTrace(id, root, bytes32(0), 0);
        bytes32 left = TreeRef.root(entries, 0, 4);
        bytes32 right = TreeRef.root(entries, 4, 5);
        vm.prank(defender);
        vm.expectRevert(abi.encodeWithSelector(ExactStepGame.ChildrenMismatch.selector, root));
        game.reveal(id, right, left);
        vm.prank(challenger);
        vm.expectRevert(
            abi.encodeWithSelector(ExactStepGame.WrongPhase.selector, id, ExactStepGame.Phase.AwaitingRecordReveal)
        );
        game.choose(id, true);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ExactStepGame.NotYourMove.selector, challenger));
        game.reveal(id, left, right);
    }

    function test_clocks_eachSpentOnlyOnItsOwnMoves_andASilentPartyLoses() public {
        bytes32[] memory entries = _entries(4, 1);
        uint256 id = _open(_ctx(_entries(4, 2), bytes32(0)));
        (bytes32 root, bytes32 left, bytes32 right) =
            (TreeRef.root(entries, 0, 4), TreeRef.root(entries, 0, 2), TreeRef.root(entries, 2, 4));
        vm.warp(block.timestamp + 100);
        vm.prank(defender);
        game.commitTrace(id, root, bytes32(0), 0);
        vm.warp(block.timestamp + 200);
        vm.prank(defender);
        game.reveal(id, left, right);
        vm.warp(block.timestamp + 50);
        vm.prank(challenger);
        game.choose(id, false);
        ExactStepGame.Game memory g = game.getGame(id);
        assertEq(g.defenderClock, CLOCK - 300);
        assertEq(g.challengerClock, CLOCK - 50);
        // the defender now goes silent
        uint256 expires = block.timestamp + CLOCK - 300;
        vm.warp(expires);
        vm.expectRevert(abi.encodeWithSelector(ExactStepGame.ClockNotExpired.selector, id, expires));
        game.timeout(id);
        vm.warp(expires + 1);
        (left, right) = (RFC9162.hashLeaf(entries[0]), RFC9162.hashLeaf(entries[1]));
        vm.prank(defender);
        vm.expectRevert(abi.encodeWithSelector(ExactStepGame.ClockExpired.selector, id));
        game.reveal(id, left, right);
        game.timeout(id); // anyone
        g = game.getGame(id);
        assertEq(g.winner, challenger);
        assertEq(uint256(g.phase), uint256(ExactStepGame.Phase.Ended));
        vm.expectRevert(abi.encodeWithSelector(ExactStepGame.WrongPhase.selector, id, ExactStepGame.Phase.Ended));
        game.timeout(id);
    }

    function _allocationGame(bytes32 commitment) internal returns (uint256 id, ExactStepGame.RecordOpening memory r) {
        bytes memory s = SyntheticRecords.allocation();
        bytes32[] memory program = new bytes32[](1);
        program[0] = sha256(s);
        id = _open(_ctx(program, RFC9162.hashLeaf(sha256(""))));
        r.structure = s;
        r.floats = new uint64[](0);
        r.commitments = new bytes32[](1);
        r.commitments[0] = commitment;
        bytes32 root = RFC9162.hashLeaf(this.recordHash(s, r.floats, r.commitments));
        vm.prank(defender);
        game.commitTrace(id, root, bytes32(0), 0);
    }

    function recordHash(bytes calldata s, uint64[] calldata f, bytes32[] calldata c) external view returns (bytes32) {
        return ElementCheck.recordHash(s, f, c);
    }

    function test_anAllocationCommittedAsZero_endsForTheDefender_elseForTheChallenger() public {
        (uint256 id, ExactStepGame.RecordOpening memory r) = _allocationGame(bytes32(0));
        vm.prank(defender);
        game.openRecord(id, r, new ExactStepGame.InputOpening[](0));
        assertEq(game.getGame(id).winner, defender);
        (id, r) = _allocationGame(keccak256("a value for what has none"));
        vm.prank(defender);
        game.openRecord(id, r, new ExactStepGame.InputOpening[](0));
        assertEq(game.getGame(id).winner, challenger);
    }

    function test_aRecordOfAnotherStructure_orOtherFloats_cannotBeOpened() public {
        (uint256 id, ExactStepGame.RecordOpening memory r) = _allocationGame(bytes32(0));
        ExactStepGame.RecordOpening memory bent = r; // the same memory: each case below changes one field of it
        bytes memory structure = r.structure;
        bent.structure = bytes.concat(structure, bytes32(0));
        vm.prank(defender);
        vm.expectRevert(ExactStepGame.RecordNotInProgram.selector);
        game.openRecord(id, bent, new ExactStepGame.InputOpening[](0));
        bent.structure = structure;
        bent.floats = new uint64[](1);
        vm.prank(defender);
        vm.expectRevert(ExactStepGame.FloatsNotInContext.selector);
        game.openRecord(id, bent, new ExactStepGame.InputOpening[](0));
        bent.floats = new uint64[](0);
        bent.commitments = new bytes32[](2);
        vm.prank(defender);
        vm.expectRevert(ExactStepGame.RecordMismatch.selector);
        game.openRecord(id, bent, new ExactStepGame.InputOpening[](0));
    }

    function test_open_refusesSelfPlayAndAnEmptyProgram() public {
        ExactStepGame.Context memory ctx = _ctx(_entries(2, 1), bytes32(0));
        vm.prank(defender);
        vm.expectRevert(ExactStepGame.BadParties.selector);
        game.open(defender, ctx, _segment(1));
        vm.prank(challenger);
        vm.expectRevert(ExactStepGame.BadContext.selector);
        game.open(defender, ctx, _segment(0)); // a segment of no steps
        ctx.records = 0;
        vm.prank(challenger);
        vm.expectRevert(ExactStepGame.BadContext.selector);
        game.open(defender, ctx, _segment(1));
    }
}
