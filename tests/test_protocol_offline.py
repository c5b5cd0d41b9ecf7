"""protocol/ pieces that need no chain: tool discovery errors, atomic writes, deployment files and
parameters, revert decoding, EIP-712 digests against the published EIP-712 example shape."""

from __future__ import annotations

import json

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from protocol import paths
from protocol.anvil import DEV_KEYS, Anvil, dev_accounts
from protocol.artifacts import load_artifact
from protocol.atomic import atomic_write_json
from protocol.build import ensure_forge_build
from protocol.deploy import Deployment, _constructor_args, load_deployment, load_params
from protocol.errors import ArtifactMissing, DeploymentError, ToolMissing, VeritrainError
from protocol.revert import RevertDecoder, default_decoder


@pytest.fixture
def no_foundry(monkeypatch):
    """Pretend Foundry is not installed: no pinned npm binary, nothing on PATH."""
    monkeypatch.setattr(paths, "_platform_suffix", lambda: "no-such-platform")
    monkeypatch.setenv("PATH", "")


@pytest.mark.parametrize("tool", ["forge", "anvil"])
def test_missing_foundry_tool_says_run_make_setup(no_foundry, tool):
    with pytest.raises(ToolMissing, match="make setup") as err:
        paths.foundry_tool(tool)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, VeritrainError)


def test_anvil_and_build_report_missing_tools(no_foundry):
    with pytest.raises(ToolMissing, match="make setup"):
        Anvil().start()
    with pytest.raises(ToolMissing, match="make setup"):
        ensure_forge_build(force=True)


def test_missing_artifact_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactMissing, match="make build"):
        load_artifact("JobMarket", out_dir=tmp_path)


def test_dev_keys_are_the_anvil_mnemonic_accounts():
    assert len(DEV_KEYS) == 10
    assert dev_accounts(1)[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    with pytest.raises(ValueError):
        dev_accounts(11)


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "d.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    atomic_write_json(target, {"c": 3})
    assert json.loads(target.read_text()) == {"c": 3}
    assert [p.name for p in target.parent.iterdir()] == ["d.json"]


def test_deployment_json_roundtrip_and_errors(tmp_path):
    dep = Deployment(
        chain_id=31337,
        addresses={
            "token": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "stakeManager": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
            "jobMarket": "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
            "statePublisher": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
            "disputeGame": "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9",
        },
        start_block=1,
        deployer="0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        params=load_params(),
    )
    path = atomic_write_json(tmp_path / "d.json", dep.to_json())
    loaded = load_deployment(path)
    assert loaded.addresses["token"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # checksummed
    assert loaded.address_of("JobMarket") == dep.addresses["jobMarket"] and loaded.params == dep.params
    with pytest.raises(DeploymentError, match="deploy first"):
        load_deployment(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"chainId": 1}')
    with pytest.raises(DeploymentError, match="invalid deployment JSON"):
        load_deployment(tmp_path / "bad.json")


def test_params_are_matched_to_constructors_by_name(forge_build):
    params = load_params()
    market = load_artifact("JobMarket")
    args = _constructor_args(market, {"stakeManager": "0x" + "11" * 20}, "market", params)
    assert args[0] == "0x" + "11" * 20 and len(args[1]) == len(params["market"])
    broken = {**params, "market": {**params["market"], "auditWindw": 1}}
    with pytest.raises(DeploymentError, match="auditWindw"):
        _constructor_args(market, {"stakeManager": "0x" + "11" * 20}, "market", broken)
    game, deps = load_artifact("DisputeGame"), {"jobMarket": "0x1", "stakeManager": "0x2", "statePublisher": "0x3"}
    for key in ("disputeBond", "disputeBondBps", "availabilityFeeBps"):
        missing = {**params, "game": {k: v for k, v in params["game"].items() if k != key}}
        with pytest.raises(DeploymentError, match=rf"\b{key}\b"):
            _constructor_args(game, deps, "game", missing)


def test_revert_decoder_decodes_custom_errors_offline(forge_build):
    decoder = default_decoder()
    selector = keccak(text="WrongJobState(bytes32,uint8)")[:4]
    data = selector + abi_encode(["bytes32", "uint8"], [b"\x07" * 32, 5])
    err = decoder.decode("0x" + data.hex())
    assert (err.name, err.fields) == ("WrongJobState", {"jobId": b"\x07" * 32, "actual": 5})
    assert "WrongJobState(jobId=0x0707" in str(err)
    # errors raised by the StakeManager bubble up through the market: the decoder knows them too
    assert "InsufficientFreeStake" in decoder.error_names()
    panic = decoder.decode(keccak(text="Panic(uint256)")[:4] + abi_encode(["uint256"], [0x11]))
    assert (panic.name, panic.fields) == ("Panic", {"code": 0x11})


def test_revert_decoder_keeps_every_value_of_an_error_with_unnamed_parameters():
    # `error Pair(uint256, address)`: the ABI names both inputs "", which once collapsed both into one key
    abi = [
        {
            "type": "error",
            "name": "Pair",
            "inputs": [{"name": "", "type": "uint256"}, {"name": "", "type": "address"}, {"name": "x", "type": "bool"}],
        }
    ]
    who = "0x00000000000000000000000000000000000000AA"
    data = keccak(text="Pair(uint256,address,bool)")[:4] + abi_encode(["uint256", "address", "bool"], [7, who, True])
    err = RevertDecoder([abi]).decode(data)
    assert (err.name, err.fields) == ("Pair", {"arg0": 7, "arg1": who, "x": True})


def test_fast_eip712_digest_equals_eth_account_encoder_and_recovers_the_signer():
    import os
    import random

    from eth_account import Account

    from protocol.eip712 import Bid, BidEta, Domain, JobOrder, SolverProfile, signable_digest

    rng = random.Random(3)
    acct = Account.from_key(b"\x01" * 32)
    for chain in (1, 31337):
        domain = Domain(chain, "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
        for _ in range(20):
            structs = [
                JobOrder(
                    acct.address,
                    os.urandom(32),
                    os.urandom(32),
                    os.urandom(32),
                    rng.randrange(1 << 64),
                    rng.randrange(1, 1 << 64),
                    rng.randrange(1 << 256),
                    rng.randrange(1 << 64),
                    rng.randrange(1 << 256),
                ),
                Bid(
                    acct.address,
                    os.urandom(32),
                    rng.randrange(1 << 256),
                    rng.randrange(1 << 256),
                    rng.randrange(1 << 64),
                    rng.randrange(1 << 256),
                    rng.randrange(1 << 64),
                ),
                SolverProfile(acct.address, os.urandom(32), rng.randrange(1 << 64)),
                BidEta(acct.address, os.urandom(32), rng.randrange(1 << 64)),
            ]
            for s in structs:
                assert s.digest(domain) == signable_digest(s.signable(domain))
                assert s.recover(domain, s.sign(domain, acct)) == acct.address
