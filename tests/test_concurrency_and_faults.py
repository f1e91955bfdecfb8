"""Duplicate calls, parallel calls, time limits and unexpected failures, through the real server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from grpc import StatusCode

from cosi_driver.core.driver import Driver, Route
from cosi_driver.core.errors import Unavailable
from cosi_driver.testing.client import expect_error, s3_secrets
from tests.conftest import ServeFactory, filesystem_route, make_driver
from tests.fakes import Instrumented, Rendezvous, gate, hanging, raising
from tests.support import eventually


def count_arrivals(driver: Driver) -> Callable[[], int]:
    """Count CreateBucket calls as they enter the driver core (before any de-duplication)."""
    arrived = 0
    original = driver.create_bucket

    async def counting(*args: Any) -> Any:
        nonlocal arrived
        arrived += 1
        return await original(*args)

    driver.create_bucket = counting  # type: ignore[method-assign]
    return lambda: arrived


@pytest.fixture
def route(workdir: Path) -> Route:
    """The filesystem backend wrapped in :class:`Instrumented` (as ``route.backend``)."""
    return filesystem_route(workdir, wrap=Instrumented)


def spy(route: Route) -> Instrumented:
    assert isinstance(route.backend, Instrumented)
    return route.backend


async def test_50_identical_concurrent_creates_make_one_bucket(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    release = asyncio.Event()
    spy(route).before["create_bucket"] = gate(release)
    driver = make_driver(workdir, [route])
    arrived = count_arrivals(driver)
    client = await serve(driver)
    calls = [asyncio.ensure_future(client.create("bucket-a", deletionPolicy="purge")) for _ in range(50)]
    await eventually(lambda: arrived() == 50, what="all 50 calls to be inside the driver")
    release.set()
    responses = await asyncio.gather(*calls)
    assert {response.bucket_id for response in responses} == {"v2.filesystem.b.bucket-a"}
    assert spy(route).calls["create_bucket"] == 1
    assert [p.name for p in (workdir / "data-filesystem" / "buckets").iterdir()] == ["bucket-a"]


async def test_20_identical_concurrent_grants_make_one_account_with_one_secret(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    client = await serve(make_driver(workdir, [route]))
    bucket_id = (await client.create("bucket-a")).bucket_id
    responses = await asyncio.gather(*(client.grant(bucket_id, "ba-1", accessMode="read") for _ in range(20)))
    assert len({response.account_id for response in responses}) == 1
    assert len({json.dumps(s3_secrets(response), sort_keys=True) for response in responses}) == 1
    assert len(list((workdir / "data-filesystem" / ".cosi" / "accounts").iterdir())) == 1


async def test_unrelated_calls_run_in_parallel(serve: ServeFactory, workdir: Path, route: Route) -> None:
    # Each create waits at the backend until both have arrived: serialised calls would never meet.
    spy(route).before["create_bucket"] = Rendezvous(2)
    client = await serve(make_driver(workdir, [route]))
    both = asyncio.gather(client.create("bucket-a"), client.create("bucket-b"))
    responses = await asyncio.wait_for(both, timeout=10)
    assert [r.bucket_id for r in responses] == ["v2.filesystem.b.bucket-a", "v2.filesystem.b.bucket-b"]


async def test_a_hanging_backend_gives_deadline_exceeded(serve: ServeFactory, workdir: Path, route: Route) -> None:
    spy(route).before["create_bucket"] = hanging()
    client = await serve(make_driver(workdir, [route], timeout=0.3))
    message = await expect_error(client.create("bucket-a"), StatusCode.DEADLINE_EXCEEDED)
    assert "0.3s" in message and "bucket-a" in message
    # The server keeps serving.
    assert await client.info()


async def test_an_unreachable_backend_gives_unavailable(serve: ServeFactory, workdir: Path, route: Route) -> None:
    spy(route).before["find_bucket"] = raising(ConnectionRefusedError(111, "Connection refused"))
    client = await serve(make_driver(workdir, [route]))
    message = await expect_error(client.create("bucket-a"), StatusCode.UNAVAILABLE)
    assert "unreachable" in message


async def test_a_backend_reporting_unavailable_passes_its_message(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    spy(route).before["create_bucket"] = raising(Unavailable("storage cluster is in maintenance"))
    client = await serve(make_driver(workdir, [route]))
    assert "maintenance" in await expect_error(client.create("bucket-a"), StatusCode.UNAVAILABLE)


async def test_an_unexpected_error_is_internal_with_a_correlation_id_in_the_log(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    spy(route).before["grant_access"] = raising(KeyError("secret-internal-detail"))
    client = await serve(make_driver(workdir, [route]))
    bucket_id = (await client.create("bucket-a")).bucket_id
    with structlog.testing.capture_logs() as logs:
        message = await expect_error(client.grant(bucket_id, "ba-1"), StatusCode.INTERNAL)
        assert "correlation id" in message
        correlation_id = message.rsplit("correlation id ", 1)[1].rstrip(")")

        def crash_entries() -> list[dict[str, Any]]:
            return [entry for entry in logs if entry.get("correlation_id") == correlation_id]

        # The server logs after it has sent the status: wait for the entry, with a deadline.
        for _ in range(500):
            if crash_entries():
                break
            await asyncio.sleep(0.01)
    assert "secret-internal-detail" not in message and "Traceback" not in message and "KeyError" not in message
    crash = crash_entries()
    assert crash and crash[0]["code"] == "INTERNAL" and isinstance(crash[0]["exc_info"], KeyError)
    assert await client.info()  # and the process keeps serving


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_operation(
    serve: ServeFactory, workdir: Path, route: Route
) -> None:
    release = asyncio.Event()
    spy(route).before["create_bucket"] = gate(release)
    driver = make_driver(workdir, [route])
    arrived = count_arrivals(driver)
    client = await serve(driver)
    impatient = asyncio.ensure_future(client.create("bucket-a"))
    await eventually(lambda: spy(route).calls["create_bucket"] > 0, what="the create to reach the backend")
    impatient.cancel()
    retry = asyncio.ensure_future(client.create("bucket-a"))
    await eventually(lambda: arrived() == 2, what="the retry to reach the driver while the first create runs")
    release.set()
    assert (await retry).bucket_id == "v2.filesystem.b.bucket-a"
    assert spy(route).calls["create_bucket"] == 1


async def test_two_backends_in_one_driver_are_chosen_by_parameter(serve: ServeFactory, workdir: Path) -> None:
    fast, archive = filesystem_route(workdir, "fast"), filesystem_route(workdir, "archive")
    client = await serve(make_driver(workdir, [fast, archive]))
    default = await client.create("bucket-a")
    chosen = await client.create("bucket-b", backend="archive")
    assert default.bucket_id == "v2.fast.b.bucket-a"
    assert chosen.bucket_id == "v2.archive.b.bucket-b"
    assert (workdir / "data-archive" / "buckets" / "bucket-b").is_dir()
    assert not (workdir / "data-fast" / "buckets" / "bucket-b").exists()
    granted = await client.grant(chosen.bucket_id, "ba-1")
    assert granted.account_id.startswith("v2.archive.a")
    await client.revoke(chosen.bucket_id, granted.account_id)
    await client.delete(chosen.bucket_id)
    assert not (workdir / "data-archive" / "buckets" / "bucket-b").exists()
