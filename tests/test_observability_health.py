"""Liveness and readiness: the gRPC health service on the COSI socket and HTTP /livez, /readyz, /metrics.

Readiness must flip when a backend goes away and come back when it returns, with no restart;
liveness must not care about storage at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cosi_driver.core.driver import Route
from cosi_driver.core.errors import Unavailable
from cosi_driver.core.readiness import Readiness
from cosi_driver.observability.http import HttpServer, probe_routes
from cosi_driver.testing.client import expect_error
from tests.conftest import ServeFactory, filesystem_route, make_driver
from tests.fakes import Instrumented, hanging, raising, spy
from tests.support import Client, eventually
from tests.telemetry_kit import Kit, instrumented

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def route(workdir: Path) -> Route:
    return filesystem_route(workdir, wrap=Instrumented)


async def http_get(port: int, path: str, method: str = "GET", raw: bytes | None = None) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw or f"{method} {path} HTTP/1.1\r\nHost: probe\r\nUser-Agent: kube-probe/1.31\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return int(head.split(" ", 2)[1]), body


@pytest.fixture
async def probes(serve: ServeFactory, workdir: Path, route: Route) -> AsyncIterator[tuple[Client, Kit, int]]:
    """The real server with telemetry, and the HTTP probe server beside it on 127.0.0.1."""
    driver, kit = instrumented(
        lambda instrument: make_driver(workdir, [route], health_timeout=0.3, instrument=instrument)
    )
    client = await serve(driver, kit.options())
    http = HttpServer("127.0.0.1", 0, probe_routes(kit.readiness, kit.telemetry.exposition))
    await http.start()
    try:
        yield client, kit, http.port
    finally:
        await http.stop()


async def check(client: Client, service: str) -> int:
    response = await health_pb2_grpc.HealthStub(client.channel).Check(health_pb2.HealthCheckRequest(service=service))
    return int(response.status)


async def test_readyz_flips_when_the_backend_goes_away_and_back_when_it_returns(
    probes: tuple[Client, Kit, int], route: Route
) -> None:
    client, _, port = probes
    assert await http_get(port, "/livez") == (200, "ok\n")
    status, body = await http_get(port, "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready", "backends": {"filesystem": {"ready": True}}}

    spy(route).before["check_health"] = raising(Unavailable("storage cluster is in maintenance"))
    status, body = await http_get(port, "/readyz")
    assert status == 503
    assert json.loads(body)["backends"]["filesystem"] == {"ready": False, "detail": "storage cluster is in maintenance"}
    assert (await http_get(port, "/livez"))[0] == 200  # liveness never depends on storage
    assert await client.info()

    spy(route).before["check_health"] = hanging()  # a backend that stops answering
    status, body = await http_get(port, "/readyz")
    assert status == 503 and "no answer within 0.3s" in body

    del spy(route).before["check_health"]
    assert (await http_get(port, "/readyz"))[0] == 200


async def test_grpc_health_serves_liveness_overall_and_readiness_for_the_provisioner(
    probes: tuple[Client, Kit, int], route: Route
) -> None:
    client, _, _ = probes
    assert [await check(client, name) for name in ("", "cosi.v1alpha1.Identity", "cosi.v1alpha1.Provisioner")] == [
        SERVING,
        SERVING,
        SERVING,
    ]
    spy(route).before["check_health"] = raising(Unavailable("gone"))
    assert await check(client, "cosi.v1alpha1.Provisioner") == NOT_SERVING
    assert await check(client, "") == SERVING
    del spy(route).before["check_health"]
    assert await check(client, "cosi.v1alpha1.Provisioner") == SERVING


async def test_grpc_health_of_an_unknown_service_is_not_found_and_no_panic(probes: tuple[Client, Kit, int]) -> None:
    client, kit, _ = probes
    stub = health_pb2_grpc.HealthStub(client.channel)
    await expect_error(stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service")), grpc.StatusCode.NOT_FOUND)
    labels = {"rpc.method": "grpc.health.v1.Health/Check", "rpc.response.status_code": "NOT_FOUND"}
    await eventually(lambda: kit.value("cosi.driver.rpc.requests", labels) == 1, what="the probe counted")
    assert kit.value("cosi.driver.panics") == 0


async def test_readiness_is_cached_briefly_and_concurrent_probes_share_one_check(workdir: Path, route: Route) -> None:
    now = [100.0]
    readiness = Readiness(make_driver(workdir, [route]), cache_seconds=2.0, clock=lambda: now[0])
    readiness.serving = True
    release = asyncio.Event()

    async def slow(method: str, request: object) -> None:
        await release.wait()

    spy(route).before["check_health"] = slow
    probes = [asyncio.ensure_future(readiness.check()) for _ in range(5)]
    await eventually(lambda: spy(route).calls["check_health"] == 1, what="the first check to start")
    release.set()
    assert {ready for ready, _ in await asyncio.gather(*probes)} == {True}
    assert spy(route).calls["check_health"] == 1
    await readiness.check()
    assert spy(route).calls["check_health"] == 1  # within the cache period
    now[0] += 2.5
    await readiness.check()
    assert spy(route).calls["check_health"] == 2


async def test_readiness_is_false_while_the_server_is_not_serving(workdir: Path, route: Route) -> None:
    readiness = Readiness(make_driver(workdir, [route]), cache_seconds=0)
    ready, reports = await readiness.check()
    assert not ready and [report.ok for report in reports] == [True]
    readiness.serving = True
    assert (await readiness.check())[0]


async def test_metrics_are_exposed_for_prometheus(probes: tuple[Client, Kit, int]) -> None:
    client, kit, port = probes
    await client.create("bucket-a")
    await expect_error(client.grant("v1/filesystem/nope", "ba-1"), grpc.StatusCode.NOT_FOUND)
    await http_get(port, "/readyz")
    labels = {"rpc.response.status_code": "NOT_FOUND"}
    await eventually(lambda: kit.value("cosi.driver.rpc.errors", labels) == 1, what="the error counted")
    status, text = await http_get(port, "/metrics")
    assert status == 200
    lines = text.splitlines()
    create = 'rpc_method="cosi.v1alpha1.Provisioner/DriverCreateBucket"'
    grant = 'rpc_method="cosi.v1alpha1.Provisioner/DriverGrantBucketAccess"'

    def sample(name: str, *labels: str) -> float:
        [line] = [line for line in lines if line.startswith(name + "{") and all(label in line for label in labels)]
        return float(line.rsplit(" ", 1)[1])

    assert sample("cosi_driver_rpc_requests_total", create, 'rpc_response_status_code="OK"') == 1
    assert sample("cosi_driver_rpc_errors_total", grant, 'rpc_response_status_code="NOT_FOUND"') == 1
    assert sample("rpc_server_call_duration_seconds_count", create, 'rpc_system_name="grpc"') == 1
    assert sample("cosi_driver_rpc_active", create) == 0
    assert (
        sample(
            "cosi_driver_backend_operation_duration_seconds_count",
            'cosi_backend_operation="create_bucket"',
            'cosi_outcome="OK"',
        )
        == 1
    )
    assert sample("cosi_driver_backend_ready", 'cosi_backend_name="filesystem"') == 1
    assert "# TYPE rpc_server_call_duration_seconds histogram" in text


async def test_the_http_server_answers_only_what_it_serves(probes: tuple[Client, Kit, int]) -> None:
    _, _, port = probes
    assert (await http_get(port, "/nope"))[0] == 404
    assert (await http_get(port, "/livez", method="POST"))[0] == 405
    assert await http_get(port, "/livez", method="HEAD") == (200, "")
    assert (await http_get(port, "", raw=b"garbage\r\n\r\n"))[0] == 400
    assert (await http_get(port, "/readyz?verbose"))[0] == 200


async def test_metrics_off_answers_404_with_the_fix(workdir: Path, route: Route) -> None:
    readiness = Readiness(make_driver(workdir, [route]))
    http = HttpServer("127.0.0.1", 0, probe_routes(readiness, None))
    await http.start()
    try:
        status, body = await http_get(http.port, "/metrics")
        assert status == 404 and "cosi-driver[otel]" in body
        assert (await http_get(http.port, "/readyz"))[0] == 503  # no server serving yet
    finally:
        await http.stop()


async def test_reflection_lists_the_services_when_turned_on(serve: ServeFactory, workdir: Path) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    from cosi_driver.transport.server import ServerOptions

    client = await serve(make_driver(workdir), ServerOptions(reflection=True))
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = [response async for response in stub.ServerReflectionInfo(iter([request]))]
    names = {service.name for service in responses[0].list_services_response.service}
    assert {"cosi.v1alpha1.Identity", "cosi.v1alpha1.Provisioner", "grpc.health.v1.Health"} <= names


async def test_reflection_is_off_by_default(client: Client) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        _ = [response async for response in stub.ServerReflectionInfo(iter([request]))]
    assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED
