"""``veritrain solver``: run a solver node (see :mod:`solver.node`)."""

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

__all__ = ["solver"]

EXAMPLES = """
Examples:

  # on a devnet (`veritrain devnet up`), with a key file, the API on :8000
  veritrain solver --key-file solver.key --stake 1000 --price-floor 5

  # key from the environment, a public URL for the checkpoint server, small jobs only
  VERITRAIN_KEY=0x… veritrain solver --listen 0.0.0.0:8600 --public-url http://me.example:8600 --max-steps 2000

  # train on the GPU (exact mode: the Triton kernels; verifiers on CPUs replay the same bytes)
  veritrain solver --key-file solver.key --device cuda
"""


def _adversary_params(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--adversary-param must be KEY=VALUE, not {item!r}")
        try:
            if key == "segments":
                out[key] = [int(v) for v in value.split(",") if v]
            elif key == "scale":
                out[key] = float(value)
            else:
                out[key] = int(value)
        except ValueError:
            fail(f"--adversary-param {key}: {value!r} is not a number")
    return out


def solver(
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="State folder (default $VERITRAIN_HOME/solver-<address>).")
    ] = None,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT of the checkpoint server (port 0: any).")
    ] = "127.0.0.1:0",
    public_url: Annotated[
        str | None, typer.Option("--public-url", help="URL others reach the checkpoint server at (the commit uri).")
    ] = None,
    stake: Annotated[str, typer.Option("--stake", help="Tokens to keep staked (free + locked).")] = "1000",
    price_floor: Annotated[
        str, typer.Option("--price-floor", help="Bid price in tokens; orders paying less are skipped.")
    ] = "10",
    max_steps: Annotated[
        int, typer.Option("--max-steps", min=1, help="Skip orders with more optimizer steps.")
    ] = 100_000,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    models: Annotated[
        str, typer.Option("--models", help="Model kinds to take (comma list of mlp, cnn, transformer_lm).")
    ] = "mlp,cnn,transformer_lm",
    adversary: Annotated[
        str | None,
        typer.Option(
            "--adversary",
            help="TEST/DEMO ONLY: cheat as one of solver/adversary.py (fake, noise, lazy, withhold, stall, malformed, "
            "trickle, hang, bomb, baitswitch, noclip, constlr, unfreeze).",
        ),
    ] = None,
    adversary_param: Annotated[
        list[str] | None,
        typer.Option(
            "--adversary-param",
            help="TEST/DEMO ONLY: KEY=VALUE for the adversary (fake: after_step; noise: segment, scale; "
            "lazy: skip; withhold: segments=1,2).",
        ),
    ] = None,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.05, help="Seconds between idle ticks.")
    ] = 0.5,
    log_level: LogLevelOpt = "info",
) -> None:
    """Run a solver node: stake, bid on jobs it can run, train them reproducibly, commit, serve checkpoints,
    defend disputes, collect payment. Runs until Ctrl-C / SIGTERM; safe to kill -9 and restart.
    """
    from protocol.errors import ChainMismatch, RpcUnavailable, VeritrainError
    from protocol.node import (
        NodeConfigError,
        StopFlag,
        clear_ready_file,
        log_event,
        run_loop,
        setup_logging,
        write_ready_file,
    )
    from solver.adversary import UnknownAdversary, make_adversary
    from solver.profile import MODEL_EXAMPLES

    params = _adversary_params(adversary_param or [])
    if params and adversary is None:
        fail("--adversary-param needs --adversary")
    try:
        adv = make_adversary(adversary, **params)
    except UnknownAdversary as exc:
        fail(f"{exc}")
    except (TypeError, ValueError) as exc:
        fail(f"--adversary-param: {exc}")
    kinds = tuple(k.strip() for k in models.split(",") if k.strip())
    bad = [k for k in kinds if k not in MODEL_EXAMPLES]
    if bad or not kinds:
        fail(f"--models: unknown model kind(s) {bad}; choose from {', '.join(MODEL_EXAMPLES)}")
    stake_wei = tokens_option(stake, "--stake")
    floor_wei = tokens_option(price_floor, "--price-floor")
    if (why := device_error(device)) is not None:
        fail(why)
    setup = resolve_node(key=key, key_file=key_file, role=role, rpc=rpc, deployment=deployment, api=api)
    account, rpc, dep, api, home = setup.account, setup.rpc, setup.deployment, setup.api, setup.home
    ddir = data_dir or home / f"solver-{account.address[2:10].lower()}"
    try:
        logger = setup_logging("solver", ddir, log_level)
    except NodeConfigError as exc:
        fail(str(exc))
    clear_ready_file(ddir)
    if not adv.honest:
        typer.secho(
            f"WARNING: --adversary {adv.name}: THIS SOLVER CHEATS ON PURPOSE ({adv.describe()}). "
            "For tests and demos only; it will be caught and slashed.",
            fg=typer.colors.RED,
            bold=True,
            err=True,
        )
    from protocol.engine.runner import configure_threads
    from solver.node import SolverConfig, SolverError, SolverNode

    configure_threads(threads)
    cfg = SolverConfig(
        rpc=rpc,
        deployment=dep,
        api=api,
        data_dir=Path(ddir),
        account=account,
        stake=stake_wei,
        price_floor=floor_wei,
        max_steps=max_steps,
        listen=listen,
        public_url=public_url,
        adversary=adv,
        models=kinds,
        device=device,
        poll_interval=poll_interval,
    )
    stop = StopFlag()
    try:
        node = SolverNode(cfg)
        node.start()
    except RpcUnavailable:
        fail(f"the RPC node at {rpc} is unreachable: start it (`veritrain devnet up`) or fix --rpc", code=1)
    except ChainMismatch as exc:
        fail(f"wrong chain: {exc}", code=1)
    except (SolverError, NodeConfigError) as exc:
        fail(str(exc), code=1)
    except VeritrainError as exc:
        fail(str(exc), code=1)
    info = node.ready_info()
    write_ready_file(ddir, **info)
    log_event(logger, "ready", **info, data_dir=str(ddir), pid=os.getpid())
    try:
        run_loop(node.tick, stop, poll_interval, logging.getLogger("veritrain.solver"))
    finally:
        log_event(logger, "stopping", max_duty_gap_s=round(node.max_duty_gap_s, 3))
        node.stop()
