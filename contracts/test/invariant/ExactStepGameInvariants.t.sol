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

/// @notice Plays many ExactStepGames at once on a synthetic program of allocations (each record an `empty`, whose
///         honest commitment is 32 zero bytes, so a reached record is settled at its opening): in half of them an
///         honest defender against a challenger that moves at random (random halves, random agreements, bad data,
///         silence), in the other half a defender that lies (from a step of the segment on, and in one record of
///         that step's trace) and moves at random against an honest challenger. The honest party is live: it moves
///         at once whenever it is its turn, so time passes only while a hostile party is to move.
contract StepGameHandler is Test {
    uint256 public constant RECORDS = 37;
    uint64 public constant STEPS = 10;

    ExactStepGame public game;
    address public defender = makeAddr("defender");
    address public challenger = makeAddr("challenger");
    bytes internal structure;
    bytes32[] internal programEntries;
    bytes32[] internal floatsEntries;
    bytes32 internal honestRecordHash;
    bytes32 internal lyingRecordHash;

    uint256[] public ids;
    mapping(uint256 => bool) public lying; // the defender lies in this game
    mapping(uint256 => uint64) internal lieStep; // the first step whose post-state root the liar gets wrong
    mapping(uint256 => uint256) internal badRecord; // the record of that step's trace it commits wrongly
    mapping(uint256 => bool) internal settled;
    mapping(uint256 => bool) internal lieHere_; // the liar's trace of the step reached is its lying one
    uint256 public ghost_honestLosses;
    uint256 public ghost_ended;

    constructor(ExactStepGame game_) {
        game = game_;
        structure = SyntheticRecords.allocation();
        programEntries = new bytes32[](RECORDS);
        floatsEntries = new bytes32[](RECORDS);
        for (uint256 i = 0; i < RECORDS; ++i) {
            (programEntries[i], floatsEntries[i]) = (sha256(structure), sha256(""));
        }
    }

    /// @dev After construction (the record hashes go through this contract's own external helper).
    function init() external {
        honestRecordHash = this.recordHash(structure, new uint64[](0), _commitments(bytes32(0)));
        lyingRecordHash = this.recordHash(structure, new uint64[](0), _commitments(keccak256("a value for nothing")));
    }

    function recordHash(bytes calldata s, uint64[] calldata f, bytes32[] calldata c) external view returns (bytes32) {
        return ElementCheck.recordHash(s, f, c);
    }

    function gameCount() external view returns (uint256) {
        return ids.length;
    }

    // ------------------------------------------------------------------ actions

    function open(bool lies, uint256 seed) external {
        if (ids.length >= 6) return;
        ExactStepGame.Context memory ctx = ExactStepGame.Context({
            programRoot: TreeRef.root(programEntries, 0, RECORDS),
            floatsRoot: TreeRef.root(floatsEntries, 0, RECORDS),
            records: uint64(RECORDS)
        });
        uint64 lie = uint64(seed % STEPS);
        ExactStepGame.Segment memory seg = ExactStepGame.Segment({
            preRoot: _root(0), postRoot: lies ? _lieRoot(STEPS) : _root(STEPS), firstStep: 0, steps: STEPS
        });
        vm.prank(challenger);
        uint256 id = game.open(defender, ctx, seg);
        ids.push(id);
        (lying[id], lieStep[id], badRecord[id]) = (lies, lie, (seed >> 8) % RECORDS);
        _honestMoves(id);
    }

    /// @notice The hostile party of one game makes up to 16 moves of its choosing (valid or not), the honest one
    ///         answering each at once.
    function hostileMove(uint256 which, uint256 seed) external {
        if (ids.length == 0) return;
        uint256 id = ids[which % ids.length];
        for (uint256 k = 0; k <= seed % 16; ++k) {
            ExactStepGame.Game memory g = game.getGame(id);
            if (g.phase == ExactStepGame.Phase.Ended || _honestToMove(id, g.phase)) return;
            uint256 s = uint256(keccak256(abi.encode(seed, k)));
            if (lying[id]) _liarMove(id, g, s);
            else _randomChallengerMove(id, g, s);
            _honestMoves(id);
        }
    }

    /// @notice Time passes (only hostile parties are ever to move: the honest ones answered at once).
    function warp(uint256 dt) external {
        vm.warp(block.timestamp + bound(dt, 1, game.clockBudget()));
    }

    function timeout(uint256 which) external {
        if (ids.length == 0) return;
        uint256 id = ids[which % ids.length];
        try game.timeout(id) {} catch {}
        _record(id);
    }

    // ------------------------------------------------------------------ the parties

    function _honestToMove(uint256 id, ExactStepGame.Phase p) internal view returns (bool) {
        bool defenderMoves = p == ExactStepGame.Phase.AwaitingStepRoot || p == ExactStepGame.Phase.AwaitingTrace
            || p == ExactStepGame.Phase.AwaitingRecordReveal || p == ExactStepGame.Phase.AwaitingRecord;
        return lying[id] ? !defenderMoves : defenderMoves;
    }

    function _honestMoves(uint256 id) internal {
        for (uint256 k = 0; k < 128; ++k) {
            ExactStepGame.Game memory g = game.getGame(id);
            if (g.phase == ExactStepGame.Phase.Ended || !_honestToMove(id, g.phase)) break;
            if (lying[id]) _honestChallengerMove(id, g);
            else _honestDefenderMove(id, g);
        }
        _record(id);
    }

    function _honestDefenderMove(uint256 id, ExactStepGame.Game memory g) internal {
        vm.startPrank(defender);
        if (g.phase == ExactStepGame.Phase.AwaitingStepRoot) {
            game.revealStepRoot(id, _root((g.steps.lo + g.steps.hi) / 2));
        } else if (g.phase == ExactStepGame.Phase.AwaitingTrace) {
            game.commitTrace(id, _traceRoot(false, 0), bytes32(0), 0);
        } else if (g.phase == ExactStepGame.Phase.AwaitingRecordReveal) {
            (bytes32 l, bytes32 r) = _children(_leaves(false, 0), g.lo, g.hi);
            game.reveal(id, l, r);
        } else {
            game.openRecord(id, _opening(g.lo, bytes32(0)), new ExactStepGame.InputOpening[](0));
        }
        vm.stopPrank();
    }

    function _honestChallengerMove(uint256 id, ExactStepGame.Game memory g) internal {
        vm.startPrank(challenger);
        if (g.phase == ExactStepGame.Phase.AwaitingStepChoice) {
            game.chooseStep(id, g.steps.pending == _root((g.steps.lo + g.steps.hi) / 2));
        } else {
            (bytes32 ownLeft,) = _children(_leaves(false, 0), g.lo, g.hi);
            game.choose(id, g.left == ownLeft);
        }
        vm.stopPrank();
    }

    function _randomChallengerMove(uint256 id, ExactStepGame.Game memory g, uint256 seed) internal {
        vm.startPrank(challenger);
        if (g.phase == ExactStepGame.Phase.AwaitingStepChoice) {
            try game.chooseStep(id, seed % 2 == 0) {} catch {}
        } else if (g.phase == ExactStepGame.Phase.AwaitingRecordChoice) {
            try game.choose(id, seed % 2 == 0) {} catch {}
        }
        vm.stopPrank();
    }

    /// @dev The liar: right roots before its lie, its own after (or any root at all); its own trace, or data that does
    ///      not hash. The post-state link is not built yet (DESIGN §8 "Not yet built" (c)): so the liar's trace of the
    ///      step reached is wrong exactly when the root it claimed after that step is (a liar whose trace is right but
    ///      whose post-state root is not is for the post-state dispute to convict).
    function _liarMove(uint256 id, ExactStepGame.Game memory g, uint256 seed) internal {
        vm.startPrank(defender);
        bool garbage = seed % 5 == 0;
        if (g.phase == ExactStepGame.Phase.AwaitingStepRoot) {
            uint64 mid = (g.steps.lo + g.steps.hi) / 2;
            bytes32 root = garbage ? keccak256(abi.encode(seed)) : mid > lieStep[id] ? _lieRoot(mid) : _root(mid);
            try game.revealStepRoot(id, root) {} catch {} // its clock may have run out
        } else if (g.phase == ExactStepGame.Phase.AwaitingTrace) {
            bool lieHere = g.steps.disputed != _root(g.steps.hi);
            lieHere_[id] = lieHere;
            try game.commitTrace(id, _traceRoot(lieHere, badRecord[id]), bytes32(0), 0) {} catch {}
        } else if (g.phase == ExactStepGame.Phase.AwaitingRecordReveal) {
            (bytes32 l, bytes32 r) = _children(_leaves(lieHere_[id], badRecord[id]), g.lo, g.hi);
            if (garbage) l = keccak256(abi.encode(seed));
            try game.reveal(id, l, r) {} catch {}
        } else if (g.phase == ExactStepGame.Phase.AwaitingRecord) {
            bytes32 c = lieHere_[id] && g.lo == badRecord[id] ? keccak256("a value for nothing") : bytes32(0);
            ExactStepGame.RecordOpening memory r = _opening(g.lo, garbage ? keccak256("other") : c);
            try game.openRecord(id, r, new ExactStepGame.InputOpening[](0)) {} catch {}
        }
        vm.stopPrank();
    }

    function _opening(uint64 t, bytes32 c) internal view returns (ExactStepGame.RecordOpening memory r) {
        r.structure = structure;
        r.floats = new uint64[](0);
        r.commitments = _commitments(c);
        r.programPath = TreeRef.path(programEntries, t, 0, RECORDS);
        r.floatsPath = TreeRef.path(floatsEntries, t, 0, RECORDS);
    }

    function _record(uint256 id) internal {
        ExactStepGame.Game memory g = game.getGame(id);
        if (g.phase != ExactStepGame.Phase.Ended || settled[id]) return;
        settled[id] = true;
        ++ghost_ended;
        if (g.winner != (lying[id] ? challenger : defender)) ++ghost_honestLosses;
    }

    // ------------------------------------------------------------------ the synthetic world

    /// @dev The honest state root after `k` steps; a liar's after its lie.
    function _root(uint256 k) internal pure returns (bytes32) {
        return keccak256(abi.encode("state", k));
    }

    function _lieRoot(uint256 k) internal pure returns (bytes32) {
        return keccak256(abi.encode("lie", k));
    }

    /// @dev The trace's record leaves: every record the honest allocation, but `bad` committed wrongly by a liar in its
    ///      lying step (at any other step the liar's trace is the honest one: its lie is in the state roots only).
    function _leaves(bool lie, uint256 bad) internal view returns (bytes32[] memory e) {
        e = new bytes32[](RECORDS);
        for (uint256 i = 0; i < RECORDS; ++i) {
            e[i] = lie && i == bad ? lyingRecordHash : honestRecordHash;
        }
    }

    function _traceRoot(bool lie, uint256 bad) internal view returns (bytes32) {
        return TreeRef.root(_leaves(lie, bad), 0, RECORDS);
    }

    function _children(bytes32[] memory e, uint64 lo, uint64 hi) internal view returns (bytes32, bytes32) {
        uint256 mid = lo + RFC9162.splitPoint(hi - lo);
        return (TreeRef.root(e, lo, mid), TreeRef.root(e, mid, hi));
    }

    function _commitments(bytes32 c) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](1);
        out[0] = c;
    }
}

