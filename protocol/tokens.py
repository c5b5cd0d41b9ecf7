"""Token amounts as people write them (``"12.5"``) and as the contracts count them (wei, 18 decimals).

The one parser and formatter for amounts: every command-line option and the demo go through here, so
``inf``, ``nan``, negatives, more than 18 decimals and amounts beyond ``uint256`` all get the same clear
:class:`TokenAmountError` instead of an ``OverflowError`` or ``decimal.InvalidOperation``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation, localcontext

from protocol.constants import TOKEN_DECIMALS
from protocol.errors import VeritrainError

#: The largest amount a contract can hold in a uint256.
MAX_WEI = 2**256 - 1


class TokenAmountError(VeritrainError, ValueError):
    """Text that is not a finite, non-negative token amount with at most 18 decimals."""


def parse_tokens(text: str | int | Decimal, what: str = "amount") -> int:
    """``"12.5"`` tokens → 12.5·10^18 wei. ``what`` names the value in the error (e.g. ``"--stake"``)."""
    shown = str(text) if len(str(text)) <= 60 else str(text)[:57] + "..."
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise TokenAmountError(f"{what} must be a number of tokens (e.g. 100 or 2.5), not {shown!r}") from None
    if not value.is_finite():
        raise TokenAmountError(f"{what} must be a finite number of tokens, not {shown!r}")
    if value < 0:
        raise TokenAmountError(f"{what} must not be negative, got {shown!r}")
    with localcontext() as ctx:
        ctx.prec = 200  # exact for anything up to uint256 with 18 decimals; larger values are rejected below
        wei = value.scaleb(TOKEN_DECIMALS)
        integral = wei == wei.to_integral_value()
    if not integral:
        raise TokenAmountError(
            f"{what} {shown!r} has more than {TOKEN_DECIMALS} decimals; the smallest amount is 1e-{TOKEN_DECIMALS}"
        )
    if wei > MAX_WEI:
        raise TokenAmountError(f"{what} {shown!r} is more tokens than a uint256 can hold")
    return int(wei)


def format_tokens(wei: int) -> str:
    """wei → ``"12.5"`` (tokens), exact (no float rounding)."""
    with localcontext() as ctx:
        ctx.prec = 200
        q = Decimal(int(wei)).scaleb(-TOKEN_DECIMALS)
        return f"{q.normalize():f}" if q else "0"


__all__ = ["MAX_WEI", "TokenAmountError", "format_tokens", "parse_tokens"]
