"""``veritrain bench audit``: how much cheating sampled replay catches, and what it costs.

Real jobs, real replay: ``jobs`` small MLP jobs (exact mode) are trained by a *cheating* solver that, after each
segment independently with probability ``cheat_fraction`` (= f), perturbs the weights before the checkpoint and
trains on from there (the ``noise`` strategy: exactly the perturbed segments fail replay). Each job is then
audited ``audits`` times with fresh random audit seeds through :class:`verifier.audit.Replayer` — the same code the
node runs: leaf list checked against the root, pre-state read from the blob store and verified, segment replayed,
result compared with the leaf — sampling ``m = ceil(rate·N)`` distinct segments with :mod:`protocol.sampling`.

* ``detected``: the share of audits that found a mismatch; ``expected``: ``1 − (1 − f)^m`` (exact for
  independently cheated segments and ``m`` distinct samples);
* ``verifier_over_solver_compute``: wall seconds of all audits (fetch + verify + replay + hash) / (solver wall
  seconds to train and checkpoint the same jobs × audits per job) — the verifier's cost per audit relative to the
  solver's cost per job. The engine is warmed up (JIT) before either side is timed.
"""

from __future__ import annotations

import math
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protocol import merkle
from protocol.blobstore import LocalBlobStore
from protocol.constants import BPS
from protocol.replay import JobRef, Sources
from protocol.sampling import sampled_segments
from protocol.state import serialize, state_root
from verifier.audit import MATCH, Replayer

__all__ = ["audit_benchmark"]


def _spec(seed: int, segments: int, interval: int):
    from protocol.engine.examples import load_example, shortened

    model = {"kind": "mlp", "input_dim": 64, "hidden": [64], "num_classes": 10}
    spec = shortened(load_example("mlp_digits"), segments * interval, interval, seed=seed, model=model)
    return spec


def _train_cheating(spec, dataset, store: LocalBlobStore, cheat: set[int], rng: np.random.Generator):
    """Trains ``spec``, perturbing the weights after each segment in ``cheat``; returns (init root, leaves,
    solver seconds)."""
    from protocol.engine import Trainer

    t0 = time.perf_counter()
    t = Trainer(spec, dataset)
    init = t.init()
    init_root = state_root(init)
    store.put_state(serialize(init), expected=init_root)
    leaves = []
    for i in range(spec.num_segments):
        t.train_steps(spec.checkpoint_interval)
        if i in cheat:
            with torch.no_grad():
                for _, p in t.named_params:
                    noise = torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32))
                    p.add_(noise * 1e-3)
        st = t.state()
        root = state_root(st)
        store.put_state(serialize(st), expected=root)
        leaves.append(root)
    return init_root, leaves, time.perf_counter() - t0


def audit_benchmark(
    audit_rate: float = 0.1,
    cheat_fraction: float = 0.1,
    jobs: int = 4,
    audits: int = 50,
    segments: int = 20,
    interval: int = 5,
    seed: int = 1,
    max_samples: int = 64,
) -> dict[str, Any]:
    if not 0 < audit_rate <= 1 or not 0 <= cheat_fraction <= 1:
        raise ValueError("audit rate must be in (0, 1] and cheat fraction in [0, 1]")
    from protocol.engine import Trainer, load_dataset

    rng = np.random.default_rng(seed)
    rate_bps = round(audit_rate * BPS)
    detected = 0
    total_audits = 0
    solver_s = 0.0
    verifier_s = 0.0
    m = None
    hyper = []
    datasets: dict[str, Any] = {}  # a verifier node keeps loaded datasets across audits
    with tempfile.TemporaryDirectory(prefix="veritrain-bench-audit-") as tmp:
        warm = _spec(seed, 2, interval)
        warm_t = Trainer(warm, load_dataset(warm.dataset))
        warm_t.init()
        warm_t.train_steps(interval)  # JIT warm-up, untimed
        for j in range(jobs):
            spec = _spec(seed + j, segments, interval)
            dataset = load_dataset(spec.dataset)
            jobdir = Path(tmp) / f"job{j}"
            store = LocalBlobStore(jobdir / "blobs")
            cheat = {i for i in range(segments) if rng.random() < cheat_fraction}
            init_root, leaves, secs = _train_cheating(spec, dataset, store, cheat, rng)
            spec = spec.with_init_root(init_root)
            store.put(spec.canonical_json())
            solver_s += secs
            ref = JobRef(
                job_id=secrets.token_bytes(32),
                spec_hash=spec.spec_hash(),
                solver="0x" + "00" * 20,
                submitter="0x" + "00" * 20,
                uri="",
                num_leaves=segments,
                trajectory_root=merkle.rfc9162_root([merkle.leaf_hash(x) for x in leaves]),
                init_state_root=init_root,
            )
            for _ in range(audits):
                sources = Sources(jobdir / "blobs", None)  # a fresh verifier: nothing cached but the blob store
                sources._datasets = datasets
                sources._leaves[ref.job_id] = leaves  # as served by the solver (checked against the root below)
                assert merkle.rfc9162_root([merkle.leaf_hash(x) for x in leaves]) == ref.trajectory_root
                replayer = Replayer(sources)
                sample = sampled_segments(secrets.token_bytes(32), segments, rate_bps, max_samples)
                m = len(sample)
                t0 = time.perf_counter()
                result = replayer.audit(ref, sample)
                verifier_s += time.perf_counter() - t0
                sources.close()
                total_audits += 1
                if any(r != MATCH for r in result.segments.values()):
                    detected += 1
                if any((r != MATCH) != (i in cheat) for i, r in result.segments.items()):
                    raise AssertionError(f"replay disagrees with the cheat set at {result.segments} vs {cheat}")
            k = len(cheat)
            hyper.append(1 - math.comb(segments - k, m) / math.comb(segments, m))
    assert m is not None
    expected = 1 - (1 - cheat_fraction) ** m
    rate = detected / total_audits
    return {
        "audit_rate": audit_rate,
        "cheat_fraction": cheat_fraction,
        "detected": round(rate, 4),
        "expected": round(expected, 4),
        "verifier_over_solver_compute": round(verifier_s / (solver_s * audits), 4),
        "segments": segments,
        "sampled_per_audit": m,
        "sampled_share": round(m / segments, 4),
        "jobs": jobs,
        "audits": total_audits,
        "detected_stderr": round(math.sqrt(max(expected * (1 - expected), 1e-12) / total_audits), 4),
        "expected_given_cheat_sets": round(sum(hyper) / len(hyper), 4),
        "verifier_seconds": round(verifier_s, 3),
        "solver_seconds": round(solver_s, 3),
    }
