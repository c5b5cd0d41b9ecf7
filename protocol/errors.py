"""Exceptions raised by :mod:`protocol`.

Every error is a :class:`VeritrainError`, so callers (the CLI above all) can catch the whole family in one
place and print its message, which says what went wrong and what to do. Each subclass also inherits the
closest builtin, so code that only knows Python's own exceptions (``FileNotFoundError``, ``RuntimeError``,
``ValueError``) still catches it.
"""

from __future__ import annotations

from typing import Any


class VeritrainError(Exception):
    """Base class of every error veritrain raises on purpose."""


class ToolMissing(VeritrainError, FileNotFoundError):
    """A required external executable (forge, anvil) is not installed."""


class BuildFailed(VeritrainError, RuntimeError):
    """``forge build`` ran and failed."""


class ArtifactMissing(VeritrainError, FileNotFoundError):
    """A forge artifact (``out/X.sol/X.json``) is missing or unusable."""


class DeploymentError(VeritrainError, ValueError):
    """Deployment parameters or a deployment file are invalid."""


class AnvilError(VeritrainError, RuntimeError):
    """The local anvil node could not be started or answered badly."""


class ContractRevert(VeritrainError, RuntimeError):
    """A contract call or transaction reverted; the revert data decoded against the protocol ABIs.

    ``name`` is the Solidity error name (``"InvalidSignature"``; ``"Error"`` for ``require`` strings,
    ``"Panic"`` for panics, ``"<unknown>"`` when no ABI knows the selector) and ``fields`` its arguments
    by parameter name, in declaration order.
    """

    #: Set by :meth:`protocol.chain.ChainClient.transact` when the revert happened in a mined transaction
    #: (status 0) rather than in gas estimation or an ``eth_call``: its hash and receipt.
    tx_hash: bytes | None = None
    receipt: Any = None

    def __init__(self, name: str, fields: dict[str, Any], selector: bytes, data: bytes) -> None:
        self.name = name
        self.fields = fields
        self.selector = selector
        self.data = data
        shown = ", ".join(f"{k}={_show(v)}" for k, v in fields.items())
        super().__init__(f"reverted with {name}({shown})")


class TransactionFailed(VeritrainError, RuntimeError):
    """A mined transaction has status 0 (it passed gas estimation but reverted on-chain)."""

    def __init__(self, tx_hash: bytes, receipt: Any) -> None:
        self.tx_hash = tx_hash
        self.receipt = receipt
        super().__init__(f"transaction 0x{bytes(tx_hash).hex()} reverted on-chain (status 0)")


def _show(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return repr(value) if isinstance(value, str) else str(value)


class BlobError(VeritrainError):
    """Base class of the blob store's errors (:mod:`protocol.blobstore`)."""


class BadAddress(BlobError, ValueError):
    """A blob address that is not 32 bytes written ``0x`` + 64 hex digits, or an unknown address kind."""


class BlobNotFound(BlobError, FileNotFoundError):
    """No blob is stored under this address (locally, or on the server that was asked)."""


class BlobCorrupt(BlobError, ValueError):
    """Bytes that do not hash to the address they were stored, served or claimed under."""


class BlobTooLarge(BlobError, ValueError):
    """A blob over the configured size limit; nothing was stored."""


class BlobUnavailable(BlobError, ConnectionError):
    """A blob server (or every mirror) could not be reached or kept failing after the bounded retries."""


class BlobTimeout(BlobUnavailable, TimeoutError):
    """A download did not finish within its deadline, or ran slower than its minimum rate (a stalled or trickling
    server); what was received is dropped."""


class BudgetExhausted(BlobTimeout):
    """A download was not tried, or not given a fair time (:meth:`protocol.budget.FetchBudget.late`), before its
    deadline: the reader was late, not the server, so it is no evidence against the server."""


class RpcUnavailable(VeritrainError, ConnectionError):
    """The Ethereum RPC node could not be reached (connection refused or dropped, timeouts, HTTP 5xx/429)
    and kept failing after the bounded retries; the message names the URL and what was being done."""

    def __init__(self, message: str, *, url: str, attempts: int) -> None:
        self.url = url
        self.attempts = attempts
        super().__init__(message)


class ChainMismatch(VeritrainError, ValueError):
    """The RPC node serves a different chain than the deployment (or cursor) was made for."""


class ReceiptTimeout(VeritrainError, TimeoutError):
    """A transaction was sent but no receipt appeared within the timeout (it may still be mined)."""

    def __init__(self, tx_hash: bytes, timeout: float, url: str) -> None:
        self.tx_hash = tx_hash
        self.timeout = timeout
        super().__init__(
            f"transaction 0x{bytes(tx_hash).hex()} was sent to {url} but not mined within {timeout:g}s; "
            "it may still be mined: look it up by hash before sending it again"
        )


class TransactionRejected(VeritrainError, RuntimeError):
    """The node refused a signed transaction outright (insufficient funds for gas, fee too low, ...); it was
    not sent and its nonce is not used."""


class NonceConflict(VeritrainError, RuntimeError):
    """This key's nonces keep being taken by someone else (another process signing with the same key)."""


class CursorError(VeritrainError, ValueError):
    """An event-follower cursor file that is unreadable or belongs to another chain or deployment."""


class KernelSelfCheckFailed(VeritrainError, RuntimeError):
    """Compiled exact-mode kernels gave other bits than the reference order of operations on this device."""


class KernelUnavailable(VeritrainError, RuntimeError):
    """The exact-mode kernels asked for cannot run here (a missing package, a device the backend does not serve)."""
