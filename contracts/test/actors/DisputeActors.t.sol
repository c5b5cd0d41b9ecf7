// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {CommonBase} from "forge-std/Base.sol";
import {Fixture} from "../utils/Fixture.sol";
import {TreeRef} from "../utils/TreeRef.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";

// Actor-based tests of the dispute game, after Optimism's FaultDisputeGame actor tests: honest and dishonest solvers
// and challengers play whole games against a toy transition function (C_i = keccak256("step", C_{i-1})), honest
// arbiters replay the opened segment, and the tests check that the honest side always wins, that stalling always
// loses, and that the descent takes exactly the disputed leaf's RFC 9162 depth.

/// @notice The toy transition function and its trajectory, as every actor computes them (trees: TreeRef).
library Toy {
    /// @dev Same as Fixture.toyStep.
    function step(bytes32 pre) internal pure returns (bytes32) {
        return keccak256(abi.encode("step", pre));
    }

    /// @dev A wrong state root standing in for the honest `truth`.
    function lie(bytes32 truth) internal pure returns (bytes32) {
        return keccak256(abi.encode("lie", truth));
    }

    /// @dev The honest trajectory: leaf i is the state after i + 1 steps from `init`.
    function trajectory(bytes32 init, uint256 n) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](n);
        bytes32 state = init;
        for (uint256 i = 0; i < n; ++i) {
            state = step(state);
            leaves[i] = state;
        }
    }

    /// @dev First segment whose replay from the committed pre-state disagrees with the committed leaf, or max.
    function firstFault(bytes32 init, bytes32[] memory committed) internal pure returns (uint256) {
        bytes32 pre = init;
        for (uint256 i = 0; i < committed.length; ++i) {
            if (step(pre) != committed[i]) return i;
            pre = committed[i];
        }
        return type(uint256).max;
    }

    function ceilLog2(uint256 n) internal pure returns (uint256 r) {
        while ((uint256(1) << r) < n) ++r;
    }
}

/// @notice Content-addressed checkpoint mirror (DESIGN §9): a state root is fetchable iff someone published it.
contract BlobStore {
    mapping(bytes32 root => bool) public has;

    function put(bytes32 root) external {
        has[root] = true;
    }
}

/// @notice A participant acting from address `who` (pranked); stalls (returns false) once `movesLeft` hits zero.
abstract contract Actor is CommonBase {
    uint256 internal constant NEVER_STALL = type(uint256).max;

    address public immutable who;
    DisputeGame internal immutable game;
    uint256 public movesLeft;

    constructor(address who_, DisputeGame game_, uint256 stallAfter) {
        who = who_;
        game = game_;
        movesLeft = stallAfter;
    }

    /// @notice The opponent ran out of clock.
    function claimTimeout(uint256 disputeId) external {
        vm.prank(who);
        game.timeout(disputeId);
    }

    function _spendMove() internal returns (bool) {
        if (movesLeft == 0) return false;
        if (movesLeft != NEVER_STALL) --movesLeft;
        return true;
    }
}

/// @notice A solver that defends whatever trajectory it committed: reveals the children of the current node from its
///         own leaves and opens the final leaf with its pre-state and inclusion proof.
contract SolverActor is Actor {
    bytes32 public immutable init;
    bytes32[] internal leaves;

    constructor(address who_, DisputeGame game_, bytes32 init_, bytes32[] memory leaves_, uint256 stallAfter)
        Actor(who_, game_, stallAfter)
    {
        init = init_;
        leaves = leaves_;
    }

    function trajectory() external view returns (bytes32[] memory) {
        return leaves;
    }

    function numLeaves() external view returns (uint256) {
        return leaves.length;
    }

    /// @notice Pushes every checkpoint to the mirror at commit (DESIGN §9).
    function publish(BlobStore store) external virtual {
        for (uint256 i = 0; i < leaves.length; ++i) {
            store.put(leaves[i]);
        }
    }

    /// @notice Plays the solver's move; false if it stalls.
    function move(uint256 disputeId) public virtual returns (bool) {
        IDisputeGame.Dispute memory d = game.getDispute(disputeId);
        require(
            d.phase == IDisputeGame.Phase.AwaitingReveal || d.phase == IDisputeGame.Phase.AwaitingLeaf,
            "SolverActor: not my turn"
        );
        if (!_spendMove()) return false;
        bytes32[] memory l = leaves;
        if (d.phase == IDisputeGame.Phase.AwaitingReveal) {
            uint256 mid = d.lo + RFC9162.splitPoint(d.hi - d.lo);
            bytes32 left = TreeRef.root(l, d.lo, mid);
            bytes32 right = TreeRef.root(l, mid, d.hi);
            vm.prank(who);
            game.reveal(disputeId, left, right);
        } else {
            uint256 i = d.lo;
            bytes32 pre = i == 0 ? init : l[i - 1];
            bytes32[] memory proof = i == 0 ? new bytes32[](0) : TreeRef.path(l, i - 1, 0, l.length);
            vm.prank(who);
            game.openLeaf(disputeId, l[i], pre, proof);
        }
        return true;
    }
}

