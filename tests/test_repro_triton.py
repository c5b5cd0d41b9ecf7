"""The exact-mode Triton kernels (CUDA) give the reference bits, and compile to code that keeps the order — shown
without a GPU.

1. In Triton's interpreter (``TRITON_INTERPRET=1``, a subprocess: the variable must be set before triton is
   imported, and nothing else in this session may run interpreted) every kernel equals the pure-torch reference
   bit for bit — NaN payloads included — on shapes with edge tiles (sizes that are no multiple of any block,
   K = 0 and 1, transposed, im2col and arbitrary-table operands, strided destinations), several tile sizes and
   random float32 bit patterns; a few training steps of each example give the numba (CPU) roots; the mlp_digits
   golden root comes out; training calls no torch op outside the exact allow-list; the first kernel call runs
   the self check, and the self check rejects a GEMM that walks k backwards.
2. Compiled for NVIDIA (sm_80, sm_90) by Triton's own LLVM and ptxas, the PTX has only explicitly rounded
   float adds and multiplies (``.rn``: ptxas may not contract them), correctly rounded ``div.rn``/``sqrt.rn``,
   no FMA, no approximate or flush-to-zero forms, no tensor-core instructions; the SASS of the GEMM, the sums
   and the scatter-add has FADD/FMUL and no FFMA (the same GEMM compiled with FP fusion has FFMA: the check can
   fail), and no kernel has a tensor-core (MMA) instruction.
3. The GPU entry points fail clearly on a machine without CUDA.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from test_repro_crossplatform import GOLDEN

from protocol.paths import repo_root


def _worker(module: str, interpret: bool, timeout: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", module], cwd=repo_root(), env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{module} failed:\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def interp() -> dict:
    return _worker("tests.triton_interp_worker", True, 1800)


@pytest.fixture(scope="module")
def compiled() -> dict:
    return _worker("tests.triton_sass_worker", False, 900)


# ------------------------------------------------------------------------------------------------------------
# 1. interpreter: the same bits as the reference
# ------------------------------------------------------------------------------------------------------------
KERNEL_GROUPS = {
    "mm": 20,  # at least this many cases per group
    "rowsum": 6,
    "colsum": 6,
    "index_add_rows": 4,
    "sqrt": 1,
    "exp": 1,
    "log": 1,
    "tanh": 1,
    "gelu y": 1,
    "gelu t": 1,
    "gelu_grad": 1,
}


def test_the_kernels_run_interpreted(interp):
    assert interp["interpreted"] is True


@pytest.mark.parametrize("group", sorted(KERNEL_GROUPS))
def test_triton_kernel_equals_the_reference_bit_for_bit(interp, group):
    cases = {k: v for k, v in interp["kernels"].items() if k == group or k.startswith(group + " ")}
    assert len(cases) >= KERNEL_GROUPS[group], sorted(interp["kernels"])
    differing = {k: v for k, v in cases.items() if v}
    assert not differing, f"Triton {group} differs from the reference: {differing}"


def test_edge_tiles_and_operand_kinds_are_covered(interp):
    names = " | ".join(interp["kernels"])
    for needle in ("mm 1x1x0x3", "mm 3x1x1x1", "mm 2x31x64x129", "blocks=(16, 16)", "blocks=(32, 64)",
                   "mm transposed", "mm im2col", "mm offset tables", "rowsum strided", "colsum 0x4",
                   "index_add_rows 0x4->2", "index_add_rows 200x17->31"):  # fmt: skip
        assert needle in names, needle


@pytest.mark.parametrize("model", ["mlp_digits", "cnn_digits", "tiny_lm"])
def test_training_on_the_triton_kernels_gives_the_numba_roots(interp, model):
    roots = interp["train"][model]
    assert roots["triton"] == roots["fast"], roots


def test_the_triton_kernels_reproduce_the_golden_mlp_root(interp):
    assert interp["golden"]["mlp_digits"] == GOLDEN["mlp_digits"][2]


@pytest.mark.parametrize("model", ["mlp_digits", "cnn_digits", "tiny_lm"])
def test_training_on_the_triton_kernels_calls_only_exact_torch_ops(interp, model):
    assert interp["op_guard"][model] == {}, interp["op_guard"][model]


def test_the_first_kernel_call_runs_the_self_check(interp):
    assert interp["first_use_self_check"] is True


def test_the_self_check_rejects_a_gemm_in_another_order(interp):
    rev = interp["reversed_order"]
    assert rev["differing"] > 0
    assert rev["self_check_error"] is not None and rev["self_check_error"].startswith("KernelSelfCheckFailed")
    assert "do not reproduce the reference order" in rev["self_check_error"]


# ------------------------------------------------------------------------------------------------------------
# 2. the NVIDIA code keeps the order
# ------------------------------------------------------------------------------------------------------------
ORDER_ONLY = ("mm", "rowsum", "colsum", "index_add_rows", "exp", "gelu_grad")  # no division, no square root
TENSOR_CORE = re.compile(r"MMA|GMMA|UTC")


def test_every_kernel_is_compiled_for_hopper_and_the_gemm_for_ampere_too(compiled):
    labels = set(compiled["kernels"])
    assert {"mm tables=True bias=True sm_80", "mm tables=True bias=True sm_90", "gelu_grad sm_90"} <= labels
    assert len(labels) == 15


def test_ptx_has_only_rounded_float_ops_no_fma_no_approximations(compiled):
    for label, ops in compiled["kernels"].items():
        for op in ops["ptx"]:
            assert not op.startswith(("fma.", "mma.", "wgmma.")), (label, op)
            assert not re.match(r"mad\.[a-z.]*f(16|32|64)", op), (label, op)
            assert ".approx" not in op and ".ftz" not in op and ".full" not in op, (label, op)
            if re.match(r"(add|sub|mul)\.f32", op):
                assert op.startswith(("add.rn.f32", "sub.rn.f32", "mul.rn.f32")), (label, op)
            if op.startswith(("div.", "sqrt.", "rcp.", "rsqrt.")) and "f32" in op:
                assert op in ("div.rn.f32", "sqrt.rn.f32"), (label, op)


def test_sass_of_the_order_fixed_kernels_has_no_fused_multiply_add(compiled):
    for label, ops in compiled["kernels"].items():
        sass = ops["sass"]
        assert not any(TENSOR_CORE.search(op) for op in sass), (label, sorted(sass))
        assert "HFMA2" not in sass, (label, "half-precision arithmetic")
        if label.split(" ")[0] in ORDER_ONLY:
            assert not {"FFMA", "FFMA32I", "DFMA"} & set(sass), (label, sorted(sass))
            assert "FADD" in sass, (label, sorted(sass))
    assert "FMUL" in compiled["kernels"]["mm tables=True bias=True sm_90"]["sass"]


def test_the_fusion_control_shows_the_check_can_fail(compiled):
    assert "FFMA" in compiled["control_fused_sass"]


def test_the_triton_backend_refuses_cpu_tensors_outside_the_interpreter(compiled):
    err = compiled["cpu_without_interpreter"]
    assert err is not None and err.startswith("KernelUnavailable") and "TRITON_INTERPRET=1" in err


# ------------------------------------------------------------------------------------------------------------
# 3. the GPU entry points without a GPU
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture
def no_cuda(monkeypatch):
    """This machine as one without a usable GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_check_device_says_why_a_device_cannot_be_used(no_cuda):
    from protocol.engine.runner import DeviceUnavailable, check_device

    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceUnavailable, match="sees no CUDA device"):
        check_device("cuda")
    with pytest.raises(DeviceUnavailable, match="trains on cpu or cuda"):
        check_device("meta")
    with pytest.raises(DeviceUnavailable, match="not a device torch knows"):
        check_device("gpu0")


