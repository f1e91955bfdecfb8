"""OpenTelemetry metrics, exposed in the Prometheus text format on ``/metrics``.

Imported only when metrics are on. Names follow the OpenTelemetry semantic conventions where one
exists (``rpc.server.call.duration``, ``rpc.method``, ``rpc.response.status_code``,
``rpc.system.name``, ``error.type``); the driver's own are under ``cosi.driver.``. Every label
value comes from a bounded set (registered methods, gRPC codes, configured backends, the five
backend operations), so cardinality stays small and no label can carry a secret.

Instruments: ``rpc.server.call.duration`` (histogram, by method and status code),
``cosi.driver.rpc.requests`` and ``cosi.driver.rpc.errors`` (counters, by method and status code),
``cosi.driver.rpc.active`` (in-flight calls), ``cosi.driver.panics`` (by method),
``cosi.driver.backend.operation.duration`` (histogram, by backend, operation and outcome) and
``cosi.driver.backend.ready`` (gauge per backend). docs/observability.md lists their Prometheus names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from cosi_driver import __version__
from cosi_driver.core.instrument import BackendOperation
from cosi_driver.core.types import HealthReport
from cosi_driver.transport.calls import CallRecord

# Seconds. The SDK's default boundaries are meant for milliseconds; these span a fast local call
# to the driver's default 30 s operation timeout.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The instruments, the RPC observer hooks, and the Prometheus exposition.

    Per call, only the latency histogram goes through the SDK; the counters and the in-flight
    gauge are plain integers the SDK reads when it is scraped (observable instruments), which
    keeps full instrumentation within the benchmark's budget. Exemplars are off: the Prometheus
    text format cannot carry them.
    """

    def __init__(
        self,
        resource: Resource,
        extra_readers: Sequence[MetricReader] = (),
        health: Callable[[], list[HealthReport]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)  # ours alone, not the process-global one
        prometheus = PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
        self.provider = MeterProvider(
            resource=resource,
            metric_readers=[prometheus, *extra_readers],
            exemplar_filter=AlwaysOffExemplarFilter(),
        )
        meter = self.provider.get_meter("cosi_driver", __version__)
        self._requests: Counter[tuple[str, str]] = Counter()  # (method, code) -> calls
        self._active: Counter[str] = Counter()
        self._panics: Counter[str] = Counter()
        self._labels: dict[tuple[str, str], dict[str, str]] = {}
        self._duration = meter.create_histogram(
            "rpc.server.call.duration",
            unit="s",
            description="Duration of incoming RPCs.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        meter.create_observable_counter(
            "cosi.driver.rpc.requests",
            callbacks=[self._observe_requests],
            unit="{request}",
            description="RPCs handled, by method and status code.",
        )
        meter.create_observable_counter(
            "cosi.driver.rpc.errors",
            callbacks=[self._observe_errors],
            unit="{request}",
            description="RPCs that ended with a non-OK status code.",
        )
        meter.create_observable_up_down_counter(
            "cosi.driver.rpc.active",
            callbacks=[self._observe_active],
            unit="{request}",
            description="RPCs in progress.",
        )
        meter.create_observable_counter(
            "cosi.driver.panics",
            callbacks=[self._observe_panics],
            unit="{panic}",
            description="Unexpected exceptions turned into INTERNAL by the recovery interceptor.",
        )
        self._operations = meter.create_histogram(
            "cosi.driver.backend.operation.duration",
            unit="s",
            description="Duration of backend operations (storage calls), by outcome.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        if health is not None:
            meter.create_observable_gauge(
                "cosi.driver.backend.ready",
                callbacks=[_ready_callback(health)],
                unit="1",
                description="1 when the backend passed the last readiness check, 0 when it failed.",
            )

    # CallObserver
    def call_started(self, call: CallRecord) -> None:
        self._active[call.full_method] += 1

    def call_finished(self, call: CallRecord) -> None:
        method = call.full_method
        key = (method, call.code.name)
        self._active[method] -= 1
        self._requests[key] += 1
        if call.panicked:
            self._panics[method] += 1
        labels = self._labels.get(key)
        if labels is None:
            self._panics.setdefault(method, 0)  # a zero series from the start, so increase() sees the first
            labels = self._labels[key] = {
                "rpc.system.name": "grpc",
                "rpc.method": method,
                "rpc.response.status_code": call.code.name,
            }
        self._duration.record(call.seconds, labels)

    def _observe_requests(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, _by_code(key)) for key, n in list(self._requests.items())]

    def _observe_errors(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, _by_code(key)) for key, n in list(self._requests.items()) if key[1] != "OK"]

    def _observe_active(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"rpc.method": method}) for method, n in list(self._active.items())]

    def _observe_panics(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(n, {"rpc.method": method}) for method, n in list(self._panics.items())]

    def record_operation(self, operation: BackendOperation, outcome: str, seconds: float) -> None:
        self._operations.record(
            seconds,
            {
                "cosi.backend.name": operation.backend,
                "cosi.backend.type": operation.backend_type,
                "cosi.backend.operation": operation.operation,
                "cosi.outcome": outcome,
            },
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def shutdown(self) -> None:
        self.provider.shutdown()


def _by_code(key: tuple[str, str]) -> dict[str, str]:
    return {"rpc.method": key[0], "rpc.response.status_code": key[1]}


def _ready_callback(health: Callable[[], list[HealthReport]]) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def observe(_: CallbackOptions) -> Iterable[Observation]:
        return [Observation(1 if report.ok else 0, {"cosi.backend.name": report.backend}) for report in health()]

    return observe
