"""OpenTelemetry tracing, set up from the standard ``OTEL_*`` variables.

Imported only when tracing is on (see :mod:`cosi_driver.observability.telemetry`): importing
opentelemetry costs tens of milliseconds of start-up that a driver without a collector should
not pay.

What a trace shows: the server span of each RPC (from opentelemetry-instrumentation-grpc's aio
interceptor, extracting a ``traceparent`` if the caller sent one), carrying the request's ids as
``cosi.*`` attributes, and under it one span per backend operation (see
:mod:`cosi_driver.observability.operations`). Never a parameter, a credential or an exception
message: a storage SDK's message could echo a request.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from importlib.metadata import entry_points
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, negate, service_name
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from cosi_driver.core.options import ConfigProblem
from cosi_driver.transport.calls import QUIET_SERVICES, CallRecord
from cosi_driver.transport.status import new_correlation_id

EXPORTER_GROUP = "opentelemetry_traces_exporter"

# The attributes the server span gets from the request (names, never parameters).
_ID_ATTRIBUTES = {"name": "cosi.request.name", "bucket_id": "cosi.bucket.id", "account_id": "cosi.account.id"}


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """Resolve ``otlp`` to the protocol-specific exporter, as the OpenTelemetry SDK does."""
    from cosi_driver.observability.telemetry import requested_trace_exporters

    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    otlp = "otlp_proto_http" if protocol.startswith("http") else "otlp_proto_grpc"
    return [otlp if name == "otlp" else name for name in requested_trace_exporters(environ)]


def load_exporters(names: Sequence[str]) -> list[SpanExporter]:
    """Exporters by their entry-point names; each reads its own OTEL_EXPORTER_* settings."""
    available = {point.name: point for point in entry_points(group=EXPORTER_GROUP)}
    exporters = []
    for name in names:
        point = available.get(name)
        if point is None:
            raise ConfigProblem(
                "OTEL_TRACES_EXPORTER",
                f"no span exporter named {name!r} is installed (available: {', '.join(sorted(available))})",
                "use otlp, console or none, or install the exporter's package",
            )
        exporters.append(point.load()())
    return exporters


def make_provider(resource: Resource, exporters: Sequence[SpanExporter], batch: bool = True) -> TracerProvider:
    """A provider whose sampler comes from OTEL_TRACES_SAMPLER(_ARG) (the SDK reads them)."""
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
    return provider


class Tracing:
    """The tracing half of the telemetry: interceptor, RPC attributes, correlation ids."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("cosi_driver")

    def interceptor(self) -> Any:
        """The OpenTelemetry aio server interceptor; health probes make no spans."""
        otel = aio_server_interceptor(self.provider, filter_=negate(any_of(*map(service_name, QUIET_SERVICES))))
        return _OncePerMethod(otel)

    # CallObserver: the server span carries the ids of the objects the call is about.
    def call_started(self, call: CallRecord) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            for key, value in call.ids.items():
                span.set_attribute(_ID_ATTRIBUTES[key], value)

    def call_finished(self, call: CallRecord) -> None:
        span = trace.get_current_span()
        if not span.is_recording():
            return
        for key in ("bucket_id", "account_id"):  # made by this call (Create, Grant)
            if key in call.ids:
                span.set_attribute(_ID_ATTRIBUTES[key], call.ids[key])
        if call.panicked:
            # The type helps a reader; the message may hold anything, so it stays in the log.
            span.set_attribute("error.type", type(call.error).__qualname__)

    def shutdown(self) -> None:
        self.provider.shutdown()

    def force_flush(self) -> None:
        self.provider.force_flush()


class _OncePerMethod(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """The OpenTelemetry interceptor, asked once per method instead of once per call.

    grpc.aio runs interceptors for every call; the OpenTelemetry one rebuilds its wrapped method
    handler each time although the wrapping depends only on the method (the span itself is made
    per call, inside the wrapper). Reusing the wrapped handler while the inner one is unchanged
    saves that work on every call.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        if not is_instrumentation_enabled():  # suppressed instrumentation: let the inner one decide
            return await self._inner.intercept_service(continuation, handler_call_details)
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]

        async def known(_: Any) -> Any:
            return handler

        wrapped = await self._inner.intercept_service(known, handler_call_details)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


def correlation_id() -> str:
    """The current trace id, so the id in an INTERNAL message finds the trace; else a random one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return str(trace.format_trace_id(context.trace_id))
    return new_correlation_id()


def add_trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the ids of the span the event happened in, to jump from log to trace."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", trace.format_trace_id(context.trace_id))
        event.setdefault("span_id", trace.format_span_id(context.span_id))
    return event
