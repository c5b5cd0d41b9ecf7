"""The whole market with real processes: anvil + deployment + the marketplace API (a devnet
with full-audit parameters written by the test), six ``veritrain solver`` processes — one honest and the five
adversaries of #5 (``fake``, ``noise``, ``lazy``, ``withhold``, ``stall``) — and five ``veritrain verifier``
processes, one of them ``--adversary accuse``. The test is the submitter: it posts orders through the REST API
and accepts the chosen solver's bid on each (:class:`veritrain.demo.MarketRun` drives that part).

One market run (to keep the suite short on two cores) checks:

* every cheating solver's job ends **slashed**: the challenger is credited its share of the job stake, the
  submitter refunded the price;
* every dispute that reached a leaf took exactly as many rounds (``SideChosen``) as that leaf's RFC 9162 depth
  (≤ ceil(log2 N); N = 6, so leaves 0-3 are 3 deep and leaves 4-5 only 2); the stalling solver loses on its
  chess clock;
* the honest jobs finalize and the honest solver (and every honest verifier) loses nothing; ``accuse`` disputes
  honest work and loses its bond each time;
* the challenger of one dispute is ``kill -9``-ed mid-descent (seen on chain: after its first choice, with
  choices still to make) and restarted from its data directory within its clock: it makes the remaining
  choices and still wins.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time

import pytest
from market_world import FullAuditRun

from protocol import merkle
from protocol.audit.record import dispute_bond_for
from protocol.constants import Outcome
from protocol.paths import repo_root
from veritrain.market import JobState

pytestmark = pytest.mark.chain

ETHER = 10**18
STEPS, INTERVAL = 24, 4  # N = 6 leaves: depth 3 for leaves 0-3, depth 2 for leaves 4-5
N = STEPS // INTERVAL
SOLVERS = {
    "solver0": None,
    "solver1": "fake",
    "solver2": "noise",
    "solver3": "lazy",
    "solver4": "withhold",
    "account17": "stall",
}
VERIFIERS = {"verifier0": None, "verifier1": None, "verifier2": None, "verifier3": None, "verifier4": "accuse"}
# honest solver0 gets three jobs, every adversary one
JOB_PLAN = ["solver0", "solver1", "solver2", "solver3", "solver4", "account17", "solver0", "solver0"]
SOLVER_WON, CHALLENGER_WON = 1, 2
AWAITING_REVEAL, AWAITING_CHOICE, RESOLVED = 1, 2, 6  # IDisputeGame.Phase


def kill_a_challenger_mid_descent(run: FullAuditRun, stop: threading.Event) -> None:
    """Catches a dispute of an honest challenger against a solver that answers (not ``stall``) and kill -9s the
    challenger right after a choice with more to make, without racing the descent: the disputed solver's
    process is frozen (SIGSTOP) as soon as the dispute is seen — thawed only to reveal the root's children —,
    so once the challenger has chosen, the game waits on the frozen solver (AWAITING_REVEAL) however slow this
    thread is; the challenger is killed there, the solver thawed (SIGCONT; only its own chess clock ran) and the
    challenger restarted from the main thread."""
    assert run.devnet is not None
    w3 = run.devnet.web3()
    game = run.devnet.deployment.contract(w3, "DisputeGame")
    skip_challengers = {run.devnet.address(r) for r, a in VERIFIERS.items() if a is not None}
    skip_solvers = {run.devnet.address(r) for r, a in SOLVERS.items() if a == "stall"}
    start = run.devnet.deployment.start_block
    from_block = start

    def choices(did: int, block: int | str = "latest") -> int:
        return len(
            game.events.SideChosen().get_logs(from_block=start, to_block=block, argument_filters={"disputeId": did})
        )

    def at_root(d) -> bool:  # no choice made yet
        return int(d.lo) == 0 and int(d.hi) == N

    def settle(blocks: int = 2) -> int:  # a transaction already in flight is mined within a block or two
        first = w3.eth.block_number
        while w3.eth.block_number < first + blocks and not stop.is_set():
            time.sleep(0.05)
        return w3.eth.block_number

    while not stop.is_set():
        head = w3.eth.block_number
        opened = (
            game.events.DisputeOpened().get_logs(from_block=from_block, to_block=head) if head >= from_block else []
        )
        from_block = max(from_block, head + 1)
        for ev in opened:
            did = int(ev["args"]["disputeId"])
            d = game.functions.getDispute(did).call()
            if d.challenger in skip_challengers or d.solver in skip_solvers or d.phase == RESOLVED:
                continue
            solver = run.nodes[run.role_of(d.solver)]
            os.kill(solver.pid, signal.SIGSTOP)  # the solver this test started, by its pid
            try:
                settle()
                d = game.functions.getDispute(did).call()
                if d.phase == AWAITING_REVEAL and at_root(d):  # it owes the root's children: let it reveal them
                    os.kill(solver.pid, signal.SIGCONT)
                    while d.phase == AWAITING_REVEAL and at_root(d) and not stop.is_set():
                        time.sleep(0.02)
                        d = game.functions.getDispute(did).call()
                    os.kill(solver.pid, signal.SIGSTOP)
                    settle()
                    d = game.functions.getDispute(did).call()
                while d.phase == AWAITING_CHOICE and not stop.is_set():  # the challenger owes a choice: let it
                    time.sleep(0.05)
                    d = game.functions.getDispute(did).call()
                kill_block = settle()
                d = game.functions.getDispute(did).call(block_identifier=kill_block)
                if not (d.phase == AWAITING_REVEAL and not at_root(d) and d.hi - d.lo >= 2):
                    continue  # the descent ran past us while the solver was thawed: try the next dispute
                role = run.role_of(d.challenger)
                run.kill9(role, dispute=did, phase=int(d.phase))
                # Everything after ``kill_block`` is the restarted process's: the frozen solver cannot move, the
                # dead challenger has nothing in flight (its last choice is mined: the game is AWAITING_REVEAL).
                run.killed.update(
                    kill_block=settle(), range=(int(d.lo), int(d.hi)), choices_before=choices(did, kill_block)
                )
            finally:
                os.kill(solver.pid, signal.SIGCONT)
            run.request_restart(role)
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    home = tmp_path_factory.mktemp("market-e2e")
    params = json.loads((repo_root() / "contracts/params/devnet.json").read_text())
    params["market"]["auditRateBps"] = 10_000  # full audit: detection is certain, the test deterministic
    params["market"]["auditWindow"] = 60
    params_path = home / "params-full-audit.json"
    params_path.write_text(json.dumps(params))
    run = FullAuditRun(
        home / "run", params_path, VERIFIERS, solvers=SOLVERS, steps=STEPS, interval=INTERVAL, price=20 * ETHER,
        node_timeout=180.0,
    )  # fmt: skip
    with run:
        stop = threading.Event()

        def watch() -> None:
            try:
                kill_a_challenger_mid_descent(run, stop)
            except Exception as exc:
                run.killed["watcher_error"] = repr(exc)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t0 = time.monotonic()
        try:
            for role in JOB_PLAN:
                run.submit(role, seed=len(run.jobs) + 1)
            run.wait_all(timeout=420.0)
            run._check_nodes()  # every node, the restarted one included, is still alive at the end
        finally:
            stop.set()
            watcher.join(timeout=30)
        report = run.report()
        (home / "report.json").write_text(json.dumps(report.to_json(), indent=1, default=str))
        killed = {k: v for k, v in run.killed.items() if k != "at"}
        print(f"market run: {time.monotonic() - t0:.0f}s from the first order; killed {killed}", file=sys.stderr)
        yield run, report, killed, params


def _credited_in_tx(chain, tx_hash, who: str) -> int:
    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    from web3.logs import DISCARD

    events = chain.stake_manager.events.Credited().process_receipt(receipt, errors=DISCARD)
    return sum(int(e["args"]["amount"]) for e in events if e["args"]["account"] == who)


def test_every_adversary_is_slashed_and_the_challenger_paid(market):
    run, report, _, params = market
    chain = run.user.chain
    game, mkt = chain.dispute_game, chain.job_market
    start = run.devnet.deployment.start_block
    slashed = {"0x" + bytes(e["args"]["jobId"]).hex(): e for e in mkt.events.JobSlashed().get_logs(from_block=start)}
    resolved = game.events.DisputeResolved().get_logs(from_block=start)
    for job in run.jobs:
        if job.adversary is None:
            continue
        assert job.state == JobState.SLASHED, f"{job.adversary} job ended {job.state.name}"
        ev = slashed[job.job_id]
        assert int(ev["args"]["refunded"]) == run.price  # the submitter gets the price back
        win = [r for r in resolved if "0x" + bytes(r["args"]["jobId"]).hex() == job.job_id
               and int(r["args"]["outcome"]) == CHALLENGER_WON]  # fmt: skip
        assert len(win) == 1
        challenger = win[0]["args"]["winner"]
        assert challenger == ev["args"]["challenger"] and win[0]["args"]["loser"] == job.solver
        share = int(win[0]["args"]["slashed"]) * params["market"]["slashWinnerBps"] // 10_000
        assert _credited_in_tx(chain, win[0]["transactionHash"], challenger) >= share


def test_every_descent_takes_the_leaf_depth_in_rounds(market):
    run, report, _, _ = market
    chain = run.user.chain
    game = chain.dispute_game
    stall = run.devnet.address("account17")
    assert report.disputes
    for entry in report.disputes:
        d = game.functions.getDispute(entry["id"]).call()
        assert d.phase == 6  # every dispute ended
        if d.availability:  # a challenge to publish a withheld leaf: no descent (the withholder did not publish)
            assert entry["rounds"] == 0 and d.outcome == CHALLENGER_WON, entry
        elif d.outcome == Outcome.SUPERSEDED:  # queued behind a dispute that slashed the job: never played
            assert entry["rounds"] == 0, entry
        elif d.hi - d.lo == 1:  # reached a leaf: rounds == that leaf's depth in the RFC 9162 tree
            assert entry["rounds"] == merkle.leaf_depth(int(d.lo), N) <= math.ceil(math.log2(N)), entry
        else:  # ended on a chess clock before the leaf: the stalling solver, or a challenger out of its clock
            assert (d.solver == stall and d.outcome == CHALLENGER_WON) or d.outcome == SOLVER_WON, entry


def test_honest_work_never_loses_stake_and_accuse_loses_its_bond(market):
    run, report, killed_info, params = market
    assert killed_info.get("up_ts"), killed_info
    chain = run.user.chain
    honest_solver = run.devnet.address("solver0")
    accuse = run.devnet.address("verifier4")
    for job in run.jobs:
        if job.adversary is None:
            assert job.state == JobState.FINALIZED
    game = chain.dispute_game
    start = run.devnet.deployment.start_block
    honest = {honest_solver, *(run.devnet.address(r) for r, a in VERIFIERS.items() if a is None)}
    killed = run.devnet.address(killed_info["role"])
    assert not (honest - {killed}) & set(report.slashed_accounts), report.slashed_accounts
    # An availability fee is a price for data the solver then published, not a slash: only challengers pay it,
    # to solvers that answered (an honest verifier whose download ran out of a fair time may ask, and pay).
    verifiers = {run.devnet.address(r) for r in VERIFIERS}
    assert set(report.fees_paid) <= verifiers, (report.fees_paid, report.slashed_accounts)
    # The verifier that was kill -9ed was down for a while: it may lose arbiter stakes, but only on committees drawn
    # while it was down (it learns of them on restart, all at once, and may not replay them all before their commit
    # deadlines on two busy cores), none on a committee drawn while it was running.
    missed = []
    drawn_at = []
    for ev in game.events.CommitteeDrawn().get_logs(from_block=start):
        did = int(ev["args"]["disputeId"])
        if killed in ev["args"]["arbiters"] and not game.events.VoteCommitted().get_logs(
            from_block=start, argument_filters={"disputeId": did, "arbiter": killed}
        ):
            missed.append(int(game.functions.getDispute(did).call().arbiterLock))  # its lock is forfeited
            drawn_at.append(int(chain.w3.eth.get_block(ev["blockNumber"])["timestamp"]))
    down_from, up_at = killed_info["down_ts"], killed_info["up_ts"]
    assert all(down_from <= t <= up_at for t in drawn_at), (drawn_at, missed, down_from, up_at)
    assert report.slashed_accounts.get(killed, 0) == sum(missed), (report.fees_paid, missed)
    accused = [e for e in game.events.DisputeResolved().get_logs(from_block=start)
               if e["args"]["loser"] == accuse]  # fmt: skip
    honest_jobs = {j.job_id for j in run.jobs if j.adversary is None}
    lost_on_honest = [e for e in accused if "0x" + bytes(e["args"]["jobId"]).hex() in honest_jobs]
    assert len(lost_on_honest) >= len(honest_jobs)  # it disputed every honest job and lost each time
    bonds = []
    for e in accused:
        job = chain.job_market.functions.getJob(e["args"]["jobId"]).call()
        bonds.append(dispute_bond_for(params["game"], job.stake, job.price))
    assert [int(e["args"]["slashed"]) for e in accused] == bonds
    assert report.slashed_accounts.get(accuse, 0) == sum(bonds)


def test_verifier_killed_mid_descent_restarts_and_still_wins(market):
    run, report, killed, params = market
    assert killed.get("new_pid"), f"no honest challenger was caught mid-descent and restarted: {killed}"
    assert killed["choices_before"] >= 1  # killed after its first descent move ...
    assert killed["range"][1] - killed["range"][0] >= 2  # ... with at least one choice still to make
    assert killed["restarted_after_s"] < params["game"]["clockBudget"]  # restarted within its chess clock
    chain = run.user.chain
    game = chain.dispute_game
    did = killed["dispute"]
    d = game.functions.getDispute(did).call()
    assert d.phase == RESOLVED and d.outcome == CHALLENGER_WON
    assert d.challenger == run.devnet.address(killed["role"])
    assert d.hi - d.lo == 1  # it went on choosing down to the leaf ...
    start = run.devnet.deployment.start_block
    after = game.events.SideChosen().get_logs(from_block=killed["kill_block"] + 1, argument_filters={"disputeId": did})
    assert after, "no choice was made after the kill"  # ... only the restarted process holds the key
    entry = next(e for e in report.disputes if e["id"] == did)
    assert entry["rounds"] == merkle.leaf_depth(int(d.lo), N) == killed["choices_before"] + len(after)
    all_choices = game.events.SideChosen().get_logs(from_block=start, argument_filters={"disputeId": did})
    assert len(all_choices) == entry["rounds"]
