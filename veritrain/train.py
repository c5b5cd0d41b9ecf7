"""``veritrain train SPEC --out DIR``: run a job spec with the reproducible engine, write its checkpoints and leaves.

Writes the job directory described in :mod:`protocol.engine.jobdir` (checkpoint blobs named by their state
root under ``DIR/blobs/state/``, ``DIR/leaves.json``, ``DIR/spec.json`` with ``init_state_root`` filled in,
``DIR/result.json``) and prints ``{"trajectory_root", "final_state_root", "leaves" (the count N),
"seconds", "final_loss", "init_state_root", "steps_run", "heldout"}``. Running it again on the same ``DIR``
resumes after the last stored leaf.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["train"]


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def train(
    spec_file: Annotated[Path, typer.Argument(metavar="SPEC", help="Job spec (JSON).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (created; an existing one is resumed).")],
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="Threads for torch and the exact kernels.")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset file for a csv/npz/text spec (its SHA-256 must match).")
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="Blob store directory holding the spec's dataset.")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Initial weights for a spec whose init names them (.vts from `veritrain state import`, "
            ".safetensors or a PyTorch state_dict); their state root must be the spec's init.state_root.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, no progress bar.")] = False,
) -> None:
    """Train a job spec; write every checkpoint (named by its state root), leaves.json, and print the roots.

    Examples:

      veritrain train examples/mlp_digits.json --out /tmp/mlp

      veritrain train examples/tiny_lm.json --out /tmp/lm --threads 1 --json

      veritrain train my_spec.json --data data.npz --out /tmp/mine

      veritrain train finetune.json --data data.parquet --weights base.safetensors --out /tmp/ft
    """
    from protocol.errors import VeritrainError
    from protocol.spec import SpecError, parse_spec

    if device not in ("cpu", "cuda"):
        _fail(f"--device must be cpu or cuda, not {device!r}")
    try:
        raw = spec_file.read_bytes()
    except FileNotFoundError:
        _fail(f"spec file {spec_file} does not exist")
    except OSError as exc:
        _fail(f"cannot read spec file {spec_file}: {exc.strerror}")
    try:
        spec = parse_spec(raw)
    except SpecError as exc:
        _fail(f"{spec_file}: {exc}")

    from protocol.blobstore import LocalBlobStore
    from protocol.engine import load_dataset, train_to_dir
    from protocol.engine.runner import configure_threads

    configure_threads(threads)
    try:
        blob_store = LocalBlobStore(store) if store is not None else None
        dataset = load_dataset(spec.dataset, store=blob_store, path=data)
        init_weights = load_init_weights(spec, weights, blob_store)
        interactive = not as_json and sys.stderr.isatty()
        if interactive:
            result = _train_with_progress(spec, dataset, out, device, init_weights)
        else:
            result = train_to_dir(spec, dataset, out, device=device, weights=init_weights)
    except VeritrainError as exc:
        _fail(str(exc), code=1)
    summary = result.to_json()
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(json.dumps(summary, indent=2))


def load_init_weights(spec, path: Path | None, store=None):
    """The weights state a spec's ``init`` names: from ``path`` (any format :mod:`protocol.engine.weights`
    reads) or the blob store; None for seeded specs. Raises a VeritrainError when missing or different."""
    from protocol.engine.runner import WeightsMismatch
    from protocol.engine.weights import import_weights
    from protocol.spec import WeightsInit
    from protocol.state import deserialize, state_root

    if not isinstance(spec.init, WeightsInit):
        if path is not None:
            raise WeightsMismatch("--weights was given but the spec's init is seeded (set init.kind 'weights')")
        return None
    want = spec.init.state_root
    if path is not None:
        w = import_weights(path)
        got = "0x" + state_root(w).hex()
        if got != want:
            raise WeightsMismatch(f"{path} converts to the weights state {got}, the spec's init.state_root is {want}")
        return w
    if store is not None and store.has(want, "state"):
        return deserialize(store.get(want, "state"), expected_root=bytes.fromhex(want[2:]))
    raise WeightsMismatch(f"the spec starts from weights {want}: pass them with --weights FILE")


def _train_with_progress(spec, dataset, out: Path, device: str, weights=None):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from protocol.engine import train_to_dir

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]training[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps  loss {task.fields[loss]}  leaves {task.fields[leaves]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("train", total=spec.total_steps, loss="-", leaves=f"0/{spec.num_segments}")

        def on_step(step: int, loss: float) -> None:
            progress.update(task, completed=step, loss=f"{loss:.4f}")

        def on_segment(done) -> None:
            progress.update(task, leaves=f"{done.index + 1}/{spec.num_segments}")

        result = train_to_dir(
            spec, dataset, out, device=device, on_step=on_step, on_segment=on_segment, weights=weights
        )
        progress.update(task, completed=spec.total_steps)
    return result
