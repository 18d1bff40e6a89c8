"""The server's counters and histograms, rendered in the Prometheus text format (version 0.0.4).

Small on purpose: counters, gauges and cumulative histograms with labels, safe to update from any
thread, and a :meth:`Registry.render` that ``GET /metrics`` returns.

>>> registry = Registry()
>>> batches = registry.histogram("rnnkit_batch_size", "Texts per forward pass.", buckets=(1, 4))
>>> batches.observe(3); batches.observe(1)
>>> print(registry.render())
# HELP rnnkit_batch_size Texts per forward pass.
# TYPE rnnkit_batch_size histogram
rnnkit_batch_size_bucket{le="1"} 1
rnnkit_batch_size_bucket{le="4"} 2
rnnkit_batch_size_bucket{le="+Inf"} 2
rnnkit_batch_size_sum 4
rnnkit_batch_size_count 2
<BLANKLINE>
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence

__all__ = ["Registry", "Counter", "Gauge", "Histogram", "ServerMetrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    pairs = list(labels) + ([extra] if extra else [])
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()):
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {list(self.labelnames)}, got {sorted(labels)}")
        return tuple((name, str(labels[name])) for name in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    """A value that only goes up (``inc``), per label set."""

    kind = "counter"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()):
        super().__init__(name, help, labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError(f"a counter only goes up, got inc({amount})")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.labelnames:
            items = [((), 0.0)]
        return [f"{self.name}{_format_labels(k)} {_format_value(v)}" for k, v in items]


class Gauge(Counter):
    """A value that goes up and down (``inc`` / ``dec`` / ``set``)."""

    kind = "gauge"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[self._key(labels)] = float(value)


class Histogram(_Metric):
    """Counts of observations at or below each bucket's upper bound (cumulative), with sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (), *, buckets: Sequence[float]):
        super().__init__(name, help, labelnames)
        if list(buckets) != sorted(set(buckets)):
            raise ValueError(f"histogram buckets must be increasing, got {list(buckets)}")
        self.buckets = tuple(float(b) for b in buckets) + (math.inf,)
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * len(self.buckets))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: str) -> int:
        """How many values were observed."""
        return sum(self._counts.get(self._key(labels), ()))

    def lines(self) -> list[str]:
        out = []
        with self._lock:
            items = sorted((k, list(v), self._sums[k]) for k, v in self._counts.items())
        for key, counts, total in items:
            running = 0
            for bound, n in zip(self.buckets, counts, strict=True):
                running += n
                out.append(f"{self.name}_bucket{_format_labels(key, ('le', _format_value(bound)))} {running}")
            out.append(f"{self.name}_sum{_format_labels(key)} {_format_value(total)}")
            out.append(f"{self.name}_count{_format_labels(key)} {running}")
        return out


class Registry:
    """The metrics one server exposes, in the order they were made."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def _add(self, metric: _Metric):
        if any(m.name == metric.name for m in self._metrics):
            raise ValueError(f"a metric named {metric.name!r} is already registered")
        self._metrics.append(metric)
        return metric

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help, labelnames))

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help, labelnames))

    def histogram(
        self, name: str, help: str, labelnames: Sequence[str] = (), *, buckets: Sequence[float]
    ) -> Histogram:
        return self._add(Histogram(name, help, labelnames, buckets=buckets))

    def render(self) -> str:
        """Every metric in the Prometheus text exposition format."""
        lines: list[str] = []
        for metric in self._metrics:
            lines += metric.header() + metric.lines()
        return "\n".join(lines) + "\n"


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """What ``rnnkit serve`` measures: requests, latency, batch sizes, errors, queue and in-flight work.

    Attributes:
        registry: render it for ``GET /metrics``.
    """

    def __init__(self) -> None:
        r = self.registry = Registry()
        self.requests = r.counter("rnnkit_requests_total", "HTTP requests answered.", ("endpoint", "status"))
        self.latency = r.histogram(
            "rnnkit_request_duration_seconds",
            "Time to answer a request, in seconds.",
            ("endpoint",),
            buckets=LATENCY_BUCKETS,
        )
        self.errors = r.counter(
            "rnnkit_errors_total", "Requests answered with an error, by error code.", ("endpoint", "code")
        )
        self.batch_size = r.histogram(
            "rnnkit_batch_size", "Texts per forward pass of the model.", buckets=BATCH_BUCKETS
        )
        self.batch_seconds = r.histogram(
            "rnnkit_batch_duration_seconds", "Time of one forward pass, in seconds.", buckets=LATENCY_BUCKETS
        )
        self.texts = r.counter("rnnkit_texts_total", "Texts run through the model.")
        self.queue = r.gauge("rnnkit_queue_texts", "Texts waiting for a forward pass.")
        self.in_flight = r.gauge("rnnkit_requests_in_flight", "Requests being answered now.")

    def render(self) -> str:
        return self.registry.render()
