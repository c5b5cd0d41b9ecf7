// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";

/// @title CheckpointedSumTree
/// @notice Weighted members whose weights keep their history: a draw can be made against the weights as they stood at
///         the end of any past block, so nobody can move a weight after a seed is known and have the draw see it.
/// @dev A Fenwick (binary indexed) tree over member slots 1, 2, ... (a member keeps its slot forever): node i holds the
///      sum of the weights of slots (i - lowbit(i), i], and every node, every member weight and the tree's capacity (a
///      power of two >= the slot count) are OpenZeppelin checkpoint traces keyed by block number. Setting a weight
///      appends one checkpoint to each of the log2(capacity) + 1 nodes above its slot; reading any block's total, a
///      prefix sum, or the member a number falls on costs log2(capacity) + 1 node lookups, each one read when the node
///      has not changed since that block (the case for draws: their block is a few blocks old).
library CheckpointedSumTree {
    using Checkpoints for Checkpoints.Trace208;

    struct Tree {
        mapping(uint256 node => Checkpoints.Trace208) sums;
        mapping(address member => Checkpoints.Trace208) weights;
        mapping(address member => uint256 slot) slotOf;
        mapping(uint256 slot => address member) memberAt;
        Checkpoints.Trace208 capacity;
        uint256 slots;
    }

    /// @notice A weight does not fit the 208-bit checkpoint value.
    error WeightTooLarge(uint256 weight);

    // ------------------------------------------------------------------ writes

    /// @notice Sets `member`'s weight from this block on; weight 0 makes it undrawable (its slot stays).
    function set(Tree storage tree, address member, uint256 weight) internal {
        if (weight > type(uint208).max) revert WeightTooLarge(weight);
        uint256 slot = tree.slotOf[member];
        uint48 now_ = uint48(block.number);
        if (slot == 0) {
            if (weight == 0) return;
            slot = ++tree.slots;
            tree.slotOf[member] = slot;
            tree.memberAt[slot] = member;
            _grow(tree, slot, now_);
        }
        uint256 old = tree.weights[member].latest();
        if (weight == old) return;
        _record(tree.weights[member], now_, weight);
        uint256 cap = tree.capacity.latest();
        for (uint256 i = slot; i <= cap; i += _lowbit(i)) {
            uint256 sum = tree.sums[i].latest();
            _record(tree.sums[i], now_, weight > old ? sum + (weight - old) : sum - (old - weight));
        }
    }

    /// @dev Doubles the capacity until it holds `slot`: the new top node covers every slot, so it starts at the total.
    function _grow(Tree storage tree, uint256 slot, uint48 now_) private {
        uint256 cap = tree.capacity.latest();
        while (slot > cap) {
            uint256 total_ = cap == 0 ? 0 : tree.sums[cap].latest();
            cap = cap == 0 ? 1 : cap * 2;
            _record(tree.sums[cap], now_, total_);
            _record(tree.capacity, now_, cap);
        }
    }

    // -------------------------------------------------------------- current

    /// @notice Total weight now.
    function total(Tree storage tree) internal view returns (uint256) {
        uint256 cap = tree.capacity.latest();
        return cap == 0 ? 0 : tree.sums[cap].latest();
    }

    /// @notice `member`'s weight now (0 if never set).
    function weightOf(Tree storage tree, address member) internal view returns (uint256) {
        return tree.weights[member].latest();
    }

    // -------------------------------------------------------------- history

    /// @notice Total weight at the end of block `at`.
    function totalAt(Tree storage tree, uint48 at) internal view returns (uint256) {
        uint256 cap = _valueAt(tree.capacity, at);
        return cap == 0 ? 0 : _valueAt(tree.sums[cap], at);
    }

    /// @notice `member`'s weight at the end of block `at`.
    function weightAt(Tree storage tree, address member, uint48 at) internal view returns (uint256) {
        return _valueAt(tree.weights[member], at);
    }

    /// @notice Like a draw of `random % W` over the weights at the end of block `at`, but over the members NOT in
    ///         `skip[0 .. n)` only (W is their total weight then): every call lands on an eligible member, address(0)
    ///         if none is left. Costs O(n·log2 capacity + n²) lookups.
    function drawSkippingAt(Tree storage tree, uint256 random, address[] memory skip, uint256 n, uint48 at)
        internal
        view
        returns (address)
    {
        uint256 cap = _valueAt(tree.capacity, at);
        if (cap == 0) return address(0);
        (uint256[] memory offsets, uint256[] memory weights, uint256 skipped) = _intervals(tree, skip, n, cap, at);
        uint256 t = _valueAt(tree.sums[cap], at) - skipped;
        if (t == 0) return address(0);
        uint256 target = random % t;
        for (uint256 j = 0; j < offsets.length; ++j) {
            if (target >= offsets[j]) target += weights[j];
        }
        return tree.memberAt[_find(tree, target, cap, at)];
    }

    /// @dev The intervals [offset, offset + weight) at block `at` of the distinct members of `skip[0 .. n)` that had
    ///      weight then, sorted by offset, and their total weight.
    function _intervals(Tree storage tree, address[] memory skip, uint256 n, uint256 cap, uint48 at)
        private
        view
        returns (uint256[] memory offsets, uint256[] memory weights, uint256 skipped)
    {
        offsets = new uint256[](n);
        weights = new uint256[](n);
        uint256 m = 0;
        for (uint256 i = 0; i < n; ++i) {
            address who = skip[i];
            uint256 slot = tree.slotOf[who];
            if (slot == 0 || slot > cap || _seen(skip, i, who)) continue;
            uint256 w = _valueAt(tree.weights[who], at);
            if (w == 0) continue;
            uint256 offset = _prefixAt(tree, slot - 1, at);
            // Insertion sort by offset (ascending), so the intervals are stepped over in order.
            uint256 pos = m;
            while (pos != 0 && offsets[pos - 1] > offset) {
                offsets[pos] = offsets[pos - 1];
                weights[pos] = weights[pos - 1];
                --pos;
            }
            offsets[pos] = offset;
            weights[pos] = w;
            skipped += w;
            ++m;
        }
        assembly ("memory-safe") {
            mstore(offsets, m)
            mstore(weights, m)
        }
    }

    /// @dev The slot whose interval [prefix(slot - 1), prefix(slot)) at block `at` contains `target` (< total then).
    function _find(Tree storage tree, uint256 target, uint256 cap, uint48 at) private view returns (uint256) {
        uint256 pos = 0;
        for (uint256 bit = cap >> 1; bit != 0; bit >>= 1) {
            uint256 sum = _valueAt(tree.sums[pos + bit], at);
            if (sum <= target) {
                pos += bit;
                target -= sum;
            }
        }
        return pos + 1;
    }

    /// @dev Sum of the weights of slots 1..`slot` at the end of block `at` (slot <= the capacity then).
    function _prefixAt(Tree storage tree, uint256 slot, uint48 at) private view returns (uint256 sum) {
        for (uint256 i = slot; i != 0; i -= _lowbit(i)) {
            sum += _valueAt(tree.sums[i], at);
        }
    }

    /// @dev A trace's value at the end of block `at`: its newest checkpoint when that is not later (one read), else
    ///      OpenZeppelin's recent-biased binary search.
    function _valueAt(Checkpoints.Trace208 storage trace, uint48 at) private view returns (uint256) {
        (bool exists, uint48 key, uint208 value) = trace.latestCheckpoint();
        if (!exists) return 0;
        if (key <= at) return value;
        return trace.upperLookupRecent(at);
    }

    /// @dev Appends the trace's checkpoint for block `at` (overwrites it within the same block). Values fit 208 bits:
    ///      weights are checked in `set`, and sums of them are bounded by the token supply held by the StakeManager.
    function _record(Checkpoints.Trace208 storage trace, uint48 at, uint256 value) private {
        // push returns the (previous, new) values, both known here.
        // slither-disable-next-line unused-return
        trace.push(at, uint208(value));
    }

    function _seen(address[] memory list, uint256 n, address who) private pure returns (bool) {
        for (uint256 i = 0; i < n; ++i) {
            if (list[i] == who) return true;
        }
        return false;
    }

    function _lowbit(uint256 i) private pure returns (uint256) {
        unchecked {
            return i & (~i + 1);
        }
    }
}
