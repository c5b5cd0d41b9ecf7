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
