"""The telemetry of one backend operation: a child span and a latency observation.

This is the :class:`~cosi_driver.core.instrument.OperationInstrument` the driver core calls around
every storage call. The span is current while the backend works, so spans of instrumented client
libraries (botocore, ...) nest under it. Attributes are names and ids only; an error shows as its
gRPC code (``error.type``), never as its message or traceback.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

from opentelemetry.trace import Status, StatusCode

from cosi_driver.core import ids
from cosi_driver.core.errors import CosiError
from cosi_driver.core.instrument import BackendOperation


def outcome_of(error: BaseException | None) -> str:
    """OK, the core error's gRPC code, CANCELLED, or INTERNAL for anything unexpected."""
    if error is None:
        return "OK"
    if isinstance(error, CosiError):
        return error.code
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    return "INTERNAL"


class Instrument:
    """Makes one :class:`OperationScope` per backend call; either half may be off."""

    def __init__(self, tracer: Any | None, metrics: Any | None) -> None:
        self._tracer = tracer
        self._metrics = metrics

    def __call__(self, operation: BackendOperation) -> OperationScope:
        return OperationScope(operation, self._tracer, self._metrics)


class OperationScope:
    __slots__ = ("_metrics", "_operation", "_span", "_span_scope", "_started", "_tracer")

    def __init__(self, operation: BackendOperation, tracer: Any | None, metrics: Any | None) -> None:
        self._operation = operation
        self._tracer = tracer
        self._metrics = metrics
        self._span: Any = None
        self._span_scope: Any = None
        self._started = 0.0

    def __enter__(self) -> OperationScope:
        self._started = time.perf_counter()
        if self._tracer is not None:
            op = self._operation
            attributes = {
                "cosi.backend.name": op.backend,
                "cosi.backend.type": op.backend_type,
                "cosi.backend.operation": op.operation,
                "cosi.bucket.name": op.bucket,
                "cosi.bucket.id": ids.BucketRef(op.backend, op.bucket).encode(),
            }
            if op.account is not None:
                attributes["cosi.account.name"] = op.account
            self._span_scope = self._tracer.start_as_current_span(
                f"backend.{op.operation}",
                attributes=attributes,
                record_exception=False,  # an exception's message may echo a request: the log has it
                set_status_on_exception=False,
            )
            self._span = self._span_scope.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        outcome = outcome_of(error)
        if self._span is not None:
            self._span.set_attribute("cosi.outcome", outcome)
            if error is not None:
                self._span.set_attribute("error.type", outcome)
                description = error.message if isinstance(error, CosiError) else type(error).__qualname__
                self._span.set_status(Status(StatusCode.ERROR, description))
            self._span_scope.__exit__(kind, error, traceback)
        if self._metrics is not None:
            self._metrics.record_operation(self._operation, outcome, time.perf_counter() - self._started)
