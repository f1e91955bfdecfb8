"""The transport serves whichever API adapters it is given, with no knowledge of any spec version.

A made-up second version (``cosi.vtest``, two services over grpc's generic handlers) is served
beside v1alpha1: its calls reach the driver through the same recovery interceptor (so core errors
become the same gRPC codes), its services appear in the health service and in reflection, and its
ready service follows readiness as v1alpha1's Provisioner does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cosi_driver.core.driver import Driver, Route
from cosi_driver.core.errors import InvalidArgument, Unavailable
from cosi_driver.core.readiness import Readiness
from cosi_driver.spec.v1alpha1 import servicer as v1alpha1
from cosi_driver.testing.client import expect_error
from cosi_driver.transport.server import CosiServer, ServerOptions
from cosi_driver.transport.socket import SocketSpec
from tests.conftest import ServeFactory, filesystem_route, make_driver
from tests.fakes import Instrumented, raising, spy

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
IDENTITY, PROVISIONER = "cosi.vtest.Identity", "cosi.vtest.Provisioner"


def _unary(behaviour: Any) -> grpc.RpcMethodHandler:
    # bytes in, bytes out: no generated stubs needed for a made-up version
    return grpc.unary_unary_rpc_method_handler(behaviour, lambda raw: raw, lambda raw: raw)


@dataclass(frozen=True)
class VTest:
    """A second API version as any spec package would provide it."""

    name: str = "vtest"
    services: tuple[str, ...] = (IDENTITY, PROVISIONER)
    ready_services: tuple[str, ...] = (PROVISIONER,)

    def add_to_server(self, server: grpc.aio.Server, driver: Driver) -> None:
        async def name(request: bytes, context: Any) -> bytes:
            return driver.get_info().encode()

        async def create(request: bytes, context: Any) -> bytes:
            if not request:
                raise InvalidArgument("name: must not be empty")
            return (await driver.create_bucket(request.decode(), {})).bucket_id.encode()

        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(IDENTITY, {"Name": _unary(name)}),
                grpc.method_handlers_generic_handler(PROVISIONER, {"Create": _unary(create)}),
            )
        )


async def health(channel: grpc.aio.Channel, service: str) -> int:
    response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
    return int(response.status)


@pytest.fixture
def route(workdir: Path) -> Route:
    return filesystem_route(workdir, wrap=Instrumented)


async def test_a_second_version_is_served_beside_v1alpha1(serve: ServeFactory, workdir: Path, route: Route) -> None:
    driver = make_driver(workdir, [route])
    options = ServerOptions(readiness=Readiness(driver, cache_seconds=0), reflection=True)
    client = await serve(driver, options, adapters=[v1alpha1.ADAPTER, VTest()])
    channel = client.channel

    assert await channel.unary_unary(f"/{IDENTITY}/Name")(b"") == driver.get_info().encode()
    assert await client.info() == driver.get_info()  # v1alpha1 unchanged beside it
    bucket_id = await channel.unary_unary(f"/{PROVISIONER}/Create")(b"bucket-vtest")
    assert bucket_id.decode().startswith("v2.filesystem.b.")
    # The transport's one error mapping applies to every adapter: a core error, its precise code.
    await expect_error(channel.unary_unary(f"/{PROVISIONER}/Create")(b""), grpc.StatusCode.INVALID_ARGUMENT)

    ready = ("cosi.v1alpha1.Provisioner", PROVISIONER)
    live = ("", "cosi.v1alpha1.Identity", IDENTITY)
    assert [await health(channel, service) for service in (*live, *ready)] == [SERVING] * 5
    spy(route).before["check_health"] = raising(Unavailable("storage away"))
    assert [await health(channel, service) for service in ready] == [NOT_SERVING] * 2
    assert [await health(channel, service) for service in live] == [SERVING] * 3

    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [answer] = [
        reply async for reply in reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo([request])
    ]
    names = {service.name for service in answer.list_services_response.service}
    assert {IDENTITY, PROVISIONER, "cosi.v1alpha1.Identity", "cosi.v1alpha1.Provisioner"} <= names


def test_a_server_without_adapters_is_refused_with_the_fix(workdir: Path) -> None:
    with pytest.raises(ValueError, match=r"at least one API adapter, e\.g\. \[cosi_driver\.spec\.v1alpha1"):
        CosiServer(make_driver(workdir), SocketSpec(workdir / "none.sock"), [])


def test_a_service_claimed_by_two_adapters_is_refused(workdir: Path) -> None:
    clash = VTest(name="clash", services=("cosi.v1alpha1.Identity",), ready_services=())
    with pytest.raises(ValueError, match=r"cosi\.v1alpha1\.Identity is registered by both v1alpha1 and clash"):
        CosiServer(make_driver(workdir), SocketSpec(workdir / "clash.sock"), [v1alpha1.ADAPTER, clash])


def test_a_ready_service_must_be_one_the_adapter_registers(workdir: Path) -> None:
    stray = VTest(ready_services=("cosi.vtest.Elsewhere",))
    with pytest.raises(ValueError, match=r"vtest names ready services it does not register: cosi\.vtest\.Elsewhere"):
        CosiServer(make_driver(workdir), SocketSpec(workdir / "stray.sock"), [stray])