/// @notice The game below a segment: an honest party never loses, whatever the other does, and every descent ends
///         within its depth.
contract ExactStepGameInvariantTest is Test {
    uint256 internal constant CLOCK = 3600;
    StepGameHandler internal handler;
    ExactStepGame internal game;

    function setUp() public {
        game = new ExactStepGame(new ElementChecker(new ElementEvaluator()), new StateReader(), CLOCK);
        handler = new StepGameHandler(game);
        handler.init();
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](4);
        selectors[0] = StepGameHandler.open.selector;
        selectors[1] = StepGameHandler.hostileMove.selector;
        selectors[2] = StepGameHandler.warp.selector;
        selectors[3] = StepGameHandler.timeout.selector;
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    /// @notice (s1) No game ever ends against its honest party: the honest defender against any challenger, the
    ///         honest challenger against the liar.
    function invariant_anHonestPartyNeverLoses() public view {
        assertEq(handler.ghost_honestLosses(), 0, "an honest party lost");
    }

    /// @notice (s2) The step descent takes at most ceil(log2 STEPS) rounds and the record descent at most
    ///         ceil(log2 RECORDS); no clock ever exceeds the budget.
    function invariant_descentsStayWithinTheirDepthAndClocksWithinTheBudget() public view {
        for (uint256 i = 0; i < handler.gameCount(); ++i) {
            ExactStepGame.Game memory g = game.getGame(handler.ids(i));
            assertLe(g.steps.rounds, 4, "step descent too long"); // ceil(log2 10)
            assertLe(g.recordRounds, 6, "record descent too long"); // ceil(log2 37)
            assertLe(g.defenderClock, CLOCK);
            assertLe(g.challengerClock, CLOCK);
            if (g.phase != ExactStepGame.Phase.Ended && g.phase >= ExactStepGame.Phase.AwaitingTrace) {
                assertLt(g.steps.lo, g.steps.hi);
                assertEq(g.steps.hi - g.steps.lo, 1, "the trace is played at one step");
            }
        }
    }

    /// @notice The handler's games do end, both kinds, the honest party winning: played here to the end by moves
    ///         and timeouts (the invariant runs play the same moves in random order and with random silences).
    function test_bothKindsOfGamePlayToTheirEnd_andTheHonestPartyWins() public {
        handler.open(false, 7);
        handler.open(true, 9 + (3 << 8));
        for (uint256 i = 0; i < 64 && handler.ghost_ended() < 2; ++i) {
            handler.hostileMove(0, i * 2 + 1);
            handler.hostileMove(1, i * 2 + 1);
            if (i % 16 == 15) {
                handler.warp(CLOCK + 1);
                handler.timeout(0);
                handler.timeout(1);
            }
        }
        assertEq(handler.ghost_ended(), 2, "both games ended");
        assertEq(handler.ghost_honestLosses(), 0);
        assertEq(game.getGame(handler.ids(0)).winner, handler.defender());
        assertEq(game.getGame(handler.ids(1)).winner, handler.challenger());
    }
}
