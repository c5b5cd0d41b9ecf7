// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {
    Actor,
    BlobStore,
    ChallengerActor,
    DishonestChallenger,
    DisputeActorsBase,
    HonestChallenger,
    HonestSolver,
    LyingSolver,
    SolverActor,
    Toy
} from "./DisputeActors.t.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {TreeRef} from "../utils/TreeRef.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

// The attacks an adversarial review found on the contracts, each played by an attacker actor against the deployed
// protocol: every one must fail or lose the attacker money.

/// @notice Attack 1: commits the reserved UNAVAILABLE value as leaf `at` and withholds the real pre-state (leaf
///         `at`-1), hoping the honest arbiters' "unavailable" votes match its opened leaf.
contract SentinelSolver is SolverActor {
    uint256 public immutable at;
    bytes4 public refusedWith;

    constructor(address who_, DisputeGame game_, bytes32 init_, uint256 n, uint256 at_)
        SolverActor(who_, game_, init_, _leaves(init_, n, at_, game_.UNAVAILABLE()), NEVER_STALL)
    {
        at = at_;
    }

    function _leaves(bytes32 init_, uint256 n, uint256 at_, bytes32 unavailable)
        private
        pure
        returns (bytes32[] memory l)
    {
        l = Toy.trajectory(init_, n);
        l[at_] = unavailable;
    }

    /// @notice Publishes everything but the pre-state of leaf `at`.
    function publish(BlobStore store) external override {
        for (uint256 i = 0; i < leaves.length; ++i) {
            if (i + 1 != at) store.put(leaves[i]);
        }
    }

    /// @notice Descends like any solver; at the leaf it tries to open UNAVAILABLE and stalls when that is refused.
    function move(uint256 disputeId) public override returns (bool) {
        IDisputeGame.Dispute memory d = game.getDispute(disputeId);
        if (d.phase != IDisputeGame.Phase.AwaitingLeaf) return super.move(disputeId);
        uint256 i = d.lo;
        bytes32[] memory l = leaves;
        bytes32 pre = i == 0 ? init : l[i - 1];
        bytes32[] memory proof = i == 0 ? new bytes32[](0) : TreeRef.path(l, i - 1, 0, l.length);
        vm.prank(who);
        try game.openLeaf(disputeId, l[i], pre, proof) {
            return true;
        } catch (bytes memory err) {
            refusedWith = bytes4(err);
            return false;
        }
    }
}

/// @notice Attack 3: the solver's sybil challenger. It disputes, stalls, and when its clock has run out settles its
///         own dispute and files a new one in the same transaction, so the job is never Committed at a block's end.
contract Squatter {
    DisputeGame internal immutable game;

    constructor(DisputeGame game_) {
        game = game_;
    }

    function stake(IERC20 token, StakeManager stakes, uint256 amount) external {
        token.approve(address(stakes), amount);
        stakes.deposit(amount);
    }

    function open(bytes32 jobId) external returns (uint256) {
        return game.openDispute(jobId);
    }

    /// @notice One transaction: `timeout` on its own stalled dispute, then `openDispute` again.
    function settleAndReopen(uint256 disputeId, bytes32 jobId) external returns (uint256) {
        game.timeout(disputeId);
        return game.openDispute(jobId);
    }
}

/// @notice Attack 6: a sybil arbiter of the lying solver; it always votes for the opened leaf.
contract ColludingArbiter is Actor {
    constructor(address who_, DisputeGame game_) Actor(who_, game_, NEVER_STALL) {}

    function commit(uint256 disputeId) external {
        bytes32 result = game.getDispute(disputeId).postStateRoot;
        bytes32 commitment = game.voteCommitment(result, keccak256(abi.encode("sybil", disputeId)), who);
        vm.prank(who);
        game.commitVote(disputeId, commitment);
    }

    function reveal(uint256 disputeId) external {
        bytes32 result = game.getDispute(disputeId).postStateRoot;
        vm.prank(who);
        game.revealVote(disputeId, result, keccak256(abi.encode("sybil", disputeId)));
    }
}

