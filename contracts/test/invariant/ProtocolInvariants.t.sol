// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {console2} from "forge-std/console2.sol";
import {StdInvariant} from "forge-std/StdInvariant.sol";
import {Fixture} from "../utils/Fixture.sol";
import {ProtocolHandler} from "./ProtocolHandler.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";

/// @notice Protocol-wide invariants under random sequences of handler actions (handler pattern): tokens are conserved,
///         no job is both paid and refunded, every lock is accounted for under a known key, every dispute can still be
///         driven to a resolution from wherever it stands, and every job to a final state within a bound. The suites
///         below run them with different handlers (who may do what).
abstract contract ProtocolInvariantSuite is Fixture {
    uint256 internal constant BPS = 10_000;
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;

    ProtocolHandler internal handler;

    /// @dev Deploys the suite's handler over the fixture's protocol (solver2 is staked already).
    function _newHandler(address solver2) internal virtual returns (ProtocolHandler);

    function setUp() public override {
        super.setUp();
        address solver2 = vm.addr(0xB0B2);
        vm.label(solver2, "solver2");
        _stake(solver2, 1_000 ether, false);
        handler = _newHandler(solver2);
        token.transferOwnership(address(handler));

        // Actions that move jobs and disputes forward are listed more than once: the fuzzer picks selectors
        // uniformly, and a run of depth 64 should reach committees and resolutions, not only deposits.
        bytes4[] memory selectors = new bytes4[](31);
        selectors[0] = ProtocolHandler.deposit.selector;
        selectors[1] = ProtocolHandler.requestWithdrawal.selector;
        selectors[2] = ProtocolHandler.withdraw.selector;
        selectors[3] = ProtocolHandler.setVerifier.selector;
        selectors[4] = ProtocolHandler.matchJob.selector;
        selectors[5] = ProtocolHandler.commit.selector;
        selectors[6] = ProtocolHandler.drawAudit.selector;
        selectors[7] = ProtocolHandler.attest.selector;
        selectors[8] = ProtocolHandler.finalize.selector;
        selectors[9] = ProtocolHandler.expire.selector;
        selectors[10] = ProtocolHandler.openDispute.selector;
        selectors[11] = ProtocolHandler.reveal.selector;
        selectors[12] = ProtocolHandler.choose.selector;
        selectors[13] = ProtocolHandler.openLeaf.selector;
        selectors[14] = ProtocolHandler.drawCommittee.selector;
        selectors[15] = ProtocolHandler.commitVote.selector;
        selectors[16] = ProtocolHandler.revealVote.selector;
        selectors[17] = ProtocolHandler.resolve.selector;
        selectors[18] = ProtocolHandler.timeout.selector;
        selectors[19] = ProtocolHandler.warp.selector;
        selectors[20] = ProtocolHandler.advanceDispute.selector;
        selectors[21] = ProtocolHandler.advanceDispute.selector;
        selectors[22] = ProtocolHandler.advanceDispute.selector;
        selectors[23] = ProtocolHandler.openDispute.selector;
        selectors[24] = ProtocolHandler.matchJob.selector;
        selectors[25] = ProtocolHandler.commit.selector;
        selectors[26] = ProtocolHandler.attest.selector;
        selectors[27] = ProtocolHandler.drawAudit.selector;
        selectors[28] = ProtocolHandler.requestAvailability.selector;
        selectors[29] = ProtocolHandler.publish.selector;
        selectors[30] = ProtocolHandler.settleAvailabilityFee.selector;
        targetSelector(StdInvariant.FuzzSelector({addr: address(handler), selectors: selectors}));
        targetContract(address(handler));
    }

    // ============================================================= invariants

    /// @notice (a) The StakeManager holds exactly Σ(free + locked + unbonding + claimable) + Σ escrow; every token
    ///         minted is in a wallet, in the StakeManager or burned; and the balance equals deposits + escrow −
    ///         withdrawals − burns as the events report them.
    function invariant_tokenConservation() public view {
        _assertConservation(true);
    }

    /// @notice (b) No job is both paid and refunded: a Finalized job paid the solver price − fee budget and refunded the
    ///         submitter only the unused fees; a Slashed or Expired job refunded the whole price and paid the solver
    ///         nothing; a live job has released nothing. At most one settlement event per job.
    function invariant_noJobBothPaidAndRefunded() public view {
        uint256 n = handler.jobCount();
        for (uint256 j = 0; j < n; ++j) {
            bytes32 jobId = handler.jobIds(j);
            IJobMarket.Job memory job = market.getJob(jobId);
            uint256 price = job.price;
            uint256 feeBudget = price * mp.auditFeeBps / BPS;
            uint256 toSolver = handler.ghost_escrowPaid(jobId, job.solver);
            uint256 toSubmitter = handler.ghost_escrowPaid(jobId, job.submitter);
            uint256 released = handler.ghost_escrowReleased(jobId);
            uint256 settlements = handler.ghost_settlements(jobId);
            if (job.state == IJobMarket.JobState.Finalized) {
                assertEq(settlements, 1, "finalized once");
                assertEq(toSolver, price - feeBudget, "solver paid price - fee budget");
                assertEq(toSubmitter, feeBudget - handler.ghost_feesPaid(jobId), "submitter got only unused fees");
                assertLe(toSubmitter, feeBudget, "no refund beyond the fee budget");
                assertEq(released, price, "whole escrow released");
                assertEq(stakes.escrowOf(jobId), 0, "escrow empty");
            } else if (
                job.state == IJobMarket.JobState.Slashed || job.state == IJobMarket.JobState.Expired
                    || job.state == IJobMarket.JobState.Voided
            ) {
                assertEq(settlements, 1, "settled once");
                assertEq(toSolver, 0, "a slashed or expired job pays the solver nothing");
                assertEq(toSubmitter, price, "submitter refunded the price");
                assertEq(released, price, "nothing else released");
                assertEq(stakes.escrowOf(jobId), 0, "escrow empty");
            } else {
                assertEq(settlements, 0, "live job not settled");
                assertEq(released, 0, "live job released nothing");
                assertEq(stakes.escrowOf(jobId), price, "live job escrows its price");
            }
        }
    }

    /// @notice (c) Every account's locked stake is exactly the sum of its locks under the keys the protocol uses (job
    ///         stakes, dispute bonds, arbiter stakes), each lock matches the state of its job or dispute, and the draw
    ///         weights are the registered verifiers' bonded (free + locked) stake.
    function invariant_locksMatchKnownKeys() public view {
        _assertLocks();
    }

    /// @notice (d) From any reachable state, every open dispute ends: running out the mover's clock and calling
    ///         timeout, drawing the committee, or letting the vote deadline pass and calling resolve always reaches
    ///         Resolved within a few calls, releases the dispute's locks and keeps (a) and (c).
    function invariant_everyDisputeEnds() public {
        uint256 count = game.disputeCount();
        for (uint256 id = 1; id <= count; ++id) {
            if (game.getDispute(id).phase == IDisputeGame.Phase.Resolved) continue;
            uint256 snap = vm.snapshotState();
            _driveToEnd(id);
            IDisputeGame.Dispute memory d = game.getDispute(id);
            assertEq(uint8(d.phase), uint8(IDisputeGame.Phase.Resolved), "dispute resolved");
            assertTrue(d.outcome != IDisputeGame.Outcome.None, "with an outcome");
            IJobMarket.JobState state = market.getJob(d.jobId).state;
            if (d.outcome == IDisputeGame.Outcome.ChallengerWon) {
                assertEq(uint8(state), uint8(IJobMarket.JobState.Slashed), "the solver lost: slashed");
            } else if (d.outcome == IDisputeGame.Outcome.NoCommittee) {
                assertEq(uint8(state), uint8(IJobMarket.JobState.Voided), "no committee: voided");
            } else if (d.outcome == IDisputeGame.Outcome.Superseded) {
                assertTrue(state == IJobMarket.JobState.Slashed || state == IJobMarket.JobState.Voided, "superseded");
            } else {
                // reopened, or Disputed again by the next queued challenge
                assertTrue(
                    state == IJobMarket.JobState.Committed || state == IJobMarket.JobState.Disputed,
                    "job reopened or its next queued dispute runs"
                );
                assertEq(state == IJobMarket.JobState.Disputed, game.activeDisputeOf(d.jobId) != 0);
            }
            _assertConservation(false); // the ghosts only see the handler's calls, not this drive
            _assertLocks();
            vm.revertToState(snap);
        }
    }

    /// @notice (e) No job stays undecided past a bound. From any reachable state, with no new commitment or challenge,
    ///         every job reaches a final state (Finalized, Slashed, Expired, Voided, its queued disputes all Resolved)
    ///         both on the fastest path, where only permissionless calls drive it (expire, finalize, timeout,
    ///         drawCommittee, resolve, dropSuperseded, each as soon as it can succeed), and on the slowest, where each
    ///         party makes every move at the last second of its clock, the committee is drawn at the last second
    ///         before its wait would void the job, and no arbiter votes, so every dispute runs its full course and
    ///         ends without a decision. Either way it is final no later than
    ///           Matched:   max(now, deadline)
    ///           Committed: max(now, auditEnd)
    ///           Disputed:  E + q·D + max(windowLeft, disputeGrace), with q the disputes queued behind the running
    ///                      one, W = committeeWait + commitPeriod + revealPeriod, D = 2·clockBudget + W (one whole
    ///                      dispute), and E when the running dispute ends:
    ///                        descent:             max(now, lastMoveAt + solverClock + challengerClock + W)
    ///                        awaiting committee:  max(now, lastMoveAt + committeeWait) + commitPeriod + revealPeriod
    ///                        voting:              max(now, revealDeadline)
    function invariant_everyJobEndsWithinBound() public {
        uint256 n = handler.jobCount();
        for (uint256 j = 0; j < n; ++j) {
            bytes32 jobId = handler.jobIds(j);
            if (_isFinal(market.getJob(jobId).state)) continue;
            uint256 bound = _endBound(jobId);
            // the paths differ only in disputes
            uint256 paths = market.getJob(jobId).state == IJobMarket.JobState.Disputed ? 2 : 1;
            for (uint256 slow = 0; slow < paths; ++slow) {
                uint256 snap = vm.snapshotState();
                _driveJob(jobId, slow == 1);
                assertTrue(_isFinal(market.getJob(jobId).state), "job final");
                assertLe(block.timestamp, bound, "job final within its bound");
                for (uint256 id = 1; id <= game.disputeCount(); ++id) {
                    if (game.getDispute(id).jobId != jobId) continue;
                    assertEq(uint8(game.getDispute(id).phase), uint8(IDisputeGame.Phase.Resolved), "disputes resolved");
                }
                vm.revertToState(snap);
            }
        }
    }

    /// @notice Shows how often each action did something in the run (forge test -vv), to keep an eye on coverage.
    function afterInvariant() external view {
        string memory line = "";
        for (uint256 i = 0; i < handler.actionCount(); ++i) {
            string memory name = handler.actionName(i);
            line = string.concat(line, name, "=", vm.toString(handler.calls(name)), " ");
        }
        uint256 resolved = 0;
        for (uint256 id = 1; id <= game.disputeCount(); ++id) {
            if (game.getDispute(id).phase == IDisputeGame.Phase.Resolved) ++resolved;
        }
        console2.log(line);
        console2.log("jobs", handler.jobCount(), "disputes", game.disputeCount());
        console2.log("resolved", resolved);
    }

    // ================================================================ helpers

    function _driveToEnd(uint256 id) internal {
        for (uint256 step = 0; step < 64; ++step) {
            IDisputeGame.Phase phase = game.getDispute(id).phase;
            if (phase == IDisputeGame.Phase.Resolved) return;
            if (phase != IDisputeGame.Phase.Queued) {
                _driveStep(id, step);
                continue;
            }
            bytes32 jobId = game.getDispute(id).jobId;
            IJobMarket.JobState state = market.getJob(jobId).state;
            if (state == IJobMarket.JobState.Slashed || state == IJobMarket.JobState.Voided) game.dropSuperseded(id);
            else _driveStep(game.activeDisputeOf(jobId), step); // the disputes before it end first
        }
    }

    /// @dev One move that brings dispute `id` closer to its end.
    function _driveStep(uint256 id, uint256 step) internal {
        {
            IDisputeGame.Dispute memory d = game.getDispute(id);
            IDisputeGame.Phase phase = d.phase;
            if (
                phase == IDisputeGame.Phase.AwaitingReveal || phase == IDisputeGame.Phase.AwaitingLeaf
                    || phase == IDisputeGame.Phase.AwaitingData
            ) {
                _warpAtLeast(uint256(d.lastMoveAt) + d.solverClock + 1);
                game.timeout(id);
            } else if (phase == IDisputeGame.Phase.AwaitingChoice) {
                _warpAtLeast(uint256(d.lastMoveAt) + d.challengerClock + 1);
                game.timeout(id);
            } else if (phase == IDisputeGame.Phase.AwaitingCommittee) {
                if (block.number <= d.seedBlock) vm.roll(d.seedBlock + 1);
                if (block.number - d.seedBlock <= 256) vm.setBlockhash(d.seedBlock, keccak256(abi.encode(id, step)));
                game.drawCommittee(id, _committeeHeader(id));
                // a short pool only re-armed the draw: its wait ends the dispute on the next draw
                if (game.getDispute(id).phase == IDisputeGame.Phase.AwaitingCommittee) {
                    _warpAtLeast(uint256(d.lastMoveAt) + gp.committeeWait);
                }
            } else if (phase == IDisputeGame.Phase.Voting) {
                _warpAtLeast(d.revealDeadline);
                game.resolve(id);
            }
        }
    }

    /// @dev The bound of invariant_everyJobEndsWithinBound for a job that is not final.
    function _endBound(bytes32 jobId) internal view returns (uint256) {
        IJobMarket.Job memory job = market.getJob(jobId);
        if (job.state == IJobMarket.JobState.Matched) return _atLeastNow(job.deadline);
        if (job.state == IJobMarket.JobState.Committed) return _atLeastNow(job.auditEnd);
        uint256 votes = uint256(gp.commitPeriod) + gp.revealPeriod;
        uint256 wait = gp.committeeWait + votes;
        IDisputeGame.Dispute memory d = game.getDispute(game.activeDisputeOf(jobId));
        uint256 end;
        if (d.phase == IDisputeGame.Phase.Voting) {
            end = _atLeastNow(d.revealDeadline);
        } else if (d.phase == IDisputeGame.Phase.AwaitingCommittee) {
            end = _atLeastNow(uint256(d.lastMoveAt) + gp.committeeWait) + votes;
        } else {
            end = _atLeastNow(uint256(d.lastMoveAt) + d.solverClock + d.challengerClock + wait);
        }
        uint256 window = job.windowLeft > mp.disputeGrace ? job.windowLeft : mp.disputeGrace;
        return end + game.queuedDisputes(jobId).length * (2 * uint256(gp.clockBudget) + wait) + window;
    }

    function _atLeastNow(uint256 t) internal view returns (uint256) {
        return t > block.timestamp ? t : block.timestamp;
    }

    function _isFinal(IJobMarket.JobState s) internal pure returns (bool) {
        return s == IJobMarket.JobState.Finalized || s == IJobMarket.JobState.Slashed
            || s == IJobMarket.JobState.Expired || s == IJobMarket.JobState.Voided;
    }

    /// @dev Drives job `jobId` to a final state without new commitments or challenges: by permissionless calls only,
    ///      or (`slow`) with the parties moving at the last second of their clocks, the committee drawn as late as
    ///      possible and no votes.
    function _driveJob(bytes32 jobId, bool slow) internal {
        for (uint256 step = 0; step < 256; ++step) {
            IJobMarket.Job memory job = market.getJob(jobId);
            if (job.state == IJobMarket.JobState.Matched) {
                _warpAtLeast(job.deadline);
                market.expire(jobId);
            } else if (job.state == IJobMarket.JobState.Committed) {
                _warpAtLeast(job.auditEnd);
                market.finalize(jobId);
            } else if (job.state == IJobMarket.JobState.Disputed) {
                uint256 id = game.activeDisputeOf(jobId);
                if (!slow || !_lateMove(id)) _driveStep(id, step);
            } else {
                uint256[] memory queued = game.queuedDisputes(jobId);
                // the list keeps entries dropped before (Resolved, Superseded): only the Queued ones remain to drop
                for (uint256 i = 0; i < queued.length; ++i) {
                    if (game.getDispute(queued[i]).phase == IDisputeGame.Phase.Queued) game.dropSuperseded(queued[i]);
                }
                return;
            }
        }
    }

    /// @dev The party to move in dispute `id`'s descent moves at the last second of its clock; false when it is not
    ///      a descent phase or the clock ran out already. A committee still to draw waits for the last second before
    ///      the short-pool wait ends (then the caller draws).
    function _lateMove(uint256 id) internal returns (bool) {
        IDisputeGame.Dispute memory d = game.getDispute(id);
        if (d.phase == IDisputeGame.Phase.AwaitingCommittee) {
            _warpAtLeast(uint256(d.lastMoveAt) + gp.committeeWait - 1);
        }
        bool choice = d.phase == IDisputeGame.Phase.AwaitingChoice;
        bool data = d.phase == IDisputeGame.Phase.AwaitingData;
        if (
            !choice && !data && d.phase != IDisputeGame.Phase.AwaitingReveal
                && d.phase != IDisputeGame.Phase.AwaitingLeaf
        ) return false;
        uint256 expiresAt = uint256(d.lastMoveAt) + (choice ? d.challengerClock : d.solverClock);
        if (block.timestamp > expiresAt) return false;
        vm.warp(expiresAt);
        if (data) return handler.publish(id - 1); // a lie has no bytes: then its clock runs out
        if (choice) handler.choose(id - 1, uint256(keccak256(abi.encode(id, d.lo, d.hi))));
        else if (d.phase == IDisputeGame.Phase.AwaitingReveal) handler.reveal(id - 1);
        else handler.openLeaf(id - 1);
        return true;
    }

    function _warpAtLeast(uint256 t) internal {
        if (block.timestamp < t) vm.warp(t);
    }

    function _assertConservation(bool withGhosts) internal view {
        uint256 held = token.balanceOf(address(stakes));
        uint256 owed = 0;
        uint256 wallets = 0;
        uint256 nActors = handler.actorCount();
        for (uint256 i = 0; i < nActors; ++i) {
            address a = handler.actors(i);
            IStakeManager.Position memory p = stakes.positionOf(a);
            owed += p.free + p.locked + p.unbonding + p.claimable;
            wallets += token.balanceOf(a);
        }
        uint256 nJobs = handler.jobCount();
        for (uint256 j = 0; j < nJobs; ++j) {
            owed += stakes.escrowOf(handler.jobIds(j));
        }
        uint256 burned = token.balanceOf(BURN);
        assertEq(held, owed, "vault = stakes + credits + escrow");
        assertEq(token.totalSupply() - burned - wallets, held, "supply = wallets + vault + burned");
        if (!withGhosts) return;
        assertEq(
            held,
            handler.ghost_deposited() + handler.ghost_escrowed() - handler.ghost_withdrawn() - handler.ghost_burned(),
            "vault = deposits + escrow - withdrawals - burns"
        );
        assertEq(handler.ghost_burned(), burned, "burns as reported");
    }

    /// @dev A fee is held only by a Published availability challenge, until it is settled once, after the job's end:
    ///      to the solver unless the job ended Slashed, then back to the challenger.
    function _assertFee(uint256 id, IDisputeGame.Dispute memory d) internal view {
        uint256 held = stakes.lockedUnder(d.challenger, handler.feeKey(id));
        uint256 fee = uint256(d.bond) * gp.availabilityFeeBps / BPS;
        bool published = d.availability && d.outcome == IDisputeGame.Outcome.Published;
        uint256 settlements = handler.ghost_feeSettlements(id);
        assertLe(settlements, 1, "a fee is settled at most once");
        if (!published || fee == 0) {
            assertEq(held, 0, "only a Published availability challenge holds a fee");
            assertEq(settlements, 0, "nothing to settle");
            return;
        }
        assertEq(held, settlements == 0 ? fee : 0, "the fee is held until it is settled");
        if (settlements == 1) {
            IJobMarket.JobState s = market.getJob(d.jobId).state;
            assertTrue(_isFinal(s), "settled only once the job ended");
            assertEq(
                handler.ghost_feeTo(id),
                s == IJobMarket.JobState.Slashed ? d.challenger : d.solver,
                "to the solver unless the job ended slashed"
            );
        }
    }

    function _assertLocks() internal view {
        uint256 nActors = handler.actorCount();
        uint256 nJobs = handler.jobCount();
        uint256 nDisputes = game.disputeCount();
        uint256 totalWeight = 0;
        for (uint256 i = 0; i < nActors; ++i) {
            address a = handler.actors(i);
            uint256 sum = 0;
            for (uint256 j = 0; j < nJobs; ++j) {
                sum += stakes.lockedUnder(a, handler.jobIds(j));
            }
            for (uint256 id = 1; id <= nDisputes; ++id) {
                sum += stakes.lockedUnder(a, handler.bondKey(id)) + stakes.lockedUnder(a, handler.arbiterKey(id))
                + stakes.lockedUnder(a, handler.feeKey(id));
            }
            IStakeManager.Position memory p = stakes.positionOf(a);
            assertEq(p.locked, sum, "locked = sum of known locks");
            uint256 bonded = p.free + p.locked;
            uint256 weight = p.verifier && bonded >= stakes.minVerifierStake() ? bonded : 0;
            assertEq(stakes.drawWeightOf(a), weight, "draw weight = bonded stake of a registered verifier");
            totalWeight += weight;
        }
        assertEq(stakes.totalDrawWeight(), totalWeight, "total draw weight");

        for (uint256 j = 0; j < nJobs; ++j) {
            bytes32 jobId = handler.jobIds(j);
            IJobMarket.Job memory job = market.getJob(jobId);
            bool live = job.state == IJobMarket.JobState.Matched || job.state == IJobMarket.JobState.Committed
                || job.state == IJobMarket.JobState.Disputed;
            assertEq(stakes.lockedUnder(job.solver, jobId), live ? job.stake : 0, "job stake locked while live");
            uint256 latest = game.latestDisputeOf(jobId);
            uint256 active = game.activeDisputeOf(jobId);
            assertEq(job.state == IJobMarket.JobState.Disputed, active != 0, "Disputed iff a dispute runs on it");
            if (active != 0) {
                IDisputeGame.Phase ap = game.getDispute(active).phase;
                assertTrue(ap != IDisputeGame.Phase.Resolved && ap != IDisputeGame.Phase.Queued, "the active one runs");
            }
            if (latest != 0 && game.getDispute(latest).phase != IDisputeGame.Phase.Resolved) {
                assertTrue(active != 0 || job.state != IJobMarket.JobState.Committed, "no queued dispute idles");
            }
        }

        for (uint256 id = 1; id <= nDisputes; ++id) {
            IDisputeGame.Dispute memory d = game.getDispute(id);
            bool open = d.phase != IDisputeGame.Phase.Resolved;
            assertEq(stakes.lockedUnder(d.challenger, handler.bondKey(id)), open ? d.bond : 0, "bond locked while open");
            if (open && d.phase != IDisputeGame.Phase.Queued) {
                assertEq(game.activeDisputeOf(d.jobId), id, "one running dispute per job");
            }
            _assertFee(id, d);
            address[] memory committee = game.committee(id);
            for (uint256 k = 0; k < committee.length; ++k) {
                assertEq(
                    stakes.lockedUnder(committee[k], handler.arbiterKey(id)),
                    d.phase == IDisputeGame.Phase.Voting ? d.arbiterLock : 0,
                    "arbiter stake locked while voting"
                );
            }
        }
    }
}

