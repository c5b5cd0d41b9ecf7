"""The auditor web pages in a real headless browser (Debian's Chromium driven by Playwright), DESIGN §9. A short
market run on anvil: two orders posted to a real API (HTTP, uvicorn) with its real chain indexer following the
devnet; the solver bids through the API and the submitter accepts with the API's call data. Job A is a real
fine-tuning-style run (spec version 2 with held-out evaluation: every checkpoint's manifest records its metrics),
committed honestly with its checkpoints and leaf list mirrored to the API, audited, attested and finalized; its
page draws the loss curve, one point per checkpoint. Job B commits a trajectory that lies from leaf 9 on and is
disputed down the RFC 9162 tree by the in-process dispute players (solver defender, steering challenger, arbiter
committee) and slashed. Then each page is opened and checked as a person would: the board and its filters, the job
pages, the dispute explorer (the descent has as many steps as the disputed leaf's depth), the staker page (the
slashed solver is shown slashed), the links between them. One screenshot per page goes to
``test-artifacts/pages/<page>.png`` and the measured load times to ``load-times.json`` there.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from browser import badges, checked_page, launch_browser, open_page, shot
from dispute_scenarios import INIT_ROOT, Game, Players, honest_replay, play, toy_leaves

from marketplace_api.context import AppContext
from marketplace_api.core.config import Settings
from marketplace_api.indexer import IndexerThread
from marketplace_api.main import create_app
from protocol import merkle
from protocol.anvil import increase_time, mine_past
from protocol.chain import ChainClient
from protocol.eip712 import Bid, BidEta, Domain, JobOrder
from protocol.node import HttpService
from protocol.repro.version import KERNEL_SET_VERSION
from protocol.spec import parse_spec
from protocol.trajectory import Trajectory
from solver.defence import DisputeDefender
from verifier.arbiter import Arbiter
from verifier.challenge import Challenger

pytestmark = pytest.mark.chain

ETHER = 10**18
CLOCK = r"(\d+h \d\dm \d\ds|\d+m \d\ds|\d+ s)"  # a chess clock as the pages print it
HONEST_N = 8
CHEAT_N, FIRST_LIE = 13, 9


def chain_now(w3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


@dataclass
class Run:
    url: str
    honest_job: str
    cheat_job: str
    dispute_id: int
    solver: str
    challenger: str
    submitter: str
    slashed: int
    verifiers: list[str]
    locks_mid_dispute: dict[str, list[dict]]


def _spec(api: httpx.Client, n: int, tag: str) -> tuple[str, str, dict]:
    dataset = api.post("/blobs", content=f"web test dataset {tag} {secrets.token_hex(4)}".encode())
    dataset.raise_for_status()
    digest = dataset.json()["address"]
    doc = {
        "model": {"kind": "mlp", "input_dim": 64, "hidden": [32], "num_classes": 10},
        "dataset": {"format": "npz", "digest": digest},
        "optimizer": {"kind": "sgd", "lr": 0.1},
        "batch_size": 16,
        "total_steps": 4 * n,
        "checkpoint_interval": 4,
        "seed": 7,
        "mode": {"kind": "exact", "kernel_set": KERNEL_SET_VERSION},
        "init_state_root": "0x" + INIT_ROOT.hex(),
    }
    r = api.post("/blobs", content=parse_spec(doc).canonical_json())
    r.raise_for_status()
    return r.json()["address"], digest, doc


def _trained_spec(api: httpx.Client, n: int) -> tuple[str, str, dict, list[bytes]]:
    """A real job: the digits MLP with a schedule and held-out evaluation, trained here; its dataset, spec,
    every checkpoint (state blobs) uploaded to the API. Returns (spec hash, dataset digest, spec doc, leaves)."""
    from protocol.engine.data import builtin_bytes, load_dataset
    from protocol.engine.examples import load_example, shortened
    from protocol.engine.runner import Trainer
    from protocol.state import serialize_bytes, state_root

    spec = shortened(load_example("mlp_digits"), 4 * n, 4, batch_size=16, version=2, evaluation={"max_examples": 128},
                     schedule={"warmup_steps": 4, "decay": "cosine"})  # fmt: skip
    assert api.post("/blobs", content=builtin_bytes("digits")).json()["address"] == spec.dataset.digest
    tr = Trainer(spec, load_dataset(spec.dataset))
    states = [tr.init()]
    for _ in range(n):
        tr.train_steps(4)
        states.append(tr.state())
    roots = []
    for st in states:
        r = api.post("/blobs", params={"kind": "state"}, content=serialize_bytes(st))
        assert r.status_code == 200 and r.json()["address"] == "0x" + state_root(st).hex(), r.text
        roots.append(state_root(st))
    spec = spec.with_init_root(roots[0])
    r = api.post("/blobs", content=spec.canonical_json())
    r.raise_for_status()
    return r.json()["address"], spec.dataset.digest, spec.model_dump(mode="json"), roots[1:]


def _send_call(w3, account, call: dict) -> None:
    tx = {
        "from": account.address,
        "to": call["to"],
        "data": call["data"],
        "chainId": call["chain_id"],
        "nonce": w3.eth.get_transaction_count(account.address),
        "gas": 1_500_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
    }
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )
    assert receipt["status"] == 1


@pytest.fixture(scope="module")
def market_run(w3, anvil, deployment, contracts, actors, tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("web")
    settings = Settings(
        data_dir=tmp / "data",
        deployment=deployment.path,
        rpc_url=anvil.url,
        indexer=True,
        confirmations=0,
        indexer_interval_s=0.1,
    )
    ctx = AppContext.from_settings(settings)
    ctx.clock = lambda: chain_now(w3)  # the test moves chain time; orders and bids are checked against it
    app = create_app(ctx=ctx)
    indexer = ctx.indexer = IndexerThread.from_settings(ctx)
    indexer.start()
    server = HttpService(app).start()
    api = httpx.Client(base_url=server.url, timeout=10)
    try:
        yield _market_run(w3, deployment, contracts, actors, anvil, tmp, api, indexer, server.url)
    finally:
        api.close()
        server.stop()
        indexer.stop()
        ctx.engine.dispose()


def _market_run(w3, deployment, contracts, actors, anvil, tmp, api, indexer, url) -> Run:

    def indexed() -> None:
        head = w3.eth.block_number
        deadline = time.monotonic() + 30
        while (indexer.block_number or 0) < head:
            assert indexer.last_error is None, indexer.last_error
            assert time.monotonic() < deadline, f"indexer stuck at {indexer.block_number}, head {head}"
            time.sleep(0.05)

    domain = Domain(deployment.chain_id, deployment.address_of("JobMarket"))
    market = contracts.market
    client_for = lambda account: ChainClient(anvil.url, deployment, account, poll_interval=0.02, retries=2)  # noqa: E731
    solver = client_for(actors.solver)
    indexed()  # the solver's stake is indexed: its bids rank feasible

    def post_job(n: int, tag: str, prepared: tuple[str, str, dict] | None = None) -> tuple[bytes, str]:
        spec_hash, dataset, doc = prepared or _spec(api, n, tag)
        order = JobOrder(
            actors.submitter.address,
            bytes.fromhex(spec_hash[2:]),
            bytes.fromhex(dataset[2:]),
            bytes.fromhex(doc["init_state_root"][2:]),
            doc["total_steps"],
            doc["checkpoint_interval"],
            100 * ETHER,
            chain_now(w3) + 86_400,
            secrets.randbits(64),
        )
        body = {"order": order.as_json(), "signature": "0x" + order.sign(domain, actors.submitter).hex()}
        r = api.post("/jobs", json=body)
        assert r.status_code == 201, r.text
        job_id = r.json()["job_id"]
        price = 60 * ETHER
        bid = Bid(
            actors.solver.address,
            bytes.fromhex(job_id[2:]),
            price,
            market.functions.requiredStake(price).call(),
            chain_now(w3) + 3_600,
            secrets.randbits(64),
            900,
        )
        eta = BidEta(actors.solver.address, bid.digest(domain), 900)
        r = api.post(
            f"/jobs/{job_id}/bids",
            json={
                "bid": bid.as_json(),
                "signature": "0x" + bid.sign(domain, actors.solver).hex(),
                "eta_seconds": 900,
                "eta_signature": "0x" + eta.sign(domain, actors.solver).hex(),
            },
        )
        assert r.status_code == 201 and r.json()["feasible"], r.text
        call = api.get(f"/jobs/{job_id}/accept-call")
        assert call.status_code == 200, call.text
        _send_call(w3, actors.submitter, call.json())
        return bytes.fromhex(job_id[2:]), job_id

    # job A: really trained, honest, audited, attested, finalized; checkpoints and leaf list mirrored
    spec_a, data_a, doc_a, leaves = _trained_spec(api, HONEST_N)
    jid_a, job_a = post_job(HONEST_N, "honest", (spec_a, data_a, doc_a))
    traj = Trajectory.in_memory(leaves)
    solver.transact(
        market.functions.commit(
            jid_a, traj.root(), HONEST_N, leaves[-1], traj.proof(HONEST_N - 1), "http://solver.test/checkpoints"
        )
    )
    r = api.put(f"/jobs/{job_a}/leaves", json={"leaves": ["0x" + x.hex() for x in leaves]})
    assert r.status_code == 200, r.text
    seed_block = market.functions.getJob(jid_a).call().seedBlock
    mine_past(w3, seed_block)
    challenger = client_for(actors.challenger)
    challenger.transact(market.functions.drawAudit(jid_a, challenger.seed_header(seed_block)))
    signers = {a.address: a for a in (actors.challenger, *actors.verifiers)}
    assigned = market.functions.assignedVerifiers(jid_a).call()
    for v in assigned:
        client_for(signers[v]).transact(market.functions.attest(jid_a))
    increase_time(w3, deployment.params["market"]["auditWindow"])
    client_for(actors.submitter).transact(market.functions.finalize(jid_a))

    # job B: lies from leaf FIRST_LIE on; disputed down the tree and slashed
    jid_b, job_b = post_job(CHEAT_N, "cheater")
    lies = toy_leaves(INIT_ROOT, CHEAT_N, lie_from=FIRST_LIE)
    traj_b = Trajectory.in_memory(lies)
    solver.transact(
        market.functions.commit(
            jid_b, traj_b.root(), CHEAT_N, lies[-1], traj_b.proof(CHEAT_N - 1), "http://solver.test/checkpoints"
        )
    )
    stake_b = market.functions.getJob(jid_b).call().stake
    players = Players(
        defender=DisputeDefender(solver, lambda job: Trajectory.in_memory(lies)),
        challenger=Challenger(client_for(actors.challenger)),
        arbiters=[Arbiter(client_for(v), honest_replay, tmp / f"{v.address}.json") for v in actors.verifiers],
    )
    game = Game(job_id=jid_b, leaves=lies, bad_leaf=FIRST_LIE)
    game.dispute_id = players.challenger.open(jid_b)
    indexed()
    locks = {a: api.get(f"/stakers/{a}").json()["locks"] for a in (actors.solver.address, actors.challenger.address)}
    d = play(w3, contracts, game, players)
    assert d.outcome == 2 and market.functions.getJob(jid_b).call().state == 5  # challenger won; job slashed
    indexed()
    return Run(
        url=url,
        honest_job=job_a,
        cheat_job=job_b,
        dispute_id=game.dispute_id,
        solver=actors.solver.address,
        challenger=actors.challenger.address,
        submitter=actors.submitter.address,
        slashed=stake_b,
        verifiers=list(assigned),
        locks_mid_dispute=locks,
    )


def veri(wei: int) -> str:
    """How the pages print an amount (whole tokens here)."""
    assert wei % ETHER == 0
    return f"{wei // ETHER:,} VERI"


# ------------------------------------------------------------------------------------- the JSON behind


def test_json_behind_the_pages_matches_the_chain(market_run, contracts, deployment):
    api = httpx.Client(base_url=market_run.url, timeout=10)
    game, run = contracts.game, market_run
    d = api.get(f"/disputes/{run.dispute_id}").json()
    on_chain = game.functions.getDispute(run.dispute_id).call()
    assert (d["leaf_index"], d["last_move_at"]) == (FIRST_LIE, on_chain.lastMoveAt)
    assert (d["votes_for_solver"], d["votes_for_challenger"]) == (0, 3)
    committee = game.functions.committee(run.dispute_id).call()
    assert [v["arbiter"] for v in d["votes"]] == committee
    for v in d["votes"]:
        chain_vote = game.functions.voteOf(run.dispute_id, v["arbiter"]).call()
        assert v["commitment"] == "0x" + chain_vote.commitment.hex() and v["result"] == "0x" + chain_vote.result.hex()
        assert v["committed_in_tx"] and v["revealed_in_tx"]
    slashes = [t for t in d["transfers"] if t["name"] == "StakeSlashed"]
    assert [(t["args"]["account"], int(t["args"]["amount"])) for t in slashes] == [(run.solver, run.slashed)]
    assert all(t["dispute_id"] == run.dispute_id and t["job_id"] == run.cheat_job for t in d["transfers"])

    solver = api.get(f"/stakers/{run.solver}").json()
    assert (int(solver["slashed_total"]), solver["locks"]) == (run.slashed, [])
    assert [(s["job_id"], s["dispute_id"]) for s in solver["slashes"]] == [(run.cheat_job, run.dispute_id)]
    # while the dispute ran: the solver's job stake under the job id, the challenger's bond under the dispute
    (job_lock,) = run.locks_mid_dispute[run.solver]
    assert (job_lock["key"], job_lock["job_id"], job_lock["dispute_id"]) == (run.cheat_job, run.cheat_job, None)
    assert int(job_lock["amount"]) == run.slashed
    (bond,) = run.locks_mid_dispute[run.challenger]
    assert (bond["job_id"], bond["dispute_id"]) == (run.cheat_job, run.dispute_id)
    assert int(bond["amount"]) == int(on_chain.bond) > 0  # the dispute's own bond (disputeBondFor of the job)

    # the stakers list, paged: every account once, the solver slashed once, nobody else
    seen, after = [], None
    while True:
        page = api.get("/stakers", params={"limit": 3} | ({"after": after} if after else {})).json()
        seen += page["items"]
        after = page["next_cursor"]
        if after is None:
            break
    assert len({s["address"] for s in seen}) == len(seen) >= 8
    assert [(s["address"], s["slashes"], int(s["slashed_total"])) for s in seen if s["slashes"]] == [
        (run.solver, 1, run.slashed)
    ]
    for s in seen:
        p = contracts.stakes.functions.positionOf(s["address"]).call()
        assert (int(s["free"]), int(s["locked"]), int(s["claimable"])) == (p.free, p.locked, p.claimable)

    jobs = api.get("/jobs", params={"solver": run.solver}).json()["items"]
    assert {(j["job_id"], j["solver"]) for j in jobs} == {(run.honest_job, run.solver), (run.cheat_job, run.solver)}
    assert api.get("/jobs", params={"solver": run.submitter}).json()["items"] == []
    api.close()


# ------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="module")
def browser():
    with launch_browser() as b:
        yield b


@pytest.fixture(scope="module")
def shots(artifacts_dir: Path) -> Path:
    out = artifacts_dir / "pages"
    out.mkdir(exist_ok=True)
    return out


@pytest.fixture(scope="module")
def load_times(shots: Path):
    times: dict[str, float] = {}
    yield times
    (shots / "load-times.json").write_text(json.dumps(times, indent=2) + "\n")


@pytest.fixture
def page(browser):
    with checked_page(browser) as pg:
        yield pg


# -------------------------------------------------------------------------------------------- pages


def test_job_board_lists_both_jobs_and_filters(market_run, page, shots, load_times):
    open_page(page, market_run.url + "/", "jobs", load_times)
    assert page.url == market_run.url + "/ui/"  # / redirects to the pages
    rows = page.locator("[data-testid=jobs-table] tbody tr")
    assert rows.count() == 2
    by_job = {rows.nth(i).locator("a").first.get_attribute("title"): rows.nth(i) for i in range(2)}
    assert badges(by_job[market_run.cheat_job]) == ["slashed"]
    assert badges(by_job[market_run.honest_job]) == ["finalized"]
    assert by_job[market_run.cheat_job].locator(f"a[title='{market_run.solver}']").count() == 1
    shot(page, shots, "jobs")

    page.select_option("select[name=status]", "slashed")
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready]")
    assert "status=slashed" in page.url
    rows = page.locator("[data-testid=jobs-table] tbody tr")
    assert rows.count() == 1 and rows.first.locator("a").first.get_attribute("title") == market_run.cheat_job

    open_page(page, f"{market_run.url}/ui/index.html?solver={market_run.challenger}", "jobs-filtered", load_times)
    assert page.locator("[data-testid=jobs-table]").count() == 0
    assert "no job matches" in page.inner_text("main")
    open_page(page, f"{market_run.url}/ui/index.html?solver={market_run.solver.lower()}", "jobs-solver", load_times)
    assert page.locator("[data-testid=jobs-table] tbody tr").count() == 2


def test_slashed_job_page_links_to_its_dispute(market_run, page, shots, load_times):
    open_page(page, market_run.url + "/ui/", "jobs", load_times)
    page.click(f"a[title='{market_run.cheat_job}']")
    page.wait_for_selector("body[data-ready]")
    open_ms = float(page.get_attribute("body", "data-ready"))
    load_times["job"] = open_ms
    assert badges(page.locator("h1")) == ["slashed"]
    assert page.inner_text("[data-testid=num-leaves]") == str(CHEAT_N)
    outcome = page.inner_text("[data-testid=outcome]")
    assert "slashed" in outcome and veri(market_run.slashed) in outcome
    assert page.locator("[data-testid=bids-table] tbody tr").count() == 1
    disputes = page.locator("[data-testid=disputes-table] tbody tr")
    assert disputes.count() == 1 and badges(disputes.first) == ["resolved", "challenger won"]
    shot(page, shots, "job")
    disputes.first.locator("a", has_text=f"#{market_run.dispute_id}").click()
    page.wait_for_selector("body[data-ready]")
    assert page.url.endswith(f"/ui/dispute.html?id={market_run.dispute_id}")


def test_finalized_job_page_shows_trajectory_and_attestations(market_run, page, shots, load_times):
    open_page(page, f"{market_run.url}/ui/job.html?id={market_run.honest_job}", "job-finalized", load_times)
    assert badges(page.locator("h1")) == ["finalized"]
    assert page.inner_text("[data-testid=num-leaves]") == str(HONEST_N)
    main = page.inner_text("main")
    assert "solver paid" in main and "no dispute" in main
    audit = page.locator("[data-testid=audit-table] tbody tr")
    assert audit.count() == len(market_run.verifiers)
    assert all(badges(audit.nth(i)) == ["attested"] for i in range(audit.count()))
    shot(page, shots, "job-finalized")


def test_job_page_draws_the_loss_curve_one_point_per_checkpoint(market_run, page, shots, load_times):
    metrics = httpx.get(f"{market_run.url}/jobs/{market_run.honest_job}/metrics").json()
    assert [p["leaf"] for p in metrics["points"]] == list(range(HONEST_N)) and metrics["missing"] == []
    assert all(p["heldout_examples"] == 128 and 0 < p["heldout_accuracy"] <= 1 for p in metrics["points"])
    open_page(page, f"{market_run.url}/ui/job.html?id={market_run.honest_job}", "job-loss-curve", load_times)
    chart = page.locator("[data-testid=loss-chart]")
    assert chart.count() == 1
    for series, key in (("heldout", "heldout_loss"), ("train", "train_loss")):
        dots = chart.locator(f"[data-testid=loss-point-{series}]")
        assert dots.count() == HONEST_N
        steps = [int(dots.nth(i).get_attribute("data-step")) for i in range(HONEST_N)]
        assert steps == [p["step"] for p in metrics["points"]] == [4 * (i + 1) for i in range(HONEST_N)]
        values = [float(dots.nth(i).get_attribute("data-value")) for i in range(HONEST_N)]
        assert values == [p[key] for p in metrics["points"]]
    assert page.locator("[data-testid=metrics-table] tbody tr").count() == HONEST_N
    # the cheater's job mirrored nothing: the page says so instead of drawing
    open_page(page, f"{market_run.url}/ui/job.html?id={market_run.cheat_job}", "job-no-metrics", load_times)
    assert page.locator("[data-testid=loss-chart-empty]").count() == 1
    chart_page = page.context.new_page()
    try:
        chart_page.goto(f"{market_run.url}/ui/job.html?id={market_run.honest_job}")
        chart_page.wait_for_selector("body[data-ready]")
        chart_page.locator("[data-testid=loss-chart]").screenshot(path=str(shots / "loss-chart.png"))
    finally:
        chart_page.close()
    shot(page, shots, "job-no-metrics")


def test_dispute_explorer_draws_the_descent_to_the_lying_leaf(market_run, page, shots, load_times):
    open_page(page, f"{market_run.url}/ui/dispute.html?id={market_run.dispute_id}", "dispute", load_times)
    depth = merkle.leaf_depth(FIRST_LIE, CHEAT_N)
    assert depth == 4
    # the path drawn through the tree: one highlighted edge per level, down to the disputed leaf
    assert page.locator("[data-testid=tree] line.edge.path").count() == depth
    assert page.locator("[data-testid=tree] circle.node.path").count() == depth + 1
    assert page.locator("[data-testid=tree] circle.node").count() == 2 * CHEAT_N - 1  # the whole tree
    assert page.locator("[data-testid=tree] circle.disputed").count() == 1
    assert page.inner_text("[data-testid=step-count]") == f"{depth} steps"
    assert page.inner_text("[data-testid=leaf-index]").startswith(f"leaf {FIRST_LIE}")
    # each step listed with its transaction, block, time and both clocks
    steps = page.locator("[data-testid=moves-table] tr.step-row")
    assert steps.count() == depth
    for i in range(depth):
        cells = steps.nth(i).locator("td").all_inner_texts()
        assert cells[0] == f"step {i + 1}" and cells[1] == "SideChosen"
        assert cells[4].startswith("0x") and cells[5].isdigit() and re.fullmatch(r"\d\d:\d\d:\d\d", cells[6])
        assert re.fullmatch(CLOCK, cells[7]) and re.fullmatch(CLOCK, cells[8])
    assert badges(page.locator("h1")) == ["resolved", "challenger won"]
    assert page.inner_text("[data-testid=slashed-amount]") == veri(market_run.slashed)
    votes = page.locator("[data-testid=votes-table] tbody tr")
    assert votes.count() == 3 and all(badges(votes.nth(i)) == ["for challenger"] for i in range(3))
    transfers = page.inner_text("[data-testid=transfers-table]")
    assert "StakeSlashed" in transfers
    shot(page, shots, "dispute")
    # the solver's link leads to its staker page
    page.locator("dl.kv").first.locator(f"a[title='{market_run.solver}']").click()
    page.wait_for_selector("body[data-ready]")
    assert page.url.endswith(f"/ui/staker.html?address={market_run.solver}")


def test_staker_page_shows_the_solver_slashed(market_run, page, shots, load_times):
    open_page(page, f"{market_run.url}/ui/staker.html?address={market_run.solver}", "staker", load_times)
    assert "slashed" in badges(page.locator("h1"))
    assert page.is_visible("[data-testid=slashed-banner]")
    assert page.inner_text("[data-testid=slashed-total]") == veri(market_run.slashed)
    slashes = page.locator("[data-testid=slashes-table] tbody tr")
    assert slashes.count() == 1
    assert slashes.first.locator(f"a[title='{market_run.cheat_job}']").count() == 1
    assert slashes.first.locator("a", has_text=f"#{market_run.dispute_id}").count() == 1
    jobs = page.locator("[data-testid=solver-jobs-table] tbody tr")
    assert jobs.count() == 2
    assert page.locator("[data-testid=locks-table]").count() == 0  # both jobs settled: nothing locked
    assert page.locator("[data-testid=history-table] tbody tr").count() >= 4
    shot(page, shots, "staker")
    # the slashed job is one click away
    slashes.first.locator(f"a[title='{market_run.cheat_job}']").click()
    page.wait_for_selector("body[data-ready]")
    assert market_run.cheat_job in page.url


def test_challenger_page_is_not_slashed_and_lists_stakers(market_run, page, shots, load_times):
    open_page(page, f"{market_run.url}/ui/staker.html?address={market_run.challenger}", "staker-challenger", load_times)
    assert badges(page.locator("h1")) == ["never slashed"]
    assert page.locator("[data-testid=slashed-banner]").count() == 0

    open_page(page, f"{market_run.url}/ui/stakers.html", "stakers", load_times)
    rows = page.locator("[data-testid=stakers-table] tbody tr")
    slashed = [r for r in rows.all() if "slashed" in badges(r)]
    assert [r.locator("a").first.get_attribute("title") for r in slashed] == [market_run.solver]
    shot(page, shots, "stakers")

    open_page(page, f"{market_run.url}/ui/disputes.html", "disputes", load_times)
    rows = page.locator("[data-testid=disputes-table] tbody tr")
    assert rows.count() == 1 and badges(rows.first) == ["resolved", "challenger won"]
    shot(page, shots, "disputes")


def test_bad_ids_show_a_clear_error(market_run, page):
    page.goto(f"{market_run.url}/ui/job.html?id=0x1234")
    page.wait_for_selector("body[data-ready]")
    assert "bad_job_id" in page.inner_text("[data-testid=error]")
    page.goto(f"{market_run.url}/ui/dispute.html?id=999")
    page.wait_for_selector("body[data-ready]")
    assert "not_found" in page.inner_text("[data-testid=error]")
    # the browser logs the 400 and the 404 themselves; nothing else may be logged
    expected = ("Failed to load resource", "HTTP 400 ", "HTTP 404 ")
    page.errors[:] = [e for e in page.errors if not e.startswith(expected)]
