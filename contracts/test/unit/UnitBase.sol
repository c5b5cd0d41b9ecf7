// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Fixture} from "../utils/Fixture.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IStakeManager} from "../../src/interfaces/IStakeManager.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";

/// @notice Helpers shared by the unit tests: committed jobs, dispute descent, committee votes, balance snapshots.
///         Every helper computes its arguments (precompile calls, views) before `vm.prank`, so the prank always
///         applies to the intended call.
abstract contract UnitBase is Fixture {
    address internal constant DEAD = 0x000000000000000000000000000000000000dEaD;
    uint256 internal constant NO_LIE = type(uint256).max;

    // -------------------------------------------------------------- jobs

    /// @notice Matches a job of `n` leaves (interval 1) and commits a toy trajectory lying from leaf `lieFrom` on.
    function _committedJob(uint64 n, uint256 lieFrom) internal returns (bytes32 jobId, bytes32[] memory leaves) {
        jobId = _match(n, 1);
        leaves = _toyLeaves(INIT_ROOT, n, lieFrom);
        _commit(jobId, leaves);
    }

    /// @notice A signed order/bid pair at PRICE for `n` leaves (interval 1), with their signatures.
    function _signedPair(uint64 n)
        internal
        returns (IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig)
    {
        o = _order(n, 1);
        bytes32 h = market.hashOrder(o);
        b = _bid(h, PRICE);
        oSig = _sign(SUBMITTER_KEY, h);
        bSig = _sign(SOLVER_KEY, market.hashBid(b));
    }

    /// @notice Re-signs `o` and `b` (after a test changed a field) with the right keys.
    function _resign(IJobMarket.JobOrder memory o, IJobMarket.Bid memory b)
        internal
        view
        returns (bytes memory oSig, bytes memory bSig)
    {
        oSig = _sign(SUBMITTER_KEY, market.hashOrder(o));
        bSig = _sign(SOLVER_KEY, market.hashBid(b));
    }

    function _accept(IJobMarket.JobOrder memory o, bytes memory oSig, IJobMarket.Bid memory b, bytes memory bSig)
        internal
        returns (bytes32)
    {
        vm.prank(o.submitter);
        return market.acceptBid(o, oSig, b, bSig);
    }

    function _state(bytes32 jobId) internal view returns (IJobMarket.JobState) {
        return market.getJob(jobId).state;
    }

    // ----------------------------------------------------------- dispute

    function _openDispute(bytes32 jobId) internal returns (uint256 id) {
        vm.prank(challenger);
        id = game.openDispute(jobId);
    }

    /// @notice Plays the descent of dispute `id` (started at the root of `leaves`) honestly for the solver, the
    ///         challenger steering to leaf `target`. Returns the number of rounds played.
    function _descend(uint256 id, bytes32[] memory leaves, uint256 target) internal returns (uint256 rounds) {
        uint256 lo = 0;
        uint256 hi = leaves.length;
        while (hi - lo > 1) {
            uint256 k = RFC9162.splitPoint(hi - lo);
            bytes32 l = _root(leaves, lo, lo + k);
            bytes32 r = _root(leaves, lo + k, hi);
            vm.prank(solver);
            game.reveal(id, l, r);
            bool right = target >= lo + k;
            vm.prank(challenger);
            game.choose(id, right);
            if (right) lo += k;
            else hi = lo + k;
            ++rounds;
        }
    }

    /// @notice The solver opens leaf `index` of `leaves` with its honest pre-state and proof.
    function _openLeaf(uint256 id, bytes32[] memory leaves, uint256 index) internal {
        (bytes32 pre, bytes32[] memory proof) = _preState(leaves, index);
        bytes32 post = leaves[index];
        vm.prank(solver);
        game.openLeaf(id, post, pre, proof);
    }

    function _preState(bytes32[] memory leaves, uint256 index)
        internal
        view
        returns (bytes32 pre, bytes32[] memory proof)
    {
        if (index == 0) return (INIT_ROOT, new bytes32[](0));
        pre = leaves[index - 1];
        proof = _path(leaves, index - 1, 0, leaves.length);
    }

    /// @notice Committed job of `n` leaves lying from `lie`, dispute opened on it and descended to leaf `target`,
    ///         leaf opened: the dispute awaits its committee.
    function _disputeAtCommittee(uint64 n, uint256 lie, uint256 target)
        internal
        returns (bytes32 jobId, bytes32[] memory leaves, uint256 id)
    {
        (jobId, leaves) = _committedJob(n, lie);
        id = _openDispute(jobId);
        _descend(id, leaves, target);
        _openLeaf(id, leaves, target);
    }

    /// @notice Mines past the committee seed block (with a set blockhash) and draws the committee.
    function _drawCommittee(uint256 id) internal returns (address[] memory arbiters) {
        uint64 sb = game.getDispute(id).seedBlock;
        vm.roll(sb + 1);
        game.drawCommittee(id, _header(sb));
        arbiters = game.committee(id);
    }

    function _salt(address arbiter) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", arbiter));
    }

    function _commitVote(uint256 id, address arbiter, bytes32 result) internal {
        bytes32 c = game.voteCommitment(result, _salt(arbiter), arbiter);
        vm.prank(arbiter);
        game.commitVote(id, c);
    }

    function _revealVote(uint256 id, address arbiter, bytes32 result) internal {
        bytes32 salt = _salt(arbiter);
        vm.prank(arbiter);
        game.revealVote(id, result, salt);
    }

    /// @notice The replayed result of segment `index` of a toy trajectory (what an honest arbiter reveals).
    function _honestResult(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32) {
        return toyStep(index == 0 ? INIT_ROOT : leaves[index - 1]);
    }

    function _bondKey(uint256 id) internal pure returns (bytes32) {
        return keccak256(abi.encode(keccak256("veritrain.dispute.bond"), id));
    }

    function _arbiterKey(uint256 id) internal pure returns (bytes32) {
        return keccak256(abi.encode(keccak256("veritrain.dispute.arbiter"), id));
    }

    // ---------------------------------------------------------- positions

    function _pos(address who) internal view returns (IStakeManager.Position memory) {
        return stakes.positionOf(who);
    }

    function _contains(address[] memory list, address x) internal pure returns (bool) {
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == x) return true;
        }
        return false;
    }

    /// @notice Takes `who` out of the draw pool.
    function _leavePool(address who) internal {
        vm.prank(who);
        stakes.setVerifier(false);
    }
}
