"""Named checks and the verdict they add up to.

A check is a function of a record that returns a one-line detail when its rule holds and raises
:class:`Violation` (with the explanation) when it does not. Every check runs, each against the same record, so
a verdict lists all of them; the first failing one is *the* violation reported. A check that crashes on a
malformed record (a missing field, an undecodable value) is a violation of that rule too: the record does
not show the rule was kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

PASS, FAIL = "pass", "fail"


class Violation(Exception):
    """A rule does not hold; the message says why."""


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    fn: Callable[[Any], str]


@dataclass
class CheckResult:
    rule: str
    summary: str
    status: str  # pass / fail
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == PASS


@dataclass
class Verdict:
    subject: str  # "dispute 3", "job 0x…"
    checks: list[CheckResult]
    children: list[Verdict] = field(default_factory=list)  # a job's disputes

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and all(v.ok for v in self.children)

    @property
    def first_violation(self) -> CheckResult | None:
        for c in self.checks:
            if not c.ok:
                return c
        for v in self.children:
            if (inner := v.first_violation) is not None:
                return inner
        return None

    def failed_rules(self) -> list[str]:
        return [c.rule for c in self.checks if not c.ok] + [r for v in self.children for r in v.failed_rules()]

    def to_json(self) -> dict[str, Any]:
        first = self.first_violation
        return {
            "subject": self.subject,
            "ok": self.ok,
            "first_violation": asdict(first) if first else None,
            "checks": [asdict(c) for c in self.checks],
            "children": [v.to_json() for v in self.children],
        }


class RuleSet:
    """An ordered registry of rules; ``@rules.rule("id", "summary")`` registers a check."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []

    def rule(self, rule_id: str, summary: str) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
        def register(fn: Callable[[Any], str]) -> Callable[[Any], str]:
            if any(r.id == rule_id for r in self.rules):
                raise ValueError(f"rule {rule_id} registered twice")
            self.rules.append(Rule(rule_id, summary, fn))
            return fn

        return register

    def run(self, subject: str, ctx: Any) -> Verdict:
        results = []
        for r in self.rules:
            try:
                detail = r.fn(ctx)
                results.append(CheckResult(r.id, r.summary, PASS, detail))
            except Violation as exc:
                results.append(CheckResult(r.id, r.summary, FAIL, str(exc)))
            except (KeyError, IndexError, TypeError, ValueError, AttributeError, StopIteration) as exc:
                results.append(
                    CheckResult(
                        r.id, r.summary, FAIL, f"the record cannot show this rule held: {type(exc).__name__}: {exc}"
                    )
                )
        return Verdict(subject, results)


def require(cond: bool, message: str) -> None:
    if not cond:
        raise Violation(message)
