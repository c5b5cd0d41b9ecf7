"""Budgets for downloads from parties that may be hostile: a byte cap, a deadline and a minimum rate.

A solver that does not want to be audited has cheaper weapons than lying well: a server that accepts the
connection and sends nothing, one that trickles a byte every few seconds, or an endless response. A per-read
timeout stops none of them. Every download a verifier, arbiter or auditor makes of another party's data
therefore carries a :class:`FetchBudget`:

* ``max_bytes``: what the data can be at most, derived from what it must be (a state blob of the spec's model,
  ``N`` leaves of 32 bytes), so a bomb is cut off after its first too-many byte, not after it filled memory;
* ``deadline``: a ``time.monotonic()`` instant derived from the audit window or the commit deadline, past
  which the download is abandoned whatever arrives, leaving time to act on the failure;
* ``min_rate``: after a ``grace`` period, a download averaging fewer bytes per second is abandoned.

Failing a budget raises :class:`~protocol.errors.BlobTooLarge` or :class:`~protocol.errors.BlobTimeout`
(a :class:`~protocol.errors.BlobUnavailable`), so callers treat it like any other unavailable copy and try
the next source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from protocol.errors import BlobTimeout, BlobTooLarge, BudgetExhausted

#: Slowest a hostile-party download may average once the grace period is over (bytes/s): 256 KiB/s moves a
#: 100 MB checkpoint in under 7 minutes; an honest server on any real link is orders of magnitude faster.
DEFAULT_MIN_RATE = 256 * 1024
DEFAULT_GRACE_S = 3.0


@dataclass(frozen=True)
class FetchBudget:
    """What one download may cost. ``deadline`` is a ``time.monotonic()`` value (``None``: no deadline)."""

    max_bytes: int
    deadline: float | None = None
    min_rate: float = DEFAULT_MIN_RATE
    grace_s: float = DEFAULT_GRACE_S

    @classmethod
    def within(cls, seconds: float, max_bytes: int, **kw: float) -> FetchBudget:
        """A budget ending ``seconds`` from now."""
        return cls(max_bytes=max_bytes, deadline=time.monotonic() + max(0.0, seconds), **kw)

    def capped(self, max_bytes: int) -> FetchBudget:
        """The same deadline with a (smaller) byte cap."""
        return replace(self, max_bytes=min(self.max_bytes, max_bytes))

    def share(self, parts: int) -> FetchBudget:
        """This budget with ``1/parts`` of the time left: what one of ``parts`` sources tried in turn may take,
        so a source that stalls to the end cannot leave the next one (the mirror) no time."""
        if self.deadline is None or parts <= 1:
            return self
        return replace(self, deadline=time.monotonic() + self.remaining() / parts)

    def remaining(self) -> float:
        """Seconds left (``inf`` without a deadline; 0 once it passed)."""
        if self.deadline is None:
            return float("inf")
        return max(0.0, self.deadline - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def fair_s(self) -> float:
        """The least time a download under this budget must be given before its not finishing says anything
        about its server: the grace period plus the byte cap at the minimum rate."""
        return self.grace_s + self.max_bytes / self.min_rate

    def late(self, started: float) -> bool:
        """Whether a download started at ``started`` (monotonic) had less than :meth:`fair_s` before the
        deadline: if it does not finish, the reader was late, not the server (no evidence against it)."""
        return self.deadline is not None and self.deadline - started < self.fair_s()

    def timeout(self, default: float) -> float:
        """A per-operation timeout that cannot outlive the deadline (at least 10 ms, so httpx accepts it)."""
        return max(0.01, min(default, self.remaining()))

    def check(self, received: int, started: float, what: str) -> None:
        """Raises if ``received`` bytes since ``started`` (monotonic) break the budget."""
        if received > self.max_bytes:
            raise BlobTooLarge(f"{what} runs over {self.max_bytes} bytes, more than it can be")
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            if self.late(started):
                raise BudgetExhausted(
                    f"{what} was given {self.deadline - started:.1f} s, less than the {self.fair_s():.1f} s a fair "
                    f"download takes ({received} bytes received): the reader was late"
                )
            raise BlobTimeout(f"{what} did not finish before its deadline ({received} bytes received)")
        elapsed = now - started
        if elapsed > self.grace_s and received / elapsed < self.min_rate:
            raise BlobTimeout(
                f"{what} trickles at {received / elapsed:.0f} B/s, under the {self.min_rate:.0f} B/s minimum"
            )


__all__ = ["DEFAULT_GRACE_S", "DEFAULT_MIN_RATE", "FetchBudget"]
