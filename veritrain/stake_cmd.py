"""``veritrain stake deposit|withdraw|status``: VeriToken stake in the StakeManager (DESIGN §7)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from veritrain.job_cmd import connect_user, emit, fail, user_errors
from veritrain.options import ApiOpt, DeploymentOpt, HomeOpt, JsonOpt, KeyFileOpt, KeyOpt, RoleOpt, RpcOpt

app = typer.Typer(
    name="stake",
    help="Deposit, withdraw and inspect stake (solvers lock it per job, verifiers per dispute and committee).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _show(pos: dict, as_json: bool) -> None:
    from protocol.tokens import format_tokens

    if as_json:
        emit(pos)
        return
    table = Table(title=f"stake of {pos['address']}", show_header=False)
    for k in ("wallet", "free", "locked", "unbonding", "claimable", "draw_weight"):
        table.add_row(k, f"{format_tokens(int(pos[k]))} VERI")
    table.add_row("verifier", "yes" if pos["verifier"] else "no")
    if int(pos["unbonding"]):
        table.add_row("release_at", str(pos["release_at"]))
    Console().print(table)


@app.command("deposit")
def deposit(
    amount: Annotated[str, typer.Argument(help="VERI to deposit (e.g. 1000 or 2.5); 0 to only set the flag.")],
    verifier: Annotated[
        bool | None,
        typer.Option("--verifier/--not-verifier", help="Turn the verifier flag on (drawn for audits) or off."),
    ] = None,
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve and deposit VeriToken as stake (free until a job or dispute locks it).

    Examples:

      veritrain stake deposit 1000 --role solver0

      veritrain stake deposit 500 --verifier --key-file verifier.key
    """
    from veritrain.market import parse_tokens, stake_deposit

    with user_errors():
        wei = parse_tokens(amount)
        if wei == 0 and verifier is None:
            fail("nothing to do: give an amount above 0 or --verifier/--not-verifier", 2)
        with connect_user(key, key_file, role, rpc, deployment, api, home) as user:
            pos = stake_deposit(user, wei, verifier=verifier)
    _show(pos, as_json)


@app.command("withdraw")
def withdraw(
    amount: Annotated[
        str | None, typer.Argument(help="VERI of free stake to start unbonding; omit to pay out what is ready.")
    ] = None,
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Two steps: `withdraw AMOUNT` starts unbonding free stake (slashable until released); `withdraw` with no
    amount pays out everything ready: unbonded stake whose delay passed, plus payments and rewards credited to
    you (job payments, audit fees, dispute winnings).

    Examples:

      veritrain stake withdraw 200 --role solver0

      veritrain stake withdraw --role solver0
    """
    from veritrain.market import parse_tokens, stake_request_withdrawal, stake_withdraw

    with user_errors(), connect_user(key, key_file, role, rpc, deployment, api, home) as user:
        pos = stake_request_withdrawal(user, parse_tokens(amount)) if amount is not None else stake_withdraw(user)
    _show(pos, as_json)


@app.command("status")
def status(
    address: Annotated[str | None, typer.Argument(help="Whose stake (default: the key's or --role's address).")] = None,
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a stake position: wallet balance, free, locked, unbonding, claimable, verifier flag, draw weight.

    Examples:

      veritrain stake status --role verifier0

      veritrain stake status 0x90F79bf6EB2c4f870365E785982E1f101E93b906 --json
    """
    from veritrain.market import stake_position

    with user_errors(), connect_user(key, key_file, role, rpc, deployment, api, home, need_key=address is None) as user:
        pos = stake_position(user, address)
    _show(pos, as_json)