/// @notice Commits and defends the true toy trajectory.
contract HonestSolver is SolverActor {
    constructor(address who_, DisputeGame game_, bytes32 init_, uint256 n, uint256 stallAfter)
        SolverActor(who_, game_, init_, Toy.trajectory(init_, n), stallAfter)
    {}
}

/// @notice Trains honestly up to leaf `lieFrom`, then fakes every later checkpoint (C_i wrong for i >= lieFrom).
contract LyingSolver is SolverActor {
    constructor(address who_, DisputeGame game_, bytes32 init_, uint256 n, uint256 lieFrom, uint256 stallAfter)
        SolverActor(who_, game_, init_, _lies(init_, n, lieFrom), stallAfter)
    {}

    function _lies(bytes32 init_, uint256 n, uint256 lieFrom) private pure returns (bytes32[] memory l) {
        l = new bytes32[](n);
        bytes32 state = init_;
        for (uint256 i = 0; i < n; ++i) {
            state = Toy.step(i == 0 ? init_ : l[i - 1]);
            l[i] = i >= lieFrom ? Toy.lie(state) : state;
        }
    }
}

/// @notice Commits the true trajectory except for one wrong checkpoint at `lieAt` (the following leaves are true).
contract SingleLieSolver is SolverActor {
    constructor(address who_, DisputeGame game_, bytes32 init_, uint256 n, uint256 lieAt, uint256 stallAfter)
        SolverActor(who_, game_, init_, _lie(init_, n, lieAt), stallAfter)
    {}

    function _lie(bytes32 init_, uint256 n, uint256 lieAt) private pure returns (bytes32[] memory l) {
        l = Toy.trajectory(init_, n);
        l[lieAt] = Toy.lie(l[lieAt]);
    }
}

/// @notice Trains honestly and plays the descent, but never publishes its checkpoints.
contract WithholdingSolver is SolverActor {
    constructor(address who_, DisputeGame game_, bytes32 init_, uint256 n)
        SolverActor(who_, game_, init_, Toy.trajectory(init_, n), NEVER_STALL)
    {}

    function publish(BlobStore) external pure override {}
}

/// @notice A challenger: opens the dispute, then picks a side at every AwaitingChoice.
abstract contract ChallengerActor is Actor {
    constructor(address who_, DisputeGame game_, uint256 stallAfter) Actor(who_, game_, stallAfter) {}

    function open(bytes32 jobId) external virtual returns (uint256 disputeId) {
        vm.prank(who);
        disputeId = game.openDispute(jobId);
    }

    /// @notice Plays the challenger's move; false if it stalls.
    function move(uint256 disputeId) external returns (bool) {
        IDisputeGame.Dispute memory d = game.getDispute(disputeId);
        require(d.phase == IDisputeGame.Phase.AwaitingChoice, "ChallengerActor: not my turn");
        if (!_spendMove()) return false;
        bool right = _pickRight(d);
        vm.prank(who);
        game.choose(disputeId, right);
        return true;
    }

    function _pickRight(IDisputeGame.Dispute memory d) internal view virtual returns (bool);
}

/// @notice Replays every committed segment with the toy function, finds the first one that does not match, and steers
///         the descent to it.
contract HonestChallenger is ChallengerActor {
    uint256 public immutable target;

    constructor(address who_, DisputeGame game_, bytes32 init_, bytes32[] memory committed, uint256 stallAfter)
        ChallengerActor(who_, game_, stallAfter)
    {
        target = Toy.firstFault(init_, committed);
    }

    function findsFault() public view returns (bool) {
        return target != type(uint256).max;
    }

    function open(bytes32 jobId) external override returns (uint256 disputeId) {
        require(findsFault(), "HonestChallenger: replay matched, nothing to dispute");
        vm.prank(who);
        disputeId = game.openDispute(jobId);
    }

    function _pickRight(IDisputeGame.Dispute memory d) internal view override returns (bool) {
        return target >= d.lo + RFC9162.splitPoint(d.hi - d.lo);
    }
}

