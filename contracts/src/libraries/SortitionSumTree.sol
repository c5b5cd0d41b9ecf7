// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title SortitionSumTree
/// @notice A K-ary sum tree over weighted addresses (the structure Kleros uses to draw jurors): every internal node
///         holds the sum of its children, so setting a weight and drawing an address proportionally to its weight both
///         cost O(K·log_K n) and never loop over all members.
/// @dev Nodes live in a heap-ordered array; node 0 is the root (the total weight). When a new leaf would become the
///      first child of a node that is itself a leaf, that leaf moves down next to it and its old slot becomes a sum
///      node. Removed members leave a zero-weight leaf whose index is recycled by the next insertion.
library SortitionSumTree {
    uint256 internal constant K = 4;

    struct Tree {
        uint256[] nodes;
        uint256[] vacant;
        mapping(address member => uint256 index) indexOf;
        mapping(uint256 index => address member) memberAt;
    }

    /// @notice Total weight in the tree.
    function total(Tree storage tree) internal view returns (uint256) {
        return tree.nodes.length == 0 ? 0 : tree.nodes[0];
    }

    /// @notice Current weight of `member` (0 if absent).
    function weightOf(Tree storage tree, address member) internal view returns (uint256) {
        uint256 index = tree.indexOf[member];
        return index == 0 ? 0 : tree.nodes[index];
    }

    /// @notice Sets `member`'s weight; weight 0 removes it.
    function set(Tree storage tree, address member, uint256 weight) internal {
        if (tree.nodes.length == 0) tree.nodes.push(0);
        uint256 index = tree.indexOf[member];
        if (index == 0) {
            if (weight == 0) return;
            index = _insert(tree, member, weight);
            _addToAncestors(tree, index, weight, true);
            return;
        }
        uint256 old = tree.nodes[index];
        if (weight == old) return;
        tree.nodes[index] = weight;
        if (weight > old) _addToAncestors(tree, index, weight - old, true);
        else _addToAncestors(tree, index, old - weight, false);
        if (weight == 0) {
            delete tree.indexOf[member];
            delete tree.memberAt[index];
            tree.vacant.push(index);
        }
    }

    /// @notice The member whose cumulative weight interval contains `random % total`; address(0) for an empty tree.
    function draw(Tree storage tree, uint256 random) internal view returns (address) {
        uint256 t = total(tree);
        if (t == 0) return address(0);
        return _descend(tree, random % t);
    }

    /// @notice Like `draw`, but over the members NOT in `skip[0 .. n)` only: their total weight is the modulus and the
    ///         skipped members' intervals are stepped over, so every call lands on an eligible member (address(0) if
    ///         none is left). Costs O(n·K·log_K size + n²).
    function drawSkipping(Tree storage tree, uint256 random, address[] memory skip, uint256 n)
        internal
        view
        returns (address)
    {
        uint256 t = total(tree);
        uint256[] memory offsets = new uint256[](n);
        uint256[] memory weights = new uint256[](n);
        uint256 m = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 index = tree.indexOf[skip[i]];
            if (index == 0 || tree.nodes[index] == 0) continue;
            uint256 offset = _offsetOf(tree, index);
            bool duplicate = false;
            for (uint256 j = 0; j < m; ++j) {
                if (offsets[j] == offset) {
                    duplicate = true;
                    break;
                }
            }
            if (duplicate) continue;
            // Insertion sort by offset (ascending), so the intervals are stepped over in order.
            uint256 pos = m;
            while (pos != 0 && offsets[pos - 1] > offset) {
                offsets[pos] = offsets[pos - 1];
                weights[pos] = weights[pos - 1];
                --pos;
            }
            offsets[pos] = offset;
            weights[pos] = tree.nodes[index];
            t -= tree.nodes[index];
            ++m;
        }
        if (t == 0) return address(0);
        uint256 target = random % t;
        for (uint256 j = 0; j < m; ++j) {
            if (target >= offsets[j]) target += weights[j];
        }
        return _descend(tree, target);
    }

    /// @dev The member whose interval [offset, offset + weight) contains `target` (< total).
    function _descend(Tree storage tree, uint256 target) private view returns (address) {
        uint256 len = tree.nodes.length;
        uint256 index = 0;
        while (K * index + 1 < len) {
            uint256 first = K * index + 1;
            uint256 end = first + K < len ? first + K : len;
            for (uint256 child = first; child < end; ++child) {
                uint256 w = tree.nodes[child];
                if (target < w) {
                    index = child;
                    break;
                }
                target -= w;
            }
        }
        return tree.memberAt[index];
    }

    /// @dev Sum of the weights of all leaves left of node `index` in draw order (the start of its interval).
    function _offsetOf(Tree storage tree, uint256 index) private view returns (uint256 offset) {
        while (index != 0) {
            uint256 parent = (index - 1) / K;
            // Heap index arithmetic, not a rounding hazard: K·parent + 1 is the parent's first child.
            // slither-disable-next-line divide-before-multiply
            for (uint256 sibling = K * parent + 1; sibling < index; ++sibling) {
                offset += tree.nodes[sibling];
            }
            index = parent;
        }
    }

    function _insert(Tree storage tree, address member, uint256 weight) private returns (uint256 index) {
        uint256 nVacant = tree.vacant.length;
        if (nVacant != 0) {
            index = tree.vacant[nVacant - 1];
            tree.vacant.pop();
            tree.nodes[index] = weight;
        } else {
            index = tree.nodes.length;
            tree.nodes.push(weight);
            if (index != 1 && (index - 1) % K == 0) {
                // The new leaf is the first child of a leaf: move that leaf down beside it.
                uint256 parent = index / K;
                address moved = tree.memberAt[parent];
                uint256 movedTo = index + 1;
                tree.nodes.push(tree.nodes[parent]);
                delete tree.memberAt[parent];
                tree.indexOf[moved] = movedTo;
                tree.memberAt[movedTo] = moved;
            }
        }
        tree.indexOf[member] = index;
        tree.memberAt[index] = member;
    }

    function _addToAncestors(Tree storage tree, uint256 index, uint256 delta, bool up) private {
        while (index != 0) {
            index = (index - 1) / K;
            if (up) tree.nodes[index] += delta;
            else tree.nodes[index] -= delta;
        }
    }
}
