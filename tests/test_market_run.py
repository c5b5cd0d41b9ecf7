"""One real market run (``veritrain.demo.MarketRun``: anvil, the API with its indexer, an honest and two cheating
``veritrain solver`` processes, five ``veritrain verifier`` processes, jobs submitted through the REST API),
then everything an outsider would do with it while it is still up:

* ``veritrain audit dispute`` passes on every dispute of the run and ``veritrain audit job`` on every job,
  reading nothing but the chain;
* the auditor pages, in Debian's Chromium, show each cheater's job slashed and the honest one finalized, and
  each dispute's descent with as many steps as the disputed leaf's RFC 9162 depth;
* ``veritrain job fetch`` on the honest job writes a model that loads in PyTorch and whose state bytes hash to
  the committed final state root.

The demo CLI itself (``veritrain demo --json``, Ctrl-C) is tested in tests/test_demo.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from browser import badges, checked_page, launch_browser, open_page, shot

from protocol import merkle

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    from veritrain.demo import MarketRun

    home = tmp_path_factory.mktemp("market") / "home"
    with MarketRun(home, verifiers=5, steps=40, interval=10) as run:
        report = run.run_jobs(3, timeout=420)
        assert not report.problems(), report.problems()
        yield run, report


def veritrain(run, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "veritrain.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "VERITRAIN_HOME": str(run.home)},
    )


def chain_args(run) -> list[str]:
    return ["--rpc", run.devnet.rpc_url, "--deployment", str(run.devnet.deployment_path), "--json"]


def wait_indexed(api: str, report, timeout: float = 60.0) -> None:
    """The API's indexer has applied every outcome the chain shows (it follows the chain a little behind)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = {j["job_id"]: j["status"] for j in httpx.get(f"{api}/jobs", params={"limit": 100}).json()["items"]}
        want = {j["id"]: j["outcome"] for j in report.jobs}
        if all(jobs.get(k) == v for k, v in want.items()):
            return
        assert time.monotonic() < deadline, f"API statuses {jobs} never reached the chain's {want}"
        time.sleep(0.5)


def test_the_run_paid_the_honest_and_slashed_every_cheater(market):
    _, report = market
    by_adv = {j["adversary"]: j for j in report.jobs}
    assert set(by_adv) == {None, "fake", "lazy"}
    assert by_adv[None]["outcome"] == "finalized" and by_adv[None]["paid"] > 0
    assert all(by_adv[a]["outcome"] == "slashed" and by_adv[a]["slashed"] > 0 for a in ("fake", "lazy"))
    assert len(report.disputes) >= 2


def test_audit_passes_on_every_dispute_and_job(market):
    run, report = market
    for d in report.disputes:
        res = veritrain(run, "audit", "dispute", str(d["id"]), *chain_args(run))
        assert res.returncode == 0, f"dispute {d['id']}: {res.stdout[-3000:]}{res.stderr[-3000:]}"
        verdict = json.loads(res.stdout)
        assert verdict["ok"] and verdict["first_violation"] is None
        assert {c["rule"] for c in verdict["checks"]} >= {"descent.reveal-hash", "outcome.majority", "settle.burn"}
    for j in report.jobs:
        res = veritrain(run, "audit", "job", j["id"], *chain_args(run))
        assert res.returncode == 0, f"job {j['id']}: {res.stdout[-3000:]}{res.stderr[-3000:]}"
        assert json.loads(res.stdout)["ok"]


def test_pages_show_the_run(market, artifacts_dir: Path):
    from veritrain.market import chain_job

    run, report = market
    api = run.devnet.api_url
    wait_indexed(api, report)
    shots = artifacts_dir / "pages-market-run"
    shots.mkdir(exist_ok=True)
    load_times: dict[str, float] = {}
    game = run.user.chain.dispute_game
    with launch_browser() as browser, checked_page(browser) as page:
        open_page(page, f"{api}/ui/", "jobs", load_times)
        rows = page.locator("[data-testid=jobs-table] tbody tr")
        assert rows.count() == len(report.jobs)
        by_job = {rows.nth(i).locator("a").first.get_attribute("title"): rows.nth(i) for i in range(rows.count())}
        for j in report.jobs:
            assert badges(by_job[j["id"]]) == [j["outcome"]], j
        shot(page, shots, "jobs")
        played = [d for d in report.disputes if d["outcome"] != "superseded"]  # a dropped queue entry never descended
        assert played
        for d in played:
            disputed = run.user.chain.call(game.functions.getDispute(d["id"]))
            n = int(chain_job(run.user, d["job"]).numLeaves)
            open_page(page, f"{api}/ui/dispute.html?id={d['id']}", f"dispute-{d['id']}", load_times)
            if d["availability"]:  # publish a named leaf: no descent to draw, the leaf and what became of it
                assert page.inner_text("[data-testid=availability-leaf]") == f"availability of leaf {disputed.lo}"
                status = page.inner_text("[data-testid=availability-status]")
                assert status.startswith("Published" if d["outcome"] == "published" else "Not published"), status
                shot(page, shots, f"dispute-{d['id']}")
                continue
            leaf = int(page.inner_text("[data-testid=leaf-index]").split()[1])
            assert leaf == int(disputed.lo)  # the leaf the descent reached on chain
            depth = merkle.leaf_depth(leaf, n)
            assert depth == d["rounds"]
            assert page.locator("[data-testid=tree] line.edge.path").count() == depth
            assert page.locator("[data-testid=moves-table] tr.step-row").count() == depth
            shot(page, shots, f"dispute-{d['id']}")
        cheater = next(j for j in report.jobs if j["adversary"])
        open_page(page, f"{api}/ui/staker.html?address={cheater['solver']}", "staker-cheater", load_times)
        assert "slashed" in badges(page.locator("h1"))
        shot(page, shots, "staker-cheater")
        honest = next(j for j in report.jobs if not j["adversary"])
        open_page(page, f"{api}/ui/staker.html?address={honest['solver']}", "staker-honest", load_times)
        assert "slashed" not in badges(page.locator("h1"))
    (shots / "load-times.json").write_text(json.dumps(load_times, indent=2) + "\n")


def test_job_fetch_gives_a_pytorch_model_hashing_to_the_committed_root(market, tmp_path):
    import torch

    from protocol.blobstore import state_address
    from protocol.engine.models import build_model
    from protocol.spec import parse_spec
    from veritrain.market import chain_job

    run, report = market
    honest = next(j for j in report.jobs if j["outcome"] == "finalized")
    out = tmp_path / "model"
    res = veritrain(run, "job", "fetch", honest["id"], "--out", str(out), "--json", "--home", str(run.home))
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    committed = "0x" + bytes(chain_job(run.user, honest["id"]).finalStateRoot).hex()
    assert info["final_state_root"] == committed
    assert state_address((out / "final_state.vts").read_bytes()) == committed
    weights = torch.load(out / "model.pt", weights_only=True)
    model = build_model(parse_spec((out / "spec.json").read_bytes()).model, False)
    model.load_state_dict(weights)  # loads in PyTorch
    assert model(torch.zeros(1, 64)).shape == (1, 10)
