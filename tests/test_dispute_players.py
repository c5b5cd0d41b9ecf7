"""The dispute game played end to end on anvil only through the node-side players (DESIGN §8, issues #5/#6):
:class:`solver.defence.DisputeDefender`, :class:`verifier.challenge.Challenger` and
:class:`verifier.arbiter.Arbiter`. A driver loop calls ``step()`` on every player and only mines blocks or
moves the clock when nobody had a move to make.

* a lying solver is disputed down to its first wrong leaf (rounds == the leaf's RFC 9162 depth) and slashed;
* an honest solver wrongly challenged wins and the challenger's bond is slashed;
* players recreated mid-descent and mid commit/reveal (the arbiters reloading their salt files) still end
  the game with the honest side winning;
* a withholding solver: the arbiters cannot replay (``replay`` returns None) → UNAVAILABLE → solver slashed;
* a stalling solver loses on its chess clock (the challenger's ``timeout``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dispute_scenarios import (
    Game,
    Players,
    honest_replay,
    make_players,
    make_world,
    new_job,
    play,
    resolved_event,
    start,
    withheld_replay,
)

from protocol import merkle
from protocol.anvil import increase_time
from protocol.audit import audit_dispute, read_dispute
from protocol.constants import JobState, Outcome, Phase
from protocol.tx import send
from verifier.arbiter import vote_commitment
from verifier.challenge import Challenger

pytestmark = pytest.mark.chain

SLASHED, COMMITTED = 5, 2
SOLVER_WON, CHALLENGER_WON = 1, 2


@pytest.fixture(scope="module")
def world(anvil, w3, deployment, contracts, actors, tmp_path_factory):
    """Tops the solver's stake up (four jobs lock 4 × 200 VERI) and returns a factory of ChainClients."""
    return make_world(anvil, w3, deployment, contracts, actors, tmp_path_factory.mktemp("arbiters"))


def test_lying_solver_is_slashed_after_leaf_depth_rounds(w3, deployment, contracts, actors, world):
    n, first_wrong = 13, 9
    game, players = start(w3, deployment, contracts, actors, world, n=n, lie_from=first_wrong, bad_leaf=9)
    stake = contracts.market.functions.getJob(game.job_id).call().stake
    d = play(w3, contracts, game, players)
    assert d.outcome == CHALLENGER_WON and (d.lo, d.hi) == (first_wrong, first_wrong + 1)
    assert game.rounds() == merkle.leaf_depth(first_wrong, n) == 4
    solver_moves = [m for who, m in game.moves if who == "solver" and m in {"reveal", "open-leaf"}]
    assert solver_moves == ["reveal"] * 4 + ["open-leaf"]  # one move per turn, none repeated
    assert d.preStateRoot == game.leaves[first_wrong - 1] and d.postStateRoot == game.leaves[first_wrong]
    event = resolved_event(contracts, game.dispute_id)
    assert (event["winner"], event["loser"], event["slashed"]) == (
        actors.challenger.address,
        actors.solver.address,
        stake,
    )
    assert contracts.market.functions.getJob(game.job_id).call().state == SLASHED
    # every player is idle on a resolved dispute
    assert players.defender.step(game.dispute_id) == "resolved"
    assert players.challenger.step(game.dispute_id, 9) == "resolved"
    assert {a.step(game.dispute_id) for a in players.arbiters} == {"resolved"}


def test_honest_solver_wrongly_challenged_wins_the_bond(w3, deployment, contracts, actors, world):
    n, accused = 8, 5
    game, players = start(w3, deployment, contracts, actors, world, n=n, lie_from=None, bad_leaf=accused)
    stakes = contracts.stakes
    challenger_before = stakes.functions.positionOf(actors.challenger.address).call()
    d = play(w3, contracts, game, players)
    assert d.outcome == SOLVER_WON and game.rounds() == merkle.leaf_depth(accused, n) == 3
    event = resolved_event(contracts, game.dispute_id)
    bond = int(contracts.game.functions.getDispute(game.dispute_id).call().bond)
    job = contracts.market.functions.getJob(game.job_id).call()
    assert bond == contracts.game.functions.disputeBondFor(job.stake, job.price).call()
    assert (event["winner"], event["loser"], event["slashed"]) == (
        actors.solver.address,
        actors.challenger.address,
        bond,
    )
    after = stakes.functions.positionOf(actors.challenger.address).call()
    # the bond (locked at open) is gone, not unlocked back into free stake
    assert (challenger_before.free + challenger_before.locked) - (after.free + after.locked) == bond
    assert contracts.market.functions.getJob(game.job_id).call().state == COMMITTED  # job reopened
    # the solver's share of the bond is credited; withdraw_if_owed pays it out once
    share = bond * deployment.params["market"]["slashWinnerBps"] // 10_000
    balance = contracts.token.functions.balanceOf(actors.solver.address).call()
    assert players.defender.withdraw_if_owed() >= share
    assert contracts.token.functions.balanceOf(actors.solver.address).call() - balance >= share
    assert players.defender.withdraw_if_owed() == 0


