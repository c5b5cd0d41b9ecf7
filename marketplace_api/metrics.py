"""Prometheus text exposition (format 0.0.4) of the API's counters, without a client library.

``veritrain_http_requests_total{method,route,status}``, ``veritrain_http_request_duration_seconds`` (a
histogram per route), ``veritrain_rejections_total{error}``, ``veritrain_orders_accepted_total``,
``veritrain_bids_accepted_total``, and gauges filled at scrape time (indexer block, rows per table).
"""

from __future__ import annotations

import threading
from collections import defaultdict

from protocol.metrics import format_labels as _labels

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Thread-safe counters and histograms, rendered by :meth:`render`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.rejections: dict[str, int] = defaultdict(int)
        self.counters: dict[str, int] = defaultdict(int)
        self.hist: dict[str, list[float]] = {}  # route -> bucket counts..., sum, count

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            h = self.hist.setdefault(route, [0.0] * (len(BUCKETS) + 2))
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def rejection(self, code: str) -> None:
        with self._lock:
            self.rejections[code] += 1

    def inc(self, name: str, by: int = 1) -> None:
        with self._lock:
            self.counters[name] += by

    def render(self, gauges: dict[str, tuple[str, list[tuple[dict[str, str], float]]]] | None = None) -> str:
        out: list[str] = []
        with self._lock:
            out += [
                "# HELP veritrain_http_requests_total HTTP requests by method, route template and status.",
                "# TYPE veritrain_http_requests_total counter",
            ]
            for (method, route, status), n in sorted(self.requests.items()):
                out.append(
                    f"veritrain_http_requests_total{_labels(method=method, route=route, status=str(status))} {n}"
                )
            out += [
                "# HELP veritrain_http_request_duration_seconds Request latency by route template.",
                "# TYPE veritrain_http_request_duration_seconds histogram",
            ]
            for route, h in sorted(self.hist.items()):
                for i, le in enumerate(BUCKETS):
                    out.append(
                        f"veritrain_http_request_duration_seconds_bucket{_labels(route=route, le=str(le))} {int(h[i])}"
                    )
                out.append(
                    f"veritrain_http_request_duration_seconds_bucket{_labels(route=route, le='+Inf')} {int(h[-1])}"
                )
                out.append(f"veritrain_http_request_duration_seconds_sum{_labels(route=route)} {h[-2]:.6f}")
                out.append(f"veritrain_http_request_duration_seconds_count{_labels(route=route)} {int(h[-1])}")
            out += [
                "# HELP veritrain_rejections_total Rejected requests by error code.",
                "# TYPE veritrain_rejections_total counter",
            ]
            for code, n in sorted(self.rejections.items()):
                out.append(f"veritrain_rejections_total{_labels(error=code)} {n}")
            for name in (
                "orders_accepted",
                "bids_accepted",
                "profiles_accepted",
                "indexer_events_applied",
                "indexer_rollbacks",
            ):
                out += [f"# TYPE veritrain_{name}_total counter", f"veritrain_{name}_total {self.counters[name]}"]
        for name, (help_text, samples) in sorted((gauges or {}).items()):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            for labels, value in samples:
                out.append(f"{name}{_labels(**labels)} {value:g}")
        return "\n".join(out) + "\n"
