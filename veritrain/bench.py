"""``veritrain bench …``: benchmarks that report ratios against a baseline measured in the same run."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Annotated

import typer

app = typer.Typer(help="Benchmarks (each reports a ratio against a baseline measured in the same run).")


def _best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def hash_benchmark(size_mib: int = 256, repeats: int = 5) -> dict[str, float | int]:
    """Time ``state_root`` over a ``size_mib`` MiB training state against plain single-thread ``hashlib.sha256``
    over the same serialised bytes. Returns bytes, both throughputs in GB/s (1e9 bytes/s) and their ratio."""
    import torch

    from protocol.state import TrainingState, serialize, state_root

    n_tensors = max(1, size_mib // 4)
    per = size_mib * (1 << 20) // 4 // n_tensors  # float32 elements per tensor
    gen = torch.Generator().manual_seed(0)
    state = TrainingState({f"layer{i:03d}.weight": torch.randn(per, generator=gen) for i in range(n_tensors)}, step=1)
    buffers = serialize(state)
    total = sum(b.nbytes for b in buffers)

    def raw() -> None:
        h = hashlib.sha256()
        for b in buffers:
            h.update(b)
        h.digest()

    state_root(state)  # warm the thread pool
    raw_s = _best_of(repeats, raw)
    root_s = _best_of(repeats, lambda: state_root(state))
    return {
        "bytes": total,
        "sha256_raw_gbps": round(total / raw_s / 1e9, 3),
        "state_root_gbps": round(total / root_s / 1e9, 3),
        "ratio": round(raw_s / root_s, 3),
    }


@app.command("hash")
def bench_hash(
    size_mib: Annotated[int, typer.Option("--size-mib", min=1, help="State size in MiB.")] = 256,
    repeats: Annotated[int, typer.Option(min=1, help="Best of this many runs, for each side.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """State hashing: state_root (RFC 9162 over 4 KiB chunks, threaded) vs raw hashlib.sha256 on one thread.

    Examples:

      veritrain bench hash --json

      veritrain bench hash --size-mib 64 --repeats 3
    """
    result = hash_benchmark(size_mib, repeats)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"{result['bytes'] / 2**20:.0f} MiB: sha256 raw {result['sha256_raw_gbps']} GB/s, "
        f"state_root {result['state_root_gbps']} GB/s, ratio {result['ratio']}"
    )


@app.command("repro")
def bench_repro(
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Model to bench (repeatable): an example or lm_large; default: all examples, plus lm_large on cuda.",
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Optimizer steps per timed round.")] = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Timed rounds per mode; the best counts.")] = 7,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Threads (default: torch's).")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu, or cuda[:N] (exact mode: the Triton kernels).")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Training steps of each example model, exact mode vs native torch in the same run: per-step times, ratio.

    Examples:

      veritrain bench repro --json

      veritrain bench repro --device cuda --json          # the three examples and lm_large on the GPU

      veritrain bench repro --model tiny_lm --steps 5 --rounds 3
    """  # fmt: skip
    from protocol.engine.benchmark import LARGER, repro_benchmark
    from protocol.engine.examples import EXAMPLES
    from protocol.engine.runner import DeviceUnavailable

    for m in models or []:
        if m not in EXAMPLES and m not in LARGER:
            typer.echo(f"error: unknown example {m!r}; choose from {', '.join([*EXAMPLES, *LARGER])}", err=True)
            raise typer.Exit(2)
    try:
        result = repro_benchmark(models or None, steps, rounds, threads, device)
    except DeviceUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result))
        return
    for name, r in result.items():
        if name == "settings":
            continue
        typer.echo(
            f"{name:12s} native {r['native_step_s'] * 1e3:8.2f} ms/step   exact {r['exact_step_s'] * 1e3:8.2f} ms/step"
            f"   ratio {r['ratio']:.2f}"
        )
    typer.echo(f"settings: {json.dumps(result['settings'])}")


