"""``veritrain verifier``: run a verifier node (see :mod:`verifier.node`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from veritrain.options import (
    ApiOpt,
    DeploymentOpt,
    DeviceOpt,
    KeyFileOpt,
    KeyOpt,
    LogLevelOpt,
    RoleOpt,
    RpcOpt,
    ThreadsOpt,
    device_error,
    fail,
    resolve_node,
    tokens_option,
)

__all__ = ["verifier"]

EXAMPLES = """
Examples:

  # on a devnet (`veritrain devnet up`), key from a file, 500 tokens staked
  veritrain verifier --key-file verifier.key --stake 500

  # also audit 20% of the jobs it was not assigned (whistleblower)
  VERITRAIN_KEY=0x… veritrain verifier --whistleblow-rate 0.2 --listen 127.0.0.1:8700
"""


def verifier(
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="State folder (default $VERITRAIN_HOME/verifier-<address>).")
    ] = None,
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT of /metrics and /health (port 0: any).")] = (
        "127.0.0.1:0"
    ),
    stake: Annotated[str, typer.Option("--stake", help="Tokens to keep staked (free + locked).")] = "500",
    whistleblow_rate: Annotated[
        float,
        typer.Option("--whistleblow-rate", min=0.0, max=1.0, help="Share of unassigned jobs to audit too (0..1)."),
    ] = 0.0,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    adversary: Annotated[
        str | None,
        typer.Option("--adversary", help="TEST/DEMO ONLY: 'accuse' disputes honest work (and loses its bond)."),
    ] = None,
    poll_interval: Annotated[float, typer.Option("--poll-interval", min=0.05, help="Seconds between ticks.")] = 0.5,
    confirmations: Annotated[
        int, typer.Option("--confirmations", min=0, help="Blocks an event waits before the node acts on it.")
    ] = 0,
    log_level: LogLevelOpt = "info",
) -> None:
    """Run a verifier node: stake, audit committed jobs by replaying their sampled segments, attest or dispute
    (and play the dispute down the tree), arbitrate when drawn, collect fees and bounties. Runs until Ctrl-C /
    SIGTERM; safe to kill -9 and restart (state in --data-dir and on chain).
    """
    from protocol.errors import ChainMismatch, RpcUnavailable, VeritrainError
    from protocol.node import (
        HttpService,
        NodeConfigError,
        StopFlag,
        clear_ready_file,
        log_event,
        parse_listen,
        run_loop,
        setup_logging,
        write_ready_file,
    )
    from verifier.node import ADVERSARIES

    if adversary is not None and adversary not in ADVERSARIES:
        fail(f"--adversary: unknown verifier adversary {adversary!r}; known: {', '.join(ADVERSARIES)}")
    stake_wei = tokens_option(stake, "--stake")
    if (why := device_error(device)) is not None:
        fail(why)
    setup = resolve_node(key=key, key_file=key_file, role=role, rpc=rpc, deployment=deployment, api=api)
    account, rpc, dep, api, home = setup.account, setup.rpc, setup.deployment, setup.api, setup.home
    try:
        host, port = parse_listen(listen)
    except NodeConfigError as exc:
        fail(str(exc))
    ddir = Path(data_dir or home / f"verifier-{account.address[2:10].lower()}")
    try:
        logger = setup_logging("verifier", ddir, log_level)
    except NodeConfigError as exc:
        fail(str(exc))
    clear_ready_file(ddir)
    if adversary:
        typer.secho(
            f"WARNING: --adversary {adversary}: THIS VERIFIER DISPUTES HONEST WORK ON PURPOSE. For tests and demos "
            "only; it will lose its dispute bond.",
            fg=typer.colors.RED,
            bold=True,
            err=True,
        )
    from fastapi import FastAPI

    from protocol.chain import ChainClient
    from protocol.engine.runner import configure_threads
    from protocol.node import metrics_response
    from protocol.staking import InsufficientTokens
    from verifier.node import VerifierNode

    configure_threads(threads)
    stop = StopFlag()
    try:
        client = ChainClient(rpc, dep, account, retries=4)
        node = VerifierNode(
            client, ddir, api, stake=stake_wei, whistleblow_rate=whistleblow_rate, adversary=adversary,
            confirmations=confirmations, device=device,
        )  # fmt: skip
        node.ensure_stake()
    except RpcUnavailable:
        fail(f"the RPC node at {rpc} is unreachable: start it (`veritrain devnet up`) or fix --rpc", code=1)
    except ChainMismatch as exc:
        fail(f"wrong chain: {exc}", code=1)
    except InsufficientTokens as exc:
        fail(str(exc), code=1)
    except VeritrainError as exc:
        fail(str(exc), code=1)

    app = FastAPI(title="veritrain verifier", docs_url=None, redoc_url=None)

    @app.get("/metrics")
    def metrics():
        return metrics_response(node.metrics.registry)

    @app.get("/audits")
    def audits() -> dict:
        """This node's finished audits (job, plan, per-segment verdicts, replay seconds)."""
        return {"address": account.address, "audits": node.audits()}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "role": "verifier", "address": account.address, "ticks": node.stats.ticks}

    try:
        http = HttpService(app, host, port).start()
    except NodeConfigError as exc:
        fail(str(exc), code=1)
    info = {"role": "verifier", "address": account.address, "url": http.url, "metrics_url": f"{http.url}/metrics"}
    write_ready_file(ddir, **info)
    log_event(logger, "ready", **info, data_dir=str(ddir), adversary=adversary, pid=os.getpid())
    try:
        run_loop(node.tick, stop, poll_interval, logging.getLogger("veritrain.verifier"))
    finally:
        log_event(logger, "stopping", max_tick_s=round(node.stats.max_tick_seconds, 3), ticks=node.stats.ticks)
        http.stop()
        node.close()