/// @notice Disputes without having found anything and steers at random (or always left / always right).
contract DishonestChallenger is ChallengerActor {
    enum Steer {
        Random,
        Left,
        Right
    }

    uint256 public immutable seed;
    Steer public immutable steer;

    constructor(address who_, DisputeGame game_, uint256 seed_, Steer steer_, uint256 stallAfter)
        ChallengerActor(who_, game_, stallAfter)
    {
        seed = seed_;
        steer = steer_;
    }

    function _pickRight(IDisputeGame.Dispute memory d) internal view override returns (bool) {
        if (steer == Steer.Left) return false;
        if (steer == Steer.Right) return true;
        return uint256(keccak256(abi.encode(seed, d.lo, d.hi))) & 1 == 1;
    }
}

/// @notice A committee member that fetches the opened pre-state from the mirror, replays one toy step and votes the
///         result, or UNAVAILABLE when the pre-state cannot be fetched; commit–reveal.
contract HonestArbiter is Actor {
    BlobStore internal immutable store;
    mapping(uint256 disputeId => bytes32) public resultOf;
    mapping(uint256 disputeId => bytes32) internal saltOf;

    constructor(address who_, DisputeGame game_, BlobStore store_) Actor(who_, game_, NEVER_STALL) {
        store = store_;
    }

    function commit(uint256 disputeId) external {
        IDisputeGame.Dispute memory d = game.getDispute(disputeId);
        bytes32 result = store.has(d.preStateRoot) ? Toy.step(d.preStateRoot) : game.UNAVAILABLE();
        bytes32 salt = keccak256(abi.encode("salt", who, disputeId));
        resultOf[disputeId] = result;
        saltOf[disputeId] = salt;
        bytes32 commitment = game.voteCommitment(result, salt, who);
        vm.prank(who);
        game.commitVote(disputeId, commitment);
    }

    function reveal(uint256 disputeId) external {
        bytes32 result = resultOf[disputeId];
        bytes32 salt = saltOf[disputeId];
        vm.prank(who);
        game.revealVote(disputeId, result, salt);
    }
}

