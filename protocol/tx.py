"""Send a contract transaction signed locally with an eth-account key and wait for its receipt.

Nodes hold their own keys (the marketplace API holds none), so every transaction is built, signed here and
sent raw; nothing relies on the node's unlocked accounts. A revert caught while estimating gas (web3's
``ContractLogicError``) is re-raised as :class:`~protocol.errors.ContractRevert` naming the custom error;
a mined transaction with status 0 raises :class:`~protocol.errors.TransactionFailed`.
"""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from protocol.errors import TransactionFailed
from protocol.revert import RevertDecoder, default_decoder

DEFAULT_RECEIPT_TIMEOUT = 120.0
#: Gas limit = estimate · 5/4 + 10 000, the estimate made against the *pending* block (:func:`gas_limit`). A
#: transaction is mined in a later block than the latest one: estimated in the latest block's context, a move
#: that stores ``block.timestamp``-derived values (the dispute chess clocks, ``lastMoveAt``) estimates a no-op
#: SSTORE when the timestamp has not changed, and a draw-weight change estimates updating this block's
#: checkpoints in place where the mined transaction appends new ones (20 k gas each, up to log2(pool) of them:
#: setVerifier estimated 127 k and used 189 k on anvil). Estimated against the pending block, both take the
#: dearer path; the margin covers the timestamp case.
GAS_MARGIN_NUM, GAS_MARGIN_DEN, GAS_PAD = 5, 4, 10_000


def gas_limit(fn: Any, params: dict[str, Any]) -> int:
    """The gas limit for ``fn`` (a bound contract function or constructor) sent with ``params``: its
    ``eth_estimateGas`` against the pending block, plus the margin above."""
    estimate = fn.estimate_gas({k: v for k, v in params.items() if k != "nonce"}, block_identifier="pending")
    return int(estimate) * GAS_MARGIN_NUM // GAS_MARGIN_DEN + GAS_PAD


def send(
    w3: Web3,
    account: LocalAccount,
    fn: Any,
    *,
    value: int = 0,
    gas: int | None = None,
    decoder: RevertDecoder | None = None,
    timeout: float = DEFAULT_RECEIPT_TIMEOUT,
) -> TxReceipt:
    """Builds ``fn`` (a bound ``ContractFunction`` or ``ContractConstructor``) from ``account``, signs it,
    sends it and returns the receipt once mined.

    ``gas`` skips estimation (the node then reports a revert only in the receipt); otherwise the limit is the
    estimate plus a margin (see :data:`GAS_MARGIN_NUM`).
    """
    params: dict[str, Any] = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "value": value,
    }
    try:
        params["gas"] = gas if gas is not None else gas_limit(fn, params)
        tx = fn.build_transaction(params)
    except ContractLogicError as exc:
        decoded = (decoder or default_decoder()).from_exception(exc)
        if decoded is None:
            raise
        raise decoded from exc
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout)
    if receipt["status"] != 1:
        raise TransactionFailed(bytes(tx_hash), receipt)
    return receipt


def call(fn: Any, *, sender: str | None = None, decoder: RevertDecoder | None = None) -> Any:
    """``fn.call()`` (a read-only ``eth_call``), with a revert re-raised as a decoded ContractRevert."""
    try:
        return fn.call({"from": sender} if sender else None)
    except ContractLogicError as exc:
        decoded = (decoder or default_decoder()).from_exception(exc)
        if decoded is None:
            raise
        raise decoded from exc
