"""The GPU evidence for exact mode, one step at a time (``tools/gpu_check.sh`` runs them all within a time budget).

``python tools/gpu_check.py STEP [--device cuda] [--out DIR] [--budget-s S]`` writes ``DIR/STEP.json`` (also
partially, while a step runs) and prints one line. Steps:

``env``      versions (Python, torch, CUDA, triton, numba, numpy), the GPU, the CPU.
``kernels``  every Triton kernel against the pure-torch reference path on the device (bit for bit, edge tiles,
             random bit patterns): :func:`protocol.repro._triton_kernels.compare_with_reference`; the time of the
             first call (compilation and the self check) is reported apart.
``roots``    the golden 4-step roots of ``tests/test_repro_crossplatform.py`` on the device, then the three example
             jobs' full trajectories (every leaf) on the device and on this machine's CPU (numba, all cores),
             compared with each other and with :data:`PINNED` (the roots of the development machine's CPU).
``bench``    ``veritrain bench repro --device DEV``: exact / native step time for the examples and lm_large.
``market``   ``veritrain demo --jobs 1 --solver-device DEV``: a devnet job trained by a solver on the device and
             audited by verifier nodes replaying on the CPU; the job must be paid and nobody slashed.
``summary``  one JSON of the results of the steps above that ran (``DIR/summary.json``).

Nothing here estimates anything: a step that did not run or did not finish says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Full trajectories of the examples on the development machine's CPU (numba 0.68.1, torch 2.13.0 CPU, AVX-512,
#: 2 threads, kernel set repro-v2): ``veritrain train examples/<name>.json --out DIR --json --threads 2``.
PINNED: dict[str, dict[str, str]] = {
    "mlp_digits": {
        "init_state_root": "0x71d4d06389be0c39a01ce07c1d8b499c68df7a17c994ffc77cb8bf596abcb136",
        "trajectory_root": "0x7769b6caf591630d38fc69d7708cc1360c901817954cc33a0c7cbdc393c25ecd",
        "final_state_root": "0x074ffe2db2d238d0944eafba414d799b24699a69bc1d7df2c779de2abcbbcde7",
    },
    "cnn_digits": {
        "init_state_root": "0xb31a8377ef7b4b8e31d7eee6b3c6c251a8a40560084485401955f84704443822",
        "trajectory_root": "0xa0be04e95d05c3ff20b5d1211eb5d3f2bc0cba12251dd4ac13cf2150770a7c90",
        "final_state_root": "0xe8afbf33a6fca0d964b367d8af45ee05f1b5cf2937fc11ed69da3fa2142bd26f",
    },
    "tiny_lm": {
        "init_state_root": "0x7f09c9ddd2f4cef13663c398fc96eee10e0fb20911f39cfcd51df763281a110e",
        "trajectory_root": "0xf82b4fd84c567bb60f962193d6e3690443b59ee311092fd5ca9d997e29afe545",
        "final_state_root": "0xfa5cb88a881ba071ffbaefdbf9c25e8d722a5e16ddac27cc206edd2317f6e31e",
    },
}
PINNED_KERNEL_SET = "repro-v2"
STEPS = ("env", "kernels", "roots", "bench", "market")


def _run(cmd: list[str], timeout: float) -> tuple[int | None, str, str]:
    """Run ``cmd`` at the repository root; (exit code or None when it ran out of time, stdout, stderr). A command
    that runs out of time gets SIGTERM (the demo then stops every process it started), SIGKILL 20 s later."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        return None, out, err


class Report:
    """A step's JSON document, rewritten on every :meth:`save` so a step cut short still leaves what it had."""

    def __init__(self, out: Path, step: str) -> None:
        self.path = out / f"{step}.json"
        self.doc: dict = {"step": step, "finished": False, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=2))
        tmp.replace(self.path)

    def done(self) -> None:
        self.doc["finished"] = True
        self.save()