def test_bench_repro_on_cuda_fails_clearly_without_a_gpu(no_cuda):
    from typer.testing import CliRunner

    from veritrain.cli import app

    r = CliRunner().invoke(app, ["bench", "repro", "--device", "cuda", "--json"])
    assert r.exit_code == 2 and "sees no CUDA device" in r.output, r.output


@pytest.mark.parametrize("command", ["solver", "verifier"])
def test_nodes_on_cuda_fail_clearly_without_a_gpu(no_cuda, command):
    from typer.testing import CliRunner

    from veritrain.cli import app

    r = CliRunner().invoke(app, [command, "--device", "cuda"])
    assert r.exit_code == 2 and "--device: device cuda" in r.output and "sees no CUDA device" in r.output, r.output


def test_demo_with_gpu_solvers_fails_clearly_without_a_gpu(no_cuda, tmp_path):
    from typer.testing import CliRunner

    from veritrain.cli import app

    r = CliRunner().invoke(app, ["demo", "--jobs", "1", "--solver-device", "cuda", "--home", str(tmp_path)])
    assert r.exit_code == 2 and "--solver-device: device cuda" in r.output, r.output
    assert not any(tmp_path.iterdir()), "nothing may start before the device is checked"


def test_the_gpu_bench_adds_the_larger_model():
    from protocol.engine.benchmark import LARGER, bench_names, bench_spec
    from protocol.engine.examples import EXAMPLES

    assert bench_names("cpu") == list(EXAMPLES)
    assert bench_names("cuda") == [*EXAMPLES, *LARGER]
    assert not set(EXAMPLES) & set(LARGER)
    from protocol.engine.models import build_model

    spec = bench_spec("lm_large")
    params = sum(p.numel() for p in build_model(spec.model, True).parameters())
    assert spec.model.d_model == 256 and spec.batch_size == 32 and 3_000_000 < params < 3_500_000


def test_the_cuda_path_switch_is_validated(monkeypatch):
    from protocol.repro import _config, kernels

    monkeypatch.setenv("VERITRAIN_REPRO_CUDA", "reference")
    assert _config.cuda_path() == "reference"
    monkeypatch.setenv("VERITRAIN_REPRO_CUDA", "fastest")
    with pytest.raises(ValueError, match="VERITRAIN_REPRO_CUDA"):
        _config.cuda_path()
    monkeypatch.delenv("VERITRAIN_REPRO_CUDA")
    assert _config.cuda_path() == "triton"
    assert not kernels.use_triton(torch.zeros(2))  # CPU tensors take numba under the default backend
