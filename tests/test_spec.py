"""protocol/spec.py: validation names the wrong field, and spec_hash is canonical."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest

from protocol.repro.version import KERNEL_SET_VERSION
from protocol.spec import JobSpec, SpecError, parse_spec

BASE = {
    "model": {"kind": "mlp", "input_dim": 64, "hidden": [32], "num_classes": 10},
    "dataset": {"format": "builtin", "builtin": "digits", "digest": "0x" + "11" * 32},
    "optimizer": {"kind": "sgd", "lr": 0.1, "momentum": 0.9},
    "batch_size": 32,
    "total_steps": 100,
    "checkpoint_interval": 10,
    "seed": 7,
    "mode": {"kind": "exact", "kernel_set": KERNEL_SET_VERSION},
}


def with_(path: str, value):
    doc = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[p]
    node[last] = value
    return doc


def test_valid_spec_parses_and_counts_segments():
    spec = parse_spec(json.dumps(BASE))
    assert isinstance(spec, JobSpec) and spec.num_segments == 10 and spec.version == 1


def test_spec_hash_is_sha256_of_canonical_json_and_ignores_key_order_and_defaults():
    a = parse_spec(BASE)
    reordered = dict(reversed(list(BASE.items())))
    explicit_defaults = with_("optimizer.weight_decay", 0.0)
    assert a.spec_hash() == parse_spec(reordered).spec_hash() == parse_spec(explicit_defaults).spec_hash()
    assert a.spec_hash() == hashlib.sha256(a.canonical_json()).digest()
    assert b" " not in a.canonical_json()
    assert parse_spec(with_("seed", 8)).spec_hash() != a.spec_hash()


def test_init_root_round_trip():
    spec = parse_spec(BASE).with_init_root(b"\xab" * 32)
    assert spec.init_state_root == "0x" + "ab" * 32
    assert parse_spec(spec.canonical_json()) == spec


@pytest.mark.parametrize(
    "doc, path, words",
    [
        (with_("total_steps", 95), "(spec)", "multiple of checkpoint_interval"),
        (with_("model.input_dim", 0), "model.mlp.input_dim", "greater than 0"),
        (with_("model.kind", "rnn"), "model", "does not match any of the expected tags"),
        (with_("dataset.digest", "0xABC"), "dataset.digest", "64 lowercase hex"),
        (with_("dataset.format", "npz"), "dataset", "exactly when format is 'builtin'"),
        (with_("optimizer.lr", -1), "optimizer.sgd.lr", "greater than 0"),
        (with_("mode", {"kind": "exact"}), "mode.exact.kernel_set", "Field required"),
        (with_("seed", 1 << 64), "seed", "less than"),
        (with_("batch_sizes", 3), "batch_sizes", "unknown field"),
        (
            with_(
                "model",
                {
                    "kind": "transformer_lm",
                    "vocab_size": 65,
                    "context": 32,
                    "d_model": 30,
                    "n_heads": 4,
                    "n_layers": 1,
                    "d_ff": 64,
                },
            ),
            "model.transformer_lm",
            "multiple of n_heads",
        ),
    ],
)
def test_invalid_specs_name_the_field_and_the_reason(doc, path, words):
    with pytest.raises(SpecError) as err:
        parse_spec(doc)
    assert any(p == path and words in m for p, m in err.value.errors), err.value.errors
    assert path in str(err.value)


def test_not_json_and_not_an_object():
    with pytest.raises(SpecError, match="not valid JSON"):
        parse_spec(b"{nope")
    with pytest.raises(SpecError, match="JSON object"):
        parse_spec("[1, 2]")
