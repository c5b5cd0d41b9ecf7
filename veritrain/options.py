"""Command-line options the commands share (one declaration each), and how nodes resolve them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from protocol.deploy import Deployment

KeyOpt = Annotated[str | None, typer.Option("--key", help="Private key (hex). Prefer --key-file or $VERITRAIN_KEY.")]
KeyFileOpt = Annotated[Path | None, typer.Option("--key-file", help="File whose first line is the private key.")]
RoleOpt = Annotated[
    str | None,
    typer.Option("--role", help="Devnet only: sign as this dev account (solver0, verifier3, ...) of devnet.json."),
]
RpcOpt = Annotated[str | None, typer.Option("--rpc", help="Ethereum JSON-RPC URL (default: the devnet's, else :8545).")]
ApiOpt = Annotated[str | None, typer.Option("--api", help="Marketplace API URL (default: the devnet's, else :8000).")]
DeploymentOpt = Annotated[
    Path | None, typer.Option("--deployment", help="Deployment JSON (default $VERITRAIN_HOME/deployment.json).")
]
HomeOpt = Annotated[Path | None, typer.Option("--home", help="VERITRAIN_HOME (default ./.veritrain).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="Threads for torch and the exact kernels.")]
LogLevelOpt = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where the node trains and replays: cpu, or cuda[:N] (exact mode gives the same bytes on both).",
    ),
]
DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_API = "http://127.0.0.1:8000"


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` (one line, on stderr) and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def device_error(device: str) -> str | None:
    """Why ``device`` cannot be used on this machine (for ``--device``), or None when it can."""
    from protocol.engine.runner import DeviceUnavailable, check_device

    try:
        check_device(device)
    except DeviceUnavailable as exc:
        return f"--device: {exc}"
    return None


def tokens_option(value: str, name: str) -> int:
    """A token amount given on the command line, in wei; one clear error line (and exit 2) if it is not a
    finite, non-negative amount with at most 18 decimals."""
    from protocol.tokens import TokenAmountError, parse_tokens

    try:
        return parse_tokens(value, name)
    except TokenAmountError as exc:
        fail(str(exc))
        raise  # unreachable: fail exits


@dataclass(frozen=True)
class NodeSetup:
    """Who a node is and where it connects: resolved from the options, with a devnet's defaults."""

    account: LocalAccount
    rpc: str
    deployment: Deployment
    api: str
    home: Path


def resolve_node(
    *,
    key: str | None,
    key_file: Path | None,
    role: str | None,
    rpc: str | None,
    deployment: Path | None,
    api: str | None,
) -> NodeSetup:
    """The node's key (``--key``, ``--key-file``, ``$VERITRAIN_KEY`` or a devnet ``--role``), RPC, API and
    deployment. A devnet recorded in ``$VERITRAIN_HOME`` supplies the RPC and API defaults. Every problem is one
    ``error:`` line and exit 2."""
    from protocol.deploy import load_deployment
    from protocol.errors import VeritrainError
    from protocol.node import NodeConfigError, load_account
    from veritrain.devnet import DevnetError, _read, veritrain_home

    home = veritrain_home()
    try:
        devnet = _read(home)
    except DevnetError:
        devnet = None
    try:
        if role is not None:
            if key or key_file:
                fail("pass either --role or --key/--key-file, not both")
            if devnet is None:
                fail(f"--role {role} needs a devnet in {home}: run `veritrain devnet up` first")
            account = devnet.account(role)
        else:
            account = load_account(key, key_file)
    except (NodeConfigError, DevnetError) as exc:
        fail(str(exc))
    dep_path = deployment or home / "deployment.json"
    if not dep_path.exists():
        fail(f"deployment file {dep_path} does not exist: run `veritrain devnet up` (or pass --deployment)")
    try:
        dep = load_deployment(dep_path)
    except (VeritrainError, ValueError, OSError) as exc:
        fail(f"cannot read deployment {dep_path}: {exc}")
    rpc_url = rpc or (devnet.rpc_url if devnet else DEFAULT_RPC)
    api_url = api or (devnet.api_url if devnet and devnet.api_url else DEFAULT_API)
    return NodeSetup(account=account, rpc=rpc_url, deployment=dep, api=api_url, home=home)
