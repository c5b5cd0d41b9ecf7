"""Deploy the protocol (VeriToken → StakeManager → JobMarket → StatePublisher → DisputeGame), bind it, record it.

Constructor arguments come from ``contracts/params/default.json`` (the file the forge fixture reads too),
matched to the constructors by parameter name through the artifacts' ABIs, so the Python side holds no copy
of the parameter structs' field order: ``stake`` feeds the StakeManager's scalars, ``market`` the JobMarket's
``Params`` tuple, ``game`` the DisputeGame's. A key missing from or unknown to the ABI is an error.

The result is written as a deployment JSON (chain id, the four addresses, the block of the first deployment
transaction for indexers, the deployer and the parameters) with an atomic write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract

from protocol.artifacts import PROTOCOL_CONTRACTS, Artifact, load_artifact
from protocol.atomic import atomic_write_json
from protocol.errors import DeploymentError
from protocol.paths import default_params_path, repo_root
from protocol.tx import send

FORMAT_VERSION = 1
#: Contract name → key under ``addresses`` in the deployment JSON (and constructor parameter name).
ADDRESS_KEYS = {
    "VeriToken": "token",
    "StakeManager": "stakeManager",
    "JobMarket": "jobMarket",
    "StatePublisher": "statePublisher",
    "DisputeGame": "disputeGame",
}
#: Constructor parameter (trailing ``_`` removed) → the address it takes, when not a contract key above.
_ADDRESS_ALIASES = {"market": "jobMarket", "owner": "deployer", "publisher": "statePublisher"}
#: Which params section feeds which contract's non-address constructor arguments.
_PARAM_SECTIONS = {
    "VeriToken": None,
    "StakeManager": "stake",
    "JobMarket": "market",
    "StatePublisher": None,
    "DisputeGame": "game",
}


@dataclass(frozen=True)
class Deployment:
    """Where one protocol deployment lives."""

    chain_id: int
    addresses: dict[str, str]  # token / stakeManager / jobMarket / statePublisher / disputeGame
    start_block: int
    deployer: str
    params: dict[str, Any] = field(default_factory=dict)
    path: Path | None = field(default=None, compare=False)

    def address_of(self, contract_name: str) -> str:
        """Address of ``VeriToken``, ``StakeManager``, ``JobMarket``, ``StatePublisher`` or ``DisputeGame``."""
        return self.addresses[ADDRESS_KEYS[contract_name]]

    def contract(self, w3: Web3, contract_name: str, *, decode_tuples: bool = True) -> Contract:
        """A web3 contract object bound to the deployed ``contract_name`` (ABI from its forge artifact).
        Struct results come back as named tuples unless ``decode_tuples`` is false."""
        return w3.eth.contract(
            # checksummed by from_json and deploy; web3 rejects anything else at run time
            address=cast(ChecksumAddress, self.address_of(contract_name)),
            abi=load_artifact(contract_name).abi_list(),
            decode_tuples=decode_tuples,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "chainId": self.chain_id,
            "addresses": dict(self.addresses),
            "startBlock": self.start_block,
            "deployer": self.deployer,
            "params": self.params,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path | None = None) -> Deployment:
        where = f" in {path}" if path else ""
        if not isinstance(data, dict) or data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise DeploymentError(f"unsupported deployment format{where}")
        try:
            addresses: dict[str, str] = {k: to_checksum_address(data["addresses"][k]) for k in ADDRESS_KEYS.values()}
            return cls(
                chain_id=int(data["chainId"]),
                addresses=addresses,
                start_block=int(data["startBlock"]),
                deployer=to_checksum_address(data["deployer"]),
                params=dict(data.get("params", {})),
                path=path,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DeploymentError(f"invalid deployment JSON{where}: {exc!r}") from exc


def default_deployment_path(chain_id: int) -> Path:
    """``deployments/<chainId>.local.json`` at the repository root (git-ignored)."""
    return repo_root() / "deployments" / f"{chain_id}.local.json"


def load_params(path: str | Path | None = None) -> dict[str, Any]:
    """The deployment parameters (sections ``stake``, ``market``, ``game``; ``_comment`` keys dropped)."""
    path = Path(path) if path else default_params_path()
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except FileNotFoundError:
        raise DeploymentError(f"parameter file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"parameter file {path} is not valid JSON: {exc}") from exc
    params = {k: v for k, v in raw.items() if not k.startswith("_")}
    for section in ("stake", "market", "game"):
        if not isinstance(params.get(section), dict):
            raise DeploymentError(f"parameter file {path} lacks the '{section}' section")
    return params


def load_deployment(path: str | Path) -> Deployment:
    """Reads a deployment JSON written by :func:`deploy`."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise DeploymentError(f"no deployment file at {path}; deploy first (veritrain devnet up)") from None
    except json.JSONDecodeError as exc:
        raise DeploymentError(f"deployment file {path} is not valid JSON: {exc}") from exc
    return Deployment.from_json(data, path=path)