@pytest.mark.parametrize("solver_lies", [True, False], ids=["lying-solver", "honest-solver"])
def test_players_restarted_mid_game_still_let_the_honest_side_win(
    w3, deployment, contracts, actors, world, solver_lies
):
    n = 11
    bad = 6
    game, players = start(
        w3, deployment, contracts, actors, world, n=n, lie_from=bad if solver_lies else None, bad_leaf=bad
    )
    restarts: list[str] = []
    crashed_vote: list[bytes] = []
    trajectories = {game.job_id: game.leaves}

    def restart(g: Game, current: Players) -> Players | None:
        last = g.moves[-1]
        if last == ("challenger", "choose-left") or last == ("challenger", "choose-right"):
            if g.rounds() == 1 and "descent" not in restarts:  # mid-descent
                restarts.append("descent")
                return make_players(world, actors, trajectories, honest_replay)
        if last[1] == "draw-committee" and "pre-commit" not in restarts:
            # an arbiter dies after persisting its salt, before its commitment is sent
            restarts.append("pre-commit")
            drawn = contracts.game.functions.committee(g.dispute_id).call()
            victim = next(a for a in current.arbiters if a.client.address == drawn[0])

            def crash(*args, **kwargs):
                raise KeyboardInterrupt("kill -9")

            victim.client.transact = crash
            with pytest.raises(KeyboardInterrupt):
                victim.step(g.dispute_id)
            crashed_vote.extend(victim.stored_vote(g.dispute_id) or ())
            assert crashed_vote and contracts.game.functions.voteOf(g.dispute_id, drawn[0]).call().status == 0
            return make_players(world, actors, trajectories, honest_replay)
        if last[1] == "commit" and "vote" not in restarts:  # one arbiter committed, the rest not yet
            restarts.append("vote")
            files = sorted(Path(world[1]).glob("*.json"))
            assert files and all(json.loads(f.read_text()) for f in files)
            return make_players(world, actors, trajectories, honest_replay)
        return None

    d = play(w3, contracts, game, players, on_move=restart)
    assert restarts == ["descent", "pre-commit", "vote"]
    assert d.outcome == (CHALLENGER_WON if solver_lies else SOLVER_WON)
    assert game.rounds() == merkle.leaf_depth(bad, n)
    # every drawn arbiter revealed (nobody lost its salt across the restart) and voted the same way
    committee = contracts.game.functions.committee(game.dispute_id).call()
    votes = [contracts.game.functions.voteOf(game.dispute_id, a).call() for a in committee]
    assert [v.status for v in votes] == [2] * len(committee)
    # the arbiter killed before sending committed the (result, salt) it had persisted, not a new draw
    assert votes[0].commitment == vote_commitment(*crashed_vote, committee[0])
    assert votes[0].result == crashed_vote[0] == votes[1].result
    assert d.reveals == len(committee) == (d.votesForChallenger if solver_lies else d.votesForSolver)


def test_withholding_solver_loses_on_unavailable(w3, deployment, contracts, actors, world):
    n, bad = 8, 3
    game, players = start(
        w3, deployment, contracts, actors, world, n=n, lie_from=None, bad_leaf=bad, replay=withheld_replay
    )
    d = play(w3, contracts, game, players)
    assert d.outcome == CHALLENGER_WON and game.rounds() == merkle.leaf_depth(bad, n)
    unavailable = contracts.game.functions.UNAVAILABLE().call()
    for a in contracts.game.functions.committee(game.dispute_id).call():
        assert contracts.game.functions.voteOf(game.dispute_id, a).call().result == unavailable
    assert contracts.market.functions.getJob(game.job_id).call().state == SLASHED
    event = resolved_event(contracts, game.dispute_id)
    assert event["winner"] == actors.challenger.address


def test_stalling_solver_loses_on_its_clock(w3, deployment, contracts, actors, world):
    game, players = start(w3, deployment, contracts, actors, world, n=5, lie_from=None, bad_leaf=2)
    assert players.challenger.step(game.dispute_id, game.bad_leaf) == "wait"  # the solver's turn, clock running
    budget = int(contracts.game.functions.params().call().clockBudget)
    increase_time(w3, budget + 1)  # the solver never answers
    assert players.challenger.step(game.dispute_id, game.bad_leaf) == "timeout"
    d = contracts.game.functions.getDispute(game.dispute_id).call()
    assert (d.phase, d.outcome) == (Phase.RESOLVED, CHALLENGER_WON)
    assert contracts.market.functions.getJob(game.job_id).call().state == SLASHED
    assert players.defender.step(game.dispute_id) == "resolved"  # a solver that wakes up too late does nothing


