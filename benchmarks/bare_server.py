"""A bare grpc.aio Identity servicer: the yardstick our full server is compared with.

No interceptors, no core, no logging: the generated stub's servicer answering DriverGetInfo on
a UNIX socket, as grpc's own aio examples do it. With ``--otel`` it gets the aio server
interceptor of opentelemetry-instrumentation-grpc and nothing else (every span sampled, batched to
a no-op exporter): the most throughput any server wrapped by that interceptor can reach.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc


class Identity(pb_grpc.IdentityServicer):  # type: ignore[misc]
    async def DriverGetInfo(self, request: Any, context: Any) -> Any:
        return pb.DriverGetInfoResponse(name="bare.example.com")


def otel_interceptors() -> list[Any]:
    from opentelemetry.instrumentation.grpc import aio_server_interceptor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from benchmarks.instrumented_server import Discard

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    return [aio_server_interceptor(provider)]


async def serve(path: str, otel: bool = False) -> None:
    server = grpc.aio.server(interceptors=otel_interceptors() if otel else None)
    pb_grpc.add_IdentityServicer_to_server(Identity(), server)
    server.add_insecure_port(f"unix://{path}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], otel="--otel" in sys.argv[2:]))
