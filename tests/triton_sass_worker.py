"""Compiles every exact-mode Triton kernel for NVIDIA GPUs (no GPU needed: Triton's own LLVM, ptxas and cuobjdump)
and prints, per kernel and architecture, the float instructions of its PTX and SASS as JSON (for
``tests/test_repro_triton.py``, which runs it in a subprocess without ``TRITON_INTERPRET``).

``python -m tests.triton_sass_worker`` prints ``{"triton": version, "kernels": {"<kernel> sm_<arch>": {"ptx":
{opcode: count}, "sass": {opcode: count}}}, "control_fused_sass": {...}, "cpu_without_interpreter": str}``,
where the control is the GEMM compiled *with* FP fusion (it must show FFMA, or the check could not fail). An
``HFMA2`` whose inputs are the zero register is counted as ``"HFMA2 constant"`` (how ptxas loads a constant).
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from protocol.repro import _config
from protocol.repro import _triton_kernels as T
from protocol.repro import kernels as K

_MM_TABLE_FLAGS = ("A_BT", "A_RT", "A_CT", "B_BT", "B_RT", "B_CT", "C_BT", "C_RT", "C_CT")


def _mm_signature() -> dict[str, str]:
    sig = {}
    for n in T._mm_kernel.arg_names:
        if n in ("a", "b", "bias", "c"):
            sig[n] = "*fp32"
        elif n.endswith(("_base", "_ro", "_co")):
            sig[n] = "*i64"
        elif n.endswith(("_bs", "_rs", "_cs")):
            sig[n] = "i64"
        elif n in ("M", "N", "K"):
            sig[n] = "i32"
        else:
            sig[n] = "constexpr"
    return sig


def _variants() -> list[tuple[str, object, dict[str, str], dict]]:
    """(label, kernel, signature, constexprs) of every kernel as the wrappers launch it."""
    mm_sig = _mm_signature()
    out = []
    for tables in (False, True):
        for bias in (False, True):
            const = dict.fromkeys(_MM_TABLE_FLAGS, tables) | {"HAS_BIAS": bias, "BM": 64, "BN": 64}
            out.append((f"mm tables={tables} bias={bias}", T._mm_kernel, mm_sig, const))
    sums = {"x": "*fp32", "out": "*fp32", "R": "i32", "L": "i32", "s_r": "i64", "s_l": "i64"}
    out.append(("rowsum", T._rowsum_kernel, sums | {"BR": "constexpr"}, {"BR": 128}))
    out.append(("colsum", T._colsum_kernel, sums | {"BL": "constexpr"}, {"BL": 128}))
    out.append(("index_add_rows", T._index_add_rows_kernel,
                {"g": "*fp32", "s_n": "i64", "s_d": "i64", "order": "*i64", "starts": "*i64", "ends": "*i64",
                 "out": "*fp32", "D": "i32", "BD": "constexpr"}, {"BD": 128}))  # fmt: skip
    for name, op in T._UNARY.items():
        out.append((name, T._unary_kernel, {"x": "*fp32", "out": "*fp32", "n": "i64", "OP": "constexpr",
                                            "BLOCK": "constexpr"}, {"OP": op, "BLOCK": 1024}))  # fmt: skip
    out.append(("gelu", T._gelu_kernel, {"x": "*fp32", "y_out": "*fp32", "t_out": "*fp32", "n": "i64",
                                         "BLOCK": "constexpr"}, {"BLOCK": 1024}))  # fmt: skip
    out.append(("gelu_grad", T._gelu_grad_kernel, {"x": "*fp32", "t": "*fp32", "dy": "*fp32", "dx": "*fp32",
                                                   "n": "i64", "BLOCK": "constexpr"}, {"BLOCK": 1024}))  # fmt: skip
    return out


_CUOBJDUMP = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"


def _ops(kernel, sig, const, arch: int, fusion: bool) -> dict[str, dict[str, int]]:
    src = ASTSource(kernel, sig, const)
    options = {"num_warps": 4, **T.LAUNCH_OPTIONS}
    if fusion:
        options["enable_fp_fusion"] = True
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    ptx = compiled.asm["ptx"]
    ptx_ops = collections.Counter(re.findall(r"^\s*(?:@!?%p\d+\s+)?([a-z][a-z0-9]*(?:\.[a-z0-9]+)*)", ptx, re.M))
    with tempfile.TemporaryDirectory() as d:
        cubin = Path(d) / "k.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        sass = subprocess.run([str(_CUOBJDUMP), "-sass", str(cubin)], capture_output=True, text=True, check=True)
    sass_ops = collections.Counter()
    for op, operands in re.findall(
        r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9]*)\S*\s+([^;]*);", sass.stdout
    ):
        # ptxas materialises float constants as HFMA2.MMA Rd, -RZ, RZ, c0, c1 (0·0 + c: a move, no arithmetic)
        sass_ops["HFMA2 constant" if op == "HFMA2" and re.match(r"\w+, -RZ, RZ,", operands) else op] += 1
    return {"ptx": dict(ptx_ops), "sass": dict(sass_ops)}


def main() -> None:
    report: dict = {"triton": triton.__version__, "kernels": {}}
    for label, kernel, sig, const in _variants():
        for arch in (90,) if label not in ("mm tables=True bias=True", "exp") else (80, 90):
            report["kernels"][f"{label} sm_{arch}"] = _ops(kernel, sig, const, arch, fusion=False)
    label, kernel, sig, const = _variants()[1]
    report["control_fused_sass"] = _ops(kernel, sig, const, 90, fusion=True)["sass"]
    try:
        with _config.backend("triton"):
            K.rowsum(torch.ones(2, 3))
        report["cpu_without_interpreter"] = None
    except Exception as exc:  # the typed error is what the test checks
        report["cpu_without_interpreter"] = f"{type(exc).__name__}: {exc}"
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
