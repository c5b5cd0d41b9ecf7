// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {CheckpointedSumTree} from "../../src/libraries/CheckpointedSumTree.sol";

/// @notice Holds one tree and exposes the library; draws read the weights at the end of block `at`.
contract FuzzTreeHarness {
    using CheckpointedSumTree for CheckpointedSumTree.Tree;

    CheckpointedSumTree.Tree internal tree;

    function set(address member, uint256 weight) external {
        tree.set(member, weight);
    }

    function total() external view returns (uint256) {
        return tree.total();
    }

    function weightOf(address member) external view returns (uint256) {
        return tree.weightOf(member);
    }

    function totalAt(uint48 at) external view returns (uint256) {
        return tree.totalAt(at);
    }

    function weightAt(address member, uint48 at) external view returns (uint256) {
        return tree.weightAt(member, at);
    }

    function drawSkippingAt(uint256 random, address[] memory skip, uint256 n, uint48 at)
        external
        view
        returns (address)
    {
        return tree.drawSkippingAt(random, skip, n, at);
    }

    /// @dev Counts, for each of `members`, the r in [0, span) that `drawSkippingAt(r, skip, skip.length, at)` returns.
    function sweep(address[] calldata members, address[] memory skip, uint256 span, uint48 at)
        external
        view
        returns (uint256[] memory counts, uint256 strays)
    {
        counts = new uint256[](members.length);
        for (uint256 r = 0; r < span; ++r) {
            address a = tree.drawSkippingAt(r, skip, skip.length, at);
            bool found = false;
            for (uint256 i = 0; i < members.length; ++i) {
                if (members[i] == a) {
                    ++counts[i];
                    found = true;
                    break;
                }
            }
            if (!found) ++strays;
        }
    }
}

