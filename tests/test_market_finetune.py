"""Fine-tuning through the whole market with real processes: a submitter fine-tunes a model it brings as a
``.safetensors`` file on the digits data, in exact mode, with a warm-up + cosine schedule, gradient clipping,
gradient accumulation, a frozen first layer and held-out evaluation at every checkpoint.

anvil + deployment (full-audit parameters, so detection is certain) + the marketplace API, four ``veritrain
solver`` processes — one honest, and ``noclip`` (skips clipping), ``constlr`` (ignores the schedule) and
``unfreeze`` (trains the frozen layer) — and five ``veritrain verifier`` processes. Each solver gets one job
(:class:`veritrain.demo.MarketRun` submits them through the REST API with ``--weights``-style preparation:
the weights state uploaded, C_init computed from it). The checks:

* the honest job is finalized and its model fetched: ``model.pt`` loads into a PyTorch model, the frozen
  layer still holds the given weights, ``metrics.json`` has one checked entry per checkpoint;
* each corner-cutting solver is caught by the verifiers' replay and slashed.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
import torch

from protocol.constants import JobState
from protocol.engine.data import load_dataset
from protocol.engine.examples import load_example, shortened
from protocol.engine.models import build_model
from protocol.engine.runner import Trainer
from protocol.paths import repo_root
from veritrain.demo import MarketRun
from veritrain.market import fetch_model

pytestmark = pytest.mark.chain

ETHER = 10**18
STEPS, INTERVAL = 24, 4
SOLVERS = {"solver0": None, "solver1": "noclip", "solver2": "constlr", "solver3": "unfreeze"}


def _base_weights(path) -> dict[str, torch.Tensor]:
    """A "pretrained" model the submitter brings: the digits MLP after 40 steps, saved as safetensors."""
    from safetensors.torch import save_file

    spec = shortened(load_example("mlp_digits"), 40, 40)
    t = Trainer(spec, load_dataset(spec.dataset))
    t.init()
    t.train_steps(40)
    sd = {k.removeprefix("param/"): v for k, v in t.state().tensors.items() if k.startswith("param/")}
    save_file(sd, str(path))
    return sd


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    home = tmp_path_factory.mktemp("market-finetune")
    base = _base_weights(home / "base.safetensors")
    spec = shortened(
        load_example("mlp_digits"), STEPS, INTERVAL, version=2, batch_size=32, grad_accumulation=2,
        clip_grad_norm=0.05, freeze=["layers.0.*"], evaluation={"max_examples": 128},
        schedule={"warmup_steps": 8, "decay": "cosine", "final_lr_fraction": 0.1},
    )  # fmt: skip
    spec_file = home / "finetune.json"
    spec_file.write_bytes(spec.canonical_json())
    params = json.loads((repo_root() / "contracts/params/devnet.json").read_text())
    params["market"]["auditRateBps"] = 10_000  # every segment replayed: detection is certain
    params["market"]["auditWindow"] = 60
    # every verifier replays every segment of its jobs: give arbiters room to get to their replay on two cores
    params["game"].update(commitPeriod=60, revealPeriod=60, clockBudget=240)
    params_path = home / "params.json"
    params_path.write_text(json.dumps(params))
    run = MarketRun(
        home / "run", params=params_path, solvers=SOLVERS, verifiers=5, steps=STEPS, interval=INTERVAL,
        example=str(spec_file), weights=home / "base.safetensors", price=20 * ETHER, node_timeout=180.0,
    )  # fmt: skip
    with run:
        t0 = time.monotonic()
        for role in SOLVERS:
            run.submit(role, seed=len(run.jobs) + 1)
        run.wait_all(timeout=420.0)
        report = run.report()
        print(f"fine-tune market: {time.monotonic() - t0:.0f}s", file=sys.stderr)
        out = home / "model"
        honest = next(j for j in run.jobs if j.adversary is None)
        fetched = fetch_model(run.user, honest.job_id, out) if honest.state == JobState.FINALIZED else None
        yield run, report, fetched, out, base, spec


def test_corner_cutting_solvers_are_slashed_and_the_honest_one_paid(market):
    run, report, *_ = market
    outcomes = {j["adversary"]: j["outcome"] for j in report.jobs}
    assert outcomes == {None: "finalized", "noclip": "slashed", "constlr": "slashed", "unfreeze": "slashed"}, (
        report.to_json()
    )
    assert not report.problems(), report.problems()


def test_the_fine_tuned_model_loads_in_pytorch_with_the_frozen_layer_given(market):
    run, report, fetched, out, base, spec = market
    assert fetched is not None, "the honest job did not finalize"
    model = build_model(spec.model, False)
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True))
    assert torch.equal(model.get_parameter("layers.0.weight"), base["layers.0.weight"])  # frozen: as given
    assert not torch.equal(model.get_parameter("head.weight"), base["head.weight"])  # trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert [p["leaf"] for p in metrics["points"]] == list(range(STEPS // INTERVAL))
    assert all(0.0 <= p["heldout_accuracy"] <= 1.0 and p["heldout_examples"] == 128 for p in metrics["points"])
    assert fetched["metrics"] == metrics["points"][-1]
