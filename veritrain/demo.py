"""``veritrain demo``: a whole market on a local chain, and :class:`MarketRun`, the same as a library.

A :class:`MarketRun` starts (under one :class:`~veritrain.procs.Supervisor`, so nothing outlives it) anvil with
the devnet deployment, the marketplace API with its indexer, solver nodes (one honest, others with a test-only
``--adversary``) and verifier nodes, each a real ``veritrain solver`` / ``veritrain verifier`` process with its
own key, data folder and log. :meth:`MarketRun.run_jobs` submits jobs from the ``user`` dev account through the
REST API, accepts a chosen solver's bid on each (round robin, so every solver gets work), follows them to their
outcome and returns a :class:`Report`: who was paid, who was slashed, each dispute's rounds, gas and time, and
the verifiers' replay time over the solvers' training time (from the nodes' ``/metrics``).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from eth_utils import to_checksum_address

from protocol.audit.record import FEE_TAG, dispute_key
from protocol.constants import FINAL_JOB_STATES, WEI_PER_TOKEN, JobState, Outcome, api_name
from protocol.errors import VeritrainError
from protocol.tokens import format_tokens
from veritrain.devnet import Devnet, start_devnet, veritrain_home
from veritrain.market import (
    Submitted,
    User,
    accept_bid,
    chain_job,
    connect,
    load_spec_source,
    prepare_spec,
    submit_job,
    wait_for_bid,
)
from veritrain.procs import Proc, ProcessError, Supervisor

#: The demo's cast: solver role → adversary (None = honest). ``fake`` commits made-up states, ``lazy`` skips
#: training; both are wrong on every segment, so an audit catches them whichever segments are sampled.
DEFAULT_SOLVERS: dict[str, str | None] = {"solver0": None, "solver1": "fake", "solver2": "lazy"}
#: ``--adversary-param``s per adversary in the demo: its cheaters lie in every segment, so the sampled audit
#: catches them whichever segments the seed picks (a cheater that lies in a fraction f of N segments is
#: caught with probability 1 − (1 − f)^m; ``veritrain bench audit`` measures that side).
DEMO_ADVERSARY_PARAMS: dict[str, tuple[str, ...]] = {"fake": ("after_step=0",)}
DEFAULT_VERIFIERS = 5  # 2 drawn per job + a committee of 3 that excludes solver, challenger and submitter
DEFAULT_JOBS = 4
DEFAULT_STEPS, DEFAULT_INTERVAL = 80, 10


class DemoError(VeritrainError, RuntimeError):
    """The market run failed (a node died, a job did not end in time, ...)."""


@dataclass
class JobRun:
    job_id: str
    solver_role: str
    solver: str
    adversary: str | None
    state: JobState = JobState.MATCHED
    submitted_at: float = field(default_factory=time.monotonic)
    ended_at: float | None = None


@dataclass
class Report:
    jobs: list[dict[str, Any]]
    disputes: list[dict[str, Any]]
    verifier_over_solver_compute: float | None  # honest jobs: audit replay of them / their training
    slashed_accounts: dict[str, int]
    seconds: float
    compute: dict[str, float] = field(default_factory=dict)
    verifier_over_solver_compute_all: float | None = None  # all replay (audits, arbitration) / all training
    verifier_over_solver_wall: float | None = None  # the honest ratio in wall-clock seconds (load-dependent)
    #: availability fees challengers paid solvers that published what they were asked for: a price paid for
    #: data, not a slash (the solver answered), so not in ``slashed_accounts``
    fees_paid: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "disputes": self.disputes,
            "verifier_over_solver_compute": self.verifier_over_solver_compute,
            "verifier_over_solver_compute_all": self.verifier_over_solver_compute_all,
            "verifier_over_solver_wall": self.verifier_over_solver_wall,
            "slashed_accounts": self.slashed_accounts,
            "availability_fees_paid": self.fees_paid,
            "compute_seconds": self.compute,
            "seconds": round(self.seconds, 1),
        }

    def problems(self) -> list[str]:
        """What contradicts the protocol's promise: an honest job not finalized and paid, a cheater not slashed,
        an honest party slashed."""
        out = []
        cheaters = {j["solver"] for j in self.jobs if j["adversary"]}
        for j in self.jobs:
            if j["adversary"] is None and (j["outcome"] != "finalized" or not j["paid"]):
                out.append(f"honest job {j['id']} ended {j['outcome']} (paid {j['paid']})")
            if j["adversary"] is not None and (j["outcome"] != "slashed" or not j["slashed"]):
                out.append(f"cheating job {j['id']} ({j['adversary']}) ended {j['outcome']}")
        for who in self.slashed_accounts:
            if who not in cheaters:
                out.append(f"honest party {who} was slashed")
        return out


def _metric_sum(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0].strip() == name:
            try:
                total += float(value)
            except ValueError:
                continue
    return total


class MarketRun:
    """``with MarketRun(home) as run: report = run.run_jobs(4)``: a market on a private devnet until exit."""

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        solvers: dict[str, str | None] | None = None,
        verifiers: int = DEFAULT_VERIFIERS,
        steps: int = DEFAULT_STEPS,
        interval: int = DEFAULT_INTERVAL,
        example: str = "mlp_digits",
        price: int = 20 * WEI_PER_TOKEN,
        stake: str = "1000",
        on_event: Callable[[str], None] | None = None,
        node_timeout: float = 120.0,
        solver_device: str = "cpu",
        weights: str | os.PathLike[str] | None = None,
        adversary_params: dict[str, tuple[str, ...]] | None = None,
        params: str | os.PathLike[str] | None = None,
    ) -> None:
        self.home = Path(home) if home else veritrain_home() / "demo"
        self.solvers = dict(DEFAULT_SOLVERS if solvers is None else solvers)
        self.verifier_roles = [f"verifier{i}" for i in range(verifiers)]
        self.steps, self.interval, self.example = steps, interval, example
        self.price, self.stake = price, stake
        self.on_event = on_event or (lambda msg: None)
        self.node_timeout = node_timeout
        self.solver_device = solver_device  # the solvers' --device; verifiers always replay on the CPU
        self.weights = weights  # initial weights for a fine-tuning spec (`example` may be a spec file)
        self.params = params  # deployment parameters (default contracts/params/devnet.json)
        self.adversary_params = DEMO_ADVERSARY_PARAMS if adversary_params is None else adversary_params
        self.supervisor: Supervisor | None = None
        self.devnet: Devnet | None = None
        self.user: User | None = None
        self.nodes: dict[str, Proc] = {}
        self.jobs: list[JobRun] = []
        self.started = time.monotonic()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> MarketRun:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.user is not None:
            self.user.close()
            self.user = None
        if self.supervisor is not None:
            self.supervisor.__exit__(None, None, None)
            self.supervisor = None

    @property
    def pid_file(self) -> Path:
        return self.home / "pids.txt"

    def start(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        self.supervisor = sup = Supervisor(self.home / "logs", grace=5.0, pid_file=self.pid_file)
        self.on_event("starting anvil, deploying the contracts, starting the API")
        self.devnet = dev = start_devnet(self.home, port=0, api_port=0, supervisor=sup, params=self.params)
        keys = self.home / "keys"
        keys.mkdir(mode=0o700)
        env = {"VERITRAIN_HOME": str(self.home), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        procs = []
        for role, adversary in self.solvers.items():
            procs.append(self._start_node("solver", role, adversary, keys, env))
        for role in self.verifier_roles:
            procs.append(self._start_node("verifier", role, None, keys, env))
        self.on_event(f"waiting for {len(procs)} nodes to stake and come up")
        for proc in procs:
            sup.wait_ready(proc, timeout=self.node_timeout)
        self.user = connect(role="user", home=self.home)
        self.on_event("market is up: " + ", ".join(self.nodes))
        assert dev.api_url

    def _start_node(self, kind: str, role: str, adversary: str | None, keys: Path, env: dict[str, str]) -> Proc:
        assert self.supervisor is not None and self.devnet is not None
        dev = self.devnet
        key_file = keys / f"{role}.key"
        key_file.write_text(dev.accounts[role]["key"] + "\n")
        key_file.chmod(0o600)
        data_dir = self.home / role
        argv = [
            sys.executable, "-m", "veritrain.cli", kind,
            "--key-file", str(key_file),
            "--rpc", dev.rpc_url,
            "--deployment", str(dev.deployment_path),
            "--api", str(dev.api_url),
            "--data-dir", str(data_dir),
            "--stake", self.stake,
            "--log-level", "info",
        ]  # fmt: skip
        if kind == "solver":
            argv += ["--price-floor", format_tokens(self.price), "--threads", "1", "--device", self.solver_device]
        if adversary:
            argv += ["--adversary", adversary]
            for param in self.adversary_params.get(adversary, ()):
                argv += ["--adversary-param", param]
        proc = self.supervisor.start(role, argv, env=env, ready_file=data_dir / "node.json", wait=False)
        self.nodes[role] = proc
        return proc

    # ------------------------------------------------------------------ jobs

    def submit(self, solver_role: str, seed: int) -> JobRun:
        """Posts one job through the API and accepts ``solver_role``'s bid on it."""
        assert self.user is not None and self.devnet is not None
        spec, data, weights = prepare_spec(
            load_spec_source(self.example),
            total_steps=self.steps,
            checkpoint_interval=self.interval,
            seed=seed,
            weights=self.weights,
        )
        sub: Submitted = submit_job(self.user, spec, data, max_price=self.price, deadline_s=900, weights=weights)
        solver = self.devnet.address(solver_role)
        bid = wait_for_bid(
            self.user,
            sub.job_id,
            solver=solver,
            timeout=self.node_timeout,
            poll=0.25,
            on_poll=lambda _: self._check_nodes(),  # a node that died says so now, with its log
        )
        accept_bid(self.user, sub.job_id, bid["bid_hash"])
        run = JobRun(sub.job_id, solver_role, solver, self.solvers.get(solver_role))
        self.jobs.append(run)
        self.on_event(f"job {sub.job_id[:10]}… → {solver_role} ({run.adversary or 'honest'})")
        return run

    def run_jobs(
        self,
        n: int,
        *,
        timeout: float = 600.0,
        on_progress: Callable[[list[JobRun]], None] | None = None,
    ) -> Report:
        """Submits ``n`` jobs (round robin over the solvers), waits for every one to end, returns the report."""
        roles = list(self.solvers)
        for i in range(n):
            self.submit(roles[i % len(roles)], seed=i + 1)
            self._check_nodes()
        self.wait_all(timeout=timeout, on_progress=on_progress)
        return self.report()

    def _check_nodes(self) -> None:
        assert self.supervisor is not None
        try:
            self.supervisor.check()
        except ProcessError as exc:
            raise DemoError(str(exc)) from None

    def wait_all(self, *, timeout: float = 600.0, on_progress: Callable[[list[JobRun]], None] | None = None) -> None:
        """Follows every job until it is finalized, slashed or expired; finalizes jobs whose window passed
        (anyone may; the solver usually does it first)."""
        assert self.user is not None
        deadline = time.monotonic() + timeout
        market = self.user.chain.job_market
        while True:
            self._check_nodes()
            now = int(self.user.chain.w3.eth.get_block("latest")["timestamp"])
            for run in self.jobs:
                if run.state in FINAL_JOB_STATES:
                    continue
                job = chain_job(self.user, run.job_id)
                state = JobState(job.state)
                if state != run.state:
                    run.state = state
                    self.on_event(f"job {run.job_id[:10]}… ({run.solver_role}) is {state.name.lower()}")
                    if state in FINAL_JOB_STATES:
                        run.ended_at = time.monotonic()
                if state == JobState.COMMITTED and job.auditEnd and now >= job.auditEnd + 2:
                    try:
                        self.user.chain.transact(market.functions.finalize(bytes.fromhex(run.job_id[2:])))
                    except VeritrainError:
                        pass  # the solver finalized first, or a dispute opened
            if on_progress is not None:
                on_progress(self.jobs)
            if all(r.state in FINAL_JOB_STATES for r in self.jobs):
                return
            if time.monotonic() > deadline:
                pending = ", ".join(f"{r.job_id[:10]}… {r.state.name.lower()}" for r in self.jobs)
                raise DemoError(f"jobs did not end within {timeout:.0f}s ({pending}); logs in {self.home / 'logs'}")
            time.sleep(1.0)

    # ------------------------------------------------------------------ report

    def role_of(self, address: str) -> str:
        assert self.devnet is not None
        return self.devnet.role_of(address) or address

    def report(self) -> Report:
        assert self.user is not None and self.devnet is not None
        chain = self.user.chain
        w3 = chain.w3
        start = self.devnet.deployment.start_block
        market, game, stakes = chain.job_market, chain.dispute_game, chain.stake_manager
        finalized = {
            "0x" + bytes(e["args"]["jobId"]).hex(): e["args"]
            for e in market.events.JobFinalized().get_logs(from_block=start)
        }
        slashed_jobs = {
            "0x" + bytes(e["args"]["jobId"]).hex(): e["args"]
            for e in market.events.JobSlashed().get_logs(from_block=start)
        }
        jobs = []
        for r in self.jobs:
            jobs.append(
                {
                    "id": r.job_id,
                    "solver": r.solver,
                    "solver_role": r.solver_role,
                    "adversary": r.adversary,
                    "outcome": r.state.name.lower(),
                    "paid": int(finalized[r.job_id]["solverPaid"]) if r.job_id in finalized else 0,
                    "slashed": int(slashed_jobs[r.job_id]["slashed"]) if r.job_id in slashed_jobs else 0,
                }
            )
        disputes = []
        block_time: dict[int, int] = {}

        def ts(block: int) -> int:
            if block not in block_time:
                block_time[block] = int(w3.eth.get_block(block)["timestamp"])
            return block_time[block]

        game_logs = w3.eth.get_logs({"address": game.address, "fromBlock": start, "toBlock": "latest"})
        for opened in game.events.DisputeOpened().get_logs(from_block=start):
            did = int(opened["args"]["disputeId"])
            topic = did.to_bytes(32, "big")
            txs = {
                bytes(lg["transactionHash"])
                for lg in game_logs
                if len(lg["topics"]) > 1 and bytes(lg["topics"][1]) == topic
            }
            gas = sum(int(w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in txs)
            rounds = len(game.events.SideChosen().get_logs(from_block=start, argument_filters={"disputeId": did}))
            resolved = game.events.DisputeResolved().get_logs(from_block=start, argument_filters={"disputeId": did})
            entry: dict[str, Any] = {
                "id": did,
                "job": "0x" + bytes(opened["args"]["jobId"]).hex(),
                "challenger": self.role_of(opened["args"]["challenger"]),
                "rounds": rounds,
                # an availability challenge (publish a named leaf) has no descent
                "availability": bool(game.functions.getDispute(did).call().availability),
                "gas": gas,
                "transactions": len(txs),
            }
            if resolved:
                ev = resolved[0]
                entry["seconds"] = ts(int(ev["blockNumber"])) - ts(int(opened["blockNumber"]))
                # a superseded dispute (never played) names nobody: address(0) for both
                entry["winner"] = self.role_of(ev["args"]["winner"]) if int(ev["args"]["winner"], 16) else None
                entry["loser"] = self.role_of(ev["args"]["loser"]) if int(ev["args"]["loser"], 16) else None
                entry["slashed"] = int(ev["args"]["slashed"])
                entry["outcome"] = api_name(Outcome(int(ev["args"]["outcome"])))
            else:
                entry.update(seconds=None, winner=None, outcome=None)
            disputes.append(entry)
        fee_keys = {
            dispute_key(FEE_TAG, int(e["args"]["disputeId"]))
            for e in game.events.AvailabilityRequested().get_logs(from_block=start)
        }
        slashed_accounts: dict[str, int] = {}
        fees_paid: dict[str, int] = {}
        for e in stakes.events.StakeSlashed().get_logs(from_block=start):
            who = to_checksum_address(e["args"]["account"])
            into = fees_paid if bytes(e["args"]["key"]) in fee_keys else slashed_accounts
            into[who] = into.get(who, 0) + int(e["args"]["amount"])
        compute = self.compute_seconds()

        def ratio_of(num: str, den: str) -> float | None:
            return round(compute[num] / compute[den], 4) if compute.get(den) else None

        return Report(
            jobs=jobs,
            disputes=disputes,
            verifier_over_solver_compute=ratio_of("verifier_audit_honest_cpu", "solver_train_honest_cpu"),
            verifier_over_solver_compute_all=ratio_of("verifier_replay_cpu", "solver_train_cpu"),
            verifier_over_solver_wall=ratio_of("verifier_audit_honest", "solver_train_honest"),
            slashed_accounts=slashed_accounts,
            fees_paid=fees_paid,
            seconds=time.monotonic() - self.started,
            compute=compute,
        )

    def compute_seconds(self) -> dict[str, float]:
        """Training and replay seconds from the nodes: ``solver_train`` / ``verifier_replay`` sum
        ``veritrain_solver_train_seconds_total`` / ``veritrain_verifier_replay_seconds_total`` (audits and
        arbitration, one-time warm-up excluded) over every node's ``/metrics``; ``solver_train_honest`` is the
        honest solvers' training and ``verifier_audit_honest`` the verifiers' audit replay of honest jobs (each
        verifier's ``/audits``). Cheaters skip training (``fake``, ``lazy``) and cost arbitration replays, so
        the honest pair is the protocol's real overhead. The ``*_cpu`` twins are the same work in CPU seconds
        (:func:`protocol.engine.runner.compute_clock`): the compute ratio, which does not change with what else
        the machine runs meanwhile (a demo runs eleven processes on the same cores; wall-clock replay time
        counts the neighbours)."""
        keys = ("solver_train", "verifier_replay", "solver_train_honest", "verifier_audit_honest")
        out = {k: 0.0 for k in keys} | {f"{k}_cpu": 0.0 for k in keys}
        honest_jobs = {r.job_id for r in self.jobs if r.adversary is None}
        for role, proc in self.nodes.items():
            url = proc.info.get("metrics_url")
            if not url:
                continue
            try:
                text = httpx.get(url, timeout=5.0).text
                if role in self.solvers:
                    for suffix, name in (("", "train"), ("_cpu", "train_cpu")):
                        train = _metric_sum(text, f"veritrain_solver_{name}_seconds_total")
                        out["solver_train" + suffix] += train
                        if self.solvers[role] is None:
                            out["solver_train_honest" + suffix] += train
                    continue
                out["verifier_replay"] += _metric_sum(text, "veritrain_verifier_replay_seconds_total")
                out["verifier_replay_cpu"] += _metric_sum(text, "veritrain_verifier_replay_cpu_seconds_total")
                audits = httpx.get(proc.info["url"] + "/audits", timeout=5.0).json()["audits"]
            except (httpx.HTTPError, ValueError, KeyError):
                continue
            mine = [a for a in audits if a["job_id"] in honest_jobs]
            out["verifier_audit_honest"] += sum(a["replay_seconds"] for a in mine)
            out["verifier_audit_honest_cpu"] += sum(a.get("replay_cpu_seconds", 0.0) for a in mine)
        return {k: round(v, 3) for k, v in out.items()}


__all__ = ["MarketRun", "Report", "JobRun", "DemoError", "DEFAULT_SOLVERS"]


# ---------------------------------------------------------------------------------------------- the command


def demo(
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=20, help="Jobs to run (round robin over the solvers).")] = (
        DEFAULT_JOBS
    ),
    steps: Annotated[int, typer.Option("--steps", min=2, help="Optimizer steps per job (MLP on digits).")] = (
        DEFAULT_STEPS
    ),
    interval: Annotated[int, typer.Option("--interval", min=1, help="Steps per checkpoint.")] = DEFAULT_INTERVAL,
    verifiers: Annotated[int, typer.Option("--verifiers", min=4, max=10, help="Verifier nodes.")] = DEFAULT_VERIFIERS,
    home: Annotated[Path | None, typer.Option("--home", help="State folder (default $VERITRAIN_HOME/demo).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds the jobs may take once submitted.")] = 600.0,
    solver_device: Annotated[
        str, typer.Option("--solver-device", help="Device the solvers train on (cpu, cuda); verifiers use the CPU.")
    ] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON report on stdout.")] = False,
) -> None:
    """Run a whole market on a private local chain and show who was paid and who was slashed.

    Starts anvil with the protocol deployed, the marketplace API, one honest solver and two cheating solvers
    (`fake`: made-up checkpoints; `lazy`: skips training), and verifier nodes; submits jobs from a user account
    through the REST API, accepts a bid from each solver in turn, runs every job to its outcome and prints
    each job's outcome, each dispute's rounds, gas and time, and the verifier/solver compute ratio. Every
    process it started is stopped at the end, also on Ctrl-C. Exits 1 if an honest job was not paid, a
    cheater was not slashed or an honest party was slashed.

    Examples:

      veritrain demo

      veritrain demo --jobs 3 --steps 40 --json

      veritrain demo --jobs 1 --solver-device cuda --json   # a GPU solver audited by CPU verifiers
    """
    import json as _json

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from veritrain.procs import Terminated, handle_signals

    err = Console(stderr=True)
    if jobs < 3:
        err.print("[yellow]note:[/] with fewer than 3 jobs not every solver gets work", highlight=False)
    if steps % interval:
        err.print(f"[bold red]error:[/] --steps {steps} must be a multiple of --interval {interval}")
        raise typer.Exit(2)
    from veritrain.options import device_error

    if (why := device_error(solver_device)) is not None:
        err.print(f"[bold red]error:[/] --solver-{why[2:]}", highlight=False)
        raise typer.Exit(2)

    def event(msg: str) -> None:
        if as_json:
            print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
        else:
            err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}", highlight=False)

    def board(runs: list[JobRun]) -> Table:
        t = Table(title="jobs", expand=False)
        for col in ("job", "solver", "behaviour", "state", "seconds"):
            t.add_column(col)
        for r in runs:
            secs = (r.ended_at or time.monotonic()) - r.submitted_at
            t.add_row(r.job_id[:12] + "…", r.solver_role, r.adversary or "honest", r.state.name.lower(), f"{secs:.0f}")
        return t

    try:
        with (
            handle_signals(),
            MarketRun(
                home, verifiers=verifiers, steps=steps, interval=interval, on_event=event, solver_device=solver_device
            ) as run,
        ):
            if as_json:
                report = run.run_jobs(jobs, timeout=timeout)
            else:
                with Live(board([]), console=err, refresh_per_second=2, transient=False) as live:
                    report = run.run_jobs(jobs, timeout=timeout, on_progress=lambda rs: live.update(board(rs)))
    except (KeyboardInterrupt, Terminated) as exc:
        err.print(f"[bold red]interrupted[/] ({exc.__class__.__name__}); every process was stopped")
        raise typer.Exit(130) from None
    except VeritrainError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    problems = report.problems()
    if as_json:
        typer.echo(_json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report, run, Console())
    if problems:
        err.print("[bold red]the market did not behave as the protocol promises:[/]\n  " + "\n  ".join(problems))
        raise typer.Exit(1)


