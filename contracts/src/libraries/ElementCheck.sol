// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.30;

import {ElementEval} from "./ElementEval.sol";
import {ElementEvaluator} from "../ElementEvaluator.sol";
import {ElementOps} from "./ElementOps.sol";
import {ElementProof} from "./ElementProof.sol";
import {ElementReads} from "./ElementReads.sol";
import {TraceStructure} from "./TraceStructure.sol";

/// @title ElementCheck
/// @notice The bottom of an exact-mode dispute: whether output element `o` of output `j` of one trace record, as
///         its committed output claims it, is what the record computes from the input elements it reads, each one
///         proven against its input's commitment at the position the record reads it (DESIGN §8 "The element of a
///         record"). The caller has agreed the record (its hash is returned, for the trace root) and its inputs'
///         commitments, shapes and dtypes (from the records, state and externals that produced them). The element's
///         arithmetic runs in `ElementEvaluator` (a separate contract: both do not fit one under EIP-170).
library ElementCheck {
    /// @notice One read: which input, which element, and its proof (the leaf's bytes and audit path).
    struct Read {
        uint256 input;
        uint256 index;
        bytes chunk;
        bytes32[] path;
    }

    struct Claim {
        bytes structure; // protocol/repro/trace.py STRUCTURE_ABI
        uint64[] floats; // the record's float arguments, binary64 patterns
        bytes32[] outCommitments;
        uint32[][] inShapes;
        uint256[] inDtypes;
        bytes32[] inCommitments;
        uint256 j;
        uint256 o;
        Read[] reads; // in the order the element reads them
        bytes outChunk;
        bytes32[] outPath;
    }

    /// @notice A float32 fold element's term operation (ElementOps MAX, MIN or ADD), identity (the partial result
    ///         before the first term) and term count (`isFold` false: not a fold).
    struct Fold {
        bool isFold;
        uint256 op;
        uint256 identity;
        uint256 terms;
    }

    /// @notice Read `n` is not proven, or is not the element the record reads next.
    error BadRead(uint256 n);
    /// @notice The claimed output element is not proven against the record's output commitment.
    error BadOutput();
    /// @notice The record's element is not a fold of terms, or has no such term.
    error NotAFold();

    uint256 private constant F32 = 0;
    uint256 private constant OP_MASKED_FILL = 10;
    uint256 private constant OP_WHERE = 71;

    /// @notice sha256(sha256(structure) ‖ floats as 8 big-endian bytes each ‖ output commitments): the record's
    ///         leaf in the trace root (protocol/repro/trace.py `Record.record_hash`).
    function recordHash(bytes calldata structure, uint64[] calldata floats, bytes32[] calldata commitments)
        internal
        pure
        returns (bytes32)
    {
        bytes memory packed = abi.encodePacked(sha256(structure), packFloats(floats));
        for (uint256 i = 0; i < commitments.length; ++i) {
            packed = bytes.concat(packed, commitments[i]);
        }
        return sha256(packed);
    }

    /// @notice The floats as the record hash packs them: each its 8 binary64 bytes, big-endian.
    function packFloats(uint64[] calldata floats) internal pure returns (bytes memory packed) {
        packed = new bytes(8 * floats.length);
        for (uint256 i = 0; i < floats.length; ++i) {
            bytes8 w = bytes8(floats[i]);
            for (uint256 b = 0; b < 8; ++b) {
                packed[8 * i + b] = w[b];
            }
        }
    }

    /// @notice Whether the claimed element holds (`computed == claimed`, every float32 NaN counted as the canonical
    ///         NaN); reverts `BadRead`/`BadOutput` if the proofs do not hold.
    function check(Claim calldata c, ElementEvaluator evaluator)
        internal
        view
        returns (bool holds, uint256 computed, uint256 claimed, bytes32 record)
    {
        uint256 outDtype;
        uint256 outNumel;
        (computed, outDtype, outNumel) = compute(c, evaluator);
        bool outOk;
        (outOk, claimed) = ElementProof.verify(
            c.outCommitments[c.j], outNumel, ElementOps.width(outDtype) / 8, c.o, c.outChunk, c.outPath
        );
        if (!outOk) revert BadOutput();
        holds = computed == _canonical(claimed, outDtype);
        record = recordHash(c.structure, c.floats, c.outCommitments);
    }

    /// @notice The element the record computes at output `c.j`, position `c.o` (a float32 NaN as the canonical NaN)
    ///         from the proven reads (`c.outChunk`/`c.outPath` unused), with the output's dtype code and size;
    ///         reverts `BadRead` if a read is not proven or not at the position the record reads next, and
    ///         `ElementUndefined` (ElementOps) where the element is not defined.
    function compute(Claim calldata c, ElementEvaluator evaluator)
        internal
        view
        returns (uint256 computed, uint256 outDtype, uint256 outNumel)
    {
        ElementEval.Input memory x = _input(c);
        uint256[] memory values = _provenReads(c);
        _checkPositions(c, x, values);
        outDtype = x.outDtype;
        outNumel = _numel(x.r.outShape);
        computed = _canonical(evaluator.evaluate(x, c.j, c.o, values), outDtype);
    }

    /// @notice Whether output `j` of a record (its structure decoded, its inputs' shapes and dtypes) is a float32
    ///         fold whose elements a dispute descends through term by term, and if so its term operation
    ///         (ElementOps MAX, MIN or ADD), identity (the partial result before the first term) and term count.
    function foldOf(TraceStructure.Structure memory t, uint32[][] memory inShapes, uint256[] memory inDtypes, uint256 j)
        internal
        pure
        returns (Fold memory f)
    {
        if (t.dtypes[j] != F32 || inShapes.length == 0) return f;
        uint256 kind = ElementEval.evalKind(t.opcode);
        if (kind == ElementEval.INDEX_ADD_ROWS) {
            if (inDtypes[1] == F32) f = Fold(true, ElementOps.ADD, 0, inShapes[0][0]);
            return f;
        }
        uint256 out = _numel(t.shapes[j]);
        if ((kind != ElementEval.MAX && kind != ElementEval.MIN) || inDtypes[0] != F32 || out == 0) return f;
        f = Fold(true, ElementOps.MAX, 0xff800000, _numel(inShapes[0]) / out);
        if (kind == ElementEval.MIN) (f.op, f.identity) = (ElementOps.MIN, 0x7f800000);
    }

    /// @notice The partial result after term `n` of element `c.o` of a fold record (`foldOf`), from the partial
    ///         result `acc` before it: `c.reads` are the term's reads only (the slice's `n`-th element; or `idx[n]`,
    ///         then `G[n, d]` when it names the element's row), each proven. Reverts `NotAFold`, `BadRead`, or
    ///         `IndexOutOfRange` for an index outside the output's rows.
    function foldTerm(Claim calldata c, uint256 n, uint256 acc, ElementEvaluator evaluator)
        internal
        view
        returns (uint256)
    {
        (uint256 op, ElementReads.Record memory r) = _foldRecord(c, n);
        uint256[] memory values = _provenReads(c);
        uint256 used = 1;
        if (op == ElementOps.ADD) {
            if (_rowMatches(c, r, values[0], n)) {
                _expect(c, 1, 1, n * r.inShapes[1][1] + c.o % r.outShape[1]);
                acc = evaluator.fold(op, acc, values[1]);
                used = 2;
            }
        } else {
            _expectSliceTerm(c, r, n);
            acc = evaluator.fold(op, acc, values[0]);
        }
        if (c.reads.length != used) revert BadRead(used);
        return _canonical(acc, F32);
    }

    function _foldRecord(Claim calldata c, uint256 n) private pure returns (uint256, ElementReads.Record memory) {
        TraceStructure.Structure memory t = TraceStructure.decode(c.structure);
        Fold memory f = foldOf(t, c.inShapes, c.inDtypes, c.j);
        if (!f.isFold || n >= f.terms) revert NotAFold();
        return (f.op, TraceStructure.record(t, c.inShapes, c.j));
    }

    function _expectSliceTerm(Claim calldata c, ElementReads.Record memory r, uint256 n) private pure {
        (uint256[] memory k, uint256[] memory a) = ElementReads.reads(r, c.j, c.o);
        _expect(c, 0, k[n], a[n]);
    }

    /// @dev index_add_rows: read 0 is idx[n], in range, and whether it names the element's row.
    function _rowMatches(Claim calldata c, ElementReads.Record memory r, uint256 bits, uint256 n)
        private
        pure
        returns (bool)
    {
        _expect(c, 0, 0, n);
        int256 v = ElementOps.signed(bits, c.inDtypes[0]);
        if (v < 0 || v >= int256(uint256(r.outShape[0]))) revert ElementReads.IndexOutOfRange(v, r.outShape[0]);
        return uint256(v) == c.o / r.outShape[1];
    }

    /// @dev Each read's bits, proven against its input's commitment (BadRead otherwise).
    function _provenReads(Claim calldata c) private view returns (uint256[] memory values) {
        values = new uint256[](c.reads.length);
        for (uint256 n = 0; n < c.reads.length; ++n) {
            uint256 k = c.reads[n].input;
            if (k >= c.inCommitments.length) revert BadRead(n);
            (bool ok, uint256 bits) = ElementProof.verify(
                c.inCommitments[k],
                _numel(c.inShapes[k]),
                ElementOps.width(c.inDtypes[k]) / 8,
                c.reads[n].index,
                c.reads[n].chunk,
                c.reads[n].path
            );
            if (!ok) revert BadRead(n);
            values[n] = bits;
        }
    }

    /// @dev The reads are exactly the elements the record reads, in its order (ElementReads: static candidates, or
    ///      the two stages of an indexed element, driven by the values read).
    function _checkPositions(Claim calldata c, ElementEval.Input memory x, uint256[] memory values) private pure {
        ElementReads.Record memory r = x.r;
        uint256 n = 0;
        if (r.kind == ElementReads.INDEXED) {
            (uint256[] memory ik, uint256[] memory ia) = ElementReads.indexReads(r, c.o);
            if (r.opcode == ElementReads.OP_SCATTER_VALUE || r.opcode == ElementReads.OP_INDEX_ADD_ROWS) {
                _checkFold(c, x, values, ik, ia);
                return;
            }
            int256[] memory idx = new int256[](ik.length);
            for (; n < ik.length; ++n) {
                _expect(c, n, ik[n], ia[n]);
                idx[n] = ElementOps.signed(values[n], x.inDtypes[ik[n]]);
            }
            (uint256[] memory dk, uint256[] memory da) = ElementReads.indexedReads(r, c.o, idx);
            for (uint256 q = 0; q < dk.length; ++q) {
                _expect(c, n++, dk[q], da[q]);
            }
        } else {
            (uint256[] memory k, uint256[] memory a) = ElementReads.reads(r, c.j, c.o);
            if (r.opcode == OP_WHERE) {
                _expect(c, n++, k[0], a[0]);
                uint256 pick = values.length > 0 && values[0] != 0 ? 1 : 2;
                _expect(c, n++, k[pick], a[pick]);
            } else if (r.opcode == OP_MASKED_FILL) {
                _expect(c, n++, k[1], a[1]);
                if (values.length > 0 && values[0] == 0) _expect(c, n++, k[0], a[0]);
            } else {
                for (; n < k.length; ++n) {
                    _expect(c, n, k[n], a[n]);
                }
            }
        }
        if (n != c.reads.length) revert BadRead(n);
    }

    /// @dev scatter_: the index slice until one names the position, then (if none did) the element itself;
    ///      index_add_rows: every idx[n], each followed by G[n, d] when it names the row.
    function _checkFold(
        Claim calldata c,
        ElementEval.Input memory x,
        uint256[] memory values,
        uint256[] memory ik,
        uint256[] memory ia
    ) private pure {
        ElementReads.Record memory r = x.r;
        uint256[] memory mi = ElementReads.unravel(c.o, r.outShape);
        uint256 n = 0;
        if (r.opcode == ElementReads.OP_SCATTER_VALUE) {
            bool hit = false;
            uint256 dim = _scatterDim(r, mi.length);
            for (uint256 q = 0; q < ik.length && !hit; ++q) {
                _expect(c, n, ik[q], ia[q]);
                hit = ElementOps.signed(values[n++], x.inDtypes[1]) == int256(mi[dim]);
            }
            if (!hit) _expect(c, n++, 0, c.o);
        } else {
            uint256 width = r.inShapes[1][1];
            for (uint256 q = 0; q < ik.length; ++q) {
                _expect(c, n, 0, q);
                if (ElementOps.signed(values[n++], x.inDtypes[0]) == int256(mi[0])) {
                    _expect(c, n++, 1, q * width + mi[1]);
                }
            }
        }
        if (n != c.reads.length) revert BadRead(n);
    }

    function _scatterDim(ElementReads.Record memory r, uint256 rank) private pure returns (uint256) {
        uint256 a;
        while (a < r.tags.length && r.tags[a] == 1) {
            ++a;
        }
        int256 d = r.values[a];
        return uint256(d < 0 ? d + int256(rank) : d);
    }

    function _expect(Claim calldata c, uint256 n, uint256 k, uint256 i) private pure {
        if (n >= c.reads.length || c.reads[n].input != k || c.reads[n].index != i) revert BadRead(n);
    }

    function _input(Claim calldata c) private pure returns (ElementEval.Input memory x) {
        TraceStructure.Structure memory t = TraceStructure.decode(c.structure);
        x.r = TraceStructure.record(t, c.inShapes, c.j);
        x.outDtype = t.dtypes[c.j];
        x.inDtypes = c.inDtypes;
        x.floats = c.floats;
    }

    function _numel(uint32[] memory shape) private pure returns (uint256) {
        return TraceStructure.numel(shape);
    }

    function _canonical(uint256 bits, uint256 dtype) private pure returns (uint256) {
        return dtype == F32 && bits & 0x7fffffff > 0x7f800000 ? 0x7fc00000 : bits;
    }
}