/// @notice Attack 2: waits until the seed block is mined (its RANDAO value public, so the draw can be simulated), then
///         in one transaction stakes a sybil weight far above the whole pool, registers it, and calls the draw.
contract Briber {
    function stakeAndDrawCommittee(
        IERC20 token,
        StakeManager stakes,
        DisputeGame game,
        uint256 id,
        bytes calldata header,
        uint256 amount
    ) external {
        _stake(token, stakes, amount);
        game.drawCommittee(id, header);
    }

    function stakeAndDrawAudit(
        IERC20 token,
        StakeManager stakes,
        JobMarket market,
        bytes32 jobId,
        bytes calldata header
    ) external {
        _stake(token, stakes, token.balanceOf(address(this)));
        market.drawAudit(jobId, header);
    }

    function _stake(IERC20 token, StakeManager stakes, uint256 amount) private {
        token.approve(address(stakes), amount);
        stakes.deposit(amount);
        stakes.setVerifier(true);
    }
}

contract AttackActorsTest is DisputeActorsBase {
    // ====================================================== 1. sentinel leaves

    /// @notice The final state root cannot be UNAVAILABLE (or zero): `commit` refuses it by name.
    function test_attack1_commitRefusesUnavailableFinalState() public {
        bytes32 jobId = _match(4 * INTERVAL, INTERVAL);
        bytes32[] memory leaves = Toy.trajectory(INIT_ROOT, 4);
        leaves[3] = game.UNAVAILABLE();
        bytes32 root = _root(leaves, 0, 4);
        bytes32[] memory proof = _path(leaves, 3, 0, 4);
        bytes32 unavailable = game.UNAVAILABLE();
        vm.prank(solver);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ReservedRoot.selector, unavailable));
        market.commit(jobId, root, 4, leaves[3], proof, "");
    }

    /// @notice An order whose C_init is a reserved value cannot be matched: leaf 0's pre-state is never UNAVAILABLE.
    function test_attack1_acceptBidRefusesReservedInitState() public {
        IJobMarket.JobOrder memory o = _order(STEPS, INTERVAL);
        o.initStateRoot = game.UNAVAILABLE();
        bytes32 h = market.hashOrder(o);
        IJobMarket.Bid memory b = _bid(h, PRICE);
        bytes memory orderSig = _sign(SUBMITTER_KEY, h);
        bytes memory bidSig = _sign(SOLVER_KEY, market.hashBid(b));
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.ReservedRoot.selector, o.initStateRoot));
        market.acceptBid(o, orderSig, b, bidSig);
    }

    /// @notice A solver commits UNAVAILABLE as an inner leaf and withholds that leaf's pre-state. The honest
    ///         challenger steers to it; the solver cannot open a reserved value (`ReservedLeaf`), runs out of clock and
    ///         loses its job stake; the challenger is paid. For a leaf at the start, middle and end of several sizes.
    function test_attack1_unavailableLeaf_cannotBeOpened_liarSlashed() public {
        uint256[3] memory ns = [uint256(3), 16, 17]; // the sentinel is never the last leaf (commit refuses that)
        for (uint256 s = 0; s < ns.length; ++s) {
            uint256 n = ns[s];
            uint256[2] memory ats = [uint256(0), n / 2];
            for (uint256 p = 0; p < ats.length; ++p) {
                uint256 snap = vm.snapshotState();
                SentinelSolver liar = new SentinelSolver(solver, game, INIT_ROOT, n, ats[p]);
                HonestChallenger honest = new HonestChallenger(challenger, game, INIT_ROOT, liar.trajectory(), NEVER);
                assertEq(honest.target(), ats[p], "the replay finds the sentinel leaf");
                (bytes32 jobId, Books memory before, Result memory r) = _game(liar, honest);

                assertEq(r.leaf, ats[p], "descent ends on the sentinel leaf");
                assertEq(liar.refusedWith(), IDisputeGame.ReservedLeaf.selector, "opening UNAVAILABLE refused");
                assertTrue(r.timedOut, "the liar could only stall");
                _assertChallengerWon(jobId, before, r);
                vm.revertToState(snap);
            }
        }
    }

    // ============================================ 2. draws against live weights

    /// @notice A lying solver's briber sees the committee seed, then stakes 10^6 VERI (the pool holds a few thousand)
    ///         and calls the draw in the same transaction. Against live weights it would take every seat it can (shown
    ///         by drawing with the weights as they stand after its deposit); the contract draws by the weights before
    ///         the seed was fixed, so the committee is exactly the one drawn without the briber, and it sits nowhere.
    function test_attack2_stakeAfterSeed_doesNotMoveTheCommittee() public {
        (uint256 id,) = _disputeAwaitingCommittee(PRICE);
        IDisputeGame.Dispute memory d = game.getDispute(id);
        vm.roll(d.seedBlock + 1);
        bytes32 randao = _randao(d.seedBlock);
        bytes memory header = _committeeHeader(id);

        uint256 snap = vm.snapshotState();
        game.drawCommittee(id, header);
        address[] memory fair = game.committee(id);
        assertEq(fair.length, gp.committeeSize);
        vm.revertToState(snap);

        Briber briber = new Briber();
        uint256 bribe = 1_000_000 ether;
        _fund(address(briber), bribe);
        briber.stakeAndDrawCommittee(IERC20(address(token)), stakes, game, id, header, bribe);
        address[] memory drawn = game.committee(id);
        assertEq(drawn.length, fair.length);
        for (uint256 i = 0; i < drawn.length; ++i) {
            assertEq(drawn[i], fair[i], "the same committee, seat by seat");
        }

        assertEq(_liveDraw(id, d, randao)[0], address(briber), "with live weights the briber would have sat");
    }

    /// @dev The committee dispute `id` would get from the same seed over the weights as they stand now.
    function _liveDraw(uint256 id, IDisputeGame.Dispute memory d, bytes32 randao) internal returns (address[] memory) {
        bytes32 seed = keccak256(abi.encode(randao, id, keccak256("veritrain.committee")));
        uint256 lock = game.arbiterLockFor(market.getJob(d.jobId).stake);
        vm.roll(block.number + 1);
        return stakes.drawDistinct(seed, gp.committeeSize, _parties(d), lock, block.number - 1);
    }

    /// @notice A lying solver's briber stakes after the audit seed is known and draws the audit in the same
    ///         transaction, hoping to be its own auditor: the assigned verifiers are those drawn without it.
    function test_attack2_stakeAfterAuditSeed_isNotAssigned() public {
        bytes32 jobId = _match(8 * INTERVAL, INTERVAL);
        _commit(jobId, Toy.trajectory(INIT_ROOT, 8));
        vm.roll(market.getJob(jobId).seedBlock + 1);
        bytes memory header = _auditHeader(jobId);

        uint256 snap = vm.snapshotState();
        market.drawAudit(jobId, header);
        address[] memory fair = market.assignedVerifiers(jobId);
        vm.revertToState(snap);

        Briber briber = new Briber();
        _fund(address(briber), 1_000_000 ether);
        briber.stakeAndDrawAudit(IERC20(address(token)), stakes, market, jobId, header);
        address[] memory assigned = market.assignedVerifiers(jobId);
        assertEq(assigned.length, fair.length);
        for (uint256 i = 0; i < assigned.length; ++i) {
            assertEq(assigned[i], fair[i], "the same auditors");
            assertTrue(assigned[i] != address(briber));
        }
    }

    /// @dev A lying solver's job disputed by the honest challenger down to its wrong leaf, before the committee draw.
    function _disputeAwaitingCommittee(uint256 price) internal returns (uint256 id, bytes32 jobId) {
        SolverActor liar = new LyingSolver(solver, game, INIT_ROOT, 8, 3, NEVER);
        HonestChallenger honest = new HonestChallenger(challenger, game, INIT_ROOT, liar.trajectory(), NEVER);
        jobId = _matchAt(8 * INTERVAL, price);
        _commit(jobId, liar.trajectory());
        liar.publish(store);
        _drawAudit(jobId);
        id = honest.open(jobId);
        for (uint256 guard = 0; game.getDispute(id).phase != IDisputeGame.Phase.AwaitingCommittee; ++guard) {
            require(guard < 16, "descent did not end");
            vm.warp(block.timestamp + MOVE_TIME);
            if (game.getDispute(id).phase == IDisputeGame.Phase.AwaitingChoice) assertTrue(honest.move(id));
            else assertTrue(liar.move(id));
        }
    }

    /// @dev Those a committee draw excludes: solver, challenger, submitter.
    function _parties(IDisputeGame.Dispute memory d) internal view returns (address[] memory exclude) {
        exclude = new address[](3);
        (exclude[0], exclude[1], exclude[2]) = (d.solver, d.challenger, market.getJob(d.jobId).submitter);
    }

    // ================================================= 3. squatting the slot

    /// @notice A lying solver's sybil opens a dispute one second before the audit window ends and stalls; the honest
    ///         challenger files behind it (queued, bond locked). When the sybil's clock is out, the sybil settles and
    ///         re-files in one transaction: the honest dispute has already started inside the settling call, the
    ///         sybil's new one waits behind it. The honest challenger plays, the liar is slashed, the sybil's second
    ///         bond is returned only as Superseded, and its first bond was lost. The window never closed meanwhile.
    function test_attack3_settleAndReopen_cannotStarveQueuedChallenger() public {
        uint256 n = 16;
        SolverActor liar = new LyingSolver(solver, game, INIT_ROOT, n, 5, NEVER);
        HonestChallenger honest = new HonestChallenger(challenger, game, INIT_ROOT, liar.trajectory(), NEVER);
        Squatter sybil = new Squatter(game);
        _fund(address(sybil), 1_000 ether);
        sybil.stake(IERC20(address(token)), stakes, 1_000 ether);

        bytes32 jobId = _match(uint64(n) * INTERVAL, INTERVAL);
        _commit(jobId, liar.trajectory());
        liar.publish(store);
        _drawAudit(jobId);
        vm.warp(market.getJob(jobId).auditEnd - 1);
        uint256 squat = sybil.open(jobId);
        uint256 honestId = honest.open(jobId);
        assertEq(uint8(game.getDispute(honestId).phase), uint8(IDisputeGame.Phase.Queued), "honest challenge queued");
        uint256 bond = game.disputeBondFor(market.getJob(jobId).stake, PRICE);
        assertEq(stakes.lockedUnder(challenger, _bondKey(honestId)), bond, "its bond is locked");

        // The liar answers, its sybil stalls; long after the original window end, the sybil settles its own
        // dispute (SolverWon on its clock) and re-files, in one transaction.
        vm.warp(block.timestamp + MOVE_TIME);
        assertTrue(liar.move(squat));
        vm.warp(block.timestamp + gp.clockBudget + 1);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Disputed));
        market.finalize(jobId);
        uint256 squat2 = sybil.settleAndReopen(squat, jobId);

        assertEq(uint8(game.getDispute(squat).outcome), uint8(IDisputeGame.Outcome.SolverWon), "sybil lost its bond");
        assertEq(game.activeDisputeOf(jobId), honestId, "the honest dispute started inside the settling call");
        assertEq(uint8(game.getDispute(squat2).phase), uint8(IDisputeGame.Phase.Queued), "the re-filed one waits");
        uint256[] memory q = game.queuedDisputes(jobId);
        assertEq(q.length, 1);
        assertEq(q[0], squat2);
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Disputed), "window still paused");

        Books memory before = _books();
        Result memory r = _play(honestId, liar, honest);
        assertEq(uint8(r.outcome), uint8(IDisputeGame.Outcome.ChallengerWon), "the liar is caught");
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Slashed));
        uint256 stake = market.getJob(jobId).stake;
        Books memory a = _books();
        assertEq(a.challenger.claimable, before.challenger.claimable + stake * mp.slashWinnerBps / BPS, "paid");
        assertEq(a.challenger.locked, before.challenger.locked - bond, "honest bond returned");
        assertEq(a.solver.locked, before.solver.locked - stake, "liar's stake slashed");

        // The queued sybil dispute can only be dropped (bond back, no reward); the first bond is gone.
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.WrongPhase.selector, honestId, IDisputeGame.Phase.Resolved));
        game.dropSuperseded(honestId);
        assertEq(game.queuedDisputes(jobId).length, 1, "the sybil's second dispute waits, superseded");
        game.dropSuperseded(squat2);
        assertEq(uint8(game.getDispute(squat2).outcome), uint8(IDisputeGame.Outcome.Superseded));
        assertEq(game.queuedDisputes(jobId).length, 0, "a dropped dispute is no longer listed as queued");
        assertEq(stakes.positionOf(address(sybil)).free, 1_000 ether - bond, "the squat cost one bond");
        assertEq(stakes.positionOf(address(sybil)).locked, 0);
    }

    /// @notice Queued challenges start strictly in filing order, each when the one before it ends without a slash,
    ///         and a queued dispute cannot be dropped while the job can still be slashed by it.
    function test_attack3_queueIsFifo_andCannotBeDroppedEarly() public {
        uint256 n = 4;
        SolverActor honestSolver = new HonestSolver(solver, game, INIT_ROOT, n, NEVER);
        bytes32 jobId = _match(uint64(n) * INTERVAL, INTERVAL);
        _commit(jobId, honestSolver.trajectory());
        honestSolver.publish(store);
        _drawAudit(jobId);
        vm.prank(challenger);
        stakes.setVerifier(false); // the fixture's challenger is not an actor here; griefers file instead
        uint256[] memory ids = new uint256[](3);
        ChallengerActor[] memory cs = new ChallengerActor[](3);
        for (uint256 i = 0; i < 3; ++i) {
            address who = makeAddr(string.concat("griefer", vm.toString(i)));
            _stake(who, 1_000 ether, false);
            cs[i] = new DishonestChallenger(who, game, i, DishonestChallenger.Steer.Random, NEVER);
            ids[i] = cs[i].open(jobId);
        }
        vm.expectRevert(abi.encodeWithSelector(IDisputeGame.JobNotSettled.selector, jobId));
        game.dropSuperseded(ids[2]);
        for (uint256 i = 0; i < 3; ++i) {
            assertEq(game.activeDisputeOf(jobId), ids[i], "filing order");
            Result memory r = _play(ids[i], honestSolver, cs[i]);
            assertEq(uint8(r.outcome), uint8(IDisputeGame.Outcome.SolverWon), "every false accusation loses");
        }
        assertEq(game.activeDisputeOf(jobId), 0);
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Committed), "job reopened at the end");
    }

    function _bondKey(uint256 disputeId) internal pure returns (bytes32) {
        return keccak256(abi.encode(keccak256("veritrain.dispute.bond"), disputeId));
    }

    // ===================================================== 6. short committees

    /// @notice The pool holds one honest verifier and one sybil of the lying solver (the others left). A committee
    ///         of two would split 1–1 into NoDecision and reopen the job, forever. Now the draw waits
    ///         (`CommitteeShort`, re-armed) until R members exist; when one more honest verifier joins, the full
    ///         committee outvotes the sybil and the liar is slashed.
    function test_attack6_shortPool_waitsForFullCommittee_liarStillLoses() public {
        (address sybil, uint256 id, bytes32 jobId) = _shortPoolDispute();
        IDisputeGame.Dispute memory d = game.getDispute(id);
        vm.roll(d.seedBlock + 1);
        vm.setBlockhash(d.seedBlock, keccak256("short"));
        vm.expectEmit(address(game));
        emit IDisputeGame.CommitteeShort(id, 2, uint64(block.number) + 1);
        game.drawCommittee(id, _committeeHeader(id));
        assertEq(uint8(game.getDispute(id).phase), uint8(IDisputeGame.Phase.AwaitingCommittee), "no 1-1 committee");
        assertEq(game.committee(id).length, 0);

        vm.prank(verifiers[2]);
        stakes.setVerifier(true); // a third eligible verifier joins before the wait ends
        // It joined in the block that fixed the re-armed seed: that draw reads the weights of the block before, so
        // it is still short, and the joiner counts from the next re-arm.
        d = game.getDispute(id);
        vm.roll(d.seedBlock + 1);
        game.drawCommittee(id, _committeeHeader(id));
        assertEq(game.committee(id).length, 0, "a join in the fixing block does not count for that draw");
        d = game.getDispute(id);
        vm.roll(d.seedBlock + 1);
        vm.setBlockhash(d.seedBlock, keccak256("full"));
        game.drawCommittee(id, _committeeHeader(id));
        address[] memory committee = game.committee(id);
        assertEq(committee.length, gp.committeeSize, "full committee");
        ColludingArbiter colluder = new ColludingArbiter(sybil, game);
        for (uint256 i = 0; i < committee.length; ++i) {
            if (committee[i] == sybil) colluder.commit(id);
            else arbiterOf[committee[i]].commit(id);
        }
        for (uint256 i = 0; i < committee.length; ++i) {
            if (committee[i] == sybil) colluder.reveal(id);
            else arbiterOf[committee[i]].reveal(id);
        }
        assertEq(uint8(game.getDispute(id).outcome), uint8(IDisputeGame.Outcome.ChallengerWon), "2-1 against liar");
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Slashed));
        assertEq(stakes.positionOf(solver).claimable, 0, "liar paid nothing");
    }

    /// @notice The pool stays short for the whole `committeeWait`: the dispute ends NoCommittee and the job is
    ///         Voided. The liar (who may have caused the shortage) is not paid; no one is slashed; the submitter gets
    ///         the price back and the challenger its bond. No reopen loop: the job is final.
    function test_attack6_poolShortUntilWait_voidsJob_liarNotPaid() public {
        (, uint256 id, bytes32 jobId) = _shortPoolDispute();
        IStakeManager.Position memory solverBefore = stakes.positionOf(solver);
        IStakeManager.Position memory challengerBefore = stakes.positionOf(challenger);
        IStakeManager.Position memory submitterBefore = stakes.positionOf(submitter);
        IDisputeGame.Dispute memory d = game.getDispute(id);
        vm.warp(uint256(d.lastMoveAt) + gp.committeeWait);
        vm.roll(d.seedBlock + 1);
        vm.setBlockhash(d.seedBlock, keccak256("late"));
        game.drawCommittee(id, _committeeHeader(id));

        assertEq(uint8(game.getDispute(id).outcome), uint8(IDisputeGame.Outcome.NoCommittee));
        IJobMarket.Job memory job = market.getJob(jobId);
        assertEq(uint8(job.state), uint8(IJobMarket.JobState.Voided), "job final, not reopened");
        assertEq(stakes.positionOf(solver).claimable, solverBefore.claimable, "liar not paid");
        assertEq(stakes.positionOf(solver).free, solverBefore.free + job.stake, "stake unlocked");
        uint256 bond = game.disputeBondFor(job.stake, job.price);
        assertEq(stakes.positionOf(challenger).free, challengerBefore.free + bond, "bond returned");
        assertEq(stakes.positionOf(submitter).claimable, submitterBefore.claimable + PRICE, "submitter refunded");
        assertEq(stakes.escrowOf(jobId), 0);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Voided));
        market.finalize(jobId);
    }

    /// @dev Only verifiers[0] (honest) and verifiers[1] (the liar's sybil) stay in the pool; a lying solver is
    ///      disputed by the honest challenger down to its wrong leaf.
    function _shortPoolDispute() internal returns (address sybil, uint256 id, bytes32 jobId) {
        sybil = verifiers[1];
        for (uint256 i = 2; i < verifiers.length; ++i) {
            vm.prank(verifiers[i]);
            stakes.setVerifier(false);
        }
        (id, jobId) = _disputeAwaitingCommittee(PRICE);
    }

    // ================================================= 4. last-second acceptance

    /// @notice A submitter holds the solver's bid and accepts one second before the order's deadline, to collect
    ///         the expiry slash. The bid signs the working time the solver needs: acceptance later than
    ///         `deadline - workTime` reverts (`TooLateToAccept`); accepted at that last moment, the solver still has
    ///         its whole working time, commits before the deadline, and `expire` pays the submitter nothing.
    function test_attack4_lastSecondAcceptance_refused() public {
        IJobMarket.JobOrder memory o = _order(STEPS, INTERVAL);
        bytes32 h = market.hashOrder(o);
        IJobMarket.Bid memory b = _bid(h, PRICE);
        b.expiry = o.deadline; // a long-lived bid: the submitter may sit on it
        bytes memory orderSig = _sign(SUBMITTER_KEY, h);
        bytes memory bidSig = _sign(SOLVER_KEY, market.hashBid(b));

        vm.warp(o.deadline - 1);
        vm.prank(submitter);
        vm.expectRevert(
            abi.encodeWithSelector(IJobMarket.TooLateToAccept.selector, o.deadline - 1 + b.workTime, o.deadline)
        );
        market.acceptBid(o, orderSig, b, bidSig);

        vm.warp(o.deadline - b.workTime); // the last moment the bid allows
        vm.prank(submitter);
        bytes32 jobId = market.acceptBid(o, orderSig, b, bidSig);
        vm.warp(block.timestamp + b.workTime - 1); // the solver uses (almost) all the time it signed for
        _commit(jobId, _toyLeaves(INIT_ROOT, STEPS / INTERVAL, type(uint256).max));
        vm.warp(o.deadline);
        vm.expectRevert(abi.encodeWithSelector(IJobMarket.WrongJobState.selector, jobId, IJobMarket.JobState.Committed));
        market.expire(jobId);
        assertEq(stakes.positionOf(solver).claimable, 0);
        assertEq(stakes.lockedUnder(solver, jobId), b.stake, "job stake intact, not slashed");
    }

    // ================================================= 5. arbiters risk nothing

    /// @notice The lying solver's sybil sits on a full committee and votes for the lie; the two honest arbiters outvote
    ///         it. Its vote against the majority costs it `wrongVoteSlashBps` of its lock, credited to the honest
    ///         arbiters; the lock itself is `max(arbiterStake, job stake · arbiterStakeBps)`, so it grows with the stake
    ///         the vote decides (here: a job at 4 x PRICE).
    function test_attack5_wrongVoteLosesStake_lockScalesWithJobStake() public {
        address sybil = verifiers[1];
        (uint256 id, bytes32 jobId) = _threeMemberCommittee(4 * PRICE);
        address[] memory committee = game.committee(id);
        uint256 lock = game.getDispute(id).arbiterLock;
        assertEq(lock, market.getJob(jobId).stake * gp.arbiterStakeBps / BPS, "lock = share of the job stake");
        assertGt(lock, gp.arbiterStake, "above the floor for a big job");
        Books memory before = _books();
        ColludingArbiter colluder = new ColludingArbiter(sybil, game);
        for (uint256 i = 0; i < committee.length; ++i) {
            if (committee[i] == sybil) colluder.commit(id);
            else arbiterOf[committee[i]].commit(id);
        }
        for (uint256 i = 0; i < committee.length; ++i) {
            if (committee[i] == sybil) colluder.reveal(id);
            else arbiterOf[committee[i]].reveal(id);
        }
        assertEq(uint8(game.getDispute(id).outcome), uint8(IDisputeGame.Outcome.ChallengerWon));
        uint256 penalty = lock * gp.wrongVoteSlashBps / BPS;
        assertEq(stakes.positionOf(sybil).free, 500 ether - penalty, "the wrong vote cost part of its lock");
        assertEq(stakes.positionOf(sybil).locked, 0);
        uint256 perHonest = market.getJob(jobId).stake * mp.slashArbiterBps / BPS / 2 + penalty / 2;
        for (uint256 i = 0; i < 3; ++i) {
            uint256 k = _verifierIndex(verifiers[i]);
            uint256 gained = stakes.positionOf(verifiers[i]).claimable - before.verifierClaims[k];
            assertEq(gained, verifiers[i] == sybil ? 0 : perHonest, "majority paid, the sybil nothing");
        }
    }

    /// @dev Pool = verifiers 0, 1 (the sybil), 2; a lying solver's job at `price`, disputed by the honest challenger
    ///      down to its wrong leaf, committee drawn (all three).
    function _threeMemberCommittee(uint256 price) internal returns (uint256 id, bytes32 jobId) {
        for (uint256 i = 3; i < verifiers.length; ++i) {
            vm.prank(verifiers[i]);
            stakes.setVerifier(false);
        }
        (id, jobId) = _disputeAwaitingCommittee(price);
        IDisputeGame.Dispute memory d = game.getDispute(id);
        vm.roll(d.seedBlock + 1);
        vm.setBlockhash(d.seedBlock, keccak256("attack5"));
        game.drawCommittee(id, _committeeHeader(id));
        assertEq(game.committee(id).length, 3);
    }

    /// @dev Matches a fresh order at `price` (maxPrice raised to it).
    function _matchAt(uint64 totalSteps, uint256 price) internal returns (bytes32 jobId) {
        IJobMarket.JobOrder memory o = _order(totalSteps, INTERVAL);
        o.maxPrice = price;
        bytes32 h = market.hashOrder(o);
        IJobMarket.Bid memory b = _bid(h, price);
        bytes memory orderSig = _sign(SUBMITTER_KEY, h);
        bytes memory bidSig = _sign(SOLVER_KEY, market.hashBid(b));
        vm.prank(submitter);
        jobId = market.acceptBid(o, orderSig, b, bidSig);
    }
}
