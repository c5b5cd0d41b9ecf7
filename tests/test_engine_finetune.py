"""Spec version 2 in the engine: schedules, clipping, accumulation, frozen layers, LoRA, given weights and
checkpoint metrics — each part of the spec and replayed bit for bit."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import mpmath
import pytest
import torch

from protocol.engine.data import load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.rng import Stream
from protocol.engine.runner import EngineError, Trainer, WeightsMismatch, job_hash
from protocol.engine.schedule import cos_pi_bounds, lr_at
from protocol.engine.weights import WeightsImportError, import_weights, weights_state
from protocol.spec import SpecError, parse_spec
from protocol.state import deserialize, serialize_bytes, state_root

V1_MLP = shortened(load_example("mlp_digits"), 8, 4, batch_size=16)


def v2(base=V1_MLP, **changes):
    doc = base.model_dump(mode="json")
    doc.update(version=2, init_state_root=None, **changes)
    return parse_spec(doc)


def trainer(spec, weights=None):
    t = Trainer(spec, load_dataset(spec.dataset), weights=weights)
    t.init()
    return t


# ------------------------------------------------------------------------------------------------ the spec


def test_version_1_documents_keep_their_bytes_and_v2_fields_need_version_2():
    assert b"schedule" not in V1_MLP.canonical_json() and b"init" not in V1_MLP.canonical_json().replace(
        b"init_state_root", b""
    )
    doc = V1_MLP.model_dump(mode="json")
    doc["clip_grad_norm"] = 1.0
    with pytest.raises(SpecError, match="clip_grad_norm need"):
        parse_spec(doc)
    spec = v2(clip_grad_norm=1.0)
    assert spec.version == 2 and b'"clip_grad_norm":1.0' in spec.canonical_json()
    # a v2 field at its default is not written, so documents that mean the same spec hash the same
    assert v2(grad_accumulation=1).spec_hash() == v2().spec_hash()


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"grad_accumulation": 3}, "multiple of grad_accumulation"),
        ({"freeze": ["head.*"], "lora": {"rank": 2, "alpha": 4, "targets": ["layers.*"]}}, "do not combine"),
        ({"evaluation": {}, "dataset": {**V1_MLP.dataset.model_dump(mode="json"), "holdout_fraction": 0.0}}, "held"),
        ({"schedule": {"warmup_steps": 5, "decay_steps": 5}}, "must exceed warmup_steps"),
    ],
)
def test_v2_validation_names_the_problem(changes, words):
    with pytest.raises(SpecError, match=words):
        v2(**changes)


# ------------------------------------------------------------------------------------------------ schedule


def test_schedule_rates_are_the_correctly_rounded_exact_values():
    spec = v2(total_steps=100, checkpoint_interval=10, schedule={"warmup_steps": 10, "decay": "cosine",
              "final_lr_fraction": 0.1})  # fmt: skip
    lr = spec.optimizer.lr
    assert [lr_at(spec, s) for s in range(3)] == [float(Fraction(lr) * Fraction(s + 1, 10)) for s in range(3)]
    assert lr_at(spec, 10) == lr  # the peak, t = 0
    mpmath.mp.prec = 400
    for s in range(10, 100):
        t = mpmath.mpf(s - 10) / 90
        f = mpmath.mpf(0.1)
        exact = mpmath.mpf(lr) * (f + (1 - f) * (1 + mpmath.cos(mpmath.pi * t)) / 2)
        assert lr_at(spec, s) == float(exact), s
    lin = v2(total_steps=100, checkpoint_interval=10, schedule={"decay": "linear"})
    assert lr_at(lin, 50) == float(Fraction(lr) * Fraction(1, 2))
    assert lr_at(V1_MLP, 3) == lr  # no schedule: the constant lr, bit for bit


def test_cos_pi_bounds_bracket_the_value_and_hit_nivens_points_exactly():
    assert cos_pi_bounds(Fraction(1, 3), 64) == (Fraction(1, 2), Fraction(1, 2))
    assert cos_pi_bounds(Fraction(1, 2), 64) == (0, 0)
    mpmath.mp.prec = 300
    for t in (Fraction(1, 7), Fraction(5, 9), Fraction(999, 1000)):
        lo, hi = cos_pi_bounds(t, 200)
        v = mpmath.cos(mpmath.pi * mpmath.mpf(t.numerator) / t.denominator)
        assert mpmath.mpf(lo.numerator) / lo.denominator <= v <= mpmath.mpf(hi.numerator) / hi.denominator
        assert hi - lo < Fraction(1, 2**190)


# ------------------------------------------------------------------------------------------------ training


def test_dropout_micro_batch_masks_are_slices_of_the_whole_batch_mask():
    whole = Stream(7, "dropout/x", 3).bernoulli_keep(1000, 0.1)
    for k, n in ((0, 250), (1, 250), (3, 250), (1, 333)):
        assert (Stream(7, "dropout/x", 3).bernoulli_keep(n, 0.1, start=k * n) == whole[k * n : k * n + n]).all()
    big = Stream(7, "dropout/y", 0)
    assert (big.words(9000, 5) == big.words_reference(9000, 5)).all()


def test_clipping_bounds_the_update_and_accumulation_matches_the_whole_batch():
    plain = trainer(v2(optimizer={"kind": "sgd", "lr": 0.1}))
    clipped = trainer(v2(optimizer={"kind": "sgd", "lr": 0.1}, clip_grad_norm=0.05))
    acc = trainer(v2(optimizer={"kind": "sgd", "lr": 0.1}, grad_accumulation=4))
    before = {n: p.detach().clone() for n, p in plain.named_params}
    for t in (plain, clipped, acc):
        t.train_steps(1)
    step = math.sqrt(sum(float(((p.detach() - before[n]) ** 2).sum()) for n, p in clipped.named_params))
    assert step <= 0.1 * 0.05 * 1.0001  # |Δθ| = lr · |clipped g|
    for (n, p), (_, q) in zip(plain.named_params, acc.named_params, strict=True):
        assert torch.allclose(p, q, atol=1e-6), n  # same batch, summed in another order
    assert state_root(plain.state()) != state_root(clipped.state())


def test_frozen_parameters_keep_their_values_and_get_no_optimizer_state():
    spec = v2(freeze=["layers.0.*"])
    t = trainer(spec)
    w0 = t.model.get_parameter("layers.0.weight").detach().clone()
    t.train_steps(4)
    st = t.state()
    assert torch.equal(st.tensors["param/layers.0.weight"], w0)
    assert not any(k.startswith("optim/layers.0.") for k in st.tensors)
    assert "optim/head.weight/momentum_buffer" in st.tensors
    with pytest.raises(EngineError, match="matches no parameter"):
        trainer(v2(freeze=["nope.*"]))


def test_lora_starts_at_the_base_model_and_trains_only_the_adapters():
    spec = v2(lora={"rank": 4, "alpha": 8, "targets": ["layers.*"], "train": ["head.*"]})
    t = trainer(spec)
    base = trainer(V1_MLP)
    x, _ = t.batches.batch(0)
    with torch.no_grad():
        assert torch.equal(t.model(x), base.model(x))  # B = 0: the adapted model computes the base model
    w = t.model.get_parameter("layers.0.weight").detach().clone()
    a = t.model.get_parameter("layers.0.lora_B").detach().clone()
    t.train_steps(4)
    assert torch.equal(t.model.get_parameter("layers.0.weight"), w)
    assert not torch.equal(t.model.get_parameter("layers.0.lora_B"), a)
    assert t.trainable == {"layers.0.lora_A", "layers.0.lora_B", "layers.1.lora_A", "layers.1.lora_B",
                           "head.weight", "head.bias"}  # fmt: skip


# ------------------------------------------------------------------------------------------------ weights


def test_fine_tuning_starts_from_given_safetensors_weights(tmp_path):
    from safetensors.torch import save_file

    pre = trainer(V1_MLP)
    pre.train_steps(8)
    sd = {k.removeprefix("param/"): v for k, v in pre.state().tensors.items() if k.startswith("param/")}
    save_file({k: v.to(torch.float16) for k, v in sd.items()}, str(tmp_path / "base.safetensors"))
    w = import_weights(tmp_path / "base.safetensors")
    assert w.meta == {"kind": "weights"} and w.tensors["param/head.bias"].dtype == torch.float32
    assert deserialize(serialize_bytes(w)).tensors.keys() == w.tensors.keys()
    root = "0x" + state_root(w).hex()
    spec = v2(init={"kind": "weights", "state_root": root, "fresh": ["head.*"]})
    t = trainer(spec, weights=w)
    got = t.state().tensors
    assert torch.equal(got["param/layers.0.weight"], sd["layers.0.weight"].to(torch.float16).float())
    assert torch.equal(got["param/head.weight"], trainer(V1_MLP).state().tensors["param/head.weight"])  # fresh
    assert job_hash(spec) != job_hash(v2())
    with pytest.raises(WeightsMismatch, match="load them first"):
        trainer(spec)
    bad = weights_state({"layers.0.weight": torch.zeros(3, 3)})
    with pytest.raises(WeightsMismatch, match="lack|needs float32"):
        trainer(v2(init={"kind": "weights", "state_root": "0x" + state_root(bad).hex()}), weights=bad)
    with pytest.raises(WeightsImportError, match="not a floating-point"):
        weights_state({"n": torch.zeros(2, dtype=torch.int64)})
    torch.save({"state_dict": sd}, tmp_path / "base.pt")
    assert state_root(import_weights(tmp_path / "base.pt")) != root  # float32 values, not the float16 ones


# ------------------------------------------------------------------------------------------------ metrics


def test_checkpoint_metrics_are_in_the_manifest_and_a_replay_reproduces_them():
    spec = v2(evaluation={"max_examples": 64}, schedule={"warmup_steps": 2, "decay": "cosine"}, clip_grad_norm=1.0,
              grad_accumulation=2)  # fmt: skip
    t = trainer(spec)
    init = t.state()
    assert "metrics" not in init.meta
    t.train_steps(4)
    leaf = t.state()
    m = leaf.meta["metrics"]
    assert set(m) == {"train_loss", "lr", "heldout_examples", "heldout_loss", "heldout_accuracy"}
    assert m["heldout_examples"] == 64 and 0.0 <= m["heldout_accuracy"] <= 1.0 and m["lr"] == lr_at(spec, 3)
    json.dumps(m, allow_nan=False)
    replay = Trainer(spec, load_dataset(spec.dataset)).run_segment(init)
    assert state_root(replay) == state_root(leaf)
    t.train_steps(4)
    again = Trainer(spec, load_dataset(spec.dataset)).run_segment(leaf)
    assert state_root(again) == state_root(t.state())


def test_merged_lora_weights_load_into_the_base_model_and_compute_the_adapted_one():
    from protocol.engine.models import build_model
    from protocol.repro import mode
    from veritrain.market import merged_lora_state_dict

    spec = v2(lora={"rank": 4, "alpha": 8, "targets": ["layers.*"], "train": ["head.*"]})
    t = trainer(spec)
    t.train_steps(4)
    params = {k.removeprefix("param/"): v for k, v in t.state().tensors.items() if k.startswith("param/")}
    base = build_model(spec.model, False)
    base.load_state_dict(merged_lora_state_dict(spec, params), strict=True)
    x, _ = t.batches.batch(5)
    with torch.no_grad(), mode("native"):
        assert torch.allclose(base(x), t.model(x), atol=1e-5)
