// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title ReservedRoots
/// @notice State-root values the protocol gives a meaning of their own, which no committed checkpoint may take: zero
///         (an unset slot) and UNAVAILABLE (the arbiters' "pre-state could not be fetched" vote). A solver that could
///         commit or open UNAVAILABLE as a leaf would make honest "unavailable" votes count for it (DESIGN §8.5).
library ReservedRoots {
    /// @notice The result an arbiter reveals when the pre-state could not be fetched or did not hash to its root.
    bytes32 internal constant UNAVAILABLE = keccak256("veritrain.UNAVAILABLE");

    function isReserved(bytes32 root) internal pure returns (bool) {
        return root == bytes32(0) || root == UNAVAILABLE;
    }
}
