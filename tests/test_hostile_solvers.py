"""Hostile solvers against real verifier processes on anvil: whatever a lying solver serves — a checkpoint
whose manifest the replay code does not expect (``malformed``), a server that trickles (``trickle``), hangs
(``hang``) or answers with an endless body (``bomb``) — its job ends **slashed** through the real dispute
game, the honest jobs running alongside finalize, and no verifier process dies or grows past a memory bound.

The three lying servers mirror their data honestly: the verifiers give up on them within their fetch budget
(:mod:`protocol.budget`) and read the marketplace mirror; ``malformed`` is caught from the mirror too, as
``invalid`` evidence (its checkpoint hashes to the committed leaf and is no state of the job, so the dispute
goes to the leaf that committed it). ``baitswitch`` withholds every pre-state from everyone and publishes one on
chain only when an availability challenge names it: the verifiers challenge, read what it publishes, replay, and
dispute the lie; no honest challenger loses a bond to it. It lies in segment 4 of 6 (pinned), so the verifiers
must ask for leaves 0..3 in turn before they can check the lying segment, and the fees those answered challenges
held go back to them when the job ends slashed. One market run for all keeps the suite short on two cores.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from market_world import FullAuditRun, full_audit_params

from protocol.constants import WEI_PER_TOKEN

pytestmark = pytest.mark.chain

STEPS, INTERVAL = 24, 4  # N = 6 leaves, every one audited
SOLVERS = {
    "solver0": None,
    "solver1": "malformed",
    "solver2": "trickle",
    "solver3": "hang",
    "solver4": "bomb",
    "account17": "baitswitch",
}
VERIFIERS = {f"verifier{i}": None for i in range(5)}
JOB_PLAN = ["solver0", "solver1", "solver2", "solver3", "solver4", "account17", "solver0"]
#: baitswitch lies late: every earlier pre-state must be asked for and published before the lie can be checked.
BAIT_SEGMENT = 4
#: Peak resident memory a verifier process may reach (torch + numba + the engine are ~0.5 GB of it).
RSS_BOUND = 1536 << 20


def _fees_back(run: FullAuditRun, report, timeout: float = 60.0) -> list[tuple[int, str, str]]:
    """(dispute, recipient, challenger) of each AvailabilityFeeSettled on the bait job, once every answered
    challenge of it is settled (the verifiers reclaim them when they see the job slashed), or when ``timeout`` ends."""
    game = run.user.chain.dispute_game
    bait = next(j["id"] for j in report.jobs if j["adversary"] == "baitswitch")
    published = {d["id"]: d["challenger"] for d in report.disputes if d["job"] == bait and d["outcome"] == "published"}
    deadline = time.monotonic() + timeout
    while True:
        logs = game.events.AvailabilityFeeSettled().get_logs(
            argument_filters={"jobId": bytes.fromhex(bait[2:])}, from_block=run.user.chain.deployment.start_block
        )
        got = [
            (int(e["args"]["disputeId"]), run.role_of(e["args"]["to"]), published.get(int(e["args"]["disputeId"]), ""))
            for e in logs
        ]
        if len(got) >= len(published) or time.monotonic() > deadline:
            return got
        time.sleep(1.0)


def _peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile")
    params = full_audit_params(home / "params.json", auditWindow=90)
    run = FullAuditRun(
        home / "run",
        params,
        VERIFIERS,
        solvers=SOLVERS,
        steps=STEPS,
        interval=INTERVAL,
        price=20 * WEI_PER_TOKEN,
        # malformed pinned too: its checkpoint must be a pre-state some audited segment loads (the last segment's
        # leaf is nobody's pre-state, so no replay would report it "invalid")
        adversary_params={"baitswitch": (f"segment={BAIT_SEGMENT}",), "malformed": ("segment=2",)},
    )
    with run:
        for i, role in enumerate(JOB_PLAN):
            run.submit(role, seed=100 + i)
        run.wait_all(timeout=900)
        report = run.report()
        verifiers = {role: run.nodes[role] for role in VERIFIERS}
        alive = {role: p.popen.poll() is None for role, p in verifiers.items()}
        rss = {role: _peak_rss(p.pid) for role, p in verifiers.items() if alive[role]}
        metrics = {}
        for role in VERIFIERS:
            metrics[role] = httpx.get(run.nodes[role].info["metrics_url"], timeout=10).text
        fees = _fees_back(run, report)
        yield {"report": report, "alive": alive, "rss": rss, "metrics": metrics, "fees": fees}


def test_every_hostile_solver_is_slashed_and_honest_jobs_finalize(market):
    report = market["report"]
    by_adversary = {j["adversary"]: j for j in report.jobs if j["adversary"]}
    assert set(by_adversary) == {"malformed", "trickle", "hang", "bomb", "baitswitch"}
    for name, job in by_adversary.items():
        disputes = [d for d in report.disputes if d["job"] == job["id"]]
        assert job["outcome"] == "slashed" and job["slashed"], (name, job, disputes, report.problems())
    bait = by_adversary["baitswitch"]["id"]
    on_bait = [d for d in report.disputes if d["job"] == bait]
    assert not any(d["outcome"] == "solver_won" for d in on_bait), on_bait  # no challenger lost a bond to it
    asked = [d for d in on_bait if d["availability"]]
    assert any(d["outcome"] == "published" for d in asked), on_bait  # the late lie needed published pre-states
    assert any(d["outcome"] == "challenger_won" for d in on_bait), on_bait
    honest = [j for j in report.jobs if j["adversary"] is None]
    assert len(honest) == 2 and all(j["outcome"] == "finalized" and j["paid"] for j in honest), honest
    assert not report.problems(), report.problems()


def test_a_bait_and_switch_liar_keeps_no_availability_fee(market):
    fees = market["fees"]
    assert fees, "no answered availability challenge was settled"
    assert all(to == challenger for _, to, challenger in fees), fees  # each fee back to the one who asked


def test_no_verifier_dies_or_outgrows_its_memory_bound(market):
    assert all(market["alive"].values()), market["alive"]
    print("verifier peak RSS (MiB):", {r: round(v / 2**20) for r, v in market["rss"].items()})
    assert max(market["rss"].values()) < RSS_BOUND, market["rss"]


def test_verifier_metrics_count_evidence_by_kind(market):
    counts: dict[str, float] = {}
    for text in market["metrics"].values():
        for kind, value in re.findall(r'veritrain_verifier_evidence_total\{kind="(\w+)"\} ([0-9.e+]+)', text):
            counts[kind] = counts.get(kind, 0.0) + float(value)
    print("evidence by kind over all verifiers:", counts)
    assert counts.get("mismatch", 0) > 0  # the lying servers' perturbed segments
    assert counts.get("invalid", 0) > 0  # malformed's checkpoint
    assert counts.get("match", 0) > 0
