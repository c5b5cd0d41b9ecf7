// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {console2} from "forge-std/console2.sol";
import {Fixture} from "../utils/Fixture.sol";
import {IDisputeGame} from "../../src/interfaces/IDisputeGame.sol";
import {IJobMarket} from "../../src/interfaces/IJobMarket.sol";
import {RFC9162} from "../../src/libraries/RFC9162.sol";

/// @notice Gas of a whole dispute at the deepest tree we expect in practice: 2^20 checkpoints, 20 descent rounds.
/// @dev The 2^20-leaf tree is never built. Only two root-to-leaf paths are real: the disputed leaf TARGET (odd, in the
///      left half, so its left sibling is leaf TARGET-1, the pre-state) and the last leaf N-1 (right half, needed for
///      the commit's final-state proof). Every other sibling is a random hash, and the root is hashed bottom-up from
///      those two paths: root = H(1 ‖ leftHalf ‖ rightHalf). That tree is as binding as a real one for the contracts,
///      which only ever see one path at a time.
contract DisputeGasTest is Fixture {
    uint256 internal constant DEPTH = 20;
    uint64 internal constant N = 1_048_576; // 2^DEPTH
    /// @dev Odd (its sibling is leaf TARGET-1) and below 2^19 (left half).
    uint64 internal constant TARGET = 0x5A5A5;
    uint256 internal constant BUDGET = 3_000_000;

    bytes32 internal jobId;
    bytes32 internal preState; // C_{TARGET-1}, the opened pre-state
    bytes32 internal postState; // the solver's (wrong) C_TARGET
    /// @dev nodes[k]: the node at height k on TARGET's path (0 = leaf hash, DEPTH = root); sibs[k]: its sibling.
    bytes32[DEPTH + 1] internal nodes;
    bytes32[DEPTH] internal sibs;
    bytes32[] internal preProof; // inclusion proof of leaf TARGET-1

    function setUp() public override {
        super.setUp();
        assertEq(N, 2 ** DEPTH);
        assertTrue(TARGET % 2 == 1 && TARGET < N / 2, "target odd, in the left half");

        preState = keccak256("C_{i-1}");
        postState = keccak256(abi.encode("lie", toyStep(preState)));

        // Right half: the path of the last leaf N-1 (a right child at every height).
        bytes32 finalState = keccak256("C_{N-1}");
        bytes32[] memory finalProof = new bytes32[](DEPTH);
        bytes32 rightHalf = RFC9162.hashLeaf(finalState);
        for (uint256 h = 0; h < DEPTH - 1; ++h) {
            finalProof[h] = keccak256(abi.encode("right sibling", h));
            rightHalf = RFC9162.hashNode(finalProof[h], rightHalf);
        }

        // Left half up to the root: the path of TARGET.
        nodes[0] = RFC9162.hashLeaf(postState);
        sibs[0] = RFC9162.hashLeaf(preState);
        for (uint256 h = 0; h < DEPTH; ++h) {
            if (h > 0) sibs[h] = h == DEPTH - 1 ? rightHalf : keccak256(abi.encode("left sibling", h));
            nodes[h + 1] =
                (TARGET >> h) & 1 == 1 ? RFC9162.hashNode(sibs[h], nodes[h]) : RFC9162.hashNode(nodes[h], sibs[h]);
        }
        finalProof[DEPTH - 1] = nodes[DEPTH - 1]; // the left half
        bytes32 root = nodes[DEPTH];

        // Leaf TARGET-1 is TARGET's left sibling: its path starts with TARGET's leaf hash, then TARGET's upper siblings.
        preProof.push(nodes[0]);
        for (uint256 h = 1; h < DEPTH; ++h) {
            preProof.push(sibs[h]);
        }

        // Match (one step per checkpoint) and commit.
        jobId = _match(N, 1);
        vm.prank(solver);
        market.commit(jobId, root, N, finalState, finalProof, "http://solver.invalid/blobs");
        vm.roll(block.number + 1);
        vm.warp(block.timestamp + 1 minutes);
    }

    /// @dev Gas per move, measured around each call (the pranks in between are included; they cost almost nothing).
    struct MoveGas {
        uint256 open;
        uint256 reveals;
        uint256 choices;
        uint256 openLeaf;
        uint256 draw;
        uint256 commits;
        uint256 votes; // reveals of all arbiters but the last
        uint256 lastVote; // the last reveal: resolves the dispute, slashes the job, refunds the submitter
        uint256 total;
    }

    function testGas_FullDisputeDepth20() public {
        uint256 start = gasleft();
        MoveGas memory m;
        uint256 g;

        // Open.
        g = gasleft();
        vm.prank(challenger);
        uint256 id = game.openDispute(jobId);
        m.open = g - gasleft();

        // Descent: 20 reveals + 20 choices.
        for (uint256 h = DEPTH; h > 0; --h) {
            bool right = (TARGET >> (h - 1)) & 1 == 1;
            (bytes32 left, bytes32 rightChild) = right ? (sibs[h - 1], nodes[h - 1]) : (nodes[h - 1], sibs[h - 1]);
            g = gasleft();
            vm.prank(solver);
            game.reveal(id, left, rightChild);
            m.reveals += g - gasleft();
            g = gasleft();
            vm.prank(challenger);
            game.choose(id, right);
            m.choices += g - gasleft();
        }

        // Leaf opening with the pre-state inclusion proof.
        bytes32[] memory proof = preProof;
        bytes32 pre = preState;
        {
            bytes32 post = postState;
            g = gasleft();
            vm.prank(solver);
            game.openLeaf(id, post, pre, proof);
            m.openLeaf = g - gasleft();
        }

        // Committee.
        {
            uint64 seedBlock = game.getDispute(id).seedBlock;
            vm.roll(seedBlock + 1);
            vm.setBlockhash(seedBlock, keccak256("committee seed"));
        }
        g = gasleft();
        game.drawCommittee(id, _committeeHeader(id));
        m.draw = g - gasleft();
        address[] memory committee = game.committee(id);

        // Honest arbiters replay the step from the opened pre-state: it does not give the solver's C_i.
        bytes32 result = toyStep(pre);
        for (uint256 i = 0; i < committee.length; ++i) {
            bytes32 commitment = sha256(abi.encodePacked(result, bytes32(i), committee[i]));
            g = gasleft();
            vm.prank(committee[i]);
            game.commitVote(id, commitment);
            m.commits += g - gasleft();
        }
        for (uint256 i = 0; i < committee.length; ++i) {
            g = gasleft();
            vm.prank(committee[i]);
            game.revealVote(id, result, bytes32(i));
            if (i + 1 < committee.length) m.votes += g - gasleft();
            else m.lastVote = g - gasleft();
        }
        m.total = start - gasleft();

        assertEq(committee.length, gp.committeeSize, "full committee");
        assertEq(uint8(game.getDispute(id).outcome), uint8(IDisputeGame.Outcome.ChallengerWon));
        assertEq(uint8(market.getJob(jobId).state), uint8(IJobMarket.JobState.Slashed));
        assertEq(game.getDispute(id).lo, TARGET);

        console2.log("openDispute                 ", m.open);
        console2.log("reveal (avg of 20)          ", m.reveals / DEPTH);
        console2.log("choose (avg of 20)          ", m.choices / DEPTH);
        console2.log("openLeaf (20-element proof) ", m.openLeaf);
        console2.log("drawCommittee               ", m.draw);
        console2.log("commitVote (avg)            ", m.commits / committee.length);
        console2.log("revealVote (avg, not last)  ", m.votes / (committee.length - 1));
        console2.log("revealVote + resolve + slash", m.lastVote);
        console2.log("whole dispute               ", m.total);
        assertLt(m.total, BUDGET, "a depth-20 dispute fits in 3M gas");
    }
}