def _self_cpu_s() -> float:
    import os

    t = os.times()
    return t.user + t.system


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live threads and reaped children, from /proc
    (Linux); -inf elsewhere, which makes the reported figure None."""
    import os

    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    try:
        pids = [pid] + _children(pid)
        for p in pids:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, IndexError):
        return float("-inf")
    return total


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out += [k, *_children(k)]
    return out


def api_benchmark(orders: int = 2000, concurrency: int = 8, database_url: str | None = None,
                  bids_per_order: int = 0) -> dict[str, float | int | str]:  # fmt: skip
    """Starts ``veritrain api`` (uvicorn, one worker) in a separate process on a loopback port with a fresh
    database (SQLite WAL unless ``database_url``) and a stand-in deployment (chain 31337, default parameters;
    no node needed: posting orders touches no chain), pre-signs ``orders`` JobOrders over one uploaded spec and
    dataset, then POSTs them from ``concurrency`` threads with keep-alive connections. Reports orders/s
    (accepted, 201) and the latency percentiles of one POST in milliseconds."""
    import os
    import socket
    import subprocess
    import sys
    import tempfile
    import threading
    from pathlib import Path

    import httpx
    from eth_account import Account

    from protocol.deploy import load_params
    from protocol.eip712 import Bid, Domain, JobOrder
    from protocol.repro.version import KERNEL_SET_VERSION
    from protocol.spec import parse_spec

    tmp = Path(tempfile.mkdtemp(prefix="veritrain-bench-api-"))
    market = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
    (tmp / "deployment.json").write_text(json.dumps({
        "version": 1, "chainId": 31337, "startBlock": 1, "deployer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "addresses": {"token": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                      "stakeManager": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", "jobMarket": market,
                      "statePublisher": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
                      "disputeGame": "0xDc64a140Aa3E981100a9becA4E685f962f0cF6C9"},
        "params": load_params()}))  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VERITRAIN_DATA_DIR": str(tmp / "data"), "VERITRAIN_DEPLOYMENT": str(tmp / "deployment.json"),
           "VERITRAIN_INDEXER": "false", "VERITRAIN_PORT": str(port), "VERITRAIN_HOST": "127.0.0.1"}  # fmt: skip
    if database_url:
        env["VERITRAIN_DATABASE_URL"] = database_url
    server = subprocess.Popen([sys.executable, "-m", "veritrain.cli", "api", "--log-level", "warning"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {server.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        dataset = httpx.post(base + "/blobs", content=b"bench dataset").json()["address"]
        doc = {
            "model": {"kind": "mlp", "input_dim": 4, "hidden": [8], "num_classes": 2},
            "dataset": {"format": "npz", "digest": dataset},
            "optimizer": {"kind": "sgd", "lr": 0.1},
            "batch_size": 8,
            "total_steps": 64,
            "checkpoint_interval": 4,
            "seed": 1,
            "mode": {"kind": "exact", "kernel_set": KERNEL_SET_VERSION},
            "init_state_root": "0x" + "33" * 32,
        }
        spec_hash = httpx.post(base + "/blobs", content=parse_spec(doc).canonical_json()).json()["address"]
        domain = Domain(31337, market)
        submitter, solver = Account.from_key(b"\x01" * 32), Account.from_key(b"\x02" * 32)
        now = int(time.time())
        bodies = []
        for i in range(orders):
            o = JobOrder(submitter.address, bytes.fromhex(spec_hash[2:]), bytes.fromhex(dataset[2:]), b"\x33" * 32,
                         64, 4, 100 * 10**18, now + 86_400, i + 1)  # fmt: skip
            bodies.append(("/jobs", {"order": o.as_json(), "signature": "0x" + o.sign(domain, submitter).hex()}))
            for k in range(bids_per_order):
                price = 10**20
                b = Bid(solver.address, o.digest(domain), price, 2 * price, now + 3_600, (i + 1) * 1000 + k, 3_600)
                bodies.append((f"/jobs/0x{o.digest(domain).hex()}/bids", {
                    "bid": b.as_json(), "signature": "0x" + b.sign(domain, solver).hex()}))  # fmt: skip
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        chunks = [bodies[i::concurrency] for i in range(concurrency)] if bids_per_order == 0 else [bodies]

        def worker(items: list) -> None:
            with httpx.Client(base_url=base, timeout=30) as client:
                mine, bad = [], []
                for path, body in items:
                    t0 = time.perf_counter()
                    r = client.post(path, json=body)
                    mine.append(time.perf_counter() - t0)
                    if r.status_code != 201:
                        bad.append(f"{r.status_code} {r.text[:200]}")
                with lock:
                    latencies.extend(mine)
                    failures.extend(bad)

        threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
        server_cpu0, client_cpu0 = _proc_cpu_s(server.pid), _self_cpu_s()
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        server_cpu, client_cpu = _proc_cpu_s(server.pid) - server_cpu0, _self_cpu_s() - client_cpu0
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "orders_per_s": round(orders / elapsed, 1) if bids_per_order == 0 else round(len(bodies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "requests": len(bodies),
        "concurrency": concurrency if bids_per_order == 0 else 1,
        "elapsed_s": round(elapsed, 3),
        # CPU seconds spent during the timed phase by the server (and its workers) and by this client: both
        # share the machine's cores, so a client near a full core is a bound on the figure, not the server.
        "server_cpu_s": round(server_cpu, 2) if server_cpu >= 0 else None,
        "client_cpu_s": round(client_cpu, 2),
        "database": "postgresql" if database_url and database_url.startswith("postgresql") else "sqlite",
    }


@app.command("api")
def bench_api(
    orders: Annotated[int, typer.Option(min=1, help="Signed orders to post.")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Client threads (keep-alive connections).")] = 8,
    database_url: Annotated[str | None, typer.Option(help="Database of the API under test (default: SQLite).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Marketplace API: signed JobOrders POSTed on loopback to `veritrain api` running in another process.

    Examples:

      veritrain bench api --json

      veritrain bench api --orders 500 --concurrency 4 --database-url postgresql+psycopg://me@localhost/bench
    """
    result = api_benchmark(orders, concurrency, database_url)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"{result['orders_per_s']} orders/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
        f"({result['requests']} requests, {result['concurrency']} connections, {result['database']})"
    )


