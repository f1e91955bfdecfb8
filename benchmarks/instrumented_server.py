"""``cosi-driver serve`` with every instrument on and spans exported to a no-op exporter.

Built by the same composition root as the command (:func:`cosi_driver.app.run`: settings,
telemetry set-up, interceptors, the core's operation spans, metrics for Prometheus when
COSI_DRIVER_HTTP_ADDR is set); only the span exporter is replaced, so the figure measures the
instrumentation rather than a collector's network.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from cosi_driver.app import Hooks, run


class Discard(SpanExporter):  # type: ignore[misc]
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


if __name__ == "__main__":
    sys.exit(asyncio.run(run(os.environ, {}, Hooks(span_exporter=Discard()))))