def test_queued_challenge_gets_its_turn_and_a_superseded_one_its_bond(w3, deployment, contracts, actors, world):
    """Issue 14, attack 3: a false accuser's dispute runs first; the honest challenger, filing behind it, is
    queued (the player waits) and starts when the false one ends, inside that settling transaction; it catches
    the liar. A third challenge, still queued when the job is slashed, is dropped with its bond returned. The
    auditor's rules (``dispute.queue-turn`` among them) pass on all three."""
    client_for, _ = world
    n, first_wrong = 8, 5
    job_id, leaves = new_job(w3, deployment, contracts, actors, world, n=n, lie_from=first_wrong)
    accuser, late = actors.verifiers[0], actors.verifiers[1]
    first = Game(job_id=job_id, leaves=leaves, bad_leaf=0)  # leaf 0 is honest: a false accusation
    p1 = make_players(world, actors, {job_id: leaves}, honest_replay)
    p1.challenger = Challenger(client_for(accuser))
    first.dispute_id = p1.challenger.open(job_id)
    honest = Game(job_id=job_id, leaves=leaves, bad_leaf=first_wrong)
    p2 = make_players(world, actors, {job_id: leaves}, honest_replay)
    honest.dispute_id = p2.challenger.open(job_id)
    game = contracts.game.functions
    assert game.getDispute(honest.dispute_id).call().phase == Phase.QUEUED
    assert p2.challenger.step(honest.dispute_id, first_wrong) == "wait"
    assert p2.challenger.open(job_id) == honest.dispute_id  # idempotent while queued

    d1 = play(w3, contracts, first, p1)
    assert d1.outcome == SOLVER_WON
    assert game.activeDisputeOf(job_id).call() == honest.dispute_id
    third = Challenger(client_for(late)).open(job_id)  # files behind the running honest dispute
    assert game.getDispute(third).call().phase == Phase.QUEUED

    d2 = play(w3, contracts, honest, p2)
    assert d2.outcome == CHALLENGER_WON
    assert contracts.market.functions.getJob(job_id).call().state == SLASHED
    late_before = contracts.stakes.functions.positionOf(late.address).call()
    assert Challenger(client_for(late)).step(third, 0) == "drop-superseded"
    assert game.getDispute(third).call().outcome == Outcome.SUPERSEDED
    late_after = contracts.stakes.functions.positionOf(late.address).call()
    bond = int(game.getDispute(third).call().bond)
    assert (late_after.free - late_before.free, late_before.locked - late_after.locked) == (bond, bond)

    reader = client_for(actors.deployer)
    for dispute_id in (first.dispute_id, honest.dispute_id, third):
        verdict = audit_dispute(read_dispute(reader, dispute_id))
        assert verdict.ok, json.dumps(verdict.to_json(), indent=1)
    checks = {c.rule: c.detail for c in audit_dispute(read_dispute(reader, honest.dispute_id)).checks}
    assert "started in tx" in checks["dispute.queue-turn"]


def test_short_pool_waits_then_voids_the_job(w3, deployment, contracts, actors, world):
    """Issue 14, attack 6: with only two eligible arbiters (R = 3) the draw never seats a short committee: the
    players' ``draw-committee`` only re-arms it (``CommitteeShort``) until ``committeeWait`` has passed after the
    leaf opening; then the dispute ends ``NO_COMMITTEE`` and the job is voided (price refunded, stake unlocked,
    nobody paid or slashed). The auditor's rules pass on it."""
    game_fns = contracts.game.functions
    leaving = actors.verifiers[2:]
    for v in leaving:
        send(w3, v, contracts.stakes.functions.setVerifier(False))
    try:
        game, players = start(w3, deployment, contracts, actors, world, n=4, lie_from=2, bad_leaf=2)
        wait = int(game_fns.params().call().committeeWait)
        shorts: list[int] = []

        def wait_out_the_pool(g, current):
            if g.moves[-1][1] == "draw-committee" and game_fns.getDispute(g.dispute_id).call().phase != Phase.RESOLVED:
                shorts.append(g.dispute_id)
                increase_time(w3, wait)
            return None

        d = play(w3, contracts, game, players, on_move=wait_out_the_pool)
        assert shorts and d.outcome == Outcome.NO_COMMITTEE
        assert contracts.market.functions.getJob(game.job_id).call().state == JobState.VOIDED
        assert game_fns.committee(game.dispute_id).call() == []
        verdict = audit_dispute(read_dispute(world[0](actors.deployer), game.dispute_id))
        assert verdict.ok, json.dumps(verdict.to_json(), indent=1)
    finally:
        for v in leaving:
            send(w3, v, contracts.stakes.functions.setVerifier(True))
