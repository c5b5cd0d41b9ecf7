"""Stake top-up and withdrawal against the StakeManager: the one implementation the solver node, the verifier
node and ``veritrain stake`` share.

A deposit is ``approve`` (only when the allowance is short) then ``deposit``; ``setVerifier`` joins or leaves
the verifier pool. Transactions that change the pool's sortition tree can run out of gas when another account
changes it between our estimate and our block (several verifiers registering at once), so they are retried
once with twice the estimate. ``withdraw`` pays out what is claimable plus unbonded stake whose delay passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protocol.chain import ChainClient
from protocol.errors import TransactionFailed, VeritrainError
from protocol.tokens import format_tokens


class InsufficientTokens(VeritrainError, ValueError):
    """The account holds fewer tokens than the stake it is asked to deposit."""


@dataclass(frozen=True)
class StakeChange:
    """What a stake call did: ``deposited`` / ``withdrawn`` in wei and the receipts of the transactions sent."""

    deposited: int = 0
    withdrawn: int = 0
    receipts: tuple[Any, ...] = ()

    @property
    def tx_hashes(self) -> list[str]:
        return ["0x" + bytes(r["transactionHash"]).hex() for r in self.receipts]


def position(client: ChainClient, who: str | None = None) -> Any:
    """``StakeManager.positionOf(who)`` (the client's own account by default)."""
    return client.call(client.stake_manager.functions.positionOf(who or client.address))


def _transact_roomy(client: ChainClient, fn: Any) -> Any:
    try:
        return client.transact(fn)
    except TransactionFailed:
        est = client.with_retries("eth_estimateGas", lambda: fn.estimate_gas({"from": client.address}))
        return client.transact(fn, gas=2 * int(est) + 100_000)


def deposit(client: ChainClient, amount: int, *, verifier: bool | None = None) -> StakeChange:
    """Deposits ``amount`` wei from the wallet (approving the StakeManager first if needed) and, if ``verifier``
    is given, sets the verifier flag to it. Raises :class:`InsufficientTokens` before sending anything if the
    wallet holds less than ``amount``."""
    if amount < 0:
        raise ValueError(f"cannot deposit a negative amount ({amount} wei)")
    stakes, token = client.stake_manager, client.token
    receipts = []
    if amount > 0:
        balance = int(client.call(token.functions.balanceOf(client.address)))
        if balance < amount:
            raise InsufficientTokens(
                f"insufficient tokens to stake: {client.address} holds {format_tokens(balance)} tokens, less than "
                f"the {format_tokens(amount)} to deposit; fund the account (devnet: `veritrain devnet up` mints to "
                "the dev accounts) or stake less"
            )
        if int(client.call(token.functions.allowance(client.address, stakes.address))) < amount:
            receipts.append(client.transact(token.functions.approve(stakes.address, amount)))
        receipts.append(_transact_roomy(client, stakes.functions.deposit(amount)))
    if verifier is not None and bool(position(client).verifier) != verifier:
        receipts.append(_transact_roomy(client, stakes.functions.setVerifier(verifier)))
    return StakeChange(deposited=amount, receipts=tuple(receipts))


def top_up(client: ChainClient, target: int, *, verifier: bool | None = None, partial: bool = False) -> StakeChange:
    """Deposits what brings free + locked stake up to ``target`` wei. With ``partial`` a wallet holding less
    deposits what it has instead of raising :class:`InsufficientTokens` (a running node keeps going)."""
    pos = position(client)
    need = max(0, target - int(pos.free) - int(pos.locked))
    if partial and need > 0:
        need = min(need, int(client.call(client.token.functions.balanceOf(client.address))))
    return deposit(client, need, verifier=verifier)


def withdrawable(pos: Any, now: int) -> int:
    """What ``withdraw`` would pay out of position ``pos`` at chain time ``now``: claimable credits plus
    unbonding stake whose release time has come."""
    ready = int(pos.unbonding) if int(pos.unbonding) and now >= int(pos.releaseAt) else 0
    return int(pos.claimable) + ready


def withdraw(client: ChainClient) -> StakeChange:
    """Sends ``withdraw`` when something is withdrawable now; a no-op (nothing sent) otherwise."""
    now = int(client.with_retries("eth_getBlock", lambda: client.w3.eth.get_block("latest")["timestamp"]))
    amount = withdrawable(position(client), now)
    if amount == 0:
        return StakeChange()
    return StakeChange(withdrawn=amount, receipts=(client.transact(client.stake_manager.functions.withdraw()),))


__all__ = ["InsufficientTokens", "StakeChange", "deposit", "position", "top_up", "withdraw", "withdrawable"]
