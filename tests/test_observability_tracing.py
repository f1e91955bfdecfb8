"""Spans and metrics of real RPCs through the real server: success, each error code, recovery.

Telemetry is set up as ``cosi-driver serve`` sets it up, with in-memory exporters to read from.
The server answers before its spans, log events and metrics are complete (an aborted call's status
goes out first), so the tests wait for them with deadlines.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from cosi_driver.core import ids
from cosi_driver.core.driver import Route
from cosi_driver.core.errors import PermissionDenied
from cosi_driver.observability.tracing import add_trace_ids
from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.testing.client import expect_error
from tests.conftest import ServeFactory, filesystem_route, make_driver
from tests.fakes import Instrumented, gate, hanging, raising, spy
from tests.support import PROJECT_ROOT, Client, eventually
from tests.telemetry_kit import Kit, captured_logs, events, instrumented

PROVISIONER = "cosi.v1alpha1.Provisioner"


@pytest.fixture
def route(workdir: Path) -> Route:
    return filesystem_route(workdir, wrap=Instrumented)


async def start(
    serve: ServeFactory, workdir: Path, route: Route, operation_timeout: float = 10.0
) -> tuple[Client, Kit]:
    driver, kit = instrumented(
        lambda instrument: make_driver(workdir, [route], timeout=operation_timeout, instrument=instrument)
    )
    return await serve(driver, kit.options()), kit


async def one_server_span(kit: Kit, rpc: str, count: int = 1) -> Any:
    await eventually(lambda: len(kit.server_spans(rpc)) >= count, what=f"{count} server span(s) of {rpc}")
    return kit.server_spans(rpc)[count - 1]


async def test_a_create_is_a_server_span_with_one_child_span_per_backend_operation(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    client, kit = await start(serve, workdir, route)
    await client.create("bucket-a", deletionPolicy="purge")
    server = await one_server_span(kit, "DriverCreateBucket")
    assert server.kind is SpanKind.SERVER
    assert server.attributes is not None
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.service"] == PROVISIONER
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
    assert server.attributes["cosi.request.name"] == "bucket-a"
    assert server.attributes["cosi.bucket.id"] == "v2.filesystem.b.bucket-a"  # from the response
    children = kit.children(server)
    assert [span.name for span in children] == ["backend.find_bucket", "backend.create_bucket"]
    for child in children:
        assert child.kind is SpanKind.INTERNAL
        assert child.context is not None and server.context is not None
        assert child.context.trace_id == server.context.trace_id
        assert dict(child.attributes or {}) == {
            "cosi.backend.name": "filesystem",
            "cosi.backend.type": "filesystem",
            "cosi.backend.operation": child.name.removeprefix("backend."),
            "cosi.bucket.name": "bucket-a",
            "cosi.bucket.id": "v2.filesystem.b.bucket-a",
            "cosi.outcome": "OK",
        }
        assert child.status.status_code is StatusCode.UNSET
    method = {"rpc.method": f"{PROVISIONER}/DriverCreateBucket"}
    await eventually(lambda: kit.value("cosi.driver.rpc.requests", method) == 1, what="the request counted")
    assert kit.value("rpc.server.call.duration", {**method, "rpc.response.status_code": "OK"}) == 1
    assert kit.value("cosi.driver.rpc.errors") == 0
    assert kit.value("cosi.driver.panics") == 0
    for operation in ("find_bucket", "create_bucket"):
        labels = {"cosi.backend.name": "filesystem", "cosi.backend.operation": operation, "cosi.outcome": "OK"}
        assert kit.value("cosi.driver.backend.operation.duration", labels) == 1


async def test_grant_and_revoke_spans_name_the_account(serve: ServeFactory, workdir: Path, route: Route) -> None:
    client, kit = await start(serve, workdir, route)
    bucket_id = (await client.create("bucket-a")).bucket_id
    account_id = (await client.grant(bucket_id, "ba-1")).account_id
    await client.revoke(bucket_id, account_id)
    grant = await one_server_span(kit, "DriverGrantBucketAccess")
    assert grant.attributes is not None and grant.attributes["cosi.bucket.id"] == bucket_id
    backend_grant = next(span for span in kit.children(grant) if span.name == "backend.grant_access")
    assert backend_grant.attributes is not None and backend_grant.attributes["cosi.account.name"] == "ba-1"
    revoke = await one_server_span(kit, "DriverRevokeBucketAccess")
    assert revoke.attributes is not None and revoke.attributes["cosi.account.id"] == account_id
    [backend_revoke] = kit.children(revoke)
    assert backend_revoke.attributes is not None
    assert backend_revoke.attributes["cosi.account.name"] == ids.parse_account_id(account_id).account


@dataclass(frozen=True)
class Case:
    code: grpc.StatusCode
    failing_operation: str | None  # the backend span that carries the error, None when the core decides
    arrange: Callable[[Instrumented, Client, Path], Awaitable[None]]
    act: Callable[[Client], Awaitable[Any]]
    rpc: str = "DriverCreateBucket"


async def nothing(spy: Instrumented, client: Client, workdir: Path) -> None:
    return None


async def existing_purge_bucket(spy: Instrumented, client: Client, workdir: Path) -> None:
    await client.create("bucket-a", deletionPolicy="purge")


async def bucket_holding_data(spy: Instrumented, client: Client, workdir: Path) -> None:
    await client.create("bucket-a")
    (workdir / "data-filesystem" / "buckets" / "bucket-a" / "object").write_text("data")


def fail(operation: str, error: BaseException) -> Callable[[Instrumented, Client, Path], Awaitable[None]]:
    async def arrange(spy: Instrumented, client: Client, workdir: Path) -> None:
        spy.before[operation] = raising(error)

    return arrange


async def hang_create(spy: Instrumented, client: Client, workdir: Path) -> None:
    spy.before["create_bucket"] = hanging()


CASES = {
    "invalid-argument": Case(
        grpc.StatusCode.INVALID_ARGUMENT, None, nothing, lambda c: c.create("bucket-a", deletionPolicy="bogus")
    ),
    "not-found": Case(
        grpc.StatusCode.NOT_FOUND,
        None,
        nothing,
        lambda c: c.grant("v1/filesystem/nope", "ba-1"),
        "DriverGrantBucketAccess",
    ),
    "already-exists": Case(grpc.StatusCode.ALREADY_EXISTS, None, existing_purge_bucket, lambda c: c.create("bucket-a")),
    "failed-precondition": Case(
        grpc.StatusCode.FAILED_PRECONDITION,
        "delete_bucket",
        bucket_holding_data,
        lambda c: c.delete("v1/filesystem/bucket-a"),
        "DriverDeleteBucket",
    ),
    "permission-denied": Case(
        grpc.StatusCode.PERMISSION_DENIED,
        "create_bucket",
        fail("create_bucket", PermissionDenied("the storage refused the driver's credentials")),
        lambda c: c.create("bucket-a"),
    ),
    "unavailable": Case(
        grpc.StatusCode.UNAVAILABLE,
        "find_bucket",
        fail("find_bucket", ConnectionRefusedError(111, "Connection refused")),
        lambda c: c.create("bucket-a"),
    ),
    "deadline-exceeded": Case(
        grpc.StatusCode.DEADLINE_EXCEEDED, "create_bucket", hang_create, lambda c: c.create("bucket-a")
    ),
    "internal": Case(
        grpc.StatusCode.INTERNAL,
        "find_bucket",
        fail("find_bucket", RuntimeError("boom")),
        lambda c: c.create("bucket-a"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_each_error_code_shows_on_the_span_the_metrics_and_the_failing_backend_span(
    serve: ServeFactory, workdir: Path, route: Route, case: Case
) -> None:
    client, kit = await start(serve, workdir, route, operation_timeout=0.3)
    await case.arrange(spy(route), client, workdir)
    call = case.act(client)
    await expect_error(call, case.code)
    rpc = case.rpc
    method = {"rpc.method": f"{PROVISIONER}/{rpc}", "rpc.response.status_code": case.code.name}
    await eventually(lambda: kit.value("cosi.driver.rpc.errors", method) == 1, what="the error counted")
    assert kit.value("cosi.driver.rpc.requests", method) == 1
    assert kit.value("rpc.server.call.duration", method) == 1
    assert kit.value("cosi.driver.panics") == (1 if case.code is grpc.StatusCode.INTERNAL else 0)

    failed = next(
        span
        for span in kit.server_spans(rpc)
        if (span.attributes or {}).get("rpc.grpc.status_code") == case.code.value[0]
    )
    backend_spans = kit.children(failed)
    erroneous = [span for span in backend_spans if span.status.status_code is StatusCode.ERROR]
    if case.failing_operation is None:
        assert erroneous == []
        assert all((span.attributes or {}).get("cosi.outcome") == "OK" for span in backend_spans)
        return
    [span] = erroneous
    assert span.name == f"backend.{case.failing_operation}"
    assert span.attributes is not None
    assert span.attributes["cosi.outcome"] == case.code.name
    assert span.attributes["error.type"] == case.code.name
    assert span.events == ()  # no exception event: its message could echo a request
    labels = {"cosi.backend.operation": case.failing_operation, "cosi.outcome": case.code.name}
    assert kit.value("cosi.driver.backend.operation.duration", labels) == 1
    # And the server keeps serving.
    assert await client.info()


async def test_a_panic_is_internal_with_the_trace_id_as_correlation_id_and_is_counted(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    client, kit = await start(serve, workdir, route)
    bucket_id = (await client.create("bucket-a")).bucket_id
    spy(route).before["grant_access"] = raising(KeyError("internal-detail-that-must-stay-in-the-log"))
    with captured_logs(add_trace_ids) as buffer:
        message = await expect_error(client.grant(bucket_id, "ba-1"), grpc.StatusCode.INTERNAL)
        correlation_id = message.rsplit("correlation id ", 1)[1].rstrip(")")
        grant = await one_server_span(kit, "DriverGrantBucketAccess")
        await eventually(lambda: kit.value("cosi.driver.panics") == 1, what="the panic counted")
        await eventually(lambda: any(e.get("correlation_id") for e in events(buffer)), what="the crash log event")
    assert grant.context is not None
    assert correlation_id == format(grant.context.trace_id, "032x")
    assert "internal-detail" not in message and "KeyError" not in message
    assert kit.value("cosi.driver.panics", {"rpc.method": f"{PROVISIONER}/DriverGrantBucketAccess"}) == 1
    [crash] = [event for event in events(buffer) if event.get("correlation_id")]
    assert crash["trace_id"] == correlation_id and crash["rpc"] == "DriverGrantBucketAccess"
    assert crash["code"] == "INTERNAL" and crash["level"] == "error"
    assert "Traceback" in crash["exception"] and "KeyError" in crash["exception"]
    # The trace says what failed and where, never the exception's message.
    backend = next(span for span in kit.children(grant) if span.name == "backend.grant_access")
    assert backend.status.status_code is StatusCode.ERROR and backend.status.description == "KeyError"
    assert backend.attributes is not None and backend.attributes["cosi.outcome"] == "INTERNAL"
    assert grant.attributes is not None and grant.attributes["error.type"] == "KeyError"
    assert grant.status.status_code is StatusCode.ERROR
    for span in kit.finished():
        assert "internal-detail" not in span.to_json()
    # The process keeps serving, including the same call once the backend behaves.
    del spy(route).before["grant_access"]
    assert (await client.grant(bucket_id, "ba-1")).account_id


async def test_a_hanging_backend_times_out_without_a_panic(serve: ServeFactory, workdir: Path, route: Route) -> None:
    client, kit = await start(serve, workdir, route, operation_timeout=0.3)
    spy(route).before["create_bucket"] = hanging()
    await expect_error(client.create("bucket-a"), grpc.StatusCode.DEADLINE_EXCEEDED)
    create = await one_server_span(kit, "DriverCreateBucket")
    backend = next(span for span in kit.children(create) if span.name == "backend.create_bucket")
    assert backend.attributes is not None and backend.attributes["cosi.outcome"] == "DEADLINE_EXCEEDED"
    assert backend.end_time is not None and backend.start_time is not None
    assert (backend.end_time - backend.start_time) / 1e9 >= 0.3
    assert kit.value("cosi.driver.panics") == 0
    assert await client.info()


async def test_the_in_flight_gauge_counts_calls_inside_the_driver(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    client, kit = await start(serve, workdir, route)
    release = asyncio.Event()
    spy(route).before["create_bucket"] = gate(release)
    method = {"rpc.method": f"{PROVISIONER}/DriverCreateBucket"}
    calls = [asyncio.ensure_future(client.create(f"bucket-{n}")) for n in range(3)]
    await eventually(lambda: kit.value("cosi.driver.rpc.active", method) == 3, what="3 calls in flight")
    release.set()
    await asyncio.gather(*calls)
    await eventually(lambda: kit.value("cosi.driver.rpc.active", method) == 0, what="no call in flight")


async def test_a_caller_s_traceparent_makes_the_rpc_part_of_its_trace(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    client, kit = await start(serve, workdir, route)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    metadata = (("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01"),)
    await client.provisioner.DriverCreateBucket(pb.DriverCreateBucketRequest(name="bucket-a"), metadata=metadata)
    span = await one_server_span(kit, "DriverCreateBucket")
    assert span.context is not None and format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


async def test_each_rpc_logs_one_event_with_ids_code_duration_and_trace_ids(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    client, kit = await start(serve, workdir, route)
    with captured_logs(add_trace_ids) as buffer:
        bucket_id = (await client.create("bucket-a")).bucket_id
        await expect_error(client.grant("v1/filesystem/nope", "ba-1"), grpc.StatusCode.NOT_FOUND)
        await eventually(lambda: len([e for e in events(buffer) if e["event"] == "rpc"]) == 2, what="2 rpc events")
    create, grant = (event for event in events(buffer) if event["event"] == "rpc")
    span = await one_server_span(kit, "DriverCreateBucket")
    assert span.context is not None
    assert create["rpc"] == "DriverCreateBucket" and create["code"] == "OK" and create["name"] == "bucket-a"
    assert create["duration_ms"] > 0 and create["level"] == "info"
    assert create["trace_id"] == format(span.context.trace_id, "032x")
    assert create["span_id"] == format(span.context.span_id, "016x")
    assert create["bucket_id"] == bucket_id  # what the call made, from its response
    assert grant["code"] == "NOT_FOUND" and grant["bucket_id"] == "v1/filesystem/nope" and grant["level"] == "warning"
    assert grant["trace_id"] != create["trace_id"]


async def test_health_probes_make_no_spans_and_log_quietly(serve: ServeFactory, workdir: Path, route: Route) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    client, kit = await start(serve, workdir, route)
    with captured_logs(level="info") as buffer:
        stub = health_pb2_grpc.HealthStub(client.channel)
        await stub.Check(health_pb2.HealthCheckRequest(service=""))
        await client.info()
        await eventually(lambda: kit.server_spans("DriverGetInfo") != [], what="the info span")
    assert [span.name for span in kit.finished()] == ["/cosi.v1alpha1.Identity/DriverGetInfo"]
    assert [event["rpc"] for event in events(buffer) if event["event"] == "rpc"] == ["DriverGetInfo"]


def test_with_tracing_and_metrics_off_opentelemetry_is_never_imported(workdir: Path) -> None:
    """Cold start matters: with no OTEL_* exporter and no HTTP address, nothing of OTel loads."""
    program = f"""
