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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from protocol import merkle
from protocol.anvil import increase_time, mine
from protocol.chain import ChainClient
from protocol.eip712 import Bid, Domain, JobOrder
from protocol.game import IDLE, Phase
from protocol.trajectory import Trajectory
from protocol.tx import send
from solver.defence import DisputeDefender
from verifier.arbiter import Arbiter, vote_commitment
from verifier.challenge import Challenger

pytestmark = pytest.mark.chain

ETHER = 10**18
PRICE = 100 * ETHER
INIT_ROOT = keccak(text="C_init")
SLASHED, COMMITTED = 5, 2
SOLVER_WON, CHALLENGER_WON = 1, 2


def toy_step(pre: bytes) -> bytes:
    """The forge Fixture's toy transition: keccak256(abi.encode("step", pre))."""
    return keccak(abi_encode(["string", "bytes32"], ["step", pre]))


def toy_leaves(init: bytes, n: int, lie_from: int | None = None) -> list[bytes]:
    leaves, state = [], init
    for i in range(n):
        state = toy_step(state)
        lie = lie_from is not None and i >= lie_from
        leaves.append(keccak(abi_encode(["string", "bytes32"], ["lie", state])) if lie else state)
    return leaves


def honest_replay(pre: bytes, index: int) -> bytes:
    return toy_step(pre)


def withheld_replay(pre: bytes, index: int) -> None:
    return None  # the pre-state blob could not be fetched


_nonce = iter(range(10_000, 10**9))


@dataclass
class Game:
    """One job, its players and the moves they made."""

    job_id: bytes
    leaves: list[bytes]
    bad_leaf: int
    dispute_id: int = 0
    moves: list[tuple[str, str]] = field(default_factory=list)

    def rounds(self) -> int:
        return sum(1 for who, m in self.moves if who == "challenger" and m.startswith("choose-"))


@pytest.fixture(scope="module")
def world(anvil, w3, deployment, contracts, actors, tmp_path_factory):
    """Tops the solver's stake up (four jobs lock 4 × 200 VERI) and returns a factory of ChainClients."""
    amount = 2_000 * ETHER
    send(w3, actors.deployer, contracts.token.functions.mint(actors.solver.address, amount))
    send(w3, actors.solver, contracts.token.functions.approve(contracts.stakes.address, amount))
    send(w3, actors.solver, contracts.stakes.functions.deposit(amount))
    state_dir = tmp_path_factory.mktemp("arbiters")

    def client(account) -> ChainClient:
        return ChainClient(anvil.url, deployment, account, poll_interval=0.02, retries=2)

    return client, state_dir


def new_job(w3, deployment, contracts, actors, world, *, n: int, lie_from: int | None) -> tuple[bytes, list]:
    """Matches a job (submitter's order, solver's bid) and commits ``toy_leaves`` through the solver's
    ChainClient; returns (jobId, leaves)."""
    client_for, _ = world
    domain = Domain(chain_id=w3.eth.chain_id, verifying_contract=deployment.address_of("JobMarket"))
    now = int(w3.eth.get_block("latest")["timestamp"])
    order = JobOrder(
        submitter=actors.submitter.address,
        specHash=keccak(text="spec"),
        datasetHash=keccak(text="dataset"),
        initStateRoot=INIT_ROOT,
        totalSteps=n * 4,
        checkpointInterval=4,
        maxPrice=PRICE,
        deadline=now + 86_400,
        nonce=next(_nonce),
    )
    market = contracts.market
    bid = Bid(
        solver=actors.solver.address,
        orderHash=order.digest(domain),
        price=PRICE,
        stake=market.functions.requiredStake(PRICE).call(),
        expiry=now + 3_600,
        nonce=next(_nonce),
    )
    send(
        w3,
        actors.submitter,
        market.functions.acceptBid(
            order.as_abi_tuple(),
            order.sign(domain, actors.submitter),
            bid.as_abi_tuple(),
            bid.sign(domain, actors.solver),
        ),
    )
    job_id = order.digest(domain)
    leaves = toy_leaves(INIT_ROOT, n, lie_from=lie_from)
    traj = Trajectory.in_memory(leaves)
    solver = client_for(actors.solver)
    solver.transact(
        market.functions.commit(job_id, traj.root(), n, leaves[-1], traj.proof(n - 1), "http://solver.invalid")
    )
    assert market.functions.getJob(job_id).call().state == COMMITTED
    return job_id, leaves


@dataclass
class Players:
    defender: DisputeDefender
    challenger: Challenger
    arbiters: list[Arbiter]


def make_players(world, actors, trajectories: dict[bytes, list[bytes]], replay) -> Players:
    """Fresh player objects with fresh ChainClients: what a restarted process would build. The solver's
    trajectory comes back from its leaves (as from its on-disk store), the arbiters' votes from their files."""
    client_for, state_dir = world
    return Players(
        defender=DisputeDefender(client_for(actors.solver), lambda job: Trajectory.in_memory(trajectories[job])),
        challenger=Challenger(client_for(actors.challenger)),
        arbiters=[Arbiter(client_for(v), replay, state_dir / f"{v.address}.json") for v in actors.verifiers],
    )


def play(
    w3,
    contracts,
    game: Game,
    players: Players,
    *,
    on_move: Callable[[Game, Players], Players | None] | None = None,
    max_turns: int = 200,
) -> object:
    """Steps every player until the dispute is resolved; mines a block (committee seed) or moves the clock
    past the commit/reveal deadline only when nobody moved. ``on_move`` may return new players (a restart)."""
    dispute = contracts.game.functions.getDispute
    for _ in range(max_turns):
        d = dispute(game.dispute_id).call()
        if d.phase == Phase.RESOLVED:
            return d
        moved = False
        steps = [
            ("solver", lambda p=players: p.defender.step(game.dispute_id)),
            ("challenger", lambda p=players: p.challenger.step(game.dispute_id, game.bad_leaf)),
            *((f"arbiter{k}", lambda a=a: a.step(game.dispute_id)) for k, a in enumerate(players.arbiters)),
        ]
        for who, step in steps:
            move = step()
            if move in IDLE:
                continue
            moved = True
            game.moves.append((who, move))
            if on_move is not None and (restarted := on_move(game, players)) is not None:
                players = restarted
                break
        if not moved:
            if d.phase == Phase.AWAITING_COMMITTEE:
                mine(w3)
            elif d.phase == Phase.VOTING:
                increase_time(w3, int(contracts.game.functions.params().call().commitPeriod))
            else:
                pytest.fail(f"nobody moves in phase {Phase(d.phase).name}: {game.moves}")
    pytest.fail(f"dispute {game.dispute_id} not resolved after {max_turns} turns: {game.moves}")


def resolved_event(contracts, dispute_id: int) -> dict:
    (log,) = contracts.game.events.DisputeResolved().get_logs(from_block=0, argument_filters={"disputeId": dispute_id})
    return log["args"]


def start(w3, deployment, contracts, actors, world, *, n, lie_from, bad_leaf, replay=honest_replay):
    job_id, leaves = new_job(w3, deployment, contracts, actors, world, n=n, lie_from=lie_from)
    game = Game(job_id=job_id, leaves=leaves, bad_leaf=bad_leaf)
    players = make_players(world, actors, {job_id: leaves}, replay)
    game.dispute_id = players.challenger.open(job_id)
    assert players.challenger.open(job_id) == game.dispute_id  # idempotent: no second dispute
    return game, players


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
    bond = int(contracts.game.functions.params().call().disputeBond)
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