/// @notice The fixture, the actors' books and the game driver shared by the actor tests.
abstract contract DisputeActorsBase is Fixture {
    uint256 internal constant NEVER = type(uint256).max;
    uint256 internal constant BPS = 10_000;
    /// @dev Wall time each party takes per move (charged to its chess clock).
    uint256 internal constant MOVE_TIME = 10 minutes;

    BlobStore internal store;
    mapping(address => HonestArbiter) internal arbiterOf;
    uint256[] internal sizes;

    /// @notice What happened in one game.
    struct Result {
        IDisputeGame.Outcome outcome;
        uint256 reveals; // descent rounds (solver reveals)
        uint256 choices; // challenger choices
        bool reachedLeaf;
        uint256 leaf; // index of the leaf the descent ended on
        bool timedOut;
        address[] committee;
    }

    /// @notice Balances of everyone a settlement can touch.
    struct Books {
        IStakeManager.Position solver;
        IStakeManager.Position challenger;
        IStakeManager.Position submitter;
        uint256[] verifierClaims;
        uint256 burned;
    }

    function setUp() public virtual override {
        super.setUp();
        store = new BlobStore();
        store.put(INIT_ROOT); // C_init is part of the public spec
        for (uint256 i = 0; i < verifiers.length; ++i) {
            arbiterOf[verifiers[i]] = new HonestArbiter(verifiers[i], game, store);
        }
        uint256[7] memory ns = [uint256(1), 2, 3, 5, 16, 17, 100];
        for (uint256 i = 0; i < ns.length; ++i) {
            sizes.push(ns[i]);
        }
    }

    // ================================================================= driver

    /// @dev Matches and commits the solver actor's trajectory, publishes its blobs, draws the audit, lets the
    ///      challenger open a dispute and plays the game to the end.
    function _game(SolverActor solverActor, ChallengerActor challengerActor)
        internal
        returns (bytes32 jobId, Books memory before, Result memory r)
    {
        uint256 n = solverActor.numLeaves();
        // forge-lint: disable-next-line(unsafe-typecast)
        jobId = _match(uint64(n) * INTERVAL, INTERVAL);
        _commit(jobId, solverActor.trajectory());
        solverActor.publish(store);
        _drawAudit(jobId);
        before = _books();
        uint256 disputeId = challengerActor.open(jobId);
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Disputed));
        r = _play(disputeId, solverActor, challengerActor);
    }

    /// @dev Lets each side move on its turn until the dispute is resolved; a side that stalls is timed out by the
    ///      other once its clock has run out.
    function _play(uint256 disputeId, SolverActor s, ChallengerActor c) internal returns (Result memory r) {
        for (uint256 guard = 0; guard < 64; ++guard) {
            IDisputeGame.Dispute memory d = game.getDispute(disputeId);
            IDisputeGame.Phase phase = d.phase;
            if (phase == IDisputeGame.Phase.Resolved) {
                r.outcome = d.outcome;
                r.committee = game.committee(disputeId);
                return r;
            }
            if (phase == IDisputeGame.Phase.AwaitingReveal || phase == IDisputeGame.Phase.AwaitingLeaf) {
                if (phase == IDisputeGame.Phase.AwaitingLeaf) {
                    assertEq(d.hi - d.lo, 1, "one leaf left");
                    r.reachedLeaf = true;
                    r.leaf = d.lo;
                }
                vm.warp(block.timestamp + MOVE_TIME);
                if (s.move(disputeId)) {
                    if (phase == IDisputeGame.Phase.AwaitingReveal) ++r.reveals;
                } else {
                    _expectNoTimeoutYet(disputeId);
                    vm.warp(uint256(d.lastMoveAt) + d.solverClock + 1);
                    c.claimTimeout(disputeId);
                    r.timedOut = true;
                }
            } else if (phase == IDisputeGame.Phase.AwaitingChoice) {
                vm.warp(block.timestamp + MOVE_TIME);
                if (c.move(disputeId)) {
                    ++r.choices;
                } else {
                    _expectNoTimeoutYet(disputeId);
                    vm.warp(uint256(d.lastMoveAt) + d.challengerClock + 1);
                    s.claimTimeout(disputeId);
                    r.timedOut = true;
                }
            } else if (phase == IDisputeGame.Phase.AwaitingCommittee) {
                vm.roll(d.seedBlock + 1);
                vm.setBlockhash(d.seedBlock, keccak256(abi.encode("committee", disputeId)));
                game.drawCommittee(disputeId, _committeeHeader(disputeId));
            } else {
                _vote(disputeId);
            }
        }
        revert("dispute did not end within 64 moves");
    }

    /// @dev Before the clock runs out a timeout is refused.
    function _expectNoTimeoutYet(uint256 disputeId) internal {
        IDisputeGame.Dispute memory d = game.getDispute(disputeId);
        uint256 clock = d.phase == IDisputeGame.Phase.AwaitingChoice ? d.challengerClock : d.solverClock;
        uint256 expiresAt = uint256(d.lastMoveAt) + clock;
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.ClockNotExpired.selector, disputeId, expiresAt));
        game.timeout(disputeId);
    }

    function _vote(uint256 disputeId) internal {
        address[] memory committee = game.committee(disputeId);
        assertEq(committee.length, gp.committeeSize, "full committee drawn");
        for (uint256 i = 0; i < committee.length; ++i) {
            assertTrue(address(arbiterOf[committee[i]]) != address(0), "arbiter is a known verifier");
            assertTrue(committee[i] != solver && committee[i] != challenger, "parties excluded");
            arbiterOf[committee[i]].commit(disputeId);
        }
        for (uint256 i = 0; i < committee.length; ++i) {
            arbiterOf[committee[i]].reveal(disputeId);
        }
    }

    // ============================================================= assertions

    function _verifierIndex(address v) internal view returns (uint256) {
        for (uint256 i = 0; i < verifiers.length; ++i) {
            if (verifiers[i] == v) return i;
        }
        revert("not a verifier");
    }

    function _assertDescent(Result memory r, uint256 n) internal pure {
        assertTrue(r.reachedLeaf, "descent reached a leaf");
        assertEq(r.reveals, RFC9162.leafDepth(r.leaf, n), "rounds = RFC 9162 depth of the leaf");
        assertEq(r.choices, r.reveals, "one choice per reveal");
        assertLe(r.reveals, Toy.ceilLog2(n), "rounds <= ceil(log2 N)");
    }

    function _books() internal view returns (Books memory b) {
        b.solver = stakes.positionOf(solver);
        b.challenger = stakes.positionOf(challenger);
        b.submitter = stakes.positionOf(submitter);
        b.verifierClaims = new uint256[](verifiers.length);
        for (uint256 i = 0; i < verifiers.length; ++i) {
            b.verifierClaims[i] = stakes.positionOf(verifiers[i]).claimable;
        }
        b.burned = token.balanceOf(stakes.BURN_ADDRESS());
    }

    /// @dev Solver slashed: submitter refunded the price, challenger paid the winner's share and its bond returned,
    ///      majority arbiters paid, the rest burned.
    function _assertChallengerWon(bytes32 jobId, Books memory before, Result memory r) internal view {
        assertEq(uint8(r.outcome), uint8(IDisputeGame.Outcome.ChallengerWon), "challenger won");
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Slashed), "job slashed");
        uint256 stake = job.stake;
        uint256 majority = r.timedOut ? 0 : r.committee.length;
        uint256 winnerShare = stake * mp.slashWinnerBps / BPS;
        uint256 arbiterShare = majority == 0 ? 0 : stake * mp.slashArbiterBps / BPS / majority;

        Books memory a = _books();
        assertEq(a.submitter.claimable, before.submitter.claimable + PRICE, "submitter refunded");
        assertEq(stakes.escrowOf(jobId), 0, "escrow emptied");
        assertEq(a.challenger.claimable, before.challenger.claimable + winnerShare, "challenger paid");
        assertEq(a.challenger.free, before.challenger.free, "bond returned");
        assertEq(a.challenger.locked, before.challenger.locked, "no challenger lock left");
        assertEq(a.solver.locked, before.solver.locked - stake, "job stake gone");
        assertEq(a.solver.free, before.solver.free, "solver free untouched");
        assertEq(a.solver.claimable, before.solver.claimable, "solver paid nothing");
        _assertArbitersPaid(before, a, r, arbiterShare);
        assertEq(a.burned, before.burned + stake - winnerShare - arbiterShare * majority, "rest burned");
    }

    /// @dev Challenger's bond slashed: solver paid the winner's share, majority arbiters paid, rest burned; the job is
    ///      Committed again with its stake still locked.
    function _assertSolverWon(bytes32 jobId, Books memory before, Result memory r) internal view {
        assertEq(uint8(r.outcome), uint8(IDisputeGame.Outcome.SolverWon), "solver won");
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Committed), "job back to Committed");
        uint256 bond = game.disputeBondFor(job.stake, job.price);
        uint256 majority = r.timedOut ? 0 : r.committee.length;
        uint256 winnerShare = bond * mp.slashWinnerBps / BPS;
        uint256 arbiterShare = majority == 0 ? 0 : bond * mp.slashArbiterBps / BPS / majority;

        Books memory a = _books();
        assertEq(a.solver.claimable, before.solver.claimable + winnerShare, "solver paid");
        assertEq(a.solver.locked, before.solver.locked, "job stake still locked");
        assertEq(a.challenger.free, before.challenger.free - bond, "bond slashed");
        assertEq(a.challenger.locked, before.challenger.locked, "no challenger lock left");
        assertEq(a.challenger.claimable, before.challenger.claimable, "challenger paid nothing");
        assertEq(a.submitter.claimable, before.submitter.claimable, "submitter not refunded");
        assertEq(stakes.escrowOf(jobId), PRICE, "escrow intact");
        _assertArbitersPaid(before, a, r, arbiterShare);
        assertEq(a.burned, before.burned + bond - winnerShare - arbiterShare * majority, "rest burned");
    }

    function _assertArbitersPaid(Books memory before, Books memory a, Result memory r, uint256 share) internal view {
        for (uint256 i = 0; i < verifiers.length; ++i) {
            bool sat = false;
            for (uint256 j = 0; j < r.committee.length; ++j) {
                if (r.committee[j] == verifiers[i]) sat = true;
            }
            uint256 expected = before.verifierClaims[i] + (sat && !r.timedOut ? share : 0);
            assertEq(a.verifierClaims[i], expected, "arbiter share");
            if (sat) assertEq(stakes.positionOf(verifiers[i]).locked, 0, "arbiter stake released");
        }
    }
}