import asyncio, sys
from pathlib import Path
from cosi_driver.observability import telemetry
from cosi_driver.spec.v1alpha1 import servicer as v1alpha1
from cosi_driver.transport.server import CosiServer, ServerOptions
from cosi_driver.transport.socket import SocketSpec
from tests.conftest import make_driver

async def main():
    t = telemetry.setup({{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_EXPORTER": "none"}}, metrics=False)
    assert t.instrument is None and not t.interceptors and not t.observers and t.tracing == "off"
    driver = make_driver(Path({str(workdir)!r}))
    server = CosiServer(driver, SocketSpec(Path({str(workdir / "x.sock")!r})), [v1alpha1.ADAPTER], ServerOptions())
    await server.start()
    await server.stop()
    loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
    print("loaded:", loaded)
    assert not loaded

asyncio.run(main())
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False, cwd=PROJECT_ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "x"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, ["otlp_proto_grpc"]),
        (
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            ["otlp_proto_http"],
        ),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, ["console", "otlp_proto_grpc"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, []),
    ],
)
def test_the_standard_variables_choose_the_span_exporters(environ: dict[str, str], exporters: list[str]) -> None:
    from cosi_driver.observability.tracing import exporter_names, load_exporters

    assert exporter_names(environ) == exporters
    for exporter in load_exporters(exporters):  # each is installed and builds from its own variables
        exporter.shutdown()
