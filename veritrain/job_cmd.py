"""``veritrain job submit|status|accept|fetch|cancel``: what a submitter does (DESIGN §5)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from protocol.errors import VeritrainError
from veritrain.options import ApiOpt, DeploymentOpt, HomeOpt, JsonOpt, KeyFileOpt, KeyOpt, RoleOpt, RpcOpt

app = typer.Typer(
    name="job",
    help="Submit training jobs, take bids, follow them, download the verified model.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
err = Console(stderr=True)
out = Console()


def fail(exc: BaseException | str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Every veritrain error becomes a one-paragraph message and exit code 1."""
    try:
        yield
    except VeritrainError as exc:
        fail(exc)


def connect_user(key, key_file, role, rpc, deployment, api, home, need_key: bool = True):
    from veritrain.market import connect

    return connect(
        key=key, key_file=key_file, role=role, rpc=rpc, deployment=deployment, api=api, home=home, need_key=need_key
    )


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


# ------------------------------------------------------------------ submit


@app.command("submit")
def submit(
    spec: Annotated[
        str, typer.Argument(help="Spec JSON file, or an example name: mlp_digits, cnn_digits, tiny_lm, gpt_bytes.")
    ],
    price: Annotated[str, typer.Option("--price", help="Most you pay, in VERI (the order's maxPrice).")] = "100",
    dataset: Annotated[Path | None, typer.Option("--dataset", help="Your dataset file (npz, csv, text).")] = None,
    dataset_format: Annotated[
        str | None, typer.Option("--dataset-format", help="npz|csv|text|parquet (default: by suffix).")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Fine-tune from these weights (.safetensors, a PyTorch state_dict, or the .vts of `veritrain "
            "state import`): converted, named in the spec's init, uploaded with the job.",
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Override total_steps.")] = None,
    interval: Annotated[int | None, typer.Option("--interval", min=1, help="Override checkpoint_interval.")] = None,
    deadline: Annotated[int, typer.Option("--deadline", min=60, help="Seconds the solver has to commit.")] = 3600,
    accept: Annotated[
        str,
        typer.Option("--accept", help="'best' (cheapest feasible bid), a solver ADDRESS, or 'none' (post only)."),
    ] = "best",
    bid_timeout: Annotated[float, typer.Option("--bid-timeout", help="Seconds to wait for a bid.")] = 120.0,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job to its outcome (finalized/slashed/expired).")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits.")] = 1800.0,
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Post a training job: upload spec + dataset, sign the JobOrder, post it, take a bid, optionally wait.

    Examples:

      veritrain job submit mlp_digits --steps 80 --interval 10 --price 50 --role user --wait

      veritrain job submit my_spec.json --dataset data.npz --key-file ~/.veritrain/key --accept none

      veritrain job submit finetune.json --dataset data.parquet --weights base.safetensors --role user --wait

      veritrain job submit mlp_digits --accept 0x90F79bf6EB2c4f870365E785982E1f101E93b906 --role user --json
    """
    from protocol.tokens import format_tokens
    from veritrain.market import (
        accept_bid,
        load_spec_source,
        parse_tokens,
        prepare_spec,
        submit_job,
        wait_for_bid,
        wait_outcome,
    )

    if accept not in ("best", "none") and not (accept.startswith("0x") and len(accept) == 42):
        fail("--accept takes 'best', 'none' or a solver address (0x + 40 hex digits)", 2)
    result: dict[str, Any] = {}
    with user_errors():
        max_price = parse_tokens(price)
        with connect_user(key, key_file, role, rpc, deployment, api, home) as user:
            with err.status("preparing the spec (computing the initial state root C_init) ..."):
                raw = load_spec_source(spec)
                if dataset is None:
                    from protocol.engine.examples import EXAMPLES, example_data_path

                    dataset = example_data_path(spec) if spec in EXAMPLES else None  # an example's own data
                ready, data, weights_blob = prepare_spec(
                    raw,
                    dataset=dataset,
                    dataset_format=dataset_format,
                    total_steps=steps,
                    checkpoint_interval=interval,
                    weights=weights,
                )
            with err.status("uploading spec and dataset, signing and posting the order ..."):
                sub = submit_job(user, ready, data, max_price=max_price, deadline_s=deadline, weights=weights_blob)
            result.update(job_id=sub.job_id, spec_hash="0x" + sub.order.specHash.hex(), nonce=str(sub.order.nonce))
            if not as_json:
                err.print(f"posted job [bold]{sub.job_id}[/] ({ready.model.kind}, {ready.num_segments} checkpoints)")
            if accept != "none":
                with err.status("waiting for bids ...") as st:
                    bid = wait_for_bid(
                        user,
                        sub.job_id,
                        solver=None if accept == "best" else accept,
                        timeout=bid_timeout,
                        on_poll=lambda items: st.update(f"waiting for bids ... ({len(items)} feasible)"),
                    )
                with err.status("accepting the bid (escrowing the price) ..."):
                    taken = accept_bid(user, sub.job_id, bid["bid_hash"])
                result["accepted"] = taken
                if not as_json:
                    err.print(
                        f"accepted {taken['solver']}'s bid at {format_tokens(taken['price'])} VERI (tx {taken['tx']})"
                    )
            if wait and accept != "none":
                with err.status("following the job ...") as st:
                    job = wait_outcome(
                        user,
                        sub.job_id,
                        timeout=timeout,
                        on_state=lambda s, j: st.update(f"job is {s.name.lower()} ..."),
                    )
                from protocol.constants import JobState

                result["outcome"] = JobState(job.state).name.lower()
                if not as_json:
                    err.print(f"job {sub.job_id} is [bold]{result['outcome']}[/]")
    if as_json:
        emit(result)
    else:
        typer.echo(result["job_id"])


# ------------------------------------------------------------------ accept


@app.command("accept")
def accept_cmd(
    job_id: Annotated[str, typer.Argument(help="The job id (0x…).")],
    solver: Annotated[str | None, typer.Option("--solver", help="Take this solver's bid (default: the best).")] = None,
    bid_timeout: Annotated[float, typer.Option("--bid-timeout", help="Seconds to wait for a bid.")] = 60.0,
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accept a bid on a posted job (escrows the price; the solver's stake is locked).

    Example:

      veritrain job accept 0x3f…9a --role user
    """
    from veritrain.market import accept_bid, wait_for_bid

    with user_errors(), connect_user(key, key_file, role, rpc, deployment, api, home) as user:
        bid = wait_for_bid(user, job_id, solver=solver, timeout=bid_timeout)
        taken = accept_bid(user, job_id, bid["bid_hash"])
    emit(taken) if as_json else typer.echo(f"accepted {taken['solver']}'s bid (tx {taken['tx']})")


