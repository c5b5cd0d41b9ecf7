"""`veritrain train` and `veritrain bench repro`: output directory, printed roots, resume, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from protocol.blobstore import LocalBlobStore
from protocol.engine.data import sha256_hex
from protocol.engine.examples import example_path, load_example, shortened
from protocol.repro.version import KERNEL_SET_VERSION
from protocol.state import deserialize, state_root
from veritrain.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _restore_threads():
    """`--threads` sets the process-wide thread count; put it back for the tests that follow."""
    before = torch.get_num_threads()
    yield
    from protocol.engine.runner import configure_threads

    configure_threads(before)


def _short_spec(tmp_path, **changes):
    spec = shortened(load_example("mlp_digits"), 20, 5, **changes)
    f = tmp_path / "spec.json"
    f.write_bytes(spec.canonical_json())
    return f, spec


def _train(*args: str):
    return runner.invoke(app, ["train", *args])


def test_train_writes_checkpoints_named_by_root_and_prints_the_roots(tmp_path):
    spec_file, spec = _short_spec(tmp_path)
    out = tmp_path / "out"
    r = _train(str(spec_file), "--out", str(out), "--json", "--threads", "1")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert {"trajectory_root", "final_state_root", "leaves", "seconds", "final_loss"} <= set(res)
    assert res["leaves"] == 4 and res["steps_run"] == 20 and res["final_loss"] > 0

    leaves = json.loads((out / "leaves.json").read_text())
    assert len(leaves) == 4 and leaves[-1] == res["final_state_root"]
    store = LocalBlobStore(out / "blobs")
    for root in [res["init_state_root"], *leaves]:
        path = out / "blobs" / "state" / root[2:]
        assert path.is_file()
        assert "0x" + state_root(deserialize(path.read_bytes())).hex() == root
        store.get(root, "state")  # verified read
    written = json.loads((out / "spec.json").read_text())
    assert written["init_state_root"] == res["init_state_root"]

    again = _train(str(spec_file), "--out", str(out), "--json")
    assert again.exit_code == 0, again.output
    res2 = json.loads(again.stdout.strip().splitlines()[-1])
    assert res2["steps_run"] == 0 and res2["trajectory_root"] == res["trajectory_root"]


def test_train_refuses_an_output_directory_of_another_job(tmp_path):
    spec_file, _ = _short_spec(tmp_path)
    out = tmp_path / "out"
    assert _train(str(spec_file), "--out", str(out), "--json").exit_code == 0
    (tmp_path / "other").mkdir()
    other, _ = _short_spec(tmp_path / "other", seed=77)
    r = _train(str(other), "--out", str(out), "--json")
    assert r.exit_code == 1
    assert "another job" in r.output


def test_bad_spec_files_give_clear_errors(tmp_path):
    out = str(tmp_path / "out")
    r = _train(str(tmp_path / "nope.json"), "--out", out)
    assert r.exit_code == 2 and "spec file" in r.output and "does not exist" in r.output

    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    r = _train(str(bad_json), "--out", out)
    assert r.exit_code == 2 and "not valid JSON" in r.output

    doc = json.loads(example_path("mlp_digits").read_text())
    doc["batch_size"] = 0
    doc["optimizer"]["lr"] = -1
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(doc))
    r = _train(str(wrong), "--out", out)
    assert r.exit_code == 2
    assert "invalid job spec (2 problems)" in r.output and "batch_size" in r.output and "optimizer" in r.output


def test_dataset_problems_give_clear_errors(tmp_path):
    csv = b"1,2,3,0\n3,2,1,1\n0,0,1,2\n"
    model = {"kind": "mlp", "input_dim": 3, "hidden": [4], "num_classes": 3}
    spec_file, _ = _short_spec(
        tmp_path, model=model, batch_size=2, dataset={"format": "csv", "digest": sha256_hex(csv)}
    )
    r = _train(str(spec_file), "--out", str(tmp_path / "o1"))
    assert r.exit_code == 1 and "--data" in r.output

    data = tmp_path / "d.csv"
    data.write_bytes(csv + b"1,1,1,1\n")
    r = _train(str(spec_file), "--out", str(tmp_path / "o2"), "--data", str(data))
    assert r.exit_code == 1 and "dataset digest mismatch" in r.output

    data.write_bytes(csv)
    r = _train(str(spec_file), "--out", str(tmp_path / "o3"), "--data", str(data), "--json")
    assert r.exit_code == 0, r.output

    builtin = json.loads(example_path("mlp_digits").read_text())
    builtin["dataset"]["digest"] = "0x" + "ab" * 32
    f = tmp_path / "mismatch.json"
    f.write_text(json.dumps(builtin))
    r = _train(str(f), "--out", str(tmp_path / "o4"))
    assert r.exit_code == 1 and "dataset digest mismatch" in r.output and "builtin 'digits'" in r.output


def test_bench_repro_reports_ratio_per_model():
    r = runner.invoke(app, ["bench", "repro", "--model", "mlp_digits", "--steps", "2", "--rounds", "1", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout.strip().splitlines()[-1])
    m = res["mlp_digits"]
    assert set(m) == {"native_step_s", "exact_step_s", "ratio"} and m["native_step_s"] > 0 and m["ratio"] > 0
    assert res["settings"]["kernel_set"] == KERNEL_SET_VERSION
    r = runner.invoke(app, ["bench", "repro", "--model", "resnet"])
    assert r.exit_code == 2 and "unknown example" in r.output


def test_a_killed_train_resumes_from_its_last_checkpoint_and_reaches_the_same_root(tmp_path):
    """kill -9 in the middle of a job; running the same command again finishes it with the uninterrupted roots."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from protocol.engine import load_dataset, run_job
    from protocol.trajectory import Trajectory

    spec = shortened(load_example("mlp_digits"), 400, 10)
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(spec.canonical_json())
    with Trajectory.open(tmp_path / "ref.sqlite") as traj:
        reference = run_job(spec, load_dataset(spec.dataset), LocalBlobStore(tmp_path / "ref"), traj)

    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "veritrain.cli",
        "train",
        str(spec_file),
        "--out",
        str(out),
        "--json",
        "--threads",
        "1",
    ]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state_dir = out / "blobs" / "state"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if state_dir.is_dir() and len([p for p in state_dir.iterdir() if not p.name.startswith(".")]) >= 4:
            break
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)

    again = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    res = json.loads(again.stdout.strip().splitlines()[-1])
    assert res["trajectory_root"] == "0x" + reference.trajectory_root.hex()
    assert json.loads((out / "leaves.json").read_text()) == ["0x" + x.hex() for x in reference.leaves]
    print(f"\nkilled mid-job: {killed}; the second run trained {res['steps_run']} of {spec.total_steps} steps")
    if killed:
        assert 0 < res["steps_run"] < spec.total_steps, res
