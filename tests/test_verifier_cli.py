"""``veritrain verifier`` refuses bad setups with one clear line (and changes nothing), and ``veritrain bench audit``
measures detection and compute on real (small) cheating jobs."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from typer.testing import CliRunner

from protocol.deploy import deploy
from veritrain.cli import app

runner = CliRunner()
KEY = "0x" + "59" * 32


def run(*args: str):
    return runner.invoke(app, ["verifier", *args], catch_exceptions=False)


def test_missing_deployment_says_run_devnet_up(tmp_path):
    r = run("--key", KEY, "--deployment", str(tmp_path / "nope.json"), "--data-dir", str(tmp_path / "d"))
    assert r.exit_code == 2 and "veritrain devnet up" in r.output and "does not exist" in r.output
    assert KEY[2:] not in r.output


def test_bad_options_are_one_line_errors(tmp_path):
    r = run("--key", KEY, "--adversary", "bribe", "--deployment", str(tmp_path / "x.json"))
    assert r.exit_code == 2 and "unknown verifier adversary 'bribe'" in r.output
    r = run("--key", "0x1234", "--deployment", str(tmp_path / "x.json"))
    assert r.exit_code == 2 and "not a 32-byte hex key" in r.output
    r = run("--key", KEY, "--stake", "lots", "--deployment", str(tmp_path / "x.json"))
    assert r.exit_code == 2 and "--stake must be a number" in r.output


@pytest.mark.chain
def test_unreachable_rpc_wrong_chain_and_no_tokens(anvil, w3, dev, tmp_path):
    dep = deploy(w3, dev[0], out_path=tmp_path / "deployment.json")
    common = ["--deployment", str(dep.path), "--data-dir", str(tmp_path / "d")]
    r = run("--key", KEY, "--rpc", "http://127.0.0.1:9", *common)
    assert r.exit_code == 1 and "unreachable" in r.output and "veritrain devnet up" in r.output
    other = json.loads((tmp_path / "deployment.json").read_text())
    other["chainId"] = 1
    (tmp_path / "mainnet.json").write_text(json.dumps(other))
    r = run("--key", KEY, "--rpc", anvil.url, "--deployment", str(tmp_path / "mainnet.json"),
            "--data-dir", str(tmp_path / "d"))  # fmt: skip
    assert r.exit_code == 1 and "wrong chain" in r.output
    pauper = Account.create()
    r = run("--key", "0x" + bytes(pauper.key).hex(), "--rpc", anvil.url, "--stake", "500", *common)
    assert r.exit_code == 1 and "insufficient tokens" in r.output
    stakes = dep.contract(w3, "StakeManager")
    assert stakes.functions.positionOf(pauper.address).call().free == 0  # nothing changed


def test_bench_audit_json_measures_detection_and_compute():
    r = runner.invoke(
        app,
        [
            "bench",
            "audit",
            "--json",
            "--jobs",
            "3",
            "--audits",
            "10",
            "--segments",
            "10",
            "--cheat-fraction",
            "0.3",
            "--audit-rate",
            "0.2",
        ],  # fmt: skip
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"audit_rate", "cheat_fraction", "detected", "expected", "verifier_over_solver_compute"} <= set(out)
    assert out["sampled_per_audit"] == 2 and out["audits"] == 30
    assert out["expected"] == pytest.approx(1 - 0.7**2, abs=1e-4)
    # every audit's verdict agreed with the cheat set (checked inside); detection within 4 standard errors
    assert abs(out["detected"] - out["expected_given_cheat_sets"]) <= 4 * max(out["detected_stderr"], 0.05)
    # the compute ratio is reported, not bounded here: timings are a benchmark's business (see the README's
    # figure for `veritrain bench audit`), and shared CI cores make them noisy
    assert out["verifier_over_solver_compute"] > 0