def _table(title: str, columns: tuple[str, ...]) -> Any:
    """A compact table that fits 80 columns: title on its own line, left-aligned, no outer border, no wrapping."""
    from rich import box
    from rich.table import Table

    t = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        padding=(0, 1),
    )
    for col in columns:
        t.add_column(col, no_wrap=True)
    return t


def _print_report(report: Report, run: MarketRun, console: Any) -> None:
    t = _table("who was paid, who was slashed", ("job", "solver", "behaviour", "outcome", "paid VERI", "slashed VERI"))
    for j in report.jobs:
        t.add_row(
            j["id"][:10] + "…",
            j["solver_role"],
            j["adversary"] or "honest",
            j["outcome"],
            format_tokens(j["paid"]),
            format_tokens(j["slashed"]),
        )
    console.print(t)
    console.print()
    d = _table("disputes", ("id", "job", "challenger", "rounds", "gas", "seconds", "winner", "loser"))
    for x in report.disputes:
        d.add_row(
            str(x["id"]),
            x["job"][:10] + "…",
            str(x["challenger"]),
            str(x["rounds"]),
            f"{x['gas']:,}",
            str(x.get("seconds")),
            str(x.get("winner")),
            str(x.get("loser")),
        )
    console.print(d)
    console.print()
    slashed = (
        ", ".join(f"{run.role_of(a)} {format_tokens(v)} VERI" for a, v in report.slashed_accounts.items()) or "nobody"
    )
    console.print(f"slashed stake: {slashed}")
    if report.fees_paid:
        fees = ", ".join(f"{run.role_of(a)} {format_tokens(v)} VERI" for a, v in report.fees_paid.items())
        console.print(f"availability fees paid (for data the solver then published): {fees}")
    c = report.compute
    ratio, ratio_all = report.verifier_over_solver_compute, report.verifier_over_solver_compute_all
    console.print(
        f"verifier/solver compute on honest jobs: {ratio if ratio is not None else 'n/a'} (audits replayed "
        f"{c.get('verifier_audit_honest_cpu', 0):.2f} CPU-s of the honest solvers' "
        f"{c.get('solver_train_honest_cpu', 0):.2f} CPU-s of training; wall clock "
        f"{report.verifier_over_solver_wall if report.verifier_over_solver_wall is not None else 'n/a'}); over "
        f"everything: {ratio_all if ratio_all is not None else 'n/a'} (all replay, arbitration included, "
        f"{c.get('verifier_replay_cpu', 0):.2f} of {c.get('solver_train_cpu', 0):.2f} CPU-s)"
    )
    console.print(f"whole run: {report.seconds:.0f}s; logs in {run.home / 'logs'}")
