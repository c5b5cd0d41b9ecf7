// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title DrawSeed
/// @notice When a draw's inputs are fixed. A transaction that needs a random draw (a commit: the audit; a leaf
///         opening or a short committee: the arbiters) fixes the seed block to the next block; the draw then uses that
///         block's RANDAO value (read from its header, see BlockHeader) and the draw weights as they stood at the end
///         of the block before the fixing one, which nobody could adjust knowing the seed.
library DrawSeed {
    /// @notice The seed block fixed by a transaction of the current block.
    function next() internal view returns (uint64) {
        return uint64(block.number) + 1;
    }

    /// @notice The block whose end-of-block draw weights a draw with seed block `seedBlock` reads.
    function weightsBlock(uint64 seedBlock) internal pure returns (uint256) {
        return uint256(seedBlock) - 2;
    }
}
