"""The standard gRPC health service (grpc.health.v1) on the COSI socket.

Statuses, so that one socket serves both kinds of probe:

* ``""`` (the whole server) and every service an API adapter lists but not as a ready service
  (for v1alpha1: ``cosi.v1alpha1.Identity``): SERVING while the server accepts calls. Use these
  for liveness: a storage outage does not change them.
* The adapters' ready services (for v1alpha1: ``cosi.v1alpha1.Provisioner``): SERVING only while
  every backend answers its health check (the readiness answer, refreshed by each Check of such a
  service, cached briefly). Use one for readiness, e.g. ``grpc_health_probe -addr
  unix:///var/lib/cosi/cosi.sock -service cosi.v1alpha1.Provisioner``.

On shutdown every status turns NOT_SERVING before in-flight calls drain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cosi_driver.core.readiness import Readiness

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_NAME: str = health.SERVICE_NAME


class HealthService(health.aio.HealthServicer):  # type: ignore[misc]
    def __init__(self, readiness: Readiness, live: Iterable[str], ready: Iterable[str]) -> None:
        """``live`` services follow liveness, ``ready`` ones readiness; ``""`` is always live."""
        super().__init__()
        self._readiness = readiness
        self._live = ("", *live)
        self._ready = tuple(ready)
        for service in (*self._live, *self._ready):
            self._server_status[service] = NOT_SERVING
        readiness.on_change(self._mirror)

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
        if request.service in self._ready and not self._gracefully_shutting_down:
            await self._readiness.check()  # refreshes the ready services through _mirror when the cache expired
        return await super().Check(request, context)

    async def _mirror(self, ready: bool) -> None:
        for service in self._ready:
            await self.set(service, SERVING if ready else NOT_SERVING)

    async def serving(self) -> None:
        for service in self._live:
            await self.set(service, SERVING)

    def add_to(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self, server)
