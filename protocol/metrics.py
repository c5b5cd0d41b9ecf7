"""Prometheus text exposition (format 0.0.4) without a client library: labelled counters and gauges.

The nodes (``/metrics`` of ``veritrain solver`` and ``veritrain verifier``) register their metrics on a
:class:`Registry`; the marketplace API keeps its own request histograms (``marketplace_api/metrics.py``) and
shares :func:`format_labels`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable

_TYPES = ("counter", "gauge")


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_labels(**kv: object) -> str:
    """``{k="v",…}`` with Prometheus escaping of backslash, double quote and newline; ``""`` for no labels."""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in kv.items())
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() and abs(value) < 2**53 else repr(float(value))


class Metric:
    """One named metric with a fixed tuple of label names; values per label combination."""

    def __init__(self, registry: Registry, name: str, help_text: str, kind: str, labels: Iterable[str]) -> None:
        if kind not in _TYPES:
            raise ValueError(f"metric type must be one of {_TYPES}, not {kind!r}")
        self.name, self.help, self.kind, self.labels = name, help_text, kind, tuple(labels)
        self._lock = registry._lock
        self._values: dict[tuple[str, ...], float] = {}
        if not self.labels:
            self._values[()] = 0.0

    def _key(self, labels: dict[str, object]) -> tuple[str, ...]:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(sorted(labels))}")
        return tuple(str(labels[k]) for k in self.labels)

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        """Add ``amount`` (counters only go up)."""
        if self.kind == "counter" and amount < 0:
            raise ValueError(f"counter {self.name} cannot decrease")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set(self, value: float, **labels: object) -> None:
        """Set a gauge."""
        if self.kind != "gauge":
            raise ValueError(f"{self.name} is a {self.kind}; only gauges are set")
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def value(self, **labels: object) -> float:
        """Current value (0 when never touched)."""
        key = self._key(labels)
        with self._lock:
            return self._values.get(key, 0.0)

    def _render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for key, v in sorted(self._values.items()):
            out.append(f"{self.name}{format_labels(**dict(zip(self.labels, key, strict=True)))} {_number(v)}")
        return out


class Registry:
    """Thread-safe set of metrics rendered together by :meth:`render`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Metric] = {}

    def _add(self, name: str, help_text: str, kind: str, labels: Iterable[str]) -> Metric:
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if existing.kind != kind or existing.labels != tuple(labels):
                    raise ValueError(f"metric {name} already registered differently")
                return existing
            metric = Metric(self, name, help_text, kind, labels)
            self._metrics[name] = metric
            return metric

    def counter(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Metric:
        return self._add(name, help_text, "counter", labels)

    def gauge(self, name: str, help_text: str, labels: Iterable[str] = ()) -> Metric:
        return self._add(name, help_text, "gauge", labels)

    def render(self) -> str:
        """The whole registry in Prometheus text format 0.0.4 (ends with a newline)."""
        with self._lock:
            metrics = list(self._metrics.values())
        lines: list[str] = []
        for m in metrics:
            with self._lock:
                lines += m._render()
        return "\n".join(lines) + "\n"


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
