"""Command-line options every node command (``veritrain solver``, ``veritrain verifier``) takes the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

KeyOpt = Annotated[str | None, typer.Option("--key", help="Private key (hex). Prefer --key-file or $VERITRAIN_KEY.")]
KeyFileOpt = Annotated[Path | None, typer.Option("--key-file", help="File whose first line is the private key.")]
RpcOpt = Annotated[str, typer.Option("--rpc", help="Ethereum JSON-RPC URL.")]
DeploymentOpt = Annotated[
    Path | None, typer.Option("--deployment", help="Deployment JSON (default $VERITRAIN_HOME/deployment.json).")
]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="Threads for torch and the exact kernels.")]
LogLevelOpt = Annotated[str, typer.Option("--log-level", help="debug, info, warning or error.")]
DEFAULT_RPC = "http://127.0.0.1:8545"


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` (one line, on stderr) and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def tokens_option(value: str, name: str) -> int:
    """A token amount given on the command line, in wei; one clear error line (and exit 2) if it is not a
    finite, non-negative amount with at most 18 decimals."""
    from protocol.tokens import TokenAmountError, parse_tokens

    try:
        return parse_tokens(value, name)
    except TokenAmountError as exc:
        fail(str(exc))
        raise  # unreachable: fail exits
