"""The example job specs in ``examples/`` (one per model) and shortened copies of them for tests and benches."""

from __future__ import annotations

from pathlib import Path

from protocol.paths import repo_root
from protocol.spec import JobSpec, parse_spec

__all__ = ["EXAMPLES", "EXAMPLE_DATA", "example_data_path", "example_path", "load_example", "shortened"]

#: Example name → file in ``examples/``.
EXAMPLES = {
    "mlp_digits": "mlp_digits.json",
    "cnn_digits": "cnn_digits.json",
    "tiny_lm": "tiny_lm.json",
    "gpt_bytes": "gpt_bytes.json",
}
#: Examples whose data is a file shipped in ``examples/data/`` (not a builtin dataset).
EXAMPLE_DATA = {"gpt_bytes": "alice_paragraphs.parquet"}


def example_path(name: str) -> Path:
    if name not in EXAMPLES:
        raise KeyError(f"unknown example {name!r}; examples: {', '.join(EXAMPLES)}")
    return repo_root() / "examples" / EXAMPLES[name]


def example_data_path(name: str) -> Path | None:
    """The dataset file an example ships with (None for examples on a builtin dataset)."""
    if name not in EXAMPLES:
        raise KeyError(f"unknown example {name!r}; examples: {', '.join(EXAMPLES)}")
    return repo_root() / "examples" / "data" / EXAMPLE_DATA[name] if name in EXAMPLE_DATA else None


def load_example(name: str) -> JobSpec:
    return parse_spec(example_path(name).read_bytes())


def shortened(spec: JobSpec, total_steps: int, checkpoint_interval: int, **changes) -> JobSpec:
    """A copy of ``spec`` with another schedule (and any other top-level field changes); ``init_state_root``
    is cleared since the initial state records the spec."""
    doc = spec.model_dump(mode="json")
    doc.update(total_steps=total_steps, checkpoint_interval=checkpoint_interval, init_state_root=None, **changes)
    return parse_spec(doc)
