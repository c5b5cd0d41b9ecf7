"""In-process dispute scenarios on anvil, shared by the tests that play whole disputes (test_dispute_players.py)
and the ones that audit them (test_audit.py): a toy trajectory (the forge Fixture's transition), a job matched
with real EIP-712 signatures and committed, and the node-side players (:class:`solver.defence.DisputeDefender`,
:class:`verifier.challenge.Challenger`, :class:`verifier.arbiter.Arbiter`) stepped by a driver loop that only
mines blocks or moves the clock when nobody had a move to make.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from protocol.anvil import increase_time, mine
from protocol.chain import ChainClient
from protocol.constants import Phase
from protocol.eip712 import Bid, Domain, JobOrder
from protocol.game import IDLE
from protocol.trajectory import Trajectory
from protocol.tx import send
from solver.defence import DisputeDefender
from verifier.arbiter import Arbiter
from verifier.challenge import Challenger

ETHER = 10**18
PRICE = 100 * ETHER
INIT_ROOT = keccak(text="C_init")
SLASHED, COMMITTED = 5, 2
SOLVER_WON, CHALLENGER_WON = 1, 2


def toy_step(pre: bytes) -> bytes:
    """The forge Fixture's toy transition: the state root of abi.encode("step", pre) (one short chunk, DESIGN §3:
    sha256(0x00 ‖ bytes)), so a toy state can be published on chain."""
    return hashlib.sha256(b"\x00" + abi_encode(["string", "bytes32"], ["step", pre])).digest()


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


def make_world(anvil, w3, deployment, contracts, actors, state_dir: Path, *, solver_topup: int = 2_000 * ETHER):
    """Tops the solver's stake up (each job locks 200 VERI) and returns (ChainClient factory, arbiter state dir)."""
    send(w3, actors.deployer, contracts.token.functions.mint(actors.solver.address, solver_topup))
    send(w3, actors.solver, contracts.token.functions.approve(contracts.stakes.address, solver_topup))
    send(w3, actors.solver, contracts.stakes.functions.deposit(solver_topup))

    def client(account) -> ChainClient:
        return ChainClient(anvil.url, deployment, account, poll_interval=0.02, retries=2)

    return client, state_dir


def new_job(
    w3,
    deployment,
    contracts,
    actors,
    world,
    *,
    n: int,
    lie_from: int | None,
    leaves: list[bytes] | None = None,
    init_root: bytes = INIT_ROOT,
    spec_hash: bytes | None = None,
    dataset_hash: bytes | None = None,
    interval: int = 4,
    uri: str = "http://solver.invalid",
) -> tuple[bytes, list]:
    """Matches a job (submitter's order, solver's bid) and commits ``leaves`` (default ``toy_leaves``)
    through the solver's ChainClient; returns (jobId, leaves)."""
    client_for, _ = world
    domain = Domain(chain_id=w3.eth.chain_id, verifying_contract=deployment.address_of("JobMarket"))
    now = int(w3.eth.get_block("latest")["timestamp"])
    order = JobOrder(
        submitter=actors.submitter.address,
        specHash=spec_hash or keccak(text="spec"),
        datasetHash=dataset_hash or keccak(text="dataset"),
        initStateRoot=init_root,
        totalSteps=n * interval,
        checkpointInterval=interval,
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
        workTime=3_600,
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
    leaves = leaves if leaves is not None else toy_leaves(init_root, n, lie_from=lie_from)
    traj = Trajectory.in_memory(leaves)
    solver = client_for(actors.solver)
    solver.transact(market.functions.commit(job_id, traj.root(), n, leaves[-1], traj.proof(n - 1), uri))
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