def step_env(device: str, rep: Report, budget: float) -> str:
    import numba
    import numpy
    import torch

    doc = rep.doc
    doc.update(
        python=platform.python_version(),
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        numpy=numpy.__version__,
        numba=numba.__version__,
        cpu_count=os.cpu_count(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        cuda_available=torch.cuda.is_available(),
    )
    try:
        with open("/proc/cpuinfo") as f:
            doc["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        doc["cpu"] = None
    try:
        import triton

        doc["triton"] = triton.__version__
    except ImportError as exc:
        doc["triton"] = f"missing: {exc}"
    if torch.cuda.is_available():
        doc["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        doc["gpu_capability"] = list(torch.cuda.get_device_capability(0))
    from protocol.repro.version import KERNEL_SET_VERSION

    doc["kernel_set"] = KERNEL_SET_VERSION
    rep.done()
    return f"torch {doc['torch']} (CUDA {doc['torch_cuda']}), triton {doc['triton']}, {doc.get('gpus')}, {doc['cpu']}"


def step_kernels(device: str, rep: Report, budget: float) -> str:
    import torch

    from protocol.repro import _triton_kernels as T

    if device == "cpu" and not T.interpreted():
        raise SystemExit("the kernels step on cpu needs TRITON_INTERPRET=1 (a dry run of this script)")
    t0 = time.perf_counter()
    T.self_check(device)  # the first use: compiles the kernels it needs and compares them once
    rep.doc["first_use_s"] = round(time.perf_counter() - t0, 2)
    rep.save()
    t0 = time.perf_counter()
    res = T.compare_with_reference(device)
    rep.doc["compare_s"] = round(time.perf_counter() - t0, 2)
    rep.doc["cases"] = len(res)
    rep.doc["differing"] = {k: v for k, v in res.items() if v}
    strict = T.compare_with_reference(device, nan_payloads=True)
    rep.doc["differing_with_nan_payloads"] = {k: v for k, v in strict.items() if v}
    rep.doc["device_name"] = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    rep.done()
    ok = not rep.doc["differing"]
    return f"{len(res)} cases, {'all bit for bit equal' if ok else 'DIFFERENT: ' + str(rep.doc['differing'])}"


def golden_table() -> dict[str, tuple[int, int, str]]:
    """``GOLDEN`` of ``tests/test_repro_crossplatform.py`` (example → steps, interval, trajectory root), read from
    the file's source (importing it would need pytest, which a GPU machine need not have)."""
    import ast

    tree = ast.parse((ROOT / "tests" / "test_repro_crossplatform.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "GOLDEN":
            return ast.literal_eval(node.value)
    raise LookupError("GOLDEN not found in tests/test_repro_crossplatform.py")


def _golden_root(name: str, steps: int, interval: int, device: str) -> str:
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example, shortened
    from protocol.engine.runner import Trainer
    from protocol.state import state_root
    from protocol.trajectory import Trajectory

    spec = shortened(load_example(name), steps, interval)
    tr = Trainer(spec, load_dataset(spec.dataset), device)
    tr.init()
    traj = Trajectory.in_memory()
    for _ in range(steps // interval):
        tr.train_steps(interval)
        traj.append(state_root(tr.state()))
    return "0x" + traj.root().hex()


def _trajectory(name: str, device: str) -> dict:
    from protocol.engine.data import load_dataset
    from protocol.engine.examples import load_example
    from protocol.engine.runner import Trainer
    from protocol.state import state_root
    from protocol.trajectory import Trajectory

    spec = load_example(name)
    t0 = time.perf_counter()
    tr = Trainer(spec, load_dataset(spec.dataset), device)
    init = state_root(tr.init())
    traj = Trajectory.in_memory()
    for _ in range(spec.num_segments):
        tr.train_steps(spec.checkpoint_interval)
        traj.append(state_root(tr.state()))
    leaves = ["0x" + leaf.hex() for leaf in traj.leaves()]
    return {
        "init_state_root": "0x" + init.hex(),
        "trajectory_root": "0x" + traj.root().hex(),
        "final_state_root": leaves[-1],
        "leaves": leaves,
        "steps": spec.total_steps,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def step_roots(device: str, rep: Report, budget: float) -> str:
    from protocol.engine.examples import EXAMPLES
    from protocol.engine.runner import configure_threads
    from protocol.repro.version import KERNEL_SET_VERSION

    configure_threads(os.cpu_count() or 1)
    doc = rep.doc
    doc.update(kernel_set=KERNEL_SET_VERSION, pinned=PINNED, device=device, runs={})
    doc["golden"] = {}
    for name, (steps, interval, want) in golden_table().items():  # 4 steps each: first, and cheap
        got = _golden_root(name, steps, interval, device)
        doc["golden"][name] = {"root": got, "golden": want, "equal": got == want}
        rep.save()
    order = [(n, device) for n in EXAMPLES] + ([(n, "cpu") for n in EXAMPLES] if device != "cpu" else [])
    for name, dev in order:  # the device first: it is what this check is for; this CPU's roots are a bonus
        doc["runs"].setdefault(name, {})[dev] = _trajectory(name, dev)
        rep.save()
    verdict = {}
    for name, runs in doc["runs"].items():
        roots = {dev: r["trajectory_root"] for dev, r in runs.items()}
        v = {f"{dev}_equals_pinned": r == PINNED[name]["trajectory_root"] for dev, r in roots.items()}
        if len(runs) == 2:
            a, b = runs[device]["leaves"], runs["cpu"]["leaves"]
            v["device_equals_this_cpu"] = a == b
            v["first_differing_leaf"] = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), None)
        verdict[name] = v
    doc["verdict"] = verdict
    checks = [v for x in verdict.values() for k, v in x.items() if k != "first_differing_leaf"]
    checks += [g["equal"] for g in doc["golden"].values()]
    doc["all_equal"] = KERNEL_SET_VERSION == PINNED_KERNEL_SET and len(verdict) == len(EXAMPLES) and all(checks)
    rep.done()
    secs = {n: {d: r["seconds"] for d, r in runs.items()} for n, runs in doc["runs"].items()}
    return f"all equal: {doc['all_equal']}; seconds {secs}"


def step_bench(device: str, rep: Report, budget: float) -> str:
    cmd = [sys.executable, "-m", "veritrain.cli", "bench", "repro", "--device", device, "--rounds", "5", "--json"]
    rep.doc["command"] = "veritrain bench repro --device " + device + " --rounds 5 --json"
    code, out, err = _run(cmd, max(10.0, budget - 25))
    rep.doc["exit_code"] = code  # None: ran out of time
    rep.doc["stderr_tail"] = err[-3000:]
    if code == 0:
        rep.doc["result"] = json.loads(out.strip().splitlines()[-1])
    rep.done()
    if code != 0:
        return f"bench exited {code}" if code is not None else "bench ran out of time"
    ratios = {k: v["ratio"] for k, v in rep.doc["result"].items() if k != "settings"}
    return f"exact/native ratios {ratios}"


def step_market(device: str, rep: Report, budget: float) -> str:
    home = Path(tempfile.mkdtemp(prefix="veritrain-gpu-market-"))
    cmd = [sys.executable, "-m", "veritrain.cli", "demo", "--jobs", "1", "--solver-device", device, "--json",
           "--home", str(home), "--timeout", str(int(max(30.0, budget - 90)))]  # fmt: skip
    rep.doc["command"] = " ".join(["veritrain", *cmd[3:]])
    code, out, err = _run(cmd, max(10.0, budget - 25))
    rep.doc["exit_code"] = code  # None: ran out of time
    rep.doc["stderr_tail"] = err[-4000:]
    try:
        rep.doc["report"] = json.loads(out)
    except ValueError:
        rep.doc["stdout_tail"] = out[-2000:]
    logs = home / "logs"
    evidence: dict[str, list[dict]] = {}
    if logs.is_dir():
        rep.doc["log_tails"] = {p.name: p.read_text(errors="replace")[-1500:] for p in sorted(logs.glob("*.log"))}
        for p in sorted(logs.glob("verifier*.log")):
            evidence[p.stem] = _events(p, ("audited", "attest", "dispute-opened"))
    rep.doc["verifier_evidence"] = evidence
    # the claim: the GPU solver's job was replayed on CPU verifiers, found equal and attested (not just finalized)
    audits = [e for evs in evidence.values() for e in evs if e.get("event") == "audited"]
    jobs = (rep.doc.get("report") or {}).get("jobs", [])
    rep.doc["audited_by_cpu_verifiers"] = bool(
        code == 0
        and jobs
        and all(j.get("outcome") == "finalized" and not j.get("slashed") for j in jobs)
        and audits
        and all(e.get("result") == "clean" for e in audits)
        and any(e.get("event") == "attest" for evs in evidence.values() for e in evs)
        and not any(e.get("event") == "dispute-opened" for evs in evidence.values() for e in evs)
    )
    rep.done()
    return (
        f"demo exited {code}; jobs {[(j.get('solver_role'), j.get('outcome')) for j in jobs]}; CPU audits "
        f"{[(e.get('result'), e.get('segments')) for e in audits]}; audited_by_cpu_verifiers "
        f"{rep.doc['audited_by_cpu_verifiers']}"
    )


def _events(log: Path, names: tuple[str, ...]) -> list[dict]:
    """The JSON log lines of ``log`` whose event is one of ``names`` (the node logs one JSON object a line)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and any(f'"event":"{n}"' in line for n in names):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            out.append({k: doc.get(k) for k in ("event", "job", "result", "segments", "replay_s", "tx") if k in doc})
    return out


def step_summary(device: str, out: Path) -> str:
    summary: dict = {}
    for step in STEPS:
        path = out / f"{step}.json"
        if not path.is_file():
            summary[step] = "did not run"
            continue
        doc = json.loads(path.read_text())
        if step == "kernels":
            summary[step] = {k: doc.get(k) for k in ("finished", "cases", "differing", "first_use_s", "compare_s")}
        elif step == "roots":
            summary[step] = {"finished": doc.get("finished"), "all_equal": doc.get("all_equal"),
                             "golden": {n: g["equal"] for n, g in doc.get("golden", {}).items()},
                             "verdict": doc.get("verdict"),
                             "seconds": {n: {d: r["seconds"] for d, r in runs.items()}
                                         for n, runs in doc.get("runs", {}).items()}}  # fmt: skip
        elif step == "bench":
            res = doc.get("result") or {}
            summary[step] = {"finished": doc.get("finished"), "command": doc.get("command"),
                             "exit_code": doc.get("exit_code"), "settings": res.get("settings"),
                             **{k: v for k, v in res.items() if k != "settings"}}  # fmt: skip
        elif step == "market":
            r = doc.get("report") or {}
            summary[step] = {"finished": doc.get("finished"), "command": doc.get("command"),
                             "exit_code": doc.get("exit_code"), "jobs": r.get("jobs"),
                             "audited_by_cpu_verifiers": doc.get("audited_by_cpu_verifiers"),
                             "verifier_evidence": doc.get("verifier_evidence"),
                             "verifier_over_solver_compute": r.get("verifier_over_solver_compute")}  # fmt: skip
        else:
            summary[step] = doc
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return json.dumps(summary)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=(*STEPS, "summary"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "gpu-check-out")))
    ap.add_argument("--budget-s", type=float, default=600.0, help="Seconds this step may take (subprocess steps).")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.step == "summary":
        print(step_summary(a.device, a.out))
        return 0
    fn = {"env": step_env, "kernels": step_kernels, "roots": step_roots, "bench": step_bench,
          "market": step_market}[a.step]  # fmt: skip
    rep = Report(a.out, a.step)
    t0 = time.perf_counter()
    line = fn(a.device, rep, a.budget_s)
    rep.doc["step_seconds"] = round(time.perf_counter() - t0, 2)
    rep.save()
    print(f"{a.step}: {line} ({rep.doc['step_seconds']} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
