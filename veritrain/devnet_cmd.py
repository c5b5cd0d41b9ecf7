"""``veritrain devnet up|down|status``: a local chain with the protocol deployed and funded dev accounts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from protocol.errors import VeritrainError
from veritrain.options import HomeOpt

app = typer.Typer(
    name="devnet",
    help="A local devnet: anvil + the contracts (devnet parameters) + funded dev accounts + the marketplace API.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
console = Console(stderr=True)


def fail(exc: BaseException | str, code: int = 1) -> None:
    """Prints an error that says what to do, and exits with ``code``."""
    console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


@app.command("up")
def up(
    home: HomeOpt = None,
    port: Annotated[
        int, typer.Option(envvar="VERITRAIN_DEVNET_PORT", help="anvil's port on 127.0.0.1 (0 = a free one).")
    ] = 8545,
    api: Annotated[bool, typer.Option("--api/--no-api", help="Also start the marketplace API + indexer.")] = True,
    api_port: Annotated[
        int, typer.Option(envvar="VERITRAIN_DEVNET_API_PORT", help="The API's port on 127.0.0.1 (0 = a free one).")
    ] = 8000,
    params: Annotated[
        Path | None, typer.Option(help="Deployment parameters (default contracts/params/devnet.json).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the devnet (without keys) as JSON.")] = False,
) -> None:
    """Start anvil, deploy the protocol, fund the dev accounts, start the API; runs in the background.

    Examples:

      veritrain devnet up

      veritrain devnet up --port 9545 --api-port 9000 --home /tmp/vt

    The processes keep running after this command returns; stop them with `veritrain devnet down`.
    """
    from veritrain.devnet import start_devnet

    try:
        with console.status("starting anvil, deploying the contracts, funding the dev accounts ..."):
            devnet = start_devnet(home, port=port, api=api, api_port=api_port, params=params)
    except VeritrainError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(devnet.public_json(), indent=2))
        return
    dep = devnet.deployment
    table = Table(title=f"devnet up in {devnet.home}", show_header=False)
    table.add_row("RPC", devnet.rpc_url)
    table.add_row("chain id", str(devnet.chain_id))
    table.add_row("API", devnet.api_url or "(not started: --no-api)")
    table.add_row("deployment", str(devnet.deployment_path))
    for key, addr in dep.addresses.items():
        table.add_row(key, addr)
    table.add_row("accounts", ", ".join(devnet.accounts))
    Console().print(table)
    typer.echo(
        "dev keys (anvil's public ones) are in devnet.json; e.g. "
        "`veritrain stake deposit 1000 --role solver0`; stop with `veritrain devnet down`"
    )


@app.command("down")
def down(home: HomeOpt = None) -> None:
    """Stop the devnet's anvil and API and remove its state (deployment.json, devnet.json, the API's database).

    Example:

      veritrain devnet down
    """
    from veritrain.devnet import stop_devnet, veritrain_home

    try:
        stopped = stop_devnet(home)
    except VeritrainError as exc:
        fail(exc)
    typer.echo(f"devnet in {veritrain_home(home)} stopped" if stopped else f"no devnet in {veritrain_home(home)}")


@app.command("status")
def status(
    home: HomeOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Whether the devnet runs: RPC, block number, API health, contract addresses, dev account addresses.

    Examples:

      veritrain devnet status

      veritrain devnet status --json | jq .accounts.solver0

    Exits with 1 when no devnet runs.
    """
    from veritrain.devnet import devnet_status

    try:
        st = devnet_status(home)
    except VeritrainError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(st, indent=2))
    elif not st["running"]:
        where = st["home"]
        console.print(
            f"no devnet running in {where}"
            + (" (devnet.json is stale: run `veritrain devnet down`)" if "rpc_url" in st else "")
            + "; start one with `veritrain devnet up`",
            highlight=False,
        )
    else:
        table = Table(title=f"devnet in {st['home']}", show_header=False)
        table.add_row("RPC", f"{st['rpc_url']} (block {st.get('block', '?')})")
        api = st.get("api_url")
        table.add_row("API", f"{api} ({'healthy' if st.get('api_healthy') else 'NOT answering'})" if api else "-")
        table.add_row("deployment", st["deployment"])
        for role, addr in st["accounts"].items():
            table.add_row(role, addr)
        Console().print(table)
    if not st["running"]:
        raise typer.Exit(1)


@app.command("address")
def address(
    role: Annotated[str, typer.Argument(help="A dev account role: user, solver0..4, verifier0..9, deployer.")],
    home: HomeOpt = None,
) -> None:
    """Print the address of a devnet dev account (for --accept, --solver, audits).

    Example:

      veritrain job submit mlp_digits --accept $(veritrain devnet address solver1) --role user
    """
    from veritrain.devnet import load_devnet

    try:
        typer.echo(load_devnet(home, check=False).address(role))
    except VeritrainError as exc:
        fail(exc)
