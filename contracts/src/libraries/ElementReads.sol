// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

/// @title ElementReads
/// @notice Which input elements one output element of an exact-mode trace record reads, computed from the record's
///         encoded structure (protocol/repro/trace.py `STRUCTURE_ABI`) and its inputs' shapes, as
///         protocol/repro/elements.py `element` reads them (DESIGN §8 "The element of a record"): the positions a
///         dispute must see proven before it computes the element with `ElementOps`. Positions are C-order flat
///         indices. Kinds follow `READ_KINDS`; `kindOf` maps an opcode (`OPCODES`) to its kind.
/// @dev The `indexed` kind (a position that depends on an index element) is not static: `reads` reverts `NotStatic`;
///      `indexReads` and `indexedReads` give its two stages.
///      `where` and `masked_fill` return every candidate (the condition first); the element reads the condition and
///      one of the others.
library ElementReads {
    uint256 internal constant NONE = 0;
    uint256 internal constant SAME = 1;
    uint256 internal constant BROADCAST = 2;
    uint256 internal constant COPY = 3;
    uint256 internal constant T = 4;
    uint256 internal constant PERMUTE = 5;
    uint256 internal constant TRANSPOSE = 6;
    uint256 internal constant SLICE = 7;
    uint256 internal constant SELECT = 8;
    uint256 internal constant AS_STRIDED = 9;
    uint256 internal constant SPLIT = 10;
    uint256 internal constant CAT = 11;
    uint256 internal constant SLICE_BACKWARD = 12;
    uint256 internal constant PAD = 13;
    uint256 internal constant TRIU = 14;
    uint256 internal constant INDEXED = 15;
    uint256 internal constant REDUCE = 16;
    uint256 internal constant FOREACH = 17;

    /// @notice The read kind of each opcode (byte `opcode`), as protocol/repro/elements.py `read_kind` classifies it.
    bytes internal constant KINDS =
        hex"0000000000000000000e020a0b0c0d010201000101010101010103040506020708090f0f0f0f02020202020202020202020202020202020202020202020202020202020101010102010102101010100f1111111111111111111111111111";

    // argument tags (ARG_TAGS)
    uint8 internal constant TAG_INT = 0;
    uint8 internal constant TAG_TENSOR = 1;
    uint8 internal constant TAG_NONE = 3;
    uint8 internal constant TAG_BOOL = 4;

    /// @notice The element's reads depend on an index element: no static positions.
    error NotStatic(uint256 kind);
    /// @notice The structure names no such operation, dimension or position.
    error BadStructure();

    /// @notice What one record's element needs besides the position: its structure's fields and its inputs' shapes.
    struct Record {
        uint256 opcode;
        uint256 kind;
        uint8[] tags;
        int256[] values;
        uint32[] outShape;
        uint32[][] inShapes;
        uint256 outputs; // number of outputs (a `_foreach` list's length)
        uint256[] geomOffsets; // as_strided: each input's storage offset and strides
        uint256[][] geomStrides;
    }

    function kindOf(uint256 opcode) internal pure returns (uint256) {
        if (opcode >= KINDS.length) revert BadStructure();
        return uint8(KINDS[opcode]);
    }

    /// @notice The (input, position) pairs output `j`'s element `o` reads, in the order `element` reads them.
    function reads(Record memory r, uint256 j, uint256 o)
        internal
        pure
        returns (uint256[] memory inputs, uint256[] memory at)
    {
        uint256 kind = r.kind;
        uint256[] memory mi = unravel(o, r.outShape);
        if (kind == NONE) return (new uint256[](0), new uint256[](0));
        if (kind == SAME) return _one(0, o);
        if (kind == BROADCAST) {
            uint256 n = r.inShapes.length;
            (inputs, at) = (new uint256[](n), new uint256[](n));
            for (uint256 k = 0; k < n; ++k) {
                (inputs[k], at[k]) = (k, broadcastIndex(mi, r.outShape, r.inShapes[k]));
            }
            return (inputs, at);
        }
        if (kind == COPY) return _one(1, broadcastIndex(mi, r.outShape, r.inShapes[1]));
        if (kind == FOREACH) {
            uint256 lists = r.inShapes.length / r.outputs;
            (inputs, at) = (new uint256[](lists), new uint256[](lists));
            for (uint256 l = 0; l < lists; ++l) {
                uint256 k = l * r.outputs + j;
                (inputs[l], at[l]) = (k, broadcastIndex(mi, r.outShape, r.inShapes[k]));
            }
            return (inputs, at);
        }
        if (kind == REDUCE) return _reduce(r, mi);
        if (kind == INDEXED) revert NotStatic(kind);
        return _move(r, j, mi);
    }

    function _move(Record memory r, uint256 j, uint256[] memory mi)
        private
        pure
        returns (uint256[] memory, uint256[] memory)
    {
        uint256 kind = r.kind;
        if (kind == T || kind == PERMUTE || kind == TRANSPOSE) return _permuted(r, mi);
        if (kind == SLICE || kind == SELECT) return _sliced(r, mi);
        if (kind == SPLIT || kind == CAT) return _joined(r, j, mi);
        if (kind == TRIU || kind == PAD || kind == SLICE_BACKWARD) return _masked(r, mi);
        if (kind == AS_STRIDED) return _strided(r, mi);
        revert BadStructure();
    }

    function _permuted(Record memory r, uint256[] memory mi) private pure returns (uint256[] memory, uint256[] memory) {
        uint256 rank = r.outShape.length;
        if (r.kind == T) {
            if (rank >= 2) (mi[0], mi[1]) = (mi[1], mi[0]);
            return _one(0, ravel(mi, r.inShapes[0]));
        }
        int256[] memory rest = _rest(r);
        uint256[] memory perm = new uint256[](rank);
        for (uint256 d = 0; d < rank; ++d) {
            perm[d] = r.kind == PERMUTE ? _dim(rest[d], rank) : d;
        }
        if (r.kind == TRANSPOSE) {
            (uint256 a, uint256 b) = (_dim(rest[0], rank), _dim(rest[1], rank));
            (perm[a], perm[b]) = (perm[b], perm[a]);
        }
        uint256[] memory src = new uint256[](rank);
        for (uint256 d = 0; d < rank; ++d) {
            src[perm[d]] = mi[d];
        }
        return _one(0, ravel(src, r.inShapes[0]));
    }

    function _sliced(Record memory r, uint256[] memory mi) private pure returns (uint256[] memory, uint256[] memory) {
        int256[] memory rest = _rest(r);
        uint32[] memory shape = r.inShapes[0];
        if (r.kind == SLICE) {
            uint256 dim = _dim(rest.length > 0 ? rest[0] : int256(0), shape.length);
            int256 n = int256(uint256(shape[dim]));
            int256 start = rest.length > 1 && rest[1] != _NONE ? rest[1] : int256(0);
            if (start < 0) start += n;
            if (start < 0) start = 0;
            if (start > n) start = n;
            mi[dim] = uint256(start + int256(mi[dim]) * (rest.length > 3 ? rest[3] : int256(1)));
            return _one(0, ravel(mi, shape));
        }
        uint256 sdim = _dim(rest[0], shape.length);
        int256 index = rest[1] < 0 ? rest[1] + int256(uint256(shape[sdim])) : rest[1];
        if (index < 0 || index >= int256(uint256(shape[sdim]))) revert BadStructure();
        uint256[] memory src = new uint256[](shape.length);
        for (uint256 d = 0; d < shape.length; ++d) {
            src[d] = d < sdim ? mi[d] : (d == sdim ? uint256(index) : mi[d - 1]);
        }
        return _one(0, ravel(src, shape));
    }

    function _joined(Record memory r, uint256 j, uint256[] memory mi)
        private
        pure
        returns (uint256[] memory, uint256[] memory)
    {
        int256[] memory rest = _rest(r);
        uint256 rank = r.outShape.length;
        if (r.kind == SPLIT) {
            uint256 dim = _dim(rest.length > 1 ? rest[1] : int256(0), rank);
            mi[dim] += j * uint256(rest[0]);
            return _one(0, ravel(mi, r.inShapes[0]));
        }
        uint256 cdim = _dim(rest.length > 0 ? rest[0] : int256(0), rank);
        uint256 pos = mi[cdim];
        for (uint256 k = 0; k < r.inShapes.length; ++k) {
            uint256 size = r.inShapes[k][cdim];
            if (pos < size) {
                mi[cdim] = pos;
                return _one(k, ravel(mi, r.inShapes[k]));
            }
            pos -= size;
        }
        revert BadStructure();
    }

    /// @dev triu, constant_pad_nd and slice_backward: one read inside, none outside (the element is then a constant).
    function _masked(Record memory r, uint256[] memory mi) private pure returns (uint256[] memory, uint256[] memory) {
        int256[] memory rest = _rest(r);
        uint32[] memory shape = r.inShapes[0];
        uint256 rank = r.outShape.length;
        bool inside = true;
        if (r.kind == TRIU) {
            inside = int256(mi[rank - 1]) - int256(mi[rank - 2]) >= (rest.length > 0 ? rest[0] : int256(0));
        } else if (r.kind == PAD) {
            for (uint256 p = 0; 2 * p + 1 < rest.length && inside; ++p) {
                uint256 d = rank - 1 - p;
                int256 src = int256(mi[d]) - rest[2 * p];
                inside = src >= 0 && src < int256(uint256(shape[d]));
                if (inside) mi[d] = uint256(src);
            }
        } else {
            // rest: input_sizes (rank of them), dim, start, end, step
            uint256 dim = _dim(rest[rank], rank);
            int256 i = int256(mi[dim]) - rest[rank + 1];
            int256 step = rest[rank + 3];
            inside =
                i >= 0 && i % step == 0 && i / step < int256(uint256(shape[dim])) && int256(mi[dim]) < rest[rank + 2];
            if (inside) mi[dim] = uint256(i / step);
        }
        if (!inside) return (new uint256[](0), new uint256[](0));
        return _one(0, ravel(mi, shape));
    }

    function _strided(Record memory r, uint256[] memory mi) private pure returns (uint256[] memory, uint256[] memory) {
        int256[] memory rest = _rest(r);
        uint256 rank = r.outShape.length;
        uint256 p = rest.length > 2 * rank && rest[2 * rank] != _NONE ? uint256(rest[2 * rank]) : r.geomOffsets[0];
        for (uint256 d = 0; d < rank; ++d) {
            p += mi[d] * uint256(rest[rank + d]);
        }
        return _one(0, _storageToLogical(p, r.inShapes[0], r.geomOffsets[0], r.geomStrides[0]));
    }

    // indexed opcodes (OPCODES)
    uint256 internal constant OP_INDEX = 34;
    uint256 internal constant OP_INDEX_SELECT = 35;
    uint256 internal constant OP_GATHER = 36;
    uint256 internal constant OP_SCATTER_VALUE = 37;
    uint256 internal constant OP_INDEX_ADD_ROWS = 79;

    /// @notice An index element names no position of its dimension.
    error IndexOutOfRange(int256 index, uint256 size);

    /// @notice The index elements an `indexed` element reads first (input, position), in the order `element` reads
    ///         them: one per index tensor for `index`, one for `index_select` and `gather`, the slice along `dim`
    ///         for `scatter_` (it stops at the first that names this position), every `idx[n]` for `index_add_rows`.
    function indexReads(Record memory r, uint256 o)
        internal
        pure
        returns (uint256[] memory inputs, uint256[] memory at)
    {
        uint256[] memory mi = unravel(o, r.outShape);
        uint256 op = r.opcode;
        if (op == OP_INDEX) {
            uint256 k = r.inShapes.length - 1;
            uint256 lead = r.outShape.length - (r.inShapes[0].length - k);
            uint32[] memory idxShape = _prefix(r.outShape, lead);
            uint256[] memory head = _prefixIndex(mi, lead);
            (inputs, at) = (new uint256[](k), new uint256[](k));
            for (uint256 d = 0; d < k; ++d) {
                (inputs[d], at[d]) = (1 + d, broadcastIndex(head, idxShape, r.inShapes[1 + d]));
            }
            return (inputs, at);
        }
        int256[] memory rest = _rest(r);
        if (op == OP_INDEX_SELECT) return _one(1, mi[_dim(rest[0], r.inShapes[0].length)]);
        if (op == OP_GATHER) return _one(1, ravel(mi, r.inShapes[1]));
        if (op == OP_SCATTER_VALUE) {
            uint32[] memory idx = r.inShapes[1];
            uint256 dim = _dim(rest[0], mi.length);
            for (uint256 d = 0; d < mi.length; ++d) {
                if (d != dim && mi[d] >= idx[d]) return (new uint256[](0), new uint256[](0));
            }
            uint256 n = idx[dim];
            (inputs, at) = (new uint256[](n), new uint256[](n));
            for (uint256 q = 0; q < n; ++q) {
                mi[dim] = q;
                (inputs[q], at[q]) = (1, ravel(mi, idx));
            }
            return (inputs, at);
        }
        if (op == OP_INDEX_ADD_ROWS) {
            uint256 n = r.inShapes[0][0];
            (inputs, at) = (new uint256[](n), new uint256[](n));
            for (uint256 q = 0; q < n; ++q) {
                (inputs[q], at[q]) = (0, q);
            }
            return (inputs, at);
        }
        revert BadStructure();
    }

    /// @notice The data elements an `indexed` element reads once its index elements `idx` (the values at
    ///         `indexReads`, in order) are known: the indexed element for `index`/`index_select`/`gather`; for
    ///         `scatter_`, none if an index names this position (the element is the scattered value), else input 0
    ///         here; for `index_add_rows`, `G[n, d]` of every `n` whose index is this row, ascending.
    function indexedReads(Record memory r, uint256 o, int256[] memory idx)
        internal
        pure
        returns (uint256[] memory inputs, uint256[] memory at)
    {
        uint256[] memory mi = unravel(o, r.outShape);
        uint256 op = r.opcode;
        uint32[] memory x = r.inShapes[0];
        if (op == OP_INDEX) {
            uint256 k = idx.length;
            uint256 lead = r.outShape.length - (x.length - k);
            uint256[] memory src = new uint256[](x.length);
            for (uint256 d = 0; d < x.length; ++d) {
                src[d] = d < k ? _position(idx[d], x[d], true) : mi[lead + d - k];
            }
            return _one(0, ravel(src, x));
        }
        int256[] memory rest = _rest(r);
        if (op == OP_INDEX_SELECT || op == OP_GATHER) {
            uint256 dim = _dim(rest[0], x.length);
            mi[dim] = _position(idx[0], x[dim], false);
            return _one(0, ravel(mi, x));
        }
        if (op == OP_SCATTER_VALUE) {
            uint256 dim = _dim(rest[0], mi.length);
            for (uint256 q = 0; q < idx.length; ++q) {
                if (_position(idx[q], r.outShape[dim], false) == mi[dim]) return (new uint256[](0), new uint256[](0));
            }
            return _one(0, o);
        }
        if (op == OP_INDEX_ADD_ROWS) {
            uint256 width_ = r.inShapes[1][1];
            uint256 hits = 0;
            for (uint256 q = 0; q < idx.length; ++q) {
                if (_position(idx[q], r.outShape[0], false) == mi[0]) ++hits;
            }
            (inputs, at) = (new uint256[](hits), new uint256[](hits));
            uint256 h = 0;
            for (uint256 q = 0; q < idx.length; ++q) {
                if (_position(idx[q], r.outShape[0], false) == mi[0]) (inputs[h], at[h++]) = (1, q * width_ + mi[1]);
            }
            return (inputs, at);
        }
        revert BadStructure();
    }

    function _position(int256 v, uint256 size, bool negative) private pure returns (uint256) {
        int256 i = v < 0 && negative ? v + int256(size) : v;
        if (i < 0 || i >= int256(size)) revert IndexOutOfRange(v, size);
        return uint256(i);
    }

    function _prefix(uint32[] memory shape, uint256 n) private pure returns (uint32[] memory out) {
        out = new uint32[](n);
        for (uint256 d = 0; d < n; ++d) {
            out[d] = shape[d];
        }
    }

    function _prefixIndex(uint256[] memory mi, uint256 n) private pure returns (uint256[] memory out) {
        out = new uint256[](n);
        for (uint256 d = 0; d < n; ++d) {
            out[d] = mi[d];
        }
    }

    /// @dev Every element of the reduced slice, ascending (dims from the int arguments; all without any).
    function _reduce(Record memory r, uint256[] memory mi)
        private
        pure
        returns (uint256[] memory inputs, uint256[] memory at)
    {
        uint32[] memory x = r.inShapes[0];
        bool[] memory reduced = new bool[](x.length);
        bool keepdim;
        bool any;
        bool seenTensor;
        for (uint256 a = 0; a < r.tags.length; ++a) {
            if (r.tags[a] == TAG_TENSOR) {
                seenTensor = true;
            } else if (seenTensor && r.tags[a] == TAG_INT) {
                reduced[_dim(r.values[a], x.length)] = true;
                any = true;
            } else if (seenTensor && r.tags[a] == TAG_BOOL) {
                keepdim = r.values[a] != 0;
            }
        }
        uint256 count = 1;
        uint32[] memory rshape = new uint32[](x.length);
        uint256 nr;
        for (uint256 d = 0; d < x.length; ++d) {
            if (!any) reduced[d] = true;
            if (reduced[d]) {
                rshape[nr++] = x[d];
                count *= x[d];
            }
        }
        assembly ("memory-safe") {
            mstore(rshape, nr)
        }
        uint256[] memory src = new uint256[](x.length);
        uint256 kept;
        for (uint256 d = 0; d < x.length; ++d) {
            if (!reduced[d]) src[d] = keepdim ? mi[d] : mi[kept++];
        }
        (inputs, at) = (new uint256[](count), new uint256[](count));
        for (uint256 q = 0; q < count; ++q) {
            uint256[] memory ri = unravel(q, rshape);
            uint256 t;
            for (uint256 d = 0; d < x.length; ++d) {
                if (reduced[d]) src[d] = ri[t++];
            }
            at[q] = ravel(src, x);
        }
    }

    int256 private constant _NONE = type(int256).min;

    /// @dev The structural arguments after the leading tensor placeholders (None as `_NONE`, floats skipped).
    function _rest(Record memory r) private pure returns (int256[] memory out) {
        uint256 a;
        while (a < r.tags.length && r.tags[a] == TAG_TENSOR) {
            ++a;
        }
        out = new int256[](r.tags.length - a);
        uint256 n;
        for (; a < r.tags.length; ++a) {
            uint8 tag = r.tags[a];
            if (tag == TAG_INT || tag == TAG_BOOL) out[n++] = r.values[a];
            else if (tag == TAG_NONE) out[n++] = _NONE;
        }
        assembly ("memory-safe") {
            mstore(out, n)
        }
    }

    function _one(uint256 k, uint256 i) private pure returns (uint256[] memory inputs, uint256[] memory at) {
        (inputs, at) = (new uint256[](1), new uint256[](1));
        (inputs[0], at[0]) = (k, i);
    }

    function _dim(int256 d, uint256 rank) private pure returns (uint256) {
        int256 r = int256(rank == 0 ? 1 : rank);
        if (d < -r || d >= r) revert BadStructure();
        return uint256(d < 0 ? d + r : d);
    }

    function unravel(uint256 o, uint32[] memory shape) internal pure returns (uint256[] memory mi) {
        mi = new uint256[](shape.length);
        for (uint256 d = shape.length; d > 0; --d) {
            uint256 n = shape[d - 1];
            if (n != 0) (mi[d - 1], o) = (o % n, o / n);
        }
    }

    function ravel(uint256[] memory mi, uint32[] memory shape) internal pure returns (uint256 o) {
        if (mi.length != shape.length) revert BadStructure();
        for (uint256 d = 0; d < shape.length; ++d) {
            if (mi[d] >= shape[d]) revert BadStructure();
            o = o * shape[d] + mi[d];
        }
    }

    /// @notice The flat index in an input of `inShape` that broadcasts to output position `mi` (trailing dimensions
    ///         aligned, size-1 dimensions read at 0).
    function broadcastIndex(uint256[] memory mi, uint32[] memory outShape, uint32[] memory inShape)
        internal
        pure
        returns (uint256 o)
    {
        if (inShape.length > outShape.length) revert BadStructure();
        uint256 lead = outShape.length - inShape.length;
        for (uint256 d = 0; d < inShape.length; ++d) {
            o = o * inShape[d] + (inShape[d] == 1 ? 0 : mi[lead + d]);
        }
    }

    /// @dev The C-order index of the input element stored at storage position `p` (strides descending).
    function _storageToLogical(uint256 p, uint32[] memory shape, uint256 offset, uint256[] memory strides)
        private
        pure
        returns (uint256)
    {
        if (p < offset || strides.length != shape.length) revert BadStructure();
        uint256 rel = p - offset;
        uint256 rank = shape.length;
        uint256[] memory mi = new uint256[](rank);
        bool[] memory done = new bool[](rank);
        for (uint256 step = 0; step < rank; ++step) {
            uint256 best = type(uint256).max;
            for (uint256 d = 0; d < rank; ++d) {
                if (!done[d] && (best == type(uint256).max || strides[d] > strides[best])) best = d;
            }
            done[best] = true;
            if (shape[best] <= 1 || strides[best] == 0) continue;
            mi[best] = rel / strides[best];
            rel -= mi[best] * strides[best];
            if (mi[best] >= shape[best]) revert BadStructure();
        }
        if (rel != 0) revert BadStructure();
        return ravel(mi, shape);
    }
}
