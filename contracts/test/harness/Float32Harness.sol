// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {Float32} from "../../src/libraries/Float32.sol";

/// @title Float32Harness
/// @notice Batch entry points over the Float32 library for tests/test_float32_onchain.py: inputs are packed big-endian
///         uint32 patterns (binary ops: a then b interleaved), outputs packed the same way, so one eth_call evaluates
///         thousands of cases. Not deployed by protocol/deploy.py.
contract Float32Harness {
    uint256 internal constant ADD = 0;
    uint256 internal constant SUB = 1;
    uint256 internal constant MUL = 2;
    uint256 internal constant DIV = 3;

    /// @notice op(a_i, b_i) for pairs packed as 8 bytes each (a_i ‖ b_i); op 0 add, 1 sub, 2 mul, 3 div.
    function binary(uint256 op, bytes calldata pairs) external pure returns (bytes memory out) {
        uint256 n = pairs.length / 8;
        out = new bytes(4 * n);
        for (uint256 i = 0; i < n; ++i) {
            uint32 a = uint32(bytes4(pairs[8 * i:8 * i + 4]));
            uint32 b = uint32(bytes4(pairs[8 * i + 4:8 * i + 8]));
            uint32 r;
            if (op == ADD) r = Float32.add(a, b);
            else if (op == SUB) r = Float32.sub(a, b);
            else if (op == MUL) r = Float32.mul(a, b);
            else r = Float32.div(a, b);
            _put4(out, i, r);
        }
    }

    /// @notice One byte per pair: bit 0 eq, bit 1 lt, bit 2 le.
    function compare(bytes calldata pairs) external pure returns (bytes memory out) {
        uint256 n = pairs.length / 8;
        out = new bytes(n);
        for (uint256 i = 0; i < n; ++i) {
            uint32 a = uint32(bytes4(pairs[8 * i:8 * i + 4]));
            uint32 b = uint32(bytes4(pairs[8 * i + 4:8 * i + 8]));
            uint8 f = (Float32.eq(a, b) ? 1 : 0) | (Float32.lt(a, b) ? 2 : 0) | (Float32.le(a, b) ? 4 : 0);
            out[i] = bytes1(f);
        }
    }

    /// @notice op(x_i) for 4-byte patterns; op 0 sqrt, 1 neg, 2 abs, 3 roundEven.
    function unary(uint256 op, bytes calldata xs) external pure returns (bytes memory out) {
        uint256 n = xs.length / 4;
        out = new bytes(4 * n);
        for (uint256 i = 0; i < n; ++i) {
            uint32 x = uint32(bytes4(xs[4 * i:4 * i + 4]));
            uint32 r;
            if (op == 0) r = Float32.sqrt(x);
            else if (op == 1) r = Float32.neg(x);
            else if (op == 2) r = Float32.abs(x);
            else r = Float32.roundEven(x);
            _put4(out, i, r);
        }
    }

    /// @notice fromInt of 8-byte big-endian two's-complement int64 values.
    function fromInt64(bytes calldata vs) external pure returns (bytes memory out) {
        uint256 n = vs.length / 8;
        out = new bytes(4 * n);
        for (uint256 i = 0; i < n; ++i) {
            int64 v = int64(uint64(bytes8(vs[8 * i:8 * i + 8])));
            _put4(out, i, Float32.fromInt(v));
        }
    }

    /// @notice fromFloat64 of 8-byte big-endian binary64 patterns.
    function fromFloat64(bytes calldata vs) external pure returns (bytes memory out) {
        uint256 n = vs.length / 8;
        out = new bytes(4 * n);
        for (uint256 i = 0; i < n; ++i) {
            _put4(out, i, Float32.fromFloat64(uint64(bytes8(vs[8 * i:8 * i + 8]))));
        }
    }

    function fromInt(int256 v) external pure returns (uint32) {
        return Float32.fromInt(v);
    }

    /// @notice toInt of 4-byte patterns, each result as 32 bytes (int256, two's complement); reverts on a non-finite.
    function toInt(bytes calldata xs) external pure returns (int256[] memory out) {
        uint256 n = xs.length / 4;
        out = new int256[](n);
        for (uint256 i = 0; i < n; ++i) {
            out[i] = Float32.toInt(uint32(bytes4(xs[4 * i:4 * i + 4])));
        }
    }

    function _put4(bytes memory out, uint256 i, uint32 r) private pure {
        assembly ("memory-safe") {
            let p := add(add(out, 32), mul(i, 4))
            mstore8(p, shr(24, r))
            mstore8(add(p, 1), and(shr(16, r), 0xff))
            mstore8(add(p, 2), and(shr(8, r), 0xff))
            mstore8(add(p, 3), and(r, 0xff))
        }
    }
}
