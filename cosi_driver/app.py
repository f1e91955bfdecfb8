"""The composition root: the one place the driver process is put together and taken apart.

``cosi-driver serve``, the acceptance harness, the test fixtures and the benchmarks all build the
process here, so they share its defaults and its order. :class:`App` builds, in order,

    state store → credential kit → backends → telemetry → driver → readiness → gRPC server → HTTP server

and closes them in the reverse order. Telemetry comes before the driver because the driver is
complete when constructed (its operation instrument, its timeouts) and never changed afterwards;
the telemetry's readiness gauge reads the readiness object lazily, so it may exist first. Whoever
builds a part closes it: the root closes the driver (which closes its backends), not the server.
One grace period bounds the shutdown: the server's stop and then the driver's drain of operations
whose callers left share it, and the backends close only after both.

Everything an operator sets comes from :class:`~cosi_driver.config.settings.Settings` and the
backends file (:class:`~cosi_driver.config.backends.DriverConfig`). :class:`Hooks` holds what
only a program embedding the driver may change (tests, benchmarks): a span exporter, in-process
backends, the API adapters served.

Internal: embedders outside this repository run ``cosi-driver serve``; :class:`App` may change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cosi_driver.config.backends import DriverConfig
from cosi_driver.config.build import build_route, build_store, close_routes
from cosi_driver.config.settings import Settings
from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.driver import Driver, Route
from cosi_driver.core.instrument import OperationInstrument
from cosi_driver.core.readiness import Readiness
from cosi_driver.core.stores import StateStore

if TYPE_CHECKING:
    from cosi_driver.observability.http import HttpServer
    from cosi_driver.observability.telemetry import Telemetry
    from cosi_driver.transport.adapter import ApiAdapter
    from cosi_driver.transport.server import CosiServer


@dataclass(frozen=True)
class Hooks:
    """What a program embedding the driver may replace; never an operator setting."""

    span_exporter: Any = None  # an OpenTelemetry SpanExporter used instead of OTEL_TRACES_EXPORTER's
    metric_readers: Sequence[Any] = ()  # extra OpenTelemetry metric readers (in-memory in tests)
    batch_spans: bool = True  # False: export each span as it ends (tests read them at once)
    install_globals: bool = False  # make the telemetry providers the process-wide ones
    adapters: Sequence[ApiAdapter] | None = None  # None: the API versions the driver serves
    routes: Sequence[Route] | None = None  # in-process backends instead of the configured ones


def served_adapters(versions: Sequence[str]) -> list[ApiAdapter]:
    """The adapters of the COSI API versions ``COSI_DRIVER_APIS`` names, all served on one socket.

    Imported here: ``--help`` must not load the stubs.
    """
    import importlib

    return [importlib.import_module(f"cosi_driver.spec.{version}.servicer").ADAPTER for version in versions]


def new_driver(
    settings: Settings, routes: Sequence[Route], store: StateStore, instrument: OperationInstrument | None = None
) -> Driver:
    """The driver over ``routes``, the first one the default, shaped by every driver setting."""
    return Driver(
        name=settings.driver_name,
        routes={route.name: route for route in routes},
        default=routes[0].name,
        store=store,
        timeout=settings.operation_timeout,
        health_timeout=settings.health_timeout,
        instrument=instrument,
    )


class App:
    """One driver process: its parts once :meth:`start` has built them, closed by :meth:`close`."""

    def __init__(self, settings: Settings, config: DriverConfig, hooks: Hooks | None = None) -> None:
        self.settings = settings
        self.config = config
        self.hooks = hooks or Hooks()
        self._stack = contextlib.AsyncExitStack()
        self.store: StateStore | None = None
        self.kit: CredentialKit | None = None
        self.telemetry: Telemetry | None = None
        self.driver: Driver | None = None
        self.readiness: Readiness | None = None
        self.server: CosiServer | None = None
        self.http: HttpServer | None = None
        self._stop_began: float | None = None  # monotonic time the gRPC server began to stop

    async def start(self) -> None:
        """Build and start every part in order; on any failure close what was already built."""
        try:
            await self._build()
        except BaseException:
            await self.close()
            raise

    async def _build(self) -> None:
        from cosi_driver.observability import telemetry as telemetry_setup
        from cosi_driver.transport.server import CosiServer, ServerOptions
        from cosi_driver.transport.socket import SocketSpec

        settings, config, hooks = self.settings, self.config, self.hooks
        self.store = store = build_store(config.state)
        self.kit = kit = CredentialKit(store, config.master_key, config.master_key_version)
        routes: dict[str, Route] = {}
        handed_over = False

        async def close_unowned() -> None:
            if not handed_over:
                await close_routes(routes)

        self._stack.push_async_callback(close_unowned)
        if hooks.routes is not None:
            routes.update({route.name: route for route in hooks.routes})
        else:
            locks = KeyedLocks()
            for entry in config.backends.values():
                routes[entry.name] = build_route(entry, store, kit, locks, settings.driver_name)
        self.telemetry = telemetry = telemetry_setup.setup(
            os.environ,
            metrics=settings.http_addr is not None or bool(hooks.metric_readers),
            health=lambda: self.readiness.last_reports if self.readiness is not None else [],
            span_exporter=hooks.span_exporter,
            metric_readers=hooks.metric_readers,
            batch=hooks.batch_spans,
            install_globals=hooks.install_globals,
        )
        self._stack.callback(telemetry.shutdown)
        ordered = [routes[config.default], *(r for n, r in routes.items() if n != config.default)]
        self.driver = driver = new_driver(settings, ordered, store, telemetry.instrument)
        handed_over = True
        self._stack.push_async_callback(self._close_driver, driver)
        self.readiness = readiness = Readiness(driver)
        spec = SocketSpec(settings.endpoint, settings.socket_mode, settings.socket_uid, settings.socket_gid)
        options = ServerOptions(
            grace_seconds=settings.shutdown_grace,
            interceptors=telemetry.interceptors,
            observers=telemetry.observers,
            correlation_id=telemetry.correlation_id,
            readiness=readiness,
            reflection=settings.grpc_reflection,
        )
        adapters = hooks.adapters if hooks.adapters is not None else served_adapters(settings.apis)
        self.server = server = CosiServer(driver, spec, adapters, options)
        if settings.http_addr is not None:
            await self._start_http(settings.http_addr, readiness, telemetry.exposition)
        await server.start()
        self._stack.push_async_callback(server.stop)
        self._stack.callback(self._note_stop)  # runs first: the grace period starts with the server's stop

    def _note_stop(self) -> None:
        self._stop_began = time.monotonic()

    async def _close_driver(self, driver: Driver) -> None:
        """Close the driver within what is left of the grace period after the server stopped.

        Calls still answering had the grace period to finish; operations their callers left
        (single-flight) get what remains of it, so one grace period bounds the whole shutdown.
        """
        grace = self.settings.shutdown_grace
        if self._stop_began is not None:
            grace = max(0.0, grace - (time.monotonic() - self._stop_began))
        await driver.close(grace)

    async def _start_http(self, addr: tuple[str, int], readiness: Readiness, exposition: Any) -> None:
        from cosi_driver.observability.http import HttpServer, probe_routes
        from cosi_driver.transport.socket import SocketError

        http = HttpServer(addr[0], addr[1], probe_routes(readiness, exposition))
        try:
            await http.start()
        except OSError as error:
            raise SocketError(
                f"cannot listen on COSI_DRIVER_HTTP_ADDR {addr[0]}:{addr[1]}: {error.strerror or error}. "
                "Fix: choose a free port, or unset COSI_DRIVER_HTTP_ADDR"
            ) from None
        self.http = http
        self._stack.push_async_callback(http.stop)

    async def close(self) -> None:
        """Stop and close every part built so far, the last built first. Safe to call twice."""
        await self._stack.aclose()

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()


async def run(environ: Mapping[str, str], flags: Mapping[str, str], hooks: Hooks | None = None) -> int:
    """``cosi-driver serve``: load settings (``flags`` override ``environ``), serve until SIGTERM/SIGINT."""
    import structlog

    from cosi_driver import __version__
    from cosi_driver.config.backends import load_driver_config
    from cosi_driver.config.settings import load_settings
    from cosi_driver.observability.logging import configure

    settings = load_settings(environ, flags)
    configure(settings.log_level, settings.log_format)
    config = load_driver_config(settings, environ)
    register_secrets(config)
    if settings.grpc_reflection:
        _require_reflection()
    # The command's telemetry is the process's: instrumented libraries report through it too.
    app = App(settings, config, dataclasses.replace(hooks or Hooks(), install_globals=True))
    async with app:
        assert app.server is not None
        assert app.telemetry is not None
        if app.telemetry.log_processors:
            configure(settings.log_level, settings.log_format, extra_processors=app.telemetry.log_processors)
        spec = app.server.spec
        log: Any = structlog.get_logger("cosi_driver")
        log.info(
            "serving",
            version=__version__,
            driver_name=settings.driver_name,
            endpoint=spec.address,
            socket_mode=f"{spec.mode:04o}",
            socket_uid=os.geteuid() if spec.uid is None else spec.uid,
            socket_gid=os.getegid() if spec.gid is None else spec.gid,
            config_source=config.source,
            apis=",".join(settings.apis),
            backends={name: entry.type.type_name for name, entry in config.backends.items()},
            default_backend=config.default,
            http_addr=app.http.address if app.http is not None else None,
            tracing=app.telemetry.tracing,
            metrics=app.telemetry.metrics,
            grpc_health=True,
            grpc_reflection=settings.grpc_reflection,
            pid=os.getpid(),
        )
        _warn_development_only(log, config)
        await app.server.wait_for_signal()
    return 0


def _warn_development_only(log: Any, config: DriverConfig) -> None:
    """Serving a development-only backend is allowed (``make run``, tests) but never quiet."""
    for name, entry in config.backends.items():
        if entry.type.development_only:
            log.warning(
                "development-only backend: not for real workloads",
                backend=name,
                backend_type=entry.type.type_name,
                summary=entry.type.summary,
            )


def register_secrets(config: DriverConfig) -> None:
    """Scrub the master key and every backend secret (admin keys) from all log output."""
    from cosi_driver.core.options import SecretRef
    from cosi_driver.observability.logging import register_secret

    refs = [config.master_key] if config.master_key is not None else []
    for entry in config.backends.values():
        if dataclasses.is_dataclass(entry.config):
            refs += [
                v for f in dataclasses.fields(entry.config) if isinstance(v := getattr(entry.config, f.name), SecretRef)
            ]
    for ref in refs:
        # Checked at load time; a reference that fails now has nothing to scrub.
        with contextlib.suppress(Exception):
            register_secret(ref.get())


def _require_reflection() -> None:
    import importlib.util

    from cosi_driver.core.options import ConfigProblem

    if importlib.util.find_spec("grpc_reflection") is None:
        raise ConfigProblem(
            "COSI_DRIVER_GRPC_REFLECTION",
            "is on but the grpcio-reflection package is not installed",
            "install the reflection extra (pip install 'cosi-driver[reflection]') or turn it off",
        )
