// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Actor, DisputeActorsBase, HonestArbiter, HonestSolver, Toy} from "./DisputeActors.t.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";

// Issue 14 item 7: griefing an honest solver with a captured committee. The attacker holds a third of the eligible
// verifier draw weight in many sybils, is the challenger and the submitter (refunded when the solver loses), disputes
// an honest job over and over and, whenever its sybils hold a majority of the committee, votes the honest leaf down.
// With the deployed bond rule (docs/parameters.md "Sizing the dispute bond") that loses money.

/// @notice One of the attacker's sybil verifiers: votes whatever the attacker tells it (commit–reveal).
contract SybilArbiter is Actor {
    constructor(address who_, DisputeGame game_) Actor(who_, game_, NEVER_STALL) {}

    function commit(uint256 disputeId, bytes32 result) external {
        bytes32 commitment = game.voteCommitment(result, _salt(disputeId), who);
        vm.prank(who);
        game.commitVote(disputeId, commitment);
    }

    function reveal(uint256 disputeId, bytes32 result) external {
        vm.prank(who);
        game.revealVote(disputeId, result, _salt(disputeId));
    }

    function _salt(uint256 disputeId) private view returns (bytes32) {
        return keccak256(abi.encode("sybil", who, disputeId));
    }
}

contract BondSizingTest is DisputeActorsBase {
    /// @dev The design point of docs/parameters.md: an attacker with f = 1/3 of the eligible draw weight, no honest
    ///      eligible member above m = 1/10 of it (fixed point 1e18).
    uint256 internal constant ONE = 1e18;
    uint256 internal constant F_DESIGN = ONE / 3;
    uint256 internal constant M_DESIGN = ONE / 10;

    uint256 internal constant SYBILS = 10;
    uint256 internal constant SYBIL_STAKE = 300 ether; // 10 x 300 = 3 000: a third of 9 000 eligible
    uint256 internal constant EXTRA_HONEST = 7; // + the fixture's 5 verifiers = 12 honest x 500 = 6 000
    uint256 internal constant HONEST_STAKE = 500 ether;
    uint256 internal constant DISPUTES = 150; // played for real
    uint256 internal constant DRAWS = 2_000; // drawDistinct seeds

    SybilArbiter[] internal sybils;
    mapping(address => SybilArbiter) internal sybilOf;
    address[] internal honest;
    HonestSolver internal solverActor;

    /// @notice What the played attack gave.
    struct Tally {
        uint256 disputes;
        uint256 captures;
        int256 profit; // attacker's wealth change over all disputes (the submitter's refund included)
        int256 captureGain; // summed over captured disputes
        int256 failLoss; // summed over failed disputes (positive = lost)
        uint256 maxF; // largest attacker share of the eligible weight seen at a draw (1e18)
        uint256 maxM; // largest honest member's share seen at a draw (1e18)
    }

    function setUp() public override {
        super.setUp();
        // The fixture's challenger (1 000 staked, excluded from every committee it is party to) and the submitter
        // are the attacker's; the fixture's five verifiers are honest, and seven more.
        _stake(challenger, 100_000 ether, false);
        _fund(submitter, 100_000 ether);
        _stake(solver, 100_000 ether, false);
        for (uint256 i = 0; i < 5; ++i) {
            honest.push(verifiers[i]);
        }
        for (uint256 i = 0; i < EXTRA_HONEST; ++i) {
            address v = makeAddr(string.concat("honest", vm.toString(i)));
            _stake(v, HONEST_STAKE, true);
            arbiterOf[v] = new HonestArbiter(v, game, store);
            honest.push(v);
        }
        for (uint256 i = 0; i < SYBILS; ++i) {
            address s = makeAddr(string.concat("sybil", vm.toString(i)));
            _stake(s, SYBIL_STAKE, true);
            SybilArbiter actor = new SybilArbiter(s, game);
            sybils.push(actor);
            sybilOf[s] = actor;
        }
        solverActor = new HonestSolver(solver, game, INIT_ROOT, 1, NEVER);
        solverActor.publish(store);
    }

    // ============================================================ (a) played

    /// @notice The attack played for real: DISPUTES disputes of one-leaf honest jobs (a slashed job is replaced by a
    ///         fresh one), each committee drawn by the deployed drawDistinct. The capture rate stays within the
    ///         closed-form bound, and the attacker's realized profit and its expected profit (capture rate of
    ///         DRAWS more seeds times the realized gain, minus the realized loss otherwise) are both negative.
    function test_griefingHonestSolver_withAThirdOfTheStake_losesMoney() public {
        Tally memory t = _attack();
        assertEq(t.disputes, DISPUTES);
        assertGt(t.captures, 0, "the attacker does capture committees");
        assertLt(t.profit, 0, "realized: the attack lost money");

        // Capture rate of the real draw over many seeds, on the pool as it stands after the attack.
        bytes32 jobId = _honestJob();
        uint256 captured = _captureCount(jobId, DRAWS);
        uint256 bound = captureBound(t.maxF, t.maxM);
        // 3 sigma of the binomial estimate above the exact bound for the pool's f and m.
        uint256 sigma = _sqrt(bound * (ONE - bound) / DRAWS);
        assertLe(captured * ONE / DRAWS, bound + 3 * sigma, "capture rate within the closed-form bound");
        assertLe(t.captures * ONE / t.disputes, bound + 3 * _sqrt(bound * (ONE - bound) / t.disputes));

        int256 gain = t.captureGain / int256(t.captures); // mean over captured disputes
        int256 loss = t.failLoss / int256(t.disputes - t.captures); // mean over failed ones
        int256 p = int256(captured * ONE / DRAWS);
        int256 expected = (p * gain - (int256(ONE) - p) * loss) / int256(ONE);
        emit log_named_uint("disputes played", t.disputes);
        emit log_named_uint("captured", t.captures);
        emit log_named_int("realized profit (wei)", t.profit);
        emit log_named_uint("capture rate over DRAWS seeds (1e18)", captured * ONE / DRAWS);
        emit log_named_uint("closed-form bound (1e18)", bound);
        emit log_named_int("gain per capture (wei)", gain);
        emit log_named_int("loss per failure (wei)", loss);
        emit log_named_int("expected profit per dispute (wei)", expected);
        assertLt(expected, 0, "expected: every dispute loses money on average");
    }

    // ======================================================= (b) closed form

    /// @notice docs/parameters.md's rule with the deployed parameters: disputeBondBps >= kappa x g at the design
    ///         point (f = 1/3, m = 1/10), where kappa = p / (1 - p) / (1 - arbiterBps / R) and
    ///         g = max(1, winnerBps + arbiterBps + wrongVoteSlashBps x max(arbiterStakeBps, arbiterStake / minJobStake)).
    function test_deployedBondBps_coversTheClosedFormBound() public view {
        assertEq(gp.committeeSize, 3, "the bound is derived for R = 3: redo docs/parameters.md");
        uint256 p = captureBound(F_DESIGN, M_DESIGN);
        uint256 w = uint256(mp.slashWinnerBps) * ONE / BPS;
        uint256 a = uint256(mp.slashArbiterBps) * ONE / BPS;
        uint256 omega = uint256(gp.wrongVoteSlashBps) * ONE / BPS;
        uint256 lambda = uint256(gp.arbiterStakeBps) * ONE / BPS;
        uint256 floorShare = gp.arbiterStake * ONE / mp.minJobStake;
        uint256 g = w + a + omega * (lambda > floorShare ? lambda : floorShare) / ONE;
        if (g < ONE) g = ONE;
        uint256 kappa = p * ONE / (ONE - p) * ONE / (ONE - a / gp.committeeSize);
        uint256 minBps = kappa * g / ONE * BPS / ONE;
        assertApproxEqAbs(p, 0.28486e18, 0.00001e18, "P(capture) at f = 1/3, m = 1/10");
        assertGe(gp.disputeBondBps, minBps, "disputeBondBps below the break-even of docs/parameters.md");
        // In the large-pool limit (m -> 0) P(capture) is the binomial 3f^2 - 2f^3 = 7/27.
        assertApproxEqAbs(captureBound(F_DESIGN, 0), 7 * ONE / 27, 10, "binomial limit");
    }

    /// @notice P(the attacker holds >= 2 of 3 seats) for an attacker with share f of the eligible weight, every honest
    ///         member at most m of it (1e18 fixed point): f^2 + (1 - f) f q + (1 - f) q^2 with q = f / (1 - m); exact
    ///         for infinitely split sybils and honest members all of weight m, an upper bound otherwise.
    function captureBound(uint256 f, uint256 m) public pure returns (uint256) {
        uint256 q = f * ONE / (ONE - m);
        return (f * f + (ONE - f) * f / ONE * q + (ONE - f) * q / ONE * q) / ONE;
    }

    // ================================================================= driver

    function _attack() internal returns (Tally memory t) {
        bytes32 jobId = _honestJob();
        for (uint256 i = 0; i < DISPUTES; ++i) {
            if (market.getJob(jobId).state != IJobMarket.JobState.Committed) jobId = _honestJob();
            int256 before = _attackerWealth();
            uint256 disputeId = _openAndDrawCommittee(jobId, i, t);
            (uint256 seats, bool capture) = _seats(disputeId);
            _vote(disputeId, capture);
            IDisputeGame.Outcome outcome = game.getDispute(disputeId).outcome;
            int256 delta = _attackerWealth() - before;
            t.profit += delta;
            ++t.disputes;
            if (capture) {
                assertEq(uint8(outcome), uint8(IDisputeGame.Outcome.ChallengerWon), "a captured committee decides");
                ++t.captures;
                t.captureGain += delta;
                _assertCaptureGain(jobId, disputeId, seats, delta);
            } else {
                assertEq(uint8(outcome), uint8(IDisputeGame.Outcome.SolverWon), "an honest majority decides");
                t.failLoss -= delta;
                _assertFailLoss(jobId, seats, delta);
            }
        }
    }

    /// @dev A fresh one-leaf job of the honest solver, committed and audited.
    function _honestJob() internal returns (bytes32 jobId) {
        jobId = _match(INTERVAL, INTERVAL);
        _commit(jobId, solverActor.trajectory());
        _drawAudit(jobId);
    }

    function _openAndDrawCommittee(bytes32 jobId, uint256 i, Tally memory t) internal returns (uint256 disputeId) {
        vm.prank(challenger);
        disputeId = game.openDispute(jobId);
        vm.warp(block.timestamp + MOVE_TIME);
        assertTrue(solverActor.move(disputeId), "the honest solver opens its leaf");
        IDisputeGame.Dispute memory d = game.getDispute(disputeId);
        (uint256 f, uint256 m) = _shares(game.arbiterLockFor(market.getJob(jobId).stake));
        if (f > t.maxF) t.maxF = f;
        if (m > t.maxM) t.maxM = m;
        vm.roll(d.seedBlock + 1);
        vm.setBlockhash(d.seedBlock, keccak256(abi.encode("bond sizing", i)));
        game.drawCommittee(disputeId, _committeeHeader(disputeId));
    }

    /// @dev The attacker's seats in the drawn committee; it captures with a majority.
    function _seats(uint256 disputeId) internal view returns (uint256 seats, bool capture) {
        address[] memory committee = game.committee(disputeId);
        assertEq(committee.length, gp.committeeSize, "full committee");
        for (uint256 i = 0; i < committee.length; ++i) {
            if (address(sybilOf[committee[i]]) != address(0)) ++seats;
        }
        capture = 2 * seats > committee.length;
    }

    /// @dev Honest arbiters replay; sybils vote the leaf down when they hold the majority, otherwise vote with the
    ///      honest majority (a vote against it would only add the wrong-vote slash to the lost bond).
    function _vote(uint256 disputeId, bool capture) internal {
        address[] memory committee = game.committee(disputeId);
        bytes32 truth = Toy.step(game.getDispute(disputeId).preStateRoot);
        bytes32 sybilVote = capture ? game.UNAVAILABLE() : truth;
        for (uint256 i = 0; i < committee.length; ++i) {
            SybilArbiter s = sybilOf[committee[i]];
            if (address(s) != address(0)) s.commit(disputeId, sybilVote);
            else arbiterOf[committee[i]].commit(disputeId);
        }
        for (uint256 i = 0; i < committee.length; ++i) {
            SybilArbiter s = sybilOf[committee[i]];
            if (address(s) != address(0)) s.reveal(disputeId, sybilVote);
            else arbiterOf[committee[i]].reveal(disputeId);
        }
    }

    /// @dev Capture: winner's and arbiters' shares of the stake, the honest minority's wrong-vote slash, the refund.
    function _assertCaptureGain(bytes32 jobId, uint256 disputeId, uint256 seats, int256 delta) internal view {
        IJobMarket.Job memory job = market.getJob(jobId);
        uint256 gain =
            job.stake * mp.slashWinnerBps / BPS + (job.stake * mp.slashArbiterBps / BPS / seats) * seats + job.price;
        if (seats < gp.committeeSize) {
            uint256 penalty = game.getDispute(disputeId).arbiterLock * gp.wrongVoteSlashBps / BPS;
            gain += (penalty / seats) * seats * (gp.committeeSize - seats);
        }
        assertEq(delta, int256(gain), "capture gain as docs/parameters.md counts it");
    }

    /// @dev Failure: the bond, less the arbiters' share of it its own seats (voting with the majority) get back.
    function _assertFailLoss(bytes32 jobId, uint256 seats, int256 delta) internal view {
        IJobMarket.Job memory job = market.getJob(jobId);
        uint256 bond = game.disputeBondFor(job.stake, job.price);
        uint256 back = (bond * mp.slashArbiterBps / BPS / gp.committeeSize) * seats;
        assertEq(-delta, int256(bond - back), "failure loss as docs/parameters.md counts it");
    }

    /// @dev Everything the attacker's accounts hold: tokens and stake positions of challenger, submitter, sybils.
    function _attackerWealth() internal view returns (int256 w) {
        w = _wealth(challenger) + _wealth(submitter);
        for (uint256 i = 0; i < sybils.length; ++i) {
            w += _wealth(sybils[i].who());
        }
    }

    function _wealth(address who) internal view returns (int256) {
        IStakeManager.Position memory p = stakes.positionOf(who);
        return int256(token.balanceOf(who) + p.free + p.locked + p.unbonding + p.claimable);
    }

    /// @dev Attacker's share and the largest honest member's share of the weight eligible for a committee that locks
    ///      `lock` (the parties excluded).
    function _shares(uint256 lock) internal view returns (uint256 f, uint256 m) {
        uint256 attacker = 0;
        for (uint256 i = 0; i < sybils.length; ++i) {
            uint256 wgt = stakes.drawWeightOf(sybils[i].who());
            if (wgt >= lock) attacker += wgt;
        }
        uint256 honestTotal = 0;
        uint256 top = 0;
        for (uint256 i = 0; i < honest.length; ++i) {
            uint256 wgt = stakes.drawWeightOf(honest[i]);
            if (wgt < lock) continue;
            honestTotal += wgt;
            if (wgt > top) top = wgt;
        }
        f = attacker * ONE / (attacker + honestTotal);
        m = top * ONE / (attacker + honestTotal);
    }

    /// @dev How many of `n` seeds give the attacker a majority of the committee the deployed drawDistinct draws.
    function _captureCount(bytes32 jobId, uint256 n) internal view returns (uint256 captured) {
        IJobMarket.Job memory job = market.getJob(jobId);
        address[] memory exclude = new address[](3);
        (exclude[0], exclude[1], exclude[2]) = (job.solver, challenger, job.submitter);
        uint256 lock = game.arbiterLockFor(job.stake);
        for (uint256 s = 0; s < n; ++s) {
            address[] memory c = stakes.drawDistinct(
                keccak256(abi.encode("seed", s)), gp.committeeSize, exclude, lock, block.number - 1
            );
            uint256 seats = 0;
            for (uint256 i = 0; i < c.length; ++i) {
                if (address(sybilOf[c[i]]) != address(0)) ++seats;
            }
            if (2 * seats > c.length) ++captured;
        }
    }

    function _sqrt(uint256 x) internal pure returns (uint256 y) {
        // Babylonian square root of a 1e36-scaled value, returned at 1e18
        x *= ONE;
        if (x == 0) return 0;
        y = x;
        uint256 z = (x + 1) / 2;
        while (z < y) {
            y = z;
            z = (x / z + z) / 2;
        }
    }
}