# ------------------------------------------------------------------ status


@app.command("status")
def status(
    job_id: Annotated[str, typer.Argument(help="The job id (0x…).")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its outcome (finalizes when due).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits.")] = 1800.0,
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a job as the chain and the marketplace API see it: state, solver, roots, audit, disputes.

    Examples:

      veritrain job status 0x3f…9a

      veritrain job status 0x3f…9a --wait --role user --json
    """
    import time

    from protocol.tokens import format_tokens
    from veritrain.market import job_summary, wait_outcome

    with user_errors(), connect_user(key, key_file, role, rpc, deployment, api, home, need_key=False) as user:
        if wait:
            with err.status("following the job ...") as st:
                wait_outcome(
                    user,
                    job_id,
                    timeout=timeout,
                    on_state=lambda s, j: st.update(f"job is {s.name.lower()} ..."),
                )
        info = job_summary(user, job_id)
    if as_json:
        emit(info)
        return
    table = Table(title=f"job {job_id}", show_header=False)
    table.add_row("state", info["state"])
    for k, v in (info.get("chain") or {}).items():
        if k in ("price", "stake") and str(v).isdigit():
            v = f"{format_tokens(int(v))} VERI"
        elif k in ("deadline", "audit_end") and str(v).isdigit() and int(v):
            v = f"{v} ({time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(int(v)))} UTC)"
        table.add_row(k, str(v))
    api_part = info.get("api") or {}
    if api_part:
        table.add_row("api status", api_part["status"])
        table.add_row("bids", str(api_part["bids"]))
        audit = api_part.get("audit") or {}
        if audit:
            table.add_row("audit", f"segments {audit.get('segments')}, attested by {len(audit.get('attested') or [])}")
        for d in api_part.get("disputes") or []:
            table.add_row(f"dispute {d['dispute_id']}", f"{d['phase']} / {d['outcome']}")
    elif "api_error" in info:
        table.add_row("api", info["api_error"])
    out.print(table)
    points = info.get("metrics") or []
    if points:
        mt = Table(title="checkpoint metrics (committed in each leaf's manifest)")
        acc = any(p.get("heldout_accuracy") is not None for p in points)
        for col in ("leaf", "step", "train loss", "held-out loss", *(("held-out acc.",) if acc else ()), "lr"):
            mt.add_column(col, justify="right")

        def fmt(v: Any, spec: str = ".4f") -> str:
            return "–" if v is None else format(v, spec)

        for p in points:
            row = [str(p["leaf"]), str(p["step"]), fmt(p.get("train_loss")), fmt(p.get("heldout_loss"))]
            if acc:
                row.append("–" if p.get("heldout_accuracy") is None else f"{100 * p['heldout_accuracy']:.1f} %")
            row.append(fmt(p.get("lr"), ".3g"))
            mt.add_row(*row)
        out.print(mt)


# ------------------------------------------------------------------ fetch


@app.command("fetch")
def fetch(
    job_id: Annotated[str, typer.Argument(help="The job id (0x…) of a finalized job.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the model into.")] = Path("model"),
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Download the final model of a finalized job and check it against the committed final state root.

    Writes final_state.vts (canonical state bytes, hashing to the on-chain finalStateRoot), model.pt (a
    PyTorch state_dict; with LoRA also model_merged.pt, the adapters folded into the base weights), spec.json,
    job.json and, when the spec evaluates at every checkpoint, metrics.json (held-out loss/accuracy per leaf).

    Example:

      veritrain job fetch 0x3f…9a --out model/
      python -c "import torch; print(torch.load('model/model.pt').keys())"
    """
    from veritrain.market import fetch_model

    with user_errors(), connect_user(None, None, None, rpc, deployment, api, home, need_key=False) as user:
        with err.status("downloading and verifying the final state ..."):
            info = fetch_model(user, job_id, out_dir)
    if as_json:
        emit(info)
    else:
        typer.echo(
            f"verified: {info['bytes']} bytes hash to the committed final state root {info['final_state_root']}\n"
            f"model (step {info['step']}) written to {info['files']['model']}"
        )


# ------------------------------------------------------------------ cancel


@app.command("cancel")
def cancel(
    job_id: Annotated[str | None, typer.Argument(help="The job id (0x…) of an order not matched yet.")] = None,
    nonce: Annotated[int | None, typer.Option("--nonce", help="Cancel this order nonce instead.")] = None,
    key: KeyOpt = None,
    key_file: KeyFileOpt = None,
    role: RoleOpt = None,
    rpc: RpcOpt = None,
    deployment: DeploymentOpt = None,
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel an open order on-chain (its nonce): no bid can be accepted for it afterwards.

    Examples:

      veritrain job cancel 0x3f…9a --role user

      veritrain job cancel --nonce 1795000000000000000 --key-file key.txt
    """
    from veritrain.market import cancel_order

    with user_errors(), connect_user(key, key_file, role, rpc, deployment, api, home) as user:
        res = cancel_order(user, job_id, nonce)
    emit(res) if as_json else typer.echo(f"cancelled order nonce {res['nonce']} (tx {res['tx']})")
