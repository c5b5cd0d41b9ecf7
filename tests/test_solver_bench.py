"""``veritrain bench checkpoint --json``: the solver's checkpoint overhead over one run of the MLP example at its
default interval (at most 3 % of training time; the figure is reported in the README,
measured on a quiet machine; this test checks the report, not the timing, since test machines are shared)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from veritrain.cli import app


def test_bench_checkpoint_json():
    result = CliRunner().invoke(app, ["bench", "checkpoint", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output.strip().splitlines()[-1])
    assert {"train_s", "checkpoint_s", "overhead"} <= set(doc)
    assert doc["example"] == "mlp_digits" and doc["checkpoint_interval"] == 50 and doc["checkpoints"] == 8
    assert doc["train_s"] > 0 and doc["checkpoint_s"] > 0 and doc["write_s"] > 0
    assert abs(doc["overhead"] - doc["checkpoint_s"] / doc["train_s"]) < 1e-3
    # No bound on the figure itself: performance is a benchmark's business (measured on a quiet machine and
    # reported), never a timed unit test's.


def test_bench_checkpoint_unknown_example():
    result = CliRunner().invoke(app, ["bench", "checkpoint", "--example", "nope"])
    assert result.exit_code == 2 and "unknown example 'nope'" in result.output
