"""``veritrain audit dispute ID`` / ``veritrain audit job ID``: re-check a dispute or a job from raw chain data.

Reads events, calldata, blocks and receipts straight from ``--rpc`` (never the API), checks every rule
(docs/audit.md lists the rule ids) and prints a verdict: each check ticked, or the violations, the first one
named. ``--json`` prints the verdict as JSON. ``--export FILE`` writes the record read from the chain;
``--record FILE`` checks such a record offline instead of reading the chain.

Exit codes: 0 every rule holds, 1 a rule is violated, 2 the chain or the record could not be read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from veritrain.options import DeploymentOpt

EXIT_OK, EXIT_VIOLATION, EXIT_UNREADABLE = 0, 1, 2
DEFAULT_RPC = "http://127.0.0.1:8545"

app = typer.Typer(
    name="audit",
    help="Re-check disputes and jobs from raw chain data (no API): every rule, with a verdict.",
    no_args_is_help=True,
    add_completion=False,
)

Rpc = Annotated[
    str | None,
    typer.Option(
        "--rpc", help="Ethereum JSON-RPC URL (default: the devnet's, else :8545).", envvar="VERITRAIN_RPC_URL"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")]
ExportOpt = Annotated[Path | None, typer.Option("--export", help="Write the record read from the chain to FILE.")]
RecordOpt = Annotated[
    Path | None, typer.Option("--record", help="Check a record FILE (from --export) offline instead of the chain.")
]


def _home() -> Path:
    return Path(os.environ.get("VERITRAIN_HOME", ".veritrain"))


def _client(rpc: str | None, deployment: Path | None):
    from protocol.chain import ChainClient
    from protocol.deploy import load_deployment
    from veritrain.devnet import devnet_endpoints

    dep = load_deployment(deployment or _home() / "deployment.json")
    return ChainClient(rpc or devnet_endpoints()[0] or DEFAULT_RPC, dep, None, retries=3, backoff=0.25)


def _fail_read(message: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"ok": None, "error": message}))
    else:
        typer.secho(f"could not audit: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(EXIT_UNREADABLE)


def _print_verdict(verdict: Any, indent: str = "") -> None:
    typer.secho(f"{indent}{verdict.subject}", bold=True)
    for c in verdict.checks:
        mark, colour = ("✓", typer.colors.GREEN) if c.ok else ("✗", typer.colors.RED)
        typer.secho(f"{indent}  {mark} {c.rule:<20} {c.detail}", fg=colour)
    for child in verdict.children:
        _print_verdict(child, indent + "  ")


def _conclude(verdict: Any, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    if as_json:
        typer.echo(json.dumps({**verdict.to_json(), **(extra or {})}, indent=2))
    else:
        _print_verdict(verdict)
        first = verdict.first_violation
        n = len(verdict.checks) + sum(len(v.checks) for v in verdict.children)
        if first is None:
            typer.secho(f"PASS: all {n} checks hold", fg=typer.colors.GREEN, bold=True)
        else:
            others = [r for r in verdict.failed_rules() if r != first.rule]
            more = f" (also violated: {', '.join(others)})" if others else ""
            typer.secho(f"VIOLATION of {first.rule}: {first.detail}{more}", fg=typer.colors.RED, bold=True)
    raise typer.Exit(EXIT_OK if verdict.ok else EXIT_VIOLATION)


def _print_timeline(rec: Any) -> None:
    from protocol.audit.dispute import timeline

    typer.echo(f"dispute {rec.dispute_id} on job {rec.job_id}")
    for row in timeline(rec):
        clock = f"  clock left {row['clock_left']}s" if "clock_left" in row else ""
        typer.echo(
            f"  block {row['block']:>6}  t={row['time']}  {row['call']:<14} {row['from']}  {row['tx'][:18]}…{clock}"
        )


@app.command("dispute")
def dispute(
    dispute_id: Annotated[int, typer.Argument(help="Dispute id (DisputeGame).", min=1)],
    rpc: Rpc = None,
    deployment: DeploymentOpt = None,
    as_json: JsonOpt = False,
    export: ExportOpt = None,
    record: RecordOpt = None,
    replay: Annotated[
        bool, typer.Option("--replay", help="Fetch the opened pre-state and replay the segment with the engine.")
    ] = False,
    api: Annotated[
        str | None,
        typer.Option("--api", help="Marketplace API base URL, a blob mirror for --replay (default: the devnet's)."),
    ] = None,
) -> None:
    """Re-check dispute ID: descent hashes and path, leaf and pre-state proofs, committee, votes, clocks,
    outcome and every transfer.

    Examples:

      veritrain audit dispute 1

      veritrain audit dispute 1 --rpc http://127.0.0.1:8545 --deployment .veritrain/deployment.json --json

      veritrain audit dispute 1 --replay --api http://127.0.0.1:8000

      veritrain audit dispute 1 --export d1.json && veritrain audit dispute 1 --record d1.json
    """
    from protocol.audit import AuditReadError, DisputeRecord, audit_dispute, load_record, read_dispute, save_record
    from protocol.errors import VeritrainError

    client = None  # a record file is audited offline: no chain publication is read then
    try:
        if record is not None:
            rec = load_record(record)
            if not isinstance(rec, DisputeRecord):
                raise AuditReadError(f"{record} is a job record; use `veritrain audit job --record`")
            if rec.dispute_id != dispute_id:
                raise AuditReadError(f"{record} is the record of dispute {rec.dispute_id}, not {dispute_id}")
        else:
            client = _client(rpc, deployment)
            rec = read_dispute(client, dispute_id)
        if export is not None:
            save_record(rec, export)
    except (VeritrainError, OSError) as exc:
        _fail_read(str(exc), as_json)
    verdict = audit_dispute(rec)
    extra: dict[str, Any] = {}
    if not as_json:
        _print_timeline(rec)
        if export is not None:
            typer.echo(f"record written to {export}")
    if replay:
        from protocol.audit.replay import replay_dispute

        try:
            from veritrain.devnet import devnet_endpoints

            result = replay_dispute(rec, api or devnet_endpoints()[1], client=client)
        except (VeritrainError, ValueError) as exc:
            _fail_read(f"replay failed: {exc}", as_json)
        extra["replay"] = result.to_json()
        if not as_json:
            typer.echo(
                f"replay of segment {result.index}: {result.detail} → the {result.truthful} told the truth"
                if result.truthful != "unknown"
                else f"replay of segment {result.index}: {result.detail}"
            )
    _conclude(verdict, as_json, extra)


@app.command("job")
def job(
    job_id: Annotated[str, typer.Argument(help="Job id (0x + 64 hex: the order's EIP-712 digest).")],
    rpc: Rpc = None,
    deployment: DeploymentOpt = None,
    as_json: JsonOpt = False,
    export: ExportOpt = None,
    record: RecordOpt = None,
) -> None:
    """Re-check job ID: signatures, escrow and stake, commit, audit draw, attestations, settlement, and each
    of its disputes (with --record, only the job record's own rules).

    Examples:

      veritrain audit job 0x3f…9a

      veritrain audit job 0x3f…9a --json --export job.json
    """
    from protocol.audit import AuditReadError, JobRecord, audit_dispute, audit_job, load_record, read_dispute, read_job
    from protocol.audit.record import from_hex, save_record
    from protocol.errors import VeritrainError

    try:
        jid = from_hex(job_id)
        if len(jid) != 32:
            raise ValueError
    except ValueError:
        _fail_read(f"job id {job_id!r} is not 0x followed by 64 hex digits", as_json)
    disputes = []
    try:
        if record is not None:
            rec = load_record(record)
            if not isinstance(rec, JobRecord):
                raise AuditReadError(f"{record} is a dispute record; use `veritrain audit dispute --record`")
            if rec.job_id != "0x" + jid.hex():
                raise AuditReadError(f"{record} is the record of job {rec.job_id}, not {job_id}")
        else:
            client = _client(rpc, deployment)
            rec = read_job(client, jid)
            disputes = [read_dispute(client, d) for d in rec.dispute_ids]
        if export is not None:
            save_record(rec, export)
    except (VeritrainError, OSError) as exc:
        _fail_read(str(exc), as_json)
    verdict = audit_job(rec)
    verdict.children = [audit_dispute(d) for d in disputes]
    _conclude(verdict, as_json)