/// @notice The protocol invariants with every actor hostile at will: solvers lie (from or at a random leaf) and stall,
///         challengers steer at random and time out, arbiters vote the replay, UNAVAILABLE or anything.
/// @dev Every handler action checks its preconditions before calling, so a revert means a call that should have worked
///      did not (an escrow that cannot be paid out, children the contract hashes differently, ...): this suite runs
///      with fail-on-revert, unlike the project default.
/// forge-config: default.invariant.fail-on-revert = true
/// forge-config: ci.invariant.fail-on-revert = true
contract ProtocolInvariantTest is ProtocolInvariantSuite {
    function _newHandler(address solver2) internal override returns (ProtocolHandler) {
        return new ProtocolHandler(token, stakes, market, game, submitter, solver, solver2, challenger, verifiers);
    }

    /// @notice Conservation with every actor active in one run: one scripted sequence of handler actions in which
    ///         both solvers work, honestly and lying, one stalls; the submitter stakes and withdraws; challengers open
    ///         running and queued disputes, win, lose and get dropped; arbiters vote the replay or UNAVAILABLE or do not
    ///         reveal, and the wrong one and the silent one are slashed; verifiers attest; jobs are finalized, slashed and expired. Every action of the
    ///         handler fires, and (a) and (c) hold after each phase of it. (A fuzz run of bounded depth rarely reaches
    ///         all of them at once, so this is the run that does.)
    function test_conservationWithEveryActorActive() public {
        handler.deposit(0, 10 ether); // the submitter stakes
        handler.setVerifier((uint256(1) << 128) + 1);
        handler.requestWithdrawal(0, 5 ether);
        for (uint256 j = 0; j < 5; ++j) {
            handler.matchJob(4, PRICE, j); // 8 leaves, solvers alternate
        }
        handler.commit(0, 0, 0); // job 0: honest, audited and attested
        handler.commit(1, 3, 1); // job 1: lies from leaf 3 on
        handler.commit(2, 0, 0); // job 2: honest, wins its dispute
        handler.commit(3, 0, 0); // job 3: honest, but its solver stalls in the dispute
        handler.drawAudit(0, keccak256("audit"));
        handler.attest(0, 0);
        handler.openDispute(1, 0, 0); // dispute 1 on job 1
        handler.openDispute(1, 1, 0); // dispute 2 queued behind it
        handler.openDispute(2, 0, 0); // dispute 3 on job 2
        handler.openDispute(3, 0, 0); // dispute 4 on job 3
        assertEq(uint8(game.getDispute(2).phase), uint8(IDisputeGame.Phase.Queued), "queued");
        _assertConservation(true);

        _descend(1);
        _descend(3);
        _seat(1);
        _seat(3);
        address silent = game.committee(1)[0];
        address wrong = game.committee(3)[0];
        uint256 wrongBefore = _bonded(wrong);
        for (uint256 i = 0; i < gp.committeeSize; ++i) {
            handler.commitVote(0, i, 0); // the replay, which convicts the lie
            handler.commitVote(2, i, i == 0 ? 2 : 0); // one UNAVAILABLE against the honest majority
        }
        vm.warp(game.getDispute(3).commitDeadline);
        for (uint256 i = 0; i < gp.committeeSize; ++i) {
            if (i > 0) handler.revealVote(0, i); // dispute 1's first arbiter never reveals: resolve ends it
            handler.revealVote(2, i); // the last reveal ends dispute 3
        }
        assertEq(uint8(game.getDispute(3).outcome), uint8(IDisputeGame.Outcome.SolverWon), "honest solver won");
        uint256 lock = game.getDispute(3).arbiterLock;
        assertEq(_bonded(wrong), wrongBefore - lock * gp.wrongVoteSlashBps / BPS, "wrong vote slashed");
        uint256 silentBefore = _bonded(silent);
        handler.resolve(0, true);
        assertEq(_bonded(silent), silentBefore - game.getDispute(1).arbiterLock, "silent arbiter loses its lock");
        assertEq(uint8(market.getJob(handler.jobIds(1)).state), uint8(IJobMarket.JobState.Slashed), "liar slashed");
        handler.advanceDispute(1, 0); // drops the queued dispute on the slashed job
        assertEq(uint8(game.getDispute(2).outcome), uint8(IDisputeGame.Outcome.Superseded), "queued one dropped");
        _assertConservation(true);
        _assertLocks();

        handler.requestAvailability(0, 2, 0); // dispute 5: job 0's leaf 2, answered
        assertTrue(handler.publish(4), "the honest solver publishes");
        assertEq(uint8(game.getDispute(5).outcome), uint8(IDisputeGame.Outcome.Published));
        _assertLocks(); // the fee is held

        handler.timeout(3, true); // job 3's solver never reveals
        handler.finalize(0, true);
        handler.settleAvailabilityFee(0);
        assertEq(handler.ghost_feeTo(5), market.getJob(handler.jobIds(0)).solver, "the fee paid to the honest solver");
        handler.finalize(2, true);
        handler.expire(4, true);
        vm.warp(block.timestamp + 7 days);
        handler.withdraw(0);
        handler.warp(1, 1);

        IJobMarket.JobState[5] memory want = [
            IJobMarket.JobState.Finalized,
            IJobMarket.JobState.Slashed,
            IJobMarket.JobState.Finalized,
            IJobMarket.JobState.Slashed,
            IJobMarket.JobState.Expired
        ];
        for (uint256 j = 0; j < 5; ++j) {
            assertEq(uint8(market.getJob(handler.jobIds(j)).state), uint8(want[j]), "job outcome");
        }
        for (uint256 i = 0; i < handler.actionCount(); ++i) {
            string memory name = handler.actionName(i);
            assertGt(handler.calls(name), 0, name);
        }
        assertGt(handler.ghost_burned(), 0, "something was burned");
        assertGt(handler.ghost_withdrawn(), 0, "something was withdrawn");
        _assertConservation(true);
        _assertLocks();
    }

    function _bonded(address a) internal view returns (uint256) {
        return stakes.positionOf(a).free + stakes.positionOf(a).locked + stakes.positionOf(a).claimable;
    }

    /// @dev Plays dispute `id`'s descent at once: the solver reveals its committed tree, the challenger steers to the
    ///      first wrong leaf (or at random for an honest trajectory), the solver opens the leaf.
    function _descend(uint256 id) internal {
        for (uint256 k = 0; k < 16; ++k) {
            IDisputeGame.Phase phase = game.getDispute(id).phase;
            if (phase == IDisputeGame.Phase.AwaitingReveal) handler.reveal(id - 1);
            else if (phase == IDisputeGame.Phase.AwaitingChoice) handler.choose(id - 1, 1);
            else if (phase == IDisputeGame.Phase.AwaitingLeaf) handler.openLeaf(id - 1);
            else break;
        }
        assertEq(uint8(game.getDispute(id).phase), uint8(IDisputeGame.Phase.AwaitingCommittee), "leaf opened");
    }

    /// @dev Draws dispute `id`'s committee (a draw short of distinct members re-arms; try the next seed).
    function _seat(uint256 id) internal {
        for (uint256 k = 0; k < 8 && game.getDispute(id).phase == IDisputeGame.Phase.AwaitingCommittee; ++k) {
            handler.drawCommittee(id - 1, keccak256(abi.encode(id, k)));
        }
        assertEq(uint8(game.getDispute(id).phase), uint8(IDisputeGame.Phase.Voting), "committee seated");
    }
}
