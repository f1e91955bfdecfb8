"""The standard gRPC health service (grpc.health.v1) on the COSI socket.

Statuses, so that one socket serves both kinds of probe:

* ``""`` (the whole server) and ``cosi.v1alpha1.Identity``: SERVING while the server accepts
  calls. Use these for liveness: a storage outage does not change them.
* ``cosi.v1alpha1.Provisioner``: SERVING only while every backend answers its health check
  (the readiness answer, refreshed by each Check of this service, cached briefly). Use this for
  readiness, e.g. ``grpc_health_probe -addr unix:///var/lib/cosi/cosi.sock -service
  cosi.v1alpha1.Provisioner``.

On shutdown every status turns NOT_SERVING before in-flight calls drain.
"""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from cosi_driver.observability.health import Readiness

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
IDENTITY = "cosi.v1alpha1.Identity"
PROVISIONER = "cosi.v1alpha1.Provisioner"
SERVICE_NAME: str = health.SERVICE_NAME


class HealthService(health.aio.HealthServicer):  # type: ignore[misc]
    def __init__(self, readiness: Readiness) -> None:
        super().__init__()
        self._readiness = readiness
        for service in ("", IDENTITY, PROVISIONER):
            self._server_status[service] = NOT_SERVING
        readiness.on_change(self._mirror)

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
        if request.service == PROVISIONER and not self._gracefully_shutting_down:
            await self._readiness.check()  # refreshes PROVISIONER through _mirror when the cache expired
        return await super().Check(request, context)

    async def _mirror(self, ready: bool) -> None:
        await self.set(PROVISIONER, SERVING if ready else NOT_SERVING)

    async def serving(self) -> None:
        await self.set("", SERVING)
        await self.set(IDENTITY, SERVING)

    def add_to(self, server: grpc.aio.Server) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self, server)
