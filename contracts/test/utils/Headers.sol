// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @notice RLP block headers for tests: the 15 fields of a pre-London header with a chosen number and RANDAO value
///         (`mixHash`, field 13). Tests make the chain's blockhash of that number the header's hash (vm.setBlockhash).
library Headers {
    function encode(uint256 number, bytes32 randao) internal pure returns (bytes memory) {
        bytes memory payload = abi.encodePacked(
            _word(keccak256(abi.encode("parent", number))), // parentHash
            _word(keccak256("")), // ommersHash
            bytes1(0x94),
            bytes20(address(0xC0FFEE)), // beneficiary
            _word(keccak256(abi.encode("state", number))), // stateRoot
            _word(bytes32(0)), // transactionsRoot
            _word(bytes32(0)) // receiptsRoot
        );
        payload = abi.encodePacked(
            payload,
            hex"b90100",
            new bytes(256), // logsBloom
            hex"80", // difficulty 0
            _uint(number),
            _uint(30_000_000), // gasLimit
            _uint(0), // gasUsed
            _uint(1_700_000_000 + number * 12), // timestamp
            hex"80", // extraData
            _word(randao), // mixHash
            hex"880000000000000000" // nonce
        );
        return abi.encodePacked(hex"f9", uint16(payload.length), payload);
    }

    function _word(bytes32 w) private pure returns (bytes memory) {
        return abi.encodePacked(bytes1(0xa0), w);
    }

    /// @dev RLP of an integer: the empty string for 0, one byte below 0x80, else length-prefixed big-endian.
    function _uint(uint256 v) private pure returns (bytes memory) {
        if (v == 0) return hex"80";
        if (v < 0x80) return abi.encodePacked(uint8(v));
        uint256 n = 0;
        for (uint256 x = v; x != 0; x >>= 8) {
            ++n;
        }
        bytes memory out = new bytes(n + 1);
        out[0] = bytes1(uint8(0x80 + n));
        for (uint256 i = 0; i < n; ++i) {
            out[n - i] = bytes1(uint8(v >> (8 * i)));
        }
        return out;
    }
}
