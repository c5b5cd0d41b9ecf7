// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ProtocolInvariantSuite} from "./ProtocolInvariants.t.sol";
import {ProtocolHandler} from "./ProtocolHandler.sol";
import {HonestSolverHandler} from "./HonestSolverHandler.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";

/// @notice Honest solvers never lose stake. Every solver is honest and live (HonestSolverHandler); challengers,
///         submitters and verifiers are as hostile as in ProtocolInvariantTest, and arbiters vote the honest replay or
///         not at all (the committee's honest-majority assumption; a captured committee is BondSizing.t.sol's economic
///         case, not an invariant). The protocol invariants of the suite (conservation, locks, every dispute and job
///         ends within its bound) hold in this world too.
/// @dev As in ProtocolInvariantTest, a revert of a handler action is a failure.
/// forge-config: default.invariant.fail-on-revert = true
/// forge-config: ci.invariant.fail-on-revert = true
contract HonestSolverInvariantTest is ProtocolInvariantSuite {
    HonestSolverHandler internal honest;

    function _newHandler(address solver2) internal override returns (ProtocolHandler) {
        honest = new HonestSolverHandler(token, stakes, market, game, submitter, solver, solver2, challenger, verifiers);
        return honest;
    }

    /// @notice (h1) No honest job is slashed, and none expires: a live solver commits every job it took before its
    ///         deadline, so each job is Matched (before its deadline), live, Finalized (paid) or Voided (no committee).
    function invariant_honestJobsNeverSlashedOrExpired() public view {
        uint256 n = handler.jobCount();
        for (uint256 j = 0; j < n; ++j) {
            IJobMarket.Job memory job = market.getJob(handler.jobIds(j));
            assertTrue(job.state != IJobMarket.JobState.Slashed, "honest job slashed");
            assertTrue(job.state != IJobMarket.JobState.Expired, "honest job expired");
            if (job.state == IJobMarket.JobState.Matched) assertLt(block.timestamp, job.deadline, "commit is due");
        }
    }

    /// @notice (h2) An honest solver's tokens (free + locked + unbonding + claimable stake + wallet) never drop below
    ///         what it held when the run began plus what was minted to it since (the only inflow from outside; its
    ///         deposits and withdrawals only move tokens between the stake and the wallet).
    function invariant_honestSolversNeverLoseTokens() public view {
        for (uint256 i = 0; i < honest.solverCount(); ++i) {
            address s = honest.solverAt(i);
            assertGe(
                honest.holdingsOf(s), honest.initialHoldings(s) + honest.ghost_mintedTo(s), "honest solver lost tokens"
            );
        }
    }
}
