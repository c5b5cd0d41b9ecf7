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
    """State hashing: state_root (RFC 9162 over 4 KiB chunks, threaded) vs raw hashlib.sha256 on one thread."""
    result = hash_benchmark(size_mib, repeats)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(
        f"{result['bytes'] / 2**20:.0f} MiB: sha256 raw {result['sha256_raw_gbps']} GB/s, "
        f"state_root {result['state_root_gbps']} GB/s, ratio {result['ratio']}"
    )
