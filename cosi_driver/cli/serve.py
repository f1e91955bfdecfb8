"""``cosi-driver serve``: every setting from the environment; flags override."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING, Any

from cosi_driver.config.settings import SETTINGS

if TYPE_CHECKING:
    from cosi_driver.transport.adapter import ApiAdapter


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "Every flag overrides the environment variable named in its help."
    for setting in SETTINGS:
        if not setting.flag:
            continue
        default = f" (default: {setting.default})" if setting.default is not None else ""
        parser.add_argument(
            setting.flag,
            dest=f"setting_{setting.attribute}",
            metavar=setting.env,
            help=f"{setting.doc} [env {setting.env}]{default}",
        )


def run(args: argparse.Namespace) -> int:
    from cosi_driver.core.options import ConfigProblem
    from cosi_driver.transport.socket import SocketError

    overrides = {
        setting.env: getattr(args, f"setting_{setting.attribute}")
        for setting in SETTINGS
        if setting.flag and getattr(args, f"setting_{setting.attribute}", None) is not None
    }
    try:
        return asyncio.run(serve(overrides))
    except ConfigProblem as problem:
        print(f"cosi-driver: configuration error: {problem}", file=sys.stderr)
        return 2
    except SocketError as error:
        print(f"cosi-driver: cannot serve: {error}", file=sys.stderr)
        return 1


def _api_adapters(versions: tuple[str, ...]) -> list[ApiAdapter]:
    """The adapters of the COSI API versions COSI_DRIVER_APIS names, all on one socket.

    Imported here: ``--help`` must not load the stubs.
    """
    import importlib

    return [importlib.import_module(f"cosi_driver.spec.{version}.servicer").ADAPTER for version in versions]


async def serve(overrides: dict[str, str], *, span_exporter: Any = None) -> int:
    """Serve until SIGTERM/SIGINT. ``span_exporter`` replaces the exporter OTEL_TRACES_EXPORTER
    would choose (a program embedding the driver, or the benchmark's no-op exporter)."""
    import structlog

    from cosi_driver import __version__
    from cosi_driver.config.backends import load_driver_config
    from cosi_driver.config.build import build_driver
    from cosi_driver.config.settings import load_settings
    from cosi_driver.observability import telemetry as telemetry_setup
    from cosi_driver.observability.health import Readiness
    from cosi_driver.observability.logging import configure
    from cosi_driver.transport.server import CosiServer, ServerOptions
    from cosi_driver.transport.socket import SocketSpec

    settings = load_settings(os.environ, overrides)
    configure(settings.log_level, settings.log_format)
    config = load_driver_config(settings, os.environ)
    _register_secrets(config)
    if settings.grpc_reflection:
        _require_reflection()
    driver = build_driver(settings, config)
    readiness = Readiness(driver)
    try:
        telemetry = telemetry_setup.setup(
            os.environ,
            metrics=settings.http_addr is not None,
            health=lambda: readiness.last_reports,
            span_exporter=span_exporter,
            install_globals=True,
        )
    except BaseException:
        await driver.close()
        raise
    if telemetry.log_processors:
        configure(settings.log_level, settings.log_format, extra_processors=telemetry.log_processors)
    driver.instrument = telemetry.instrument
    spec = SocketSpec(settings.endpoint, settings.socket_mode, settings.socket_uid, settings.socket_gid)
    server = CosiServer(
        driver,
        spec,
        _api_adapters(settings.apis),
        ServerOptions(
            grace_seconds=settings.shutdown_grace,
            interceptors=telemetry.interceptors,
            observers=telemetry.observers,
            correlation_id=telemetry.correlation_id,
            readiness=readiness,
            reflection=settings.grpc_reflection,
        ),
    )
    http = _http_server(settings.http_addr, readiness, telemetry.exposition)
    log: Any = structlog.get_logger("cosi_driver")
    try:
        if http is not None:
            await _start_http(http, settings.http_addr)
        await server.start()
    except BaseException:
        if http is not None:
            await http.stop()
        await driver.close()
        telemetry.shutdown()
        raise
    log.info(
        "serving",
        version=__version__,
        driver_name=settings.driver_name,
        endpoint=spec.address,
        apis=list(settings.apis),
        socket_mode=f"{spec.mode:04o}",
        socket_uid=os.geteuid() if spec.uid is None else spec.uid,
        socket_gid=os.getegid() if spec.gid is None else spec.gid,
        config_source=config.source,
        backends={name: entry.type.type_name for name, entry in config.backends.items()},
        default_backend=config.default,
        http_addr=http.address if http is not None else None,
        tracing=telemetry.tracing,
        metrics=telemetry.metrics,
        grpc_health=True,
        grpc_reflection=settings.grpc_reflection,
        pid=os.getpid(),
    )
    _warn_development_only(log, config)
    try:
        await server.wait_for_signal()
    finally:
        if http is not None:
            await http.stop()
        telemetry.shutdown()
    return 0


def _warn_development_only(log: Any, config: Any) -> None:
    """Serving a development-only backend is allowed (``make run``, tests) but never quiet."""
    for name, entry in config.backends.items():
        if entry.type.development_only:
            log.warning(
                "development-only backend: not for real workloads",
                backend=name,
                backend_type=entry.type.type_name,
                summary=entry.type.summary,
            )


def _register_secrets(config: Any) -> None:
    """Scrub the master key and every backend secret (admin keys) from all log output."""
    import contextlib
    import dataclasses

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


def _http_server(addr: tuple[str, int] | None, readiness: Any, exposition: Any) -> Any:
    if addr is None:
        return None
    from cosi_driver.observability.http import HttpServer, probe_routes

    return HttpServer(addr[0], addr[1], probe_routes(readiness, exposition))


async def _start_http(http: Any, addr: tuple[str, int] | None) -> None:
    from cosi_driver.transport.socket import SocketError

    try:
        await http.start()
    except OSError as error:
        assert addr is not None
        raise SocketError(
            f"cannot listen on COSI_DRIVER_HTTP_ADDR {addr[0]}:{addr[1]}: {error.strerror or error}. "
            "Fix: choose a free port, or unset COSI_DRIVER_HTTP_ADDR"
        ) from None
