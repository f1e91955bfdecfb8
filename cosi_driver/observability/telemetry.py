"""Which telemetry is on, and the pieces the server and the core need for it.

Decided from the standard OpenTelemetry variables without importing opentelemetry, so a driver
with no collector configured pays nothing at start-up or per call:

* Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter other than ``none``, or, with it
  unset, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set
  (then the exporter is OTLP, over ``OTEL_EXPORTER_OTLP_PROTOCOL``, gRPC by default).
  ``OTEL_SDK_DISABLED=true`` turns it off. The SDK itself reads the rest: ``OTEL_SERVICE_NAME``,
  ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER(_ARG)``, ``OTEL_BSP_*``, exporter settings.
* Metrics are on when the driver serves HTTP (``COSI_DRIVER_HTTP_ADDR``): Prometheus scrapes them.

Both need the ``otel`` extra. When it is missing the driver still serves (probes included) and
says in its start-up banner what it could not turn on.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cosi_driver import __version__
from cosi_driver.core.instrument import OperationInstrument
from cosi_driver.transport.calls import CallObserver
from cosi_driver.transport.status import new_correlation_id

DEFAULT_SERVICE_NAME = "cosi-driver"
SHUTDOWN_TIMEOUT = 5.0
INSTALL_HINT = "install the otel extra: pip install 'cosi-driver[otel]'"
_TRACING_MODULES = ("opentelemetry.sdk", "opentelemetry.instrumentation.grpc")
_METRICS_MODULES = ("opentelemetry.sdk", "opentelemetry.exporter.prometheus")


def requested_trace_exporters(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for (empty: tracing off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    configured = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if configured:
        names = [name.strip() for name in configured.split(",") if name.strip()]
    elif environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        names = ["otlp"]
    else:
        names = []
    return [name for name in names if name != "none"]


def _installed(modules: Sequence[str]) -> bool:
    try:
        return all(importlib.util.find_spec(module) is not None for module in modules)
    except ModuleNotFoundError:  # a missing parent package
        return False


@dataclass
class Telemetry:
    """What :func:`setup` turned on. Empty (all off) costs nothing."""

    tracing: str = "off"  # for the start-up banner: exporter names, "off", or why it is unavailable
    metrics: str = "off"
    interceptors: list[Any] = field(default_factory=list)  # outermost gRPC server interceptors
    observers: list[CallObserver] = field(default_factory=list)
    correlation_id: Callable[[], str] = new_correlation_id
    instrument: OperationInstrument | None = None
    exposition: Callable[[], tuple[bytes, str]] | None = None  # Prometheus text, when metrics are on
    log_processors: list[Any] = field(default_factory=list)
    tracer_provider: Any = None
    meter_provider: Any = None

    def force_flush(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush()

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Flush and stop exporters, waiting at most ``timeout`` seconds.

        An unreachable collector makes the SDK retry for up to 30 s; the pod's termination grace
        period must not be spent on that, so the flush runs in a daemon thread that is abandoned
        when the time is up.
        """
        providers = [p for p in (self.tracer_provider, self.meter_provider) if p is not None]
        if not providers:
            return

        def stop() -> None:
            for provider in providers:
                provider.shutdown()

        worker = threading.Thread(target=stop, name="telemetry-shutdown", daemon=True)
        worker.start()
        worker.join(timeout)


def setup(
    environ: Mapping[str, str],
    *,
    metrics: bool,
    health: Callable[[], list[Any]] | None = None,
    span_exporter: Any = None,
    metric_readers: Sequence[Any] = (),
    batch: bool = True,
    install_globals: bool = False,
) -> Telemetry:
    """Build the telemetry the environment asks for.

    ``span_exporter`` (an OpenTelemetry SpanExporter) turns tracing on with that exporter instead
    of the ones the environment names, and ``metric_readers`` add readers beside Prometheus: for
    tests (in-memory) and benchmarks (a no-op exporter). ``batch=False`` exports each span as it
    ends. ``health`` returns the latest readiness reports for the ``cosi.driver.backend.ready`` gauge.
    ``install_globals`` makes the providers the process-wide ones, so instrumented libraries use them.
    """
    telemetry = Telemetry()
    names = requested_trace_exporters(environ) if span_exporter is None else ["given"]
    want_tracing = bool(names)
    if want_tracing and not _installed(_TRACING_MODULES):
        telemetry.tracing, want_tracing = f"unavailable ({INSTALL_HINT})", False
    if metrics and not _installed(_METRICS_MODULES):
        telemetry.metrics, metrics = f"unavailable ({INSTALL_HINT}); /metrics answers 404", False
    if not (want_tracing or metrics):
        return telemetry

    from cosi_driver.observability.operations import Instrument

    resource = _resource()
    tracing: Any = None
    meter: Any = None
    if want_tracing:
        from cosi_driver.observability import tracing as tracing_module

        if span_exporter is not None:
            exporters = [span_exporter]
        else:
            names = tracing_module.exporter_names(environ)
            exporters = tracing_module.load_exporters(names)
        tracing = tracing_module.Tracing(tracing_module.make_provider(resource, exporters, batch))
        telemetry.tracing = ", ".join(names)
        telemetry.tracer_provider = tracing.provider
        telemetry.interceptors.append(tracing.interceptor())
        telemetry.observers.append(tracing)
        telemetry.correlation_id = tracing_module.correlation_id
        telemetry.log_processors.append(tracing_module.add_trace_ids)
    if metrics:
        from cosi_driver.observability.metrics import Metrics

        meter = Metrics(resource, metric_readers, health)
        telemetry.metrics = "prometheus"
        telemetry.meter_provider = meter.provider
        telemetry.observers.append(meter)
        telemetry.exposition = meter.exposition
    telemetry.instrument = Instrument(tracing.tracer if tracing else None, meter)
    if install_globals:
        _install_globals(telemetry)
    return telemetry


def _resource() -> Any:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win), named cosi-driver by default."""
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource

    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _install_globals(telemetry: Telemetry) -> None:
    from opentelemetry import metrics, trace

    if telemetry.tracer_provider is not None:
        trace.set_tracer_provider(telemetry.tracer_provider)
    if telemetry.meter_provider is not None:
        metrics.set_meter_provider(telemetry.meter_provider)
