"""The ``veritrain`` command line (Typer).

Subcommands (``demo``, ``devnet``, ``api``, ``solver``, ``verifier``, ``job``,
``stake``, ``audit``, ``train``, ``bench``) are added by later changes; see
DESIGN.md §10.
"""

from typing import Annotated

import typer

from veritrain import __version__
from veritrain.api_cmd import api as api_command
from veritrain.api_cmd import indexer as indexer_command
from veritrain.audit_cmd import app as audit_app
from veritrain.bench import app as bench_app
from veritrain.demo import demo as demo_command
from veritrain.devnet_cmd import app as devnet_app
from veritrain.job_cmd import app as job_app
from veritrain.solver_cmd import EXAMPLES as SOLVER_EXAMPLES
from veritrain.solver_cmd import solver as solver_command
from veritrain.stake_cmd import app as stake_app
from veritrain.state_cmd import app as state_app
from veritrain.train import train as train_command
from veritrain.verifier_cmd import EXAMPLES as VERIFIER_EXAMPLES
from veritrain.verifier_cmd import verifier as verifier_command

app = typer.Typer(
    name="veritrain",
    add_completion=False,
    no_args_is_help=False,
    rich_markup_mode="rich",
)
app.add_typer(bench_app, name="bench")
app.add_typer(audit_app, name="audit")
app.add_typer(devnet_app, name="devnet")
app.add_typer(job_app, name="job")
app.add_typer(stake_app, name="stake")
app.add_typer(state_app, name="state")
app.command("demo")(demo_command)
app.command("api")(api_command)
app.command("indexer")(indexer_command)
app.command("train")(train_command)
app.command("solver", epilog=SOLVER_EXAMPLES)(solver_command)
app.command("verifier", epilog=VERIFIER_EXAMPLES)(verifier_command)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"veritrain {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """veritrain: a verifiable decentralized ML training marketplace.

    Submitters post training jobs and take bids; solvers train and commit to
    every checkpoint with a Merkle root on-chain; verifiers replay sampled
    segments and dispute cheats down to a single step, which is settled and
    the cheater slashed; auditors re-check every dispute from the chain.
    """
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


if __name__ == "__main__":  # python -m veritrain.cli
    app()
