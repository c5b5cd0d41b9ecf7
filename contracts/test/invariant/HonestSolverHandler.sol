// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ProtocolHandler} from "./ProtocolHandler.sol";
import {VeriToken} from "../../src/VeriToken.sol";
import {StakeManager} from "../../src/StakeManager.sol";
import {JobMarket} from "../../src/JobMarket.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";

/// @notice ProtocolHandler in a world whose solvers are all honest and live, everyone else as hostile as before.
///         Solvers commit only honest trajectories, and before the deadline: no warp passes a Matched job's deadline
///         or an honest solver's clock while it is the solver's turn before the solver has made its move (it may
///         still move late, spending its clock, through the reveal/openLeaf/publish/commit actions); it answers every
///         availability challenge with its leaf's bytes. Challengers challenge
///         honest jobs, steer at random, stall and time out; submitters and verifiers act as in ProtocolHandler.
///         Arbiters vote the honest replay of the opened segment or do not reveal at all: this is the honest-majority
///         assumption of the committee. An arbiter majority voting against the replay is the economic case priced by
///         BondSizing.t.sol (what capturing a committee costs), not an invariant.
contract HonestSolverHandler is ProtocolHandler {
    /// @dev Each solver's tokens (stake in every form + wallet) when the handler took over.
    mapping(address solver => uint256) public initialHoldings;

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
    ) ProtocolHandler(token_, stakes_, market_, game_, submitter_, solver_, solver2_, challenger_, verifiers_) {
        for (uint256 i = 0; i < solverList.length; ++i) {
            initialHoldings[solverList[i]] = holdingsOf(solverList[i]);
        }
    }

    function solverCount() external view returns (uint256) {
        return solverList.length;
    }

    function solverAt(uint256 i) external view returns (address) {
        return solverList[i];
    }

    /// @notice free + locked + unbonding + claimable stake plus wallet balance.
    function holdingsOf(address a) public view returns (uint256) {
        return stakes.positionOf(a).free + stakes.positionOf(a).locked + stakes.positionOf(a).unbonding
            + stakes.positionOf(a).claimable + token.balanceOf(a);
    }

    /// @dev The solver's moves that time `t` would make too late happen now, while they are still on time.
    function _warpTo(uint256 t) internal override {
        uint256 n = jobIds.length;
        for (uint256 j = 0; j < n; ++j) {
            IJobMarket.Job memory job = market.getJob(jobIds[j]);
            if (job.state == IJobMarket.JobState.Matched && t >= job.deadline) _commitJob(jobIds[j], 0, 0);
        }
        uint256 count = game.disputeCount();
        for (uint256 id = 1; id <= count; ++id) {
            IDisputeGame.Dispute memory d = game.getDispute(id);
            if (t <= uint256(d.lastMoveAt) + d.solverClock) continue;
            if (d.phase == IDisputeGame.Phase.AwaitingReveal) this.reveal(id - 1);
            else if (d.phase == IDisputeGame.Phase.AwaitingLeaf) this.openLeaf(id - 1);
            else if (d.phase == IDisputeGame.Phase.AwaitingData) this.publish(id - 1); // every honest leaf publishes
        }
        super._warpTo(t);
    }

    /// @dev Honest solvers commit the true trajectory, whatever the fuzzer asked for.
    function _commitJob(bytes32 jobId, uint256 lie, uint8) internal override {
        super._commitJob(jobId, lie, 0);
    }

    /// @dev Every vote cast is the honest replay (arbiters may still not reveal it).
    function _voteResult(IDisputeGame.Dispute memory d, uint8, uint256) internal pure override returns (bytes32) {
        return toyStep(d.preStateRoot);
    }
}
