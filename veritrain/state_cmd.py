"""``veritrain state import|show``: given weights as canonical states (the start of a fine-tuning job)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from veritrain.options import ApiOpt, HomeOpt, JsonOpt

app = typer.Typer(
    name="state",
    help="Convert weights (.safetensors, PyTorch state_dict) into canonical states; inspect state files.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command("import")
def import_cmd(
    source: Annotated[Path, typer.Argument(help="A .safetensors file, a PyTorch state_dict (.pt/.pth/.bin) or .vts.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Where to write the weights state (default SOURCE.vts).")
    ] = (None),
    strip_prefix: Annotated[
        str, typer.Option("--strip-prefix", help="Remove this prefix from every tensor name (e.g. 'model.').")
    ] = "",
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Drop tensors whose name matches (fnmatch; repeatable).")
    ] = None,
    spec: Annotated[
        str | None,
        typer.Option("--spec", help="Check the weights fit this spec's model (a spec file or an example name)."),
    ] = None,
    upload: Annotated[bool, typer.Option("--upload", help="Also upload the state to the marketplace blob store.")] = (
        False
    ),
    api: ApiOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert weights into a canonical weights state; print its state root (a spec's init.state_root).

    Every tensor becomes float32 (float16/bfloat16 exactly, float64 rounded to nearest); integer buffers must
    be excluded. The state root is what a fine-tuning spec names in "init": {"kind": "weights", "state_root": …};
    `veritrain job submit SPEC --weights FILE` does this conversion itself and uploads the state.

    Examples:

      veritrain state import base.safetensors --out base.vts

      veritrain state import checkpoint.pt --strip-prefix module. --exclude 'head.*' --spec finetune.json

      veritrain state import base.safetensors --upload --json
    """
    from protocol.errors import VeritrainError
    from protocol.state import serialize_bytes, state_root

    try:
        from protocol.engine.weights import import_weights

        w = import_weights(source, strip_prefix=strip_prefix, exclude=tuple(exclude or ()))
        root = "0x" + state_root(w).hex()
        if spec is not None:
            _check_fits(spec, w, root)
        data = serialize_bytes(w)
        target = out or source.with_suffix(".vts")
        if target.resolve() == source.resolve():
            _fail(f"--out {target} would overwrite the source; give another path")
        target.write_bytes(data)
        info = {
            "state_root": root,
            "file": str(target),
            "tensors": len(w.tensors),
            "parameters": int(sum(t.numel() for t in w.tensors.values())),
            "bytes": len(data),
        }
        if upload:
            from veritrain.market import connect

            with connect(api=api, home=home, need_key=False) as user:
                addr = user.api_request("POST", "/blobs", params={"kind": "state", "expected": root}, content=data)
            info["uploaded"] = addr["address"]
    except VeritrainError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    else:
        typer.echo(f"{info['file']}: {info['tensors']} tensors, {info['parameters']:,} parameters\nstate root {root}")


def _check_fits(spec_source: str, weights, root: str) -> None:
    """Builds the spec's initial parameters from ``weights`` (raises WeightsMismatch when they do not fit)."""
    from protocol.engine.runner import initial_parameters
    from protocol.spec import WeightsInit, parse_spec
    from veritrain.market import load_spec_source

    s = load_spec_source(spec_source)
    fresh = s.init.fresh if isinstance(s.init, WeightsInit) else []
    doc = s.model_dump(mode="json")
    doc.update(version=2, init={"kind": "weights", "state_root": root, "fresh": fresh}, init_state_root=None)
    initial_parameters(parse_spec(doc), weights)


@app.command("show")
def show_cmd(
    path: Annotated[Path, typer.Argument(help="A canonical state file (.vts, a checkpoint blob).")],
    as_json: JsonOpt = False,
) -> None:
    """Print a state file's root, step, metadata and tensors (validated like every state the nodes read).

    Example:

      veritrain state show model/final_state.vts
    """
    from protocol.state import StateFormatError, chunked_root, read_layout

    try:
        data = path.read_bytes()
        layout = read_layout(data)
    except (OSError, StateFormatError) as exc:
        _fail(f"{path}: {exc}")
    info = {
        "state_root": "0x" + chunked_root([data]).hex(),
        "step": layout.step,
        "meta": layout.meta,
        "tensors": [{"name": e.name, "dtype": e.dtype, "shape": list(e.shape)} for e in layout.tensors],
    }
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"state root {info['state_root']}  step {layout.step}  {len(layout.tensors)} tensors")
    typer.echo(f"meta {json.dumps(layout.meta, sort_keys=True)}")
    for e in layout.tensors:
        typer.echo(f"  {e.name:<48} {e.dtype:<8} {list(e.shape)}")
