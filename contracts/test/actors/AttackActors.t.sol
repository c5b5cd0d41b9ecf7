// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {BlobStore, DisputeActorsBase, HonestChallenger, SolverActor, ChallengerActor, Toy} from "./DisputeActors.t.sol";
import {DisputeGame} from "../../src/DisputeGame.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {TreeRef} from "../utils/TreeRef.sol";

// The attacks of issue 14, each played by an attacker actor against the deployed protocol: every one must fail or
// lose the attacker money.

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
}
