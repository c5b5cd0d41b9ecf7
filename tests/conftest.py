"""Shared pytest fixtures.

Chain fixtures are built only for the tests that ask for them (``test_cli.py`` needs none): a forge build
once per session, an anvil devnet per test module, the protocol deployed there with
``contracts/params/default.json``, and the devnet's well-known accounts in protocol roles, staked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from eth_account.signers.local import LocalAccount
from harnesses import HARNESSES
from web3 import Web3

from protocol.anvil import Anvil, dev_accounts
from protocol.build import REQUIRED_ARTIFACTS, ensure_forge_build
from protocol.deploy import Deployment, deploy
from protocol.tx import send

ETHER = 10**18


@pytest.fixture(scope="session")
def forge_build() -> None:
    """Compiles the contracts (and test harnesses) if the artifacts are missing or stale."""
    ensure_forge_build((*REQUIRED_ARTIFACTS, *HARNESSES))


@pytest.fixture(scope="module")
def anvil(forge_build: None) -> Iterator[Anvil]:
    """A fresh anvil devnet for each test module, killed afterwards."""
    with Anvil() as node:
        yield node


@pytest.fixture(scope="module")
def w3(anvil: Anvil) -> Web3:
    return anvil.web3()


@pytest.fixture(scope="module")
def dev(w3: Web3) -> list[LocalAccount]:
    """anvil's ten funded dev accounts, as eth-account signers (keys checked against the node)."""
    accounts = dev_accounts()
    assert [a.address for a in accounts] == w3.eth.accounts, "anvil's dev keys changed"
    return accounts


@pytest.fixture(scope="module")
def deployment(w3: Web3, dev: list[LocalAccount], tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """The protocol deployed by dev account 0 (deployment JSON in a temporary directory)."""
    out = tmp_path_factory.mktemp("deployment") / "deployment.json"
    return deploy(w3, dev[0], out_path=out)


@pytest.fixture(scope="module")
def contracts(w3: Web3, deployment: Deployment) -> SimpleNamespace:
    """web3 contract objects: ``token``, ``stakes``, ``market``, ``game``, ``publisher``."""
    return SimpleNamespace(
        token=deployment.contract(w3, "VeriToken"),
        stakes=deployment.contract(w3, "StakeManager"),
        market=deployment.contract(w3, "JobMarket"),
        game=deployment.contract(w3, "DisputeGame"),
        publisher=deployment.contract(w3, "StatePublisher"),
    )


@dataclass(frozen=True)
class Actors:
    """Protocol roles played by the dev accounts."""

    deployer: LocalAccount  # token owner (mints)
    submitter: LocalAccount
    solver: LocalAccount
    challenger: LocalAccount
    verifiers: tuple[LocalAccount, ...]


def stake(
    w3: Web3,
    contracts: SimpleNamespace,
    minter: LocalAccount,
    who: LocalAccount,
    amount: int,
    *,
    verifier: bool,
) -> None:
    """Mints ``amount`` VERI to ``who``, which approves the StakeManager, deposits it and (for verifiers)
    joins the draw pool."""
    send(w3, minter, contracts.token.functions.mint(who.address, amount))
    send(w3, who, contracts.token.functions.approve(contracts.stakes.address, amount))
    send(w3, who, contracts.stakes.functions.deposit(amount))
    if verifier:
        send(w3, who, contracts.stakes.functions.setVerifier(True))


@pytest.fixture(scope="module")
def actors(w3: Web3, dev: list[LocalAccount], contracts: SimpleNamespace) -> Actors:
    """Roles, funded as the forge Fixture does: solver 1 000 VERI staked, challenger 1 000 and five
    verifiers 500 each staked and in the draw pool, the submitter holding 10 000 VERI approved to the
    StakeManager (escrow is pulled from it)."""
    roles = Actors(deployer=dev[0], submitter=dev[1], solver=dev[2], challenger=dev[3], verifiers=tuple(dev[4:9]))
    stake(w3, contracts, roles.deployer, roles.solver, 1_000 * ETHER, verifier=False)
    stake(w3, contracts, roles.deployer, roles.challenger, 1_000 * ETHER, verifier=True)
    for v in roles.verifiers:
        stake(w3, contracts, roles.deployer, v, 500 * ETHER, verifier=True)
    send(w3, roles.deployer, contracts.token.functions.mint(roles.submitter.address, 10_000 * ETHER))
    send(w3, roles.submitter, contracts.token.functions.approve(contracts.stakes.address, 2**256 - 1))
    return roles


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``test-artifacts/`` at the repository root (git-ignored): files tests leave for humans and CI."""
    from protocol.paths import repo_root

    path = repo_root() / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
