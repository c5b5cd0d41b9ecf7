// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {SortitionSumTree} from "../../src/libraries/SortitionSumTree.sol";

/// @notice Holds one tree and exposes the library.
contract FuzzSortitionHarness {
    using SortitionSumTree for SortitionSumTree.Tree;

    SortitionSumTree.Tree internal tree;

    function set(address member, uint256 weight) external {
        tree.set(member, weight);
    }

    function draw(uint256 random) external view returns (address) {
        return tree.draw(random);
    }

    function total() external view returns (uint256) {
        return tree.total();
    }

    function weightOf(address member) external view returns (uint256) {
        return tree.weightOf(member);
    }

    function drawSkipping(uint256 random, address[] memory skip, uint256 n) external view returns (address) {
        return tree.drawSkipping(random, skip, n);
    }

    /// @dev Counts, for each of `members`, the r in [0, span) that `drawSkipping(r, skip, skip.length)` returns.
    function sweepSkipping(address[] calldata members, address[] memory skip, uint256 span)
        external
        view
        returns (uint256[] memory counts, uint256 strays)
    {
        counts = new uint256[](members.length);
        for (uint256 r = 0; r < span; ++r) {
            address a = tree.drawSkipping(r, skip, skip.length);
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

    /// @dev Counts, for each of `members`, the r in [0, total) that draw it (one call, to keep the sweep cheap).
    function sweep(address[] calldata members) external view returns (uint256[] memory counts, uint256 strays) {
        counts = new uint256[](members.length);
        uint256 t = tree.total();
        for (uint256 r = 0; r < t; ++r) {
            address a = tree.draw(r);
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

/// @notice The sortition sum tree against a plain array model: totals, weights, and draws exactly proportional.
contract SortitionSumTreeFuzzTest is Test {
    FuzzSortitionHarness internal h;

    uint256 internal constant MEMBERS = 20; // > K·K, so leaves are moved down and sums nest two levels
    uint256 internal constant MAX_WEIGHT = 12;

    address[] internal members;

    function setUp() public {
        h = new FuzzSortitionHarness();
        for (uint256 i = 0; i < MEMBERS; ++i) {
            members.push(address(uint160(0x1000 + i)));
        }
    }

    function _sum(uint256[] memory w) internal pure returns (uint256 s) {
        for (uint256 i = 0; i < w.length; ++i) {
            s += w[i];
        }
    }

    /// @dev Applies `ops` pseudo-random set/remove operations to the tree and to the model, checking totals after each.
    function _run(bytes32 seed, uint256 ops) internal returns (uint256[] memory model) {
        model = new uint256[](MEMBERS);
        for (uint256 j = 0; j < ops; ++j) {
            uint256 r = uint256(keccak256(abi.encode(seed, j)));
            uint256 who = r % MEMBERS;
            // one op in four removes (weight 0), the others set 1..MAX_WEIGHT
            uint256 w = (r >> 64) % 4 == 0 ? 0 : 1 + (r >> 128) % MAX_WEIGHT;
            h.set(members[who], w);
            model[who] = w;
            assertEq(h.total(), _sum(model), "total == sum of weights");
        }
        for (uint256 i = 0; i < MEMBERS; ++i) {
            assertEq(h.weightOf(members[i]), model[i]);
        }
    }

    function testFuzz_setRemove_keepsTotalsAndDrawsExactlyProportional(bytes32 seed, uint256 opsRaw) public {
        uint256[] memory model = _run(seed, _bound(opsRaw, 1, 48));
        (uint256[] memory counts, uint256 strays) = h.sweep(members);
        assertEq(strays, 0, "every r in [0,total) draws a member");
        for (uint256 i = 0; i < MEMBERS; ++i) {
            assertEq(counts[i], model[i], "member drawn by exactly weight-many r");
        }
    }

    function testFuzz_draw_returnsMemberWithWeight(bytes32 seed, uint256 opsRaw, uint256 random) public {
        uint256[] memory model = _run(seed, _bound(opsRaw, 1, 48));
        uint256 total = h.total();
        address a = h.draw(random);
        if (total == 0) {
            assertEq(a, address(0), "empty tree draws nobody");
            return;
        }
        assertGt(h.weightOf(a), 0);
        bool isMember = false;
        for (uint256 i = 0; i < MEMBERS; ++i) {
            if (members[i] == a) {
                isMember = true;
                assertGt(model[i], 0);
            }
        }
        assertTrue(isMember);
        assertEq(h.draw(random % total), a, "draw uses random mod total");
    }

    /// @dev drawSkipping draws over the weight of the members not in `skip` only: sweeping r over that weight hits
    ///      every eligible member exactly weight-many times and never a skipped one. `skip` may hold absent members,
    ///      zero-weight members and duplicates.
    function testFuzz_drawSkipping_exactlyProportionalOverEligibleWeight(bytes32 seed, uint256 opsRaw, uint256 mask)
        public
    {
        uint256[] memory model = _run(seed, _bound(opsRaw, 1, 32));
        bool[] memory skipped = new bool[](MEMBERS);
        address[] memory tmp = new address[](MEMBERS + 2);
        uint256 n = 0;
        uint256 eligible = 0;
        for (uint256 i = 0; i < MEMBERS; ++i) {
            if ((mask >> i) & 1 == 1 && (mask >> (i + 100)) & 1 == 1) {
                skipped[i] = true;
                tmp[n++] = members[i];
            } else {
                eligible += model[i];
            }
        }
        tmp[n++] = address(0xBEEF); // never a member
        if (n > 1) tmp[n++] = tmp[0]; // a duplicate
        address[] memory skip = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            skip[i] = tmp[i];
        }

        (uint256[] memory counts, uint256 strays) = h.sweepSkipping(members, skip, eligible);
        assertEq(strays, 0, "every r lands on a member");
        for (uint256 i = 0; i < MEMBERS; ++i) {
            assertEq(counts[i], skipped[i] ? 0 : model[i]);
        }
        if (eligible == 0) assertEq(h.drawSkipping(uint256(seed), skip, n), address(0), "nobody eligible");
        // an empty skip list is a plain draw
        assertEq(h.drawSkipping(uint256(seed), skip, 0), h.draw(uint256(seed)));
    }

    function test_sortition_emptyAndSingle() public {
        assertEq(h.total(), 0);
        assertEq(h.draw(123), address(0));
        h.set(members[0], 0); // removing an absent member is a no-op
        assertEq(h.total(), 0);
        h.set(members[0], 7);
        for (uint256 r = 0; r < 20; ++r) {
            assertEq(h.draw(r), members[0]);
        }
        h.set(members[0], 0);
        assertEq(h.total(), 0);
        assertEq(h.draw(5), address(0));
    }

    function test_sortition_fifthMemberMovesLeafDownAndVacantSlotsAreReused() public {
        // five members: the fifth becomes the first child of leaf 1, which moves down beside it
        for (uint256 i = 0; i < 5; ++i) {
            h.set(members[i], i + 1);
        }
        assertEq(h.total(), 15);
        uint256[] memory expected = new uint256[](MEMBERS);
        for (uint256 i = 0; i < 5; ++i) {
            expected[i] = i + 1;
        }
        _checkSweep(expected);
        // remove two, add two new ones (reusing the vacant slots), change one weight
        h.set(members[1], 0);
        h.set(members[3], 0);
        h.set(members[10], 9);
        h.set(members[11], 4);
        h.set(members[0], 6);
        (expected[1], expected[3], expected[10], expected[11], expected[0]) = (0, 0, 9, 4, 6);
        assertEq(h.total(), _sum(expected));
        _checkSweep(expected);
    }

    function _checkSweep(uint256[] memory expected) internal view {
        (uint256[] memory counts, uint256 strays) = h.sweep(members);
        assertEq(strays, 0);
        for (uint256 i = 0; i < MEMBERS; ++i) {
            assertEq(counts[i], expected[i]);
        }
    }
}
