"""The test harness contracts (contracts/test/harness): built with the contracts, deployed by the tests that
check a Python implementation against the Solidity one."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from protocol.artifacts import load_artifact
from protocol.tx import send

HARNESSES = (
    "RFC9162Harness", "ChunkedStateRootHarness", "SamplingHarness", "Float32Harness", "PhiloxHarness",
    "ElementOpsHarness", "ElementEvalHarness", "ElementChecker", "ElementEvaluator",
)  # fmt: skip


def deploy_harness(w3: Web3, account: LocalAccount, name: str, *args: Any, decode_tuples: bool = False) -> Any:
    """Deploys harness ``name`` (its forge artifact, constructed with ``args``) from ``account`` and returns the
    contract (struct results as named tuples if ``decode_tuples``, as a deployment's contracts are)."""
    art = load_artifact(name)
    receipt = send(w3, account, w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode).constructor(*args))
    return w3.eth.contract(address=receipt["contractAddress"], abi=art.abi_list(), decode_tuples=decode_tuples)
