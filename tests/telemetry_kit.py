"""In-memory telemetry for the observability tests: the real set-up, with exporters one can read.

:func:`instrumented` builds :class:`~cosi_driver.observability.telemetry.Telemetry` exactly as
``cosi-driver serve`` does, but exports spans to an in-memory exporter (one by one, as they end)
and adds an in-memory metric reader beside the Prometheus one.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cosi_driver.core.driver import Driver
from cosi_driver.core.instrument import OperationInstrument
from cosi_driver.core.readiness import Readiness
from cosi_driver.observability import telemetry as telemetry_setup
from cosi_driver.observability.logging import configure
from cosi_driver.transport.server import ServerOptions


@dataclass
class Kit:
    telemetry: telemetry_setup.Telemetry
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    readiness: Readiness

    def options(self, **extra: Any) -> ServerOptions:
        return ServerOptions(
            interceptors=self.telemetry.interceptors,
            observers=self.telemetry.observers,
            correlation_id=self.telemetry.correlation_id,
            readiness=self.readiness,
            **extra,
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def server_spans(self, rpc: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name.endswith(f"/{rpc}")]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        assert parent.context is not None
        return [
            span
            for span in self.finished()
            if span.parent is not None and span.parent.span_id == parent.context.span_id
        ]

    def points(self, metric: str) -> list[Any]:
        """Every data point of ``metric`` (cumulative since the kit was made)."""
        data = self.reader.get_metrics_data()
        out: list[Any] = []
        if data is None:
            return out
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        out.extend(item.data.data_points)
        return out

    def value(self, metric: str, labels: dict[str, str] | None = None) -> float:
        """Sum (counter), count (histogram) or value of the points whose attributes include ``labels``."""
        total = 0.0
        for point in self.points(metric):
            attributes = dict(point.attributes)
            if all(attributes.get(key) == want for key, want in (labels or {}).items()):
                total += point.count if hasattr(point, "count") else point.value
        return total

    def all_metric_text(self) -> str:
        data = self.reader.get_metrics_data()
        return data.to_json() if data is not None else ""


def instrumented(
    make_driver: Callable[[OperationInstrument | None], Driver],
    *,
    metrics: bool = True,
    tracing: bool = True,
    cache_seconds: float = 0.0,
) -> tuple[Driver, Kit]:
    """Tracing and metrics on, readable in memory; the driver is made with the core instrument.

    Telemetry comes first, as in :class:`cosi_driver.app.App`: a driver is complete when made."""
    spans = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    readiness: list[Readiness] = []
    telemetry = telemetry_setup.setup(
        {},
        metrics=metrics,
        health=lambda: readiness[0].last_reports if readiness else [],
        span_exporter=spans if tracing else None,
        metric_readers=[reader],
        batch=False,
    )
    driver = make_driver(telemetry.instrument)
    readiness.append(Readiness(driver, cache_seconds=cache_seconds))
    return driver, Kit(telemetry, spans, reader, readiness[0])


@contextmanager
def captured_logs(*processors: Any, level: str = "debug") -> Iterator[io.StringIO]:
    """Every log line (structlog and the standard library), rendered as JSON into a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    configure(level, "json", buffer, extra_processors=processors)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(root_level)


def events(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