def _as_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DeploymentError(f"parameter {key} must be an integer or a decimal string, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise DeploymentError(f"parameter {key} must be an integer, got {value!r}") from None


def _constructor_args(artifact: Artifact, addresses: dict[str, str], section: str | None, params: dict) -> list:
    """Arguments for ``artifact``'s constructor, by parameter name."""
    values = params.get(section, {}) if section else {}
    used: set[str] = set()
    args: list[Any] = []
    ctor = artifact.entries("constructor")
    for inp in ctor[0]["inputs"] if ctor else []:
        name = inp["name"].rstrip("_")
        if inp["type"] == "address":
            key = _ADDRESS_ALIASES.get(name, name)
            if key not in addresses:
                raise DeploymentError(f"{artifact.name} constructor needs address '{name}', not yet deployed")
            args.append(addresses[key])
        elif inp["type"] == "tuple":
            comps = []
            for comp in inp["components"]:
                if comp["name"] not in values:
                    raise DeploymentError(f"params.{section}.{comp['name']} missing ({artifact.name} {name})")
                comps.append(_as_int(values[comp["name"]], f"{section}.{comp['name']}"))
                used.add(comp["name"])
            args.append(tuple(comps))
        else:
            if name not in values:
                raise DeploymentError(f"params.{section}.{name} missing ({artifact.name} constructor)")
            args.append(_as_int(values[name], f"{section}.{name}"))
            used.add(name)
    unknown = set(values) - used
    if unknown:
        raise DeploymentError(f"params.{section} has keys no constructor takes: {', '.join(sorted(unknown))}")
    return args


def deploy(
    w3: Web3,
    deployer: LocalAccount,
    params_path: str | Path | None = None,
    *,
    out_path: str | Path | None = None,
    write: bool = True,
) -> Deployment:
    """Deploys and binds the five contracts from ``deployer``; writes the deployment JSON to ``out_path``
    (default :func:`default_deployment_path`) unless ``write`` is false. The artifacts must be built
    (:func:`protocol.build.ensure_forge_build`)."""
    params = load_params(params_path)
    artifacts = {name: load_artifact(name) for name in PROTOCOL_CONTRACTS}
    addresses: dict[str, str] = {"deployer": deployer.address}
    start_block: int | None = None
    for name in PROTOCOL_CONTRACTS:
        art = artifacts[name]
        args = _constructor_args(art, addresses, _PARAM_SECTIONS[name], params)
        factory = w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode)
        receipt = send(w3, deployer, factory.constructor(*args))
        if receipt["contractAddress"] is None:  # pragma: no cover - a node bug
            raise DeploymentError(f"{name} deployment receipt has no contract address")
        addresses[ADDRESS_KEYS[name]] = to_checksum_address(receipt["contractAddress"])
        if start_block is None:
            start_block = int(receipt["blockNumber"])
    deployment = Deployment(
        chain_id=int(w3.eth.chain_id),
        addresses={k: addresses[k] for k in ADDRESS_KEYS.values()},
        start_block=int(start_block or 0),
        deployer=deployer.address,
        params=params,
    )
    stake_manager = deployment.contract(w3, "StakeManager")
    market = deployment.contract(w3, "JobMarket")
    game = deployment.addresses["disputeGame"]
    send(w3, deployer, stake_manager.functions.bind(deployment.addresses["jobMarket"], game))
    send(w3, deployer, market.functions.bindGame(game))
    if write:
        path = Path(out_path) if out_path else default_deployment_path(deployment.chain_id)
        atomic_write_json(path, deployment.to_json())
        deployment = replace(deployment, path=path)
    return deployment
