"""A staker's record in the API: an availability fee a challenger paid a solver that published what it asked
for is a price, not a slash; a slash beside it still counts."""

from __future__ import annotations

from api_helpers import NOW

from marketplace_api.models import ChainEventRow
from protocol.audit.record import ARBITER_TAG, FEE_TAG, dispute_key


def _row(n: int, name: str, contract: str, who: str | None, **args) -> ChainEventRow:
    return ChainEventRow(
        block_number=10 + n,
        block_hash="0x" + f"{n:02x}" * 32,
        block_time=NOW + n,
        tx_hash="0x" + f"{n + 16:02x}" * 32,
        log_index=0,
        contract=contract,
        name=name,
        args=args,
        account=who,
    )


def test_an_availability_fee_is_no_slash_and_a_slash_beside_it_counts(market):
    verifier, solver = market.stranger.address, market.solver.address
    fee_key = "0x" + dispute_key(FEE_TAG, 7).hex()
    arbiter_key = "0x" + dispute_key(ARBITER_TAG, 9).hex()
    rows = [
        _row(1, "StakeLocked", "StakeManager", verifier, account=verifier, key=fee_key, amount=5),
        _row(2, "AvailabilityFeeSettled", "DisputeGame", None, disputeId=7, jobId="0x" + "ab" * 32, to=solver, fee=5),
        _row(3, "StakeSlashed", "StakeManager", verifier, account=verifier, key=fee_key, amount=5, burned=0),
        _row(4, "StakeLocked", "StakeManager", verifier, account=verifier, key=arbiter_key, amount=10),
        _row(5, "StakeSlashed", "StakeManager", verifier, account=verifier, key=arbiter_key, amount=10, burned=0),
    ]
    with market.ctx.sessions() as s:
        s.add_all(rows)
        s.commit()
    got = market.client.get(f"/stakers/{verifier}").json()
    assert int(got["slashed_total"]) == 10, got
    assert [e["args"]["key"] for e in got["slashes"]] == [arbiter_key], got["slashes"]
    assert {e["name"] for e in got["history"]} >= {"StakeSlashed"}  # the fee's transfer is still in its history
    assert sum(1 for e in got["history"] if e["name"] == "StakeSlashed") == 2