@app.command("audit")
def bench_audit(
    audit_rate: Annotated[
        float, typer.Option("--audit-rate", min=0.0001, max=1.0, help="Share of segments sampled.")
    ] = 0.1,
    cheat_fraction: Annotated[
        float, typer.Option("--cheat-fraction", min=0.0, max=1.0, help="Chance that each segment is cheated.")
    ] = 0.1,
    jobs: Annotated[int, typer.Option("--jobs", min=1, help="Cheating jobs trained (each its own cheat set).")] = 4,
    audits: Annotated[int, typer.Option("--audits", min=1, help="Audits (fresh audit seeds) per job.")] = 50,
    segments: Annotated[int, typer.Option("--segments", min=1, help="Segments (leaves) per job.")] = 20,
    interval: Annotated[int, typer.Option("--interval", min=1, help="Optimizer steps per segment.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Sampled-replay audits of real cheating jobs: detection vs 1 − (1 − f)^m, verifier vs solver compute.

    Examples:

      veritrain bench audit --json --jobs 8 --audits 50

      veritrain bench audit --audit-rate 0.25 --cheat-fraction 0.05 --segments 40
    """
    from verifier.bench import audit_benchmark

    result = audit_benchmark(audit_rate, cheat_fraction, jobs, audits, segments, interval)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"audit rate {result['audit_rate']} (m={result['sampled_per_audit']} of N={result['segments']}), cheat "
        f"fraction {result['cheat_fraction']}: detected {result['detected']} vs expected {result['expected']} "
        f"(± {result['detected_stderr']}); verifier/solver compute {result['verifier_over_solver_compute']}"
    )


@app.command("checkpoint")
def bench_checkpoint(
    example: Annotated[str, typer.Option(help="Example spec (mlp_digits, cnn_digits, tiny_lm).")] = "mlp_digits",
    interval: Annotated[
        int | None, typer.Option(min=1, help="Checkpoint interval (default: the example's own).")
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads for torch and the exact kernels.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Checkpoint overhead of the solver: (export + serialise + state_root + blob write + leaf append) /
    training time, over one run of the example through the solver's training path."""
    from protocol.engine.examples import EXAMPLES
    from solver.bench import checkpoint_benchmark

    if example not in EXAMPLES:
        typer.echo(f"error: unknown example {example!r}; examples: {', '.join(EXAMPLES)}", err=True)
        raise typer.Exit(2)
    result = checkpoint_benchmark(example, threads=threads, interval=interval)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"{example}: {result['checkpoints']} checkpoints of {result['state_bytes']} bytes; training "
        f"{result['train_s']:.3f}s, checkpointing {result['checkpoint_s']:.3f}s → overhead "
        f"{100 * result['overhead']:.2f}%"
    )


@app.command("exact-game")
def bench_exact_game(
    example: Annotated[str, typer.Option(help="Example spec (mlp_digits, cnn_digits, tiny_lm).")] = "tiny_lm",
    where: Annotated[
        str, typer.Option(help="The record the liar lies about: the step's last (late) or middle float32 mul.")
    ] = "late",
    lie_in: Annotated[
        str,
        typer.Option("--lie", help="element: one element of one record; input: one element of a pre-state parameter."),
    ] = "element",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The game below one step at the example's own size on a fresh anvil: a one-ulp liar against the honest
    challenger, both recomputing what one record needs; rounds, gas by phase and the largest transaction.

    Examples:

      veritrain bench exact-game --example tiny_lm --json

      veritrain bench exact-game --example mlp_digits --where middle

      veritrain bench exact-game --example tiny_lm --lie input
    """
    from protocol.engine.examples import EXAMPLES
    from protocol.exact_step_bench import exact_game_benchmark

    if example not in EXAMPLES:
        typer.echo(f"error: unknown example {example!r}; examples: {', '.join(EXAMPLES)}", err=True)
        raise typer.Exit(2)
    if where not in ("late", "middle"):
        typer.echo(f"error: --where is late or middle, not {where!r}", err=True)
        raise typer.Exit(2)
    if lie_in not in ("element", "input"):
        typer.echo(f"error: --lie is element or input, not {lie_in!r}", err=True)
        raise typer.Exit(2)
    result = exact_game_benchmark(example, where, lie_in)
    if as_json:
        typer.echo(json.dumps(result))
        return
    rounds = result["rounds"]
    typer.echo(
        f"{example}: {result['records']} records; the liar ({result['lie']} lie, {result['lied_op']} record "
        f"{result['lied_record']}{', input ' + result['lied_input'] if result['lied_input'] else ''}) "
        f"{'loses' if result['winner'] == 'challenger' else 'WINS'} ({result['reason']}) after "
        f"{rounds['record']}+{rounds['leaf']}+{rounds['fold']} rounds; gas {result['gas_total']:,} "
        f"({', '.join(f'{k} {v:,}' for k, v in result['gas_by_phase'].items())}), largest transaction "
        f"{result['max_tx_gas']:,}; trace {result['trace_s']}s, recompute {result['recompute_s']}s"
    )
