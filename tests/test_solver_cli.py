"""``veritrain solver`` fails with one clear line for each bad start: missing deployment file, RPC
unreachable, wrong chain, not enough tokens to stake, unknown adversary (or adversary parameter)."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from protocol.anvil import Anvil, dev_accounts
from protocol.deploy import deploy
from protocol.paths import repo_root
from veritrain.cli import app

KEY = dev_accounts()[5].key.hex()


def run(*args: str):
    return CliRunner().invoke(app, ["solver", "--key", "0x" + KEY.removeprefix("0x"), *args])


def error_line(result) -> str:
    lines = [x for x in result.output.splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, result.output
    assert KEY.removeprefix("0x") not in result.output  # the key is never printed
    return lines[0]


@pytest.fixture(scope="module")
def chain(forge_build, tmp_path_factory):
    with Anvil() as anvil:
        tmp = tmp_path_factory.mktemp("solver-cli")
        dep = deploy(anvil.web3(), dev_accounts()[0], repo_root() / "contracts/params/devnet.json",
                     out_path=tmp / "deployment.json")  # fmt: skip
        yield anvil, dep, tmp


def test_unknown_adversary():
    result = run("--adversary", "evil")
    assert result.exit_code == 2
    assert (
        "unknown adversary 'evil'; choose one of: fake, noise, lazy, withhold, stall, malformed, trickle, hang, bomb"
        in error_line(result)
    )
    result = run("--adversary", "noise", "--adversary-param", "depth=3")
    assert "noise has no parameter depth (it takes: segment, scale)" in error_line(result)


@pytest.mark.parametrize(
    "amount, says",
    [
        ("inf", "must be a finite number of tokens"),
        ("nan", "must be a finite number of tokens"),
        ("-1", "must not be negative"),
        ("1e-30", "more than 18 decimals"),
        ("lots", "must be a number of tokens"),
    ],
)
@pytest.mark.parametrize("option", ["--stake", "--price-floor"])
def test_bad_token_amounts_are_one_clear_line(tmp_path, option, amount, says):
    result = run(option, amount, "--deployment", str(tmp_path / "nope.json"), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith(f"error: {option}") and says in line, line


def test_missing_deployment(tmp_path):
    result = run("--deployment", str(tmp_path / "nope.json"), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 2
    assert "does not exist: run `veritrain devnet up`" in error_line(result)


def test_rpc_unreachable(chain, tmp_path):
    _, dep, _ = chain
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = run("--rpc", f"http://127.0.0.1:{port}", "--deployment", str(dep.path), "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert f"the RPC node at http://127.0.0.1:{port} is unreachable" in error_line(result)


def test_wrong_chain(chain, tmp_path):
    anvil, dep, _ = chain
    doc = json.loads(dep.path.read_text())
    doc["chainId"] = 1
    other = tmp_path / "mainnet-deployment.json"
    other.write_text(json.dumps(doc))
    result = run("--rpc", anvil.url, "--deployment", str(other), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 1
    assert "wrong chain" in (line := error_line(result)) and "chain id 31337" in line


def test_insufficient_tokens_to_stake(chain, tmp_path):
    anvil, dep, _ = chain
    result = run("--rpc", anvil.url, "--deployment", str(dep.path), "--data-dir", str(tmp_path), "--stake", "500")
    assert result.exit_code == 1
    assert "insufficient tokens to stake" in (line := error_line(result)) and "holds 0 tokens" in line
