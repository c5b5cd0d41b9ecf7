// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title SlashSplit
/// @notice How a loser's slashed stake is shared: `winnerBps` to the winner, `arbiterBps` in equal parts to the
///         majority arbiters (nothing if there are none); the StakeManager burns the rest, so a party that disputes
///         itself always loses the burned share.
library SlashSplit {
    uint256 internal constant BPS = 10_000;

    function split(uint256 amount, address winner, address[] memory arbiters, uint256 winnerBps, uint256 arbiterBps)
        internal
        pure
        returns (address[] memory to, uint256[] memory amounts)
    {
        uint256 n = arbiters.length;
        to = new address[](n + 1);
        amounts = new uint256[](n + 1);
        to[0] = winner;
        amounts[0] = amount * winnerBps / BPS;
        if (n != 0) {
            uint256 each = amount * arbiterBps / BPS / n;
            for (uint256 i = 0; i < n; ++i) {
                to[i + 1] = arbiters[i];
                amounts[i + 1] = each;
            }
        }
    }
}