contract DisputeActorsTest is DisputeActorsBase {
    // ================================================================= matrix

    /// @notice Honest solver vs a challenger that disputes a correct trajectory and steers at random: the solver wins
    ///         on the arbiters' replay, the challenger's bond is slashed; for every size, with several steering seeds.
    function test_honestSolver_beatsDishonestChallenger_everySize() public {
        for (uint256 s = 0; s < sizes.length; ++s) {
            for (uint256 seed = 0; seed < 3; ++seed) {
                uint256 snap = vm.snapshotState();
                uint256 n = sizes[s];
                SolverActor solverActor = new HonestSolver(solver, game, INIT_ROOT, n, NEVER);
                ChallengerActor challengerActor =
                    new DishonestChallenger(challenger, game, seed, DishonestChallenger.Steer.Random, NEVER);
                (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

                _assertDescent(r, n);
                assertFalse(r.timedOut, "nobody stalled");
                _assertSolverWon(jobId, before, r);
                vm.revertToState(snap);
            }
        }
    }

    /// @notice A solver lying from leaf L onward loses to the honest challenger, which steers exactly to L; the
    ///         submitter is refunded and the challenger paid its share. L ∈ {first, middle, last}, every size.
    function test_lyingSolver_losesToHonestChallenger_liesFromLeaf() public {
        for (uint256 s = 0; s < sizes.length; ++s) {
            uint256 n = sizes[s];
            uint256[3] memory positions = [uint256(0), n / 2, n - 1];
            for (uint256 p = 0; p < positions.length; ++p) {
                uint256 snap = vm.snapshotState();
                uint256 lieFrom = positions[p];
                SolverActor solverActor = new LyingSolver(solver, game, INIT_ROOT, n, lieFrom, NEVER);
                HonestChallenger challengerActor =
                    new HonestChallenger(challenger, game, INIT_ROOT, solverActor.trajectory(), NEVER);
                assertEq(challengerActor.target(), lieFrom, "replay finds the first lie");
                (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

                _assertDescent(r, n);
                assertEq(r.leaf, lieFrom, "descent ends on the first wrong leaf");
                assertEq(r.reveals, RFC9162.leafDepth(lieFrom, n), "rounds = depth of the lie");
                assertFalse(r.timedOut, "nobody stalled");
                _assertChallengerWon(jobId, before, r);
                vm.revertToState(snap);
            }
        }
    }

    /// @notice A solver that fakes one checkpoint only (the later ones are true again) still loses: the honest
    ///         challenger steers to that leaf, whose replay from the true pre-state disagrees.
    function test_singleLieSolver_losesToHonestChallenger() public {
        for (uint256 s = 0; s < sizes.length; ++s) {
            uint256 n = sizes[s];
            uint256[3] memory positions = [uint256(0), n / 2, n - 1];
            for (uint256 p = 0; p < positions.length; ++p) {
                uint256 snap = vm.snapshotState();
                uint256 lieAt = positions[p];
                SolverActor solverActor = new SingleLieSolver(solver, game, INIT_ROOT, n, lieAt, NEVER);
                HonestChallenger challengerActor =
                    new HonestChallenger(challenger, game, INIT_ROOT, solverActor.trajectory(), NEVER);
                (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

                _assertDescent(r, n);
                assertEq(r.leaf, lieAt, "descent ends on the faked leaf");
                _assertChallengerWon(jobId, before, r);
                vm.revertToState(snap);
            }
        }
    }

    /// @notice An honest solver that stops answering (after k moves, at any point of the descent or before opening
    ///         the leaf) loses on its clock: being right does not help a party that stalls.
    function test_stallingSolver_losesOnTimeout_evenWhenHonest() public {
        uint256[3] memory ns = [uint256(1), 17, 100];
        for (uint256 s = 0; s < ns.length; ++s) {
            uint256 n = ns[s];
            uint256 depth = RFC9162.leafDepth(n - 1, n); // the always-right challenger ends on leaf n-1
            for (uint256 k = 0; k <= depth; ++k) {
                uint256 snap = vm.snapshotState();
                SolverActor solverActor = new HonestSolver(solver, game, INIT_ROOT, n, k);
                ChallengerActor challengerActor =
                    new DishonestChallenger(challenger, game, 0, DishonestChallenger.Steer.Right, NEVER);
                (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

                assertTrue(r.timedOut, "the game ended on a timeout");
                assertEq(r.reveals, k < depth ? k : depth, "solver stopped after k moves");
                assertEq(r.committee.length, 0, "no committee needed");
                _assertChallengerWon(jobId, before, r);
                vm.revertToState(snap);
            }
        }
    }

    /// @notice An honest challenger that stops choosing loses on its clock against a lying solver.
    function test_stallingChallenger_losesOnTimeout_evenWhenRight() public {
        uint256[3] memory ns = [uint256(2), 17, 100];
        for (uint256 s = 0; s < ns.length; ++s) {
            uint256 n = ns[s];
            uint256 lieFrom = n / 2;
            uint256 depth = RFC9162.leafDepth(lieFrom, n);
            for (uint256 k = 0; k < depth; ++k) {
                uint256 snap = vm.snapshotState();
                SolverActor solverActor = new LyingSolver(solver, game, INIT_ROOT, n, lieFrom, NEVER);
                ChallengerActor challengerActor =
                    new HonestChallenger(challenger, game, INIT_ROOT, solverActor.trajectory(), k);
                (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

                assertTrue(r.timedOut, "the game ended on a timeout");
                assertEq(r.choices, k, "challenger stopped after k choices");
                _assertSolverWon(jobId, before, r);
                vm.revertToState(snap);
            }
        }
    }

    /// @notice A challenger that disputes an honest trajectory and then stops choosing loses its bond on its clock.
    function test_stallingDishonestChallenger_losesOnTimeout() public {
        uint256 n = 16; // every leaf at depth 4, so the challenger always has a choice left to skip
        for (uint256 k = 0; k < 4; ++k) {
            uint256 snap = vm.snapshotState();
            SolverActor solverActor = new HonestSolver(solver, game, INIT_ROOT, n, NEVER);
            ChallengerActor challengerActor =
                new DishonestChallenger(challenger, game, k, DishonestChallenger.Steer.Random, k);
            (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

            assertTrue(r.timedOut, "the game ended on a timeout");
            assertEq(r.choices, k);
            _assertSolverWon(jobId, before, r);
            vm.revertToState(snap);
        }
    }

    /// @notice An arbiter that commits but never reveals forfeits its arbiter stake to the majority; the remaining
    ///         honest majority still decides against the lying solver once the reveal deadline passes.
    function test_silentArbiter_forfeitsStake_majorityStillDecides() public {
        uint256 n = 16; // as matched below
        SolverActor solverActor = new LyingSolver(solver, game, INIT_ROOT, n, 5, NEVER);
        HonestChallenger challengerActor =
            new HonestChallenger(challenger, game, INIT_ROOT, solverActor.trajectory(), NEVER);
        bytes32 jobId = _match(16 * INTERVAL, INTERVAL);
        _commit(jobId, solverActor.trajectory());
        solverActor.publish(store);
        uint256 id = challengerActor.open(jobId);
        for (uint256 guard = 0; game.getDispute(id).phase != IDisputeGame.Phase.AwaitingCommittee; ++guard) {
            require(guard < 32, "descent did not end");
            IDisputeGame.Phase phase = game.getDispute(id).phase;
            if (phase == IDisputeGame.Phase.AwaitingChoice) assertTrue(challengerActor.move(id));
            else assertTrue(solverActor.move(id));
        }
        IDisputeGame.Dispute memory d = game.getDispute(id);
        vm.roll(d.seedBlock + 1);
        vm.setBlockhash(d.seedBlock, keccak256("silent arbiter"));
        game.drawCommittee(id, _committeeHeader(id));
        address[] memory committee = game.committee(id);
        assertEq(committee.length, 3);
        Books memory before = _books();
        uint256 silentFreeBefore = stakes.positionOf(committee[2]).free;

        for (uint256 i = 0; i < 3; ++i) {
            arbiterOf[committee[i]].commit(id);
        }
        arbiterOf[committee[0]].reveal(id);
        arbiterOf[committee[1]].reveal(id); // committee[2] stays silent
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.VotingNotOver.selector, id));
        game.resolve(id);
        vm.warp(game.getDispute(id).revealDeadline);
        game.resolve(id);

        d = game.getDispute(id);
        assertEq(uint8(d.outcome), uint8(IDisputeGame.Outcome.ChallengerWon));
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Slashed));
        uint256 stake = market.getJob(jobId).stake;
        uint256 perArbiter = stake * mp.slashArbiterBps / BPS / 2 + game.getDispute(id).arbiterLock / 2;
        for (uint256 i = 0; i < 2; ++i) {
            assertEq(
                stakes.positionOf(committee[i]).claimable,
                before.verifierClaims[_verifierIndex(committee[i])] + perArbiter,
                "majority arbiter paid its share of the job stake and of the silent arbiter's stake"
            );
            assertEq(stakes.positionOf(committee[i]).locked, 0);
        }
        IStakeManager.Position memory silent = stakes.positionOf(committee[2]);
        assertEq(silent.locked, 0, "silent arbiter's lock gone");
        assertEq(silent.free, silentFreeBefore, "and not returned");
        assertEq(silent.claimable, before.verifierClaims[_verifierIndex(committee[2])], "silent arbiter paid nothing");
    }

    /// @notice A lying solver that stalls instead of opening its wrong leaf loses on its clock as well.
    function test_stallingLiar_losesOnTimeout() public {
        uint256 n = 16;
        uint256 lieFrom = 11;
        uint256 depth = RFC9162.leafDepth(lieFrom, n);
        SolverActor solverActor = new LyingSolver(solver, game, INIT_ROOT, n, lieFrom, depth);
        ChallengerActor challengerActor =
            new HonestChallenger(challenger, game, INIT_ROOT, solverActor.trajectory(), NEVER);
        (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

        assertTrue(r.reachedLeaf && r.leaf == lieFrom, "reached the lie");
        assertTrue(r.timedOut, "never opened it");
        _assertChallengerWon(jobId, before, r);
    }

    /// @notice A solver that trained honestly but withholds its checkpoints loses: the arbiters cannot fetch the
    ///         opened pre-state and vote UNAVAILABLE, which counts against the solver (DESIGN §8.5).
    function test_withholdingSolver_losesOnUnavailableVotes() public {
        uint256[4] memory ns = [uint256(2), 5, 17, 100];
        for (uint256 s = 0; s < ns.length; ++s) {
            uint256 snap = vm.snapshotState();
            uint256 n = ns[s];
            SolverActor solverActor = new WithholdingSolver(solver, game, INIT_ROOT, n);
            ChallengerActor challengerActor =
                new DishonestChallenger(challenger, game, 0, DishonestChallenger.Steer.Right, NEVER);
            (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

            assertEq(r.leaf, n - 1, "descent ended on the last leaf");
            for (uint256 i = 0; i < r.committee.length; ++i) {
                assertEq(
                    arbiterOf[r.committee[i]].resultOf(game.latestDisputeOf(jobId)), game.UNAVAILABLE(), "voted n/a"
                );
            }
            _assertChallengerWon(jobId, before, r);
            vm.revertToState(snap);
        }
    }

    /// @notice At leaf 0 the pre-state is C_init, which is public (signed into the order), so even a withholding
    ///         solver's honest segment can be replayed and it wins.
    function test_withholdingSolver_winsAtLeafZero_initStateIsPublic() public {
        SolverActor solverActor = new WithholdingSolver(solver, game, INIT_ROOT, 16);
        ChallengerActor challengerActor =
            new DishonestChallenger(challenger, game, 0, DishonestChallenger.Steer.Left, NEVER);
        (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

        assertEq(r.leaf, 0);
        _assertSolverWon(jobId, before, r);
    }

    /// @notice The honest challenger's replay finds nothing in an honest trajectory, so it never opens a dispute.
    function test_honestChallenger_findsNoFaultInHonestTrajectory() public {
        for (uint256 s = 0; s < sizes.length; ++s) {
            HonestSolver solverActor = new HonestSolver(solver, game, INIT_ROOT, sizes[s], NEVER);
            HonestChallenger challengerActor =
                new HonestChallenger(challenger, game, INIT_ROOT, solverActor.trajectory(), NEVER);
            assertFalse(challengerActor.findsFault());
        }
    }

    /// @notice Whatever the size, the lie and the steering: the honest side wins and the descent takes the disputed
    ///         leaf's depth.
    /// forge-config: default.fuzz.runs = 96
    function testFuzz_honestSideAlwaysWins(uint256 nSeed, uint256 lieSeed, uint256 steerSeed, uint8 kind) public {
        uint256 n = bound(nSeed, 1, 130);
        uint256 lieAt = bound(lieSeed, 0, n - 1);
        kind = kind % 3;
        SolverActor solverActor;
        ChallengerActor challengerActor;
        if (kind == 0) {
            solverActor = new HonestSolver(solver, game, INIT_ROOT, n, NEVER);
            challengerActor =
                new DishonestChallenger(challenger, game, steerSeed, DishonestChallenger.Steer.Random, NEVER);
        } else {
            solverActor = kind == 1
                ? SolverActor(new LyingSolver(solver, game, INIT_ROOT, n, lieAt, NEVER))
                : SolverActor(new SingleLieSolver(solver, game, INIT_ROOT, n, lieAt, NEVER));
            challengerActor = new HonestChallenger(challenger, game, INIT_ROOT, solverActor.trajectory(), NEVER);
        }
        (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);

        _assertDescent(r, n);
        if (kind == 0) {
            _assertSolverWon(jobId, before, r);
        } else {
            assertEq(r.leaf, lieAt);
            _assertChallengerWon(jobId, before, r);
        }
    }

    /// @notice After winning a dispute the honest solver's job is Committed again and finalizes normally: paid in full
    ///         apart from the audit fee budget, stake unlocked.
    function test_honestSolver_isPaidAfterWinningDispute() public {
        SolverActor solverActor = new HonestSolver(solver, game, INIT_ROOT, 17, NEVER);
        ChallengerActor challengerActor =
            new DishonestChallenger(challenger, game, 7, DishonestChallenger.Steer.Random, NEVER);
        (bytes32 jobId, Books memory before, Result memory r) = _game(solverActor, challengerActor);
        _assertSolverWon(jobId, before, r);

        IJobMarket.Job memory job = market.getJob(jobId);
        vm.warp(job.auditEnd);
        market.finalize(jobId);
        IStakeManager.Position memory after_ = stakes.positionOf(solver);
        uint256 bondShare = game.disputeBondFor(job.stake, job.price) * mp.slashWinnerBps / BPS;
        uint256 pay = PRICE - PRICE * mp.auditFeeBps / BPS;
        assertEq(after_.claimable, before.solver.claimable + bondShare + pay, "bond share + price - fee budget");
        assertEq(after_.locked, before.solver.locked - job.stake, "job stake unlocked");
        assertEq(stakes.escrowOf(jobId), 0, "escrow emptied");
    }
}