/// @notice The checkpointed sum tree against a plain array model kept per block: totals, weights, and draws exactly
///         proportional, both now and at every earlier block.
contract CheckpointedSumTreeFuzzTest is Test {
    FuzzTreeHarness internal h;

    uint256 internal constant MEMBERS = 20; // capacity grows 1 → 32 through five doublings
    uint256 internal constant MAX_WEIGHT = 12;
    uint256 internal constant BLOCKS = 4;

    address[] internal members;
    address[] internal noSkip;

    function setUp() public {
        h = new FuzzTreeHarness();
        for (uint256 i = 0; i < MEMBERS; ++i) {
            members.push(address(uint160(0x1000 + i)));
        }
    }

    function _sum(uint256[] memory w) internal pure returns (uint256 s) {
        for (uint256 i = 0; i < w.length; ++i) {
            s += w[i];
        }
    }

    /// @dev Applies `ops` pseudo-random set/remove operations spread over BLOCKS blocks, to the tree and to the model;
    ///      returns the model as it stood at the end of each of those blocks (and the blocks' numbers).
    function _run(bytes32 seed, uint256 ops) internal returns (uint256[][] memory models, uint48[] memory blocks) {
        models = new uint256[][](BLOCKS);
        blocks = new uint48[](BLOCKS);
        uint256[] memory model = new uint256[](MEMBERS);
        for (uint256 b = 0; b < BLOCKS; ++b) {
            for (uint256 j = b * ops / BLOCKS; j < (b + 1) * ops / BLOCKS; ++j) {
                uint256 r = uint256(keccak256(abi.encode(seed, j)));
                uint256 who = r % MEMBERS;
                // one op in four removes (weight 0), the others set 1..MAX_WEIGHT
                uint256 w = (r >> 64) % 4 == 0 ? 0 : 1 + (r >> 128) % MAX_WEIGHT;
                h.set(members[who], w);
                model[who] = w;
                assertEq(h.total(), _sum(model), "total == sum of weights");
            }
            models[b] = new uint256[](MEMBERS);
            for (uint256 i = 0; i < MEMBERS; ++i) {
                models[b][i] = model[i];
            }
            blocks[b] = uint48(block.number);
            vm.roll(block.number + 1 + (r0(seed, b) % 3)); // blocks with no change in between, too
        }
    }

    function r0(bytes32 seed, uint256 b) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, "gap", b)));
    }

    function testFuzz_history_totalsWeightsAndDrawsAtEveryBlock(bytes32 seed, uint256 opsRaw) public {
        (uint256[][] memory models, uint48[] memory blocks) = _run(seed, _bound(opsRaw, 1, 64));
        for (uint256 b = 0; b < BLOCKS; ++b) {
            uint256 t = _sum(models[b]);
            assertEq(h.totalAt(blocks[b]), t, "total at that block");
            if (b + 1 < BLOCKS) assertEq(h.totalAt(blocks[b + 1] - 1), t, "unchanged until the next change");
            for (uint256 i = 0; i < MEMBERS; ++i) {
                assertEq(h.weightAt(members[i], blocks[b]), models[b][i], "weight at that block");
            }
            (uint256[] memory counts, uint256 strays) = h.sweep(members, noSkip, t, blocks[b]);
            assertEq(strays, 0, "every r in [0,total) draws a member");
            for (uint256 i = 0; i < MEMBERS; ++i) {
                assertEq(counts[i], models[b][i], "member drawn by exactly weight-many r at that block");
            }
        }
        for (uint256 i = 0; i < MEMBERS; ++i) {
            assertEq(h.weightOf(members[i]), models[BLOCKS - 1][i], "weight now");
        }
        assertEq(h.totalAt(blocks[0] - 1), 0, "nothing before the first change");
    }

    /// @dev drawSkippingAt draws over the weight then of the members not in `skip` only: sweeping r over that weight
    ///      hits every eligible member exactly weight-many times and never a skipped one. `skip` may hold absent
    ///      members, members with no weight then, and duplicates.
    function testFuzz_drawSkippingAt_exactlyProportionalOverEligibleWeight(bytes32 seed, uint256 opsRaw, uint256 mask)
        public
    {
        (uint256[][] memory models, uint48[] memory blocks) = _run(seed, _bound(opsRaw, 1, 48));
        uint256 b = uint256(seed) % BLOCKS;
        uint256[] memory model = models[b];
        (address[] memory skip, bool[] memory skipped, uint256 eligible) = _skipList(model, mask);
        (uint256[] memory counts, uint256 strays) = h.sweep(members, skip, eligible, blocks[b]);
        assertEq(strays, 0, "every r lands on a member");
        for (uint256 i = 0; i < MEMBERS; ++i) {
            assertEq(counts[i], skipped[i] ? 0 : model[i]);
        }
        if (eligible == 0) {
            assertEq(h.drawSkippingAt(uint256(seed), skip, skip.length, blocks[b]), address(0), "nobody eligible");
        }
    }

    /// @dev The members `mask` picks, plus an absent address and a duplicate; and the weight left eligible.
    function _skipList(uint256[] memory model, uint256 mask)
        internal
        view
        returns (address[] memory skip, bool[] memory skipped, uint256 eligible)
    {
        skipped = new bool[](MEMBERS);
        skip = new address[](MEMBERS + 2);
        uint256 n = 0;
        for (uint256 i = 0; i < MEMBERS; ++i) {
            if ((mask >> i) & 1 == 1 && (mask >> (i + 100)) & 1 == 1) {
                skipped[i] = true;
                skip[n++] = members[i];
            } else {
                eligible += model[i];
            }
        }
        skip[n++] = address(0xBEEF); // never a member
        if (n > 1) skip[n++] = skip[0]; // a duplicate
        assembly ("memory-safe") {
            mstore(skip, n)
        }
    }

    function test_emptySingleAndRemoved() public {
        assertEq(h.total(), 0);
        vm.roll(block.number + 1);
        assertEq(h.drawSkippingAt(123, noSkip, 0, uint48(block.number - 1)), address(0));
        h.set(members[0], 0); // removing an absent member is a no-op
        assertEq(h.total(), 0);
        h.set(members[0], 7);
        vm.roll(block.number + 1);
        uint48 with7 = uint48(block.number - 1);
        for (uint256 r = 0; r < 20; ++r) {
            assertEq(h.drawSkippingAt(r, noSkip, 0, with7), members[0]);
        }
        h.set(members[0], 0);
        vm.roll(block.number + 1);
        assertEq(h.total(), 0);
        assertEq(h.drawSkippingAt(5, noSkip, 0, uint48(block.number - 1)), address(0), "gone now");
        assertEq(h.drawSkippingAt(5, noSkip, 0, with7), members[0], "but drawn at the block it weighed 7");
    }

    /// @notice Several changes in one block leave one checkpoint: the block's end state is what a draw sees.
    function test_changesWithinOneBlockCollapse() public {
        h.set(members[0], 5);
        h.set(members[1], 3);
        h.set(members[0], 1);
        h.set(members[2], 0);
        vm.roll(block.number + 1);
        uint48 at = uint48(block.number - 1);
        assertEq(h.totalAt(at), 4);
        assertEq(h.weightAt(members[0], at), 1);
        (uint256[] memory counts,) = h.sweep(members, noSkip, 4, at);
        assertEq(counts[0], 1);
        assertEq(counts[1], 3);
    }

    function test_weightAbove208BitsRefused() public {
        vm.expectRevert(abi.encodeWithSelector(CheckpointedSumTree.WeightTooLarge.selector, uint256(1) << 208));
        h.set(members[0], uint256(1) << 208);
    }
}
