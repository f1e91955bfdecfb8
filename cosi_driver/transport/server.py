"""The grpc.aio server on a permission-controlled UNIX socket, and its orderly shutdown.

It serves the COSI API versions its builder hands it as :class:`~cosi_driver.transport.adapter.ApiAdapter`
objects (it imports no spec version itself), always the standard gRPC health service over their
service names (see :mod:`cosi_driver.transport.health`), and gRPC reflection when asked to.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
import structlog

from cosi_driver.core.driver import Driver
from cosi_driver.core.readiness import Readiness
from cosi_driver.transport import socket as sockets
from cosi_driver.transport.adapter import ApiAdapter, check_adapters
from cosi_driver.transport.calls import CallObserver
from cosi_driver.transport.health import SERVICE_NAME as HEALTH_SERVICE
from cosi_driver.transport.health import HealthService
from cosi_driver.transport.interceptors import RecoveryInterceptor
from cosi_driver.transport.status import new_correlation_id

log = structlog.get_logger("cosi_driver.server")

#: Something that adds more services to the server before it starts (health, reflection).
ServiceHook = Callable[[grpc.aio.Server], None]

# COSI messages are small (strings of 128 bytes, maps of 4 KiB); a large frame is garbage.
MAX_MESSAGE_BYTES = 1 << 20


@dataclass
class ServerOptions:
    grace_seconds: float = 10.0
    interceptors: Sequence[grpc.aio.ServerInterceptor] = ()  # outside the recovery interceptor (tracing)
    observers: list[CallObserver] = field(default_factory=list)
    service_hooks: list[ServiceHook] = field(default_factory=list)
    correlation_id: Callable[[], str] = new_correlation_id  # the trace id when tracing is on
    readiness: Readiness | None = None  # shared with the HTTP probes; made here when not given
    reflection: bool = False


class CosiServer:
    def __init__(
        self,
        driver: Driver,
        spec: sockets.SocketSpec,
        adapters: Sequence[ApiAdapter],
        options: ServerOptions | None = None,
    ) -> None:
        """``adapters``: the COSI API versions to serve, e.g. ``[cosi_driver.spec.v1alpha1.servicer.ADAPTER]``."""
        self.driver = driver
        self.spec = spec
        self.adapters = check_adapters(adapters)
        self.options = options or ServerOptions()
        self.readiness = self.options.readiness or Readiness(driver)
        ready = [service for adapter in self.adapters for service in adapter.ready_services]
        live = [service for adapter in self.adapters for service in adapter.services if service not in ready]
        self._health = HealthService(self.readiness, live, ready)
        self._server: grpc.aio.Server | None = None
        self._inode: int | None = None
        self._stopping: asyncio.Event | None = None

    async def start(self) -> None:
        sockets.prepare_path(self.spec.path)
        recovery = RecoveryInterceptor(self.options.observers, self.options.correlation_id)
        server = grpc.aio.server(
            interceptors=[*self.options.interceptors, recovery],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        for adapter in self.adapters:
            adapter.add_to_server(server, self.driver)
        self._health.add_to(server)
        if self.options.reflection:
            _add_reflection(server, [service for adapter in self.adapters for service in adapter.services])
        for hook in self.options.service_hooks:
            hook(server)
        with sockets.creation_mode(sockets.bind_mode(self.spec)):
            bound = server.add_insecure_port(self.spec.address)
        if not bound:
            raise sockets.SocketError(f"gRPC could not bind {self.spec.address}")
        self._inode = self.spec.path.lstat().st_ino
        try:
            sockets.finish_ownership(self.spec)
        except PermissionError:
            sockets.remove_if_ours(self.spec.path, self._inode)
            raise sockets.SocketError(
                f"cannot give {self.spec.path} owner uid={self.spec.uid} gid={self.spec.gid}: permission denied. "
                "Fix: run as root or as that user, or unset X_COSI_ENDPOINT_USER / X_COSI_ENDPOINT_GROUP"
            ) from None
        await server.start()
        self._server = server
        self._stopping = asyncio.Event()
        self.readiness.serving = True
        await self._health.serving()

    async def stop(self) -> None:
        """Stop accepting, let in-flight calls finish within the grace period, remove the socket.

        The driver is left open: whoever built it closes it (:class:`cosi_driver.app.App`)."""
        if self._server is None:
            return
        server, self._server = self._server, None
        self.readiness.serving = False
        await self._health.enter_graceful_shutdown()
        await server.stop(self.options.grace_seconds)
        sockets.remove_if_ours(self.spec.path, self._inode)

    def request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def wait_for_signal(self) -> None:
        """Serve until SIGTERM or SIGINT (or :meth:`request_stop`), then shut down gracefully."""
        assert self._stopping is not None, "start() first"
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            await self._stopping.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await self.stop()
            log.info("stopped", endpoint=self.spec.address)

    def _on_signal(self, signum: int) -> None:
        log.info(
            "shutting down",
            signal=signal.Signals(signum).name,
            grace_seconds=self.options.grace_seconds,
            pid=os.getpid(),
        )
        self.request_stop()


def _add_reflection(server: grpc.aio.Server, services: Sequence[str]) -> None:
    """Let grpcurl and friends list and describe the services (off by default: it is a debugging aid)."""
    from grpc_reflection.v1alpha import reflection

    names = (*services, HEALTH_SERVICE, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
