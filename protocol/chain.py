"""The chain client every node uses: one RPC endpoint, one deployment, at most one signing key.

``ChainClient(rpc_url, deployment, account)`` binds the four protocol contracts (ABIs from the forge
artifacts, addresses from the deployment), checks that the node serves the deployment's chain, and sends
transactions with the rules a node that runs for days needs:

* **Retries.** Connection errors, timeouts, HTTP 5xx and 429 are retried with exponential backoff and
  jitter, a bounded number of times; then :class:`~protocol.errors.RpcUnavailable` says which URL failed,
  doing what, and what to do. web3's own retry layer is switched off so there is exactly one policy. A
  revert is never retried: it is decoded at once into :class:`~protocol.errors.ContractRevert`.
* **Nonces.** The process owns its key: a local counter, initialised from the node's ``pending``
  transaction count, handed out under a lock (threads may share one client), resynced from the node after
  ``nonce too low`` / ``replacement transaction underpriced`` (someone else used the key) or after an
  outage left the fate of a transaction unknown.
* **At most once.** A transaction is signed once; if sending it failed in a way that may have reached the
  node (the connection dropped after the request left), the client looks the hash up before sending the
  *same signed bytes* again. The same nonce means at most one of them can ever be mined.
* **Reverts.** Before sending: gas estimation (or an ``eth_call`` when the gas is given) raises the decoded
  ContractRevert and consumes no nonce. After mining with status 0: the call is replayed at the receipt's
  block to recover the reason; the ContractRevert carries ``tx_hash`` and ``receipt``.
* **Receipts** are polled with a timeout (:class:`~protocol.errors.ReceiptTimeout`), riding out outages
  with the same retry policy.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import requests
from eth_account.datastructures import SignedTransaction
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractLogicError,
    RequestTimedOut,
    TooManyRequests,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import TxParams, TxReceipt

from protocol.artifacts import PROTOCOL_CONTRACTS
from protocol.blockheader import seed_header
from protocol.deploy import ADDRESS_KEYS, Deployment
from protocol.errors import (
    ChainMismatch,
    ContractRevert,
    NonceConflict,
    ReceiptTimeout,
    RpcUnavailable,
    TransactionFailed,
    TransactionRejected,
    VeritrainError,
)
from protocol.revert import RevertDecoder, default_decoder
from protocol.tx import gas_limit

log = logging.getLogger("veritrain.chain")
T = TypeVar("T")

#: Messages with which nodes (anvil, geth, reth, erigon, besu) reject a transaction whose nonce is taken.
_NONCE_TAKEN = ("nonce too low", "replacement transaction underpriced", "already imported", "nonce is too low")
#: ... and one whose exact bytes they already hold.
_ALREADY_KNOWN = ("already known", "known transaction", "already exists", "alreadyknown")
#: How often a nonce conflict is resolved (resync + re-sign) before giving up.
NONCE_RESYNCS = 3


def is_transient(exc: BaseException) -> bool:
    """True for failures that say nothing about the request itself and may pass on a retry: the node is
    unreachable, slow, overloaded or restarting. Reverts and other JSON-RPC errors are not transient."""
    if isinstance(exc, VeritrainError | ContractLogicError):
        return False
    if isinstance(exc, requests.exceptions.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return status is None or status >= 500 or status == 429
    if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        return True  # refused, reset, dropped
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return True  # the node died mid-answer
    if isinstance(exc, RequestTimedOut | TooManyRequests):
        return True
    if isinstance(exc, json.JSONDecodeError):  # a truncated body from a node that died mid-answer
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


def _rpc_message(exc: Web3RPCError) -> str:
    response = exc.rpc_response or {}
    error = response.get("error") if isinstance(response, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc.message)


class _NonceTaken(Exception):
    """Internal: the node says our nonce is used by a transaction that is not ours."""


class ChainClient:
    """One RPC endpoint + one deployment (+ optionally one signing key). Thread-safe.

    ``retries`` is the number of *re*-tries after a transient failure (so ``retries + 1`` attempts); the
    n-th wait is ``min(max_backoff, backoff · 2ⁿ)`` scaled by a random factor in [0.5, 1]. ``timeout`` is
    the HTTP timeout of one request; ``receipt_timeout`` how long :meth:`transact` waits to see it mined.
    ``connect=False`` defers the chain-id check to the first use (a follower may start while the node is
    down).
    """

    def __init__(
        self,
        rpc_url: str,
        deployment: Deployment,
        account: LocalAccount | None = None,
        *,
        retries: int = 5,
        backoff: float = 0.25,
        max_backoff: float = 8.0,
        timeout: float = 10.0,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.5,
        decoder: RevertDecoder | None = None,
        connect: bool = True,
    ) -> None:
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ValueError("retries and backoff must be >= 0 and timeout > 0")
        self.rpc_url = rpc_url
        self.deployment = deployment
        self.account = account
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.decoder = decoder or default_decoder()
        provider = Web3.HTTPProvider(
            rpc_url,
            request_kwargs={"timeout": timeout},
            exception_retry_configuration=None,  # one retry policy: ours
        )
        self.w3 = Web3(provider)
        self.contracts: dict[str, Contract] = {name: deployment.contract(self.w3, name) for name in PROTOCOL_CONTRACTS}
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._chain_checked = False
        self._random = random.Random()
        if connect:
            self.ensure_chain(force=True)

    # ------------------------------------------------------------------ contracts

    @property
    def token(self) -> Contract:
        return self.contracts["VeriToken"]

    @property
    def stake_manager(self) -> Contract:
        return self.contracts["StakeManager"]

    @property
    def job_market(self) -> Contract:
        return self.contracts["JobMarket"]

    @property
    def dispute_game(self) -> Contract:
        return self.contracts["DisputeGame"]

    @property
    def state_publisher(self) -> Contract:
        return self.contracts["StatePublisher"]

    def contract(self, name: str) -> Contract:
        """``VeriToken``, ``StakeManager``, ``JobMarket``, ``StatePublisher``, ``DisputeGame`` (or the keys
        ``token``, ``stakeManager``, ``jobMarket``, ``statePublisher``, ``disputeGame``)."""
        by_key = {key: contract for contract, key in ADDRESS_KEYS.items()}
        return self.contracts[by_key.get(name, name)]

    @property
    def address(self) -> str:
        if self.account is None:
            raise ValueError("this ChainClient has no account; pass one to sign transactions")
        return self.account.address

    # ------------------------------------------------------------------ retries

    def with_retries(self, what: str, fn: Callable[[], T]) -> T:
        """Runs ``fn`` (one or more RPC requests), retrying transient failures with backoff; raises
        :class:`RpcUnavailable` once the attempts are spent. Anything else propagates at once."""
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._chain_checked = False  # the node may come back as another chain
                if attempt == self.retries:
                    raise self._unavailable(what, attempt + 1, started, exc) from exc
                delay = self._delay(attempt)
                log.warning(
                    "RPC %s: %s failed (%s: %s); retry %d/%d in %.2fs",
                    self.rpc_url, what, type(exc).__name__, exc, attempt + 1, self.retries, delay,
                )  # fmt: skip
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt) * self._random.uniform(0.5, 1.0)

    def _unavailable(self, what: str, attempts: int, started: float, exc: BaseException) -> RpcUnavailable:
        return RpcUnavailable(
            f"the Ethereum RPC node at {self.rpc_url} is unavailable: {what} failed {attempts} times in "
            f"{time.monotonic() - started:.1f}s (last error: {type(exc).__name__}: {exc}). Check that the node "
            "is running and that this URL is the right one (for a local devnet: `veritrain devnet up`), "
            "then try again; nothing was lost, the chain is the source of truth.",
            url=self.rpc_url,
            attempts=attempts,
        )

    def ensure_chain(self, *, force: bool = False) -> None:
        """Checks that the node's chain id is the deployment's: once, again after every outage (the node
        may come back as another chain), or now with ``force``. Raises :class:`ChainMismatch` or
        :class:`RpcUnavailable`."""
        if self._chain_checked and not force:
            return
        chain_id = int(self.with_retries("eth_chainId", lambda: self.w3.eth.chain_id))
        if chain_id != self.deployment.chain_id:
            where = f" ({self.deployment.path})" if self.deployment.path else ""
            raise ChainMismatch(
                f"the RPC node at {self.rpc_url} serves chain id {chain_id}, but the deployment{where} is on "
                f"chain {self.deployment.chain_id}: point veritrain at the right node or deployment file"
            )
        self._chain_checked = True

    # ------------------------------------------------------------------ reads

    def call(self, fn: Any, *, sender: str | None = None, block: int | str | bytes = "latest", value: int = 0) -> Any:
        """``fn.call()`` (an ``eth_call``) with retries; a revert raises the decoded ContractRevert.
        ``sender`` defaults to this client's account (some views depend on ``msg.sender``)."""
        self.ensure_chain()
        sender = sender or (self.account.address if self.account else None)
        params: dict[str, Any] = {"value": value} if value else {}
        if sender:
            params["from"] = sender
        name = getattr(fn, "fn_name", "call")
        try:
            return self.with_retries(f"eth_call {name}", lambda: fn.call(params or None, block_identifier=block))
        except ContractLogicError as exc:
            raise self._decoded(exc) from exc

    def seed_header(self, number: int) -> bytes:
        """The RLP header of block ``number`` (checked against its hash): what ``drawAudit`` and
        ``drawCommittee`` take to read the seed block's RANDAO value."""
        return self.with_retries("eth_getBlock", lambda: seed_header(self.w3, number))

    def block_number(self) -> int:
        self.ensure_chain()
        return int(self.with_retries("eth_blockNumber", lambda: self.w3.eth.block_number))

    def _decoded(self, exc: ContractLogicError) -> Exception:
        decoded = self.decoder.from_exception(exc)
        return decoded if decoded is not None else exc

    # ------------------------------------------------------------------ transactions

    def transact(
        self,
        fn: Any,
        *,
        value: int = 0,
        gas: int | None = None,
        preflight: bool = True,
        wait: bool = True,
    ) -> TxReceipt | HexBytes:
        """Signs ``fn`` (a bound contract function or constructor) with this client's key, sends it once,
        waits for the receipt and returns it (``wait=False``: returns the hash once the node holds it).

        ``gas=None`` estimates (limit = estimate · 5/4 + 10 000, as :mod:`protocol.tx`); a revert there
        raises ContractRevert and uses no nonce. With ``gas`` given, an ``eth_call`` checks the call first
        unless ``preflight`` is false. A mined revert raises ContractRevert (reason replayed at the block)
        or TransactionFailed (no reason, e.g. out of gas); it is never re-sent.
        """
        account = self.account
        if account is None:
            raise ValueError("this ChainClient has no account; pass one to sign transactions")
        self.ensure_chain()
        name = getattr(fn, "fn_name", None) or type(fn).__name__
        with self._lock:
            for _ in range(NONCE_RESYNCS + 1):
                nonce = self._next_nonce(account.address)
                tx = self._build(fn, account.address, nonce, value, gas, preflight)
                # web3 types a transaction as the TxParams TypedDict, eth-account's signer as a plain dict
                signed = account.sign_transaction(tx)  # type: ignore[arg-type]
                try:
                    self._broadcast(signed, nonce, name)
                except _NonceTaken as exc:
                    log.warning("nonce %d of %s is taken (%s); resyncing from the node", nonce, account.address, exc)
                    self._nonce = None
                    continue
                except RpcUnavailable:
                    self._nonce = None  # the transaction may or may not have arrived: ask the node next time
                    raise
                self._nonce = nonce + 1
                break
            else:
                raise NonceConflict(
                    f"the nonces of {account.address} keep being used by someone else on {self.rpc_url}: "
                    "run one process per key"
                )
        tx_hash = HexBytes(signed.hash)
        if not wait:
            return tx_hash
        try:
            receipt = self.wait_for_receipt(tx_hash)
        except ReceiptTimeout:
            self.reset_nonce()  # dropped (e.g. by a reorg) or stuck: let the node say where we are
            raise
        if receipt["status"] != 1:
            raise self._mined_failure(tx, receipt)
        return receipt

    def reset_nonce(self) -> None:
        """Forgets the local nonce counter; the next transaction asks the node (``pending`` count). For
        when the chain's history changed under the process (a devnet revert, a reorg that dropped one of
        our transactions)."""
        with self._lock:
            self._nonce = None

    def _next_nonce(self, address: ChecksumAddress) -> int:
        if self._nonce is None:
            self._nonce = int(
                self.with_retries(
                    "eth_getTransactionCount", lambda: self.w3.eth.get_transaction_count(address, "pending")
                )
            )
        return self._nonce

    def _build(self, fn: Any, sender: str, nonce: int, value: int, gas: int | None, preflight: bool) -> TxParams:
        params: dict[str, Any] = {"from": sender, "nonce": nonce, "value": value}
        name = getattr(fn, "fn_name", "constructor")
        try:
            if gas is not None and preflight and hasattr(fn, "call"):
                call_params = {"from": sender, "value": value, "gas": gas}
                self.with_retries(f"eth_call {name} (preflight)", lambda: fn.call(call_params))
            if gas is None:
                gas = self.with_retries(f"estimate gas of {name}", lambda: gas_limit(fn, params))
            params["gas"] = gas
            tx = self.with_retries(f"build {name} (fees)", lambda: fn.build_transaction(params))
        except ContractLogicError as exc:
            raise self._decoded(exc) from exc
        except Web3RPCError as exc:  # not a revert: e.g. no ETH for gas
            raise TransactionRejected(
                f"the node at {self.rpc_url} refused to prepare {name} from {sender}: {_rpc_message(exc)}"
            ) from exc
        return tx

    def _lookup(self, tx_hash: bytes) -> bool:
        """Whether the node knows the transaction (pending or mined)."""
        try:
            self.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return True

    def _broadcast(self, signed: SignedTransaction, nonce: int, name: str) -> None:
        """Sends the signed bytes until the node holds them, never creating a second transaction: once a
        send may have reached the node, the hash is looked up before the same bytes go out again."""
        tx_hash = HexBytes(signed.hash)
        maybe_sent = False
        started = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                if maybe_sent and self._lookup(tx_hash):
                    log.info("transaction %s (nonce %d) reached the node before the error", tx_hash.to_0x_hex(), nonce)
                    return
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
                return
            except Web3RPCError as exc:
                message = _rpc_message(exc).lower()
                if any(m in message for m in _ALREADY_KNOWN):
                    return  # our bytes are already in the pool
                if any(m in message for m in _NONCE_TAKEN):
                    if maybe_sent and self.with_retries("eth_getTransactionByHash", lambda: self._lookup(tx_hash)):
                        return  # taken by ourselves: the earlier send was mined
                    raise _NonceTaken(message) from exc
                if not is_transient(exc):
                    raise TransactionRejected(
                        f"the node at {self.rpc_url} rejected {name} from {self.address} (nonce {nonce}): "
                        f"{_rpc_message(exc)}"
                    ) from exc
                last: Exception = exc
            except Exception as exc:
                if not is_transient(exc):
                    raise
                last = exc
            maybe_sent = True
            self._chain_checked = False
            if attempt == self.retries:
                break
            delay = self._delay(attempt)
            log.warning(
                "RPC %s: sending %s (nonce %d, %s) failed (%s: %s); looking it up and retrying in %.2fs",
                self.rpc_url, name, nonce, tx_hash.to_0x_hex(), type(last).__name__, last, delay,
            )  # fmt: skip
            time.sleep(delay)
        err = self._unavailable(f"sending {name} (nonce {nonce}, tx {tx_hash.to_0x_hex()})", attempt + 1, started, last)
        raise err from last

    def wait_for_receipt(self, tx_hash: bytes, timeout: float | None = None) -> TxReceipt:
        """Polls for the receipt (riding out outages with the retry policy) until ``timeout``."""
        timeout = self.receipt_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        interval = min(0.02, self.poll_interval)
        what = f"eth_getTransactionReceipt {HexBytes(tx_hash).to_0x_hex()}"

        def fetch() -> TxReceipt | None:
            try:
                return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None

        while True:
            receipt = self.with_retries(what, fetch)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise ReceiptTimeout(bytes(tx_hash), timeout, self.rpc_url)
            time.sleep(interval)
            interval = min(interval * 2, self.poll_interval)

    def _mined_failure(self, tx: TxParams, receipt: TxReceipt) -> Exception:
        """The exception for a mined transaction with status 0: the call replayed at its block gives the
        revert data (ContractRevert); without a reason (out of gas, ...) a TransactionFailed."""
        tx_hash = bytes(receipt["transactionHash"])
        replay = cast(TxParams, {k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")})
        try:
            self.with_retries(
                "replaying a failed transaction", lambda: self.w3.eth.call(replay, receipt["blockNumber"])
            )
        except ContractLogicError as exc:
            decoded = self.decoder.from_exception(exc)
            if decoded is not None:
                decoded.tx_hash = tx_hash
                decoded.receipt = receipt
                return decoded
        except (Web3RPCError, RpcUnavailable) as exc:
            log.warning("could not replay failed transaction 0x%s: %s", tx_hash.hex(), exc)
        return TransactionFailed(tx_hash, receipt)


__all__ = ["ChainClient", "ContractRevert", "is_transient"]
