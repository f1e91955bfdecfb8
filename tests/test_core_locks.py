"""Which calls the core serialises (issue 18): lock keys, Grant against Delete and Revoke, store time
limits, and the drain of running operations at shutdown.

Interleavings are made with gates on the real filesystem backend; a test that expects a call to
wait checks that it queues on the lock (``KeyedLocks.waiting``), which fails within the bound when
the call does not wait there.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from grpc import StatusCode

from cosi_driver.app import App, Hooks, new_driver
from cosi_driver.config.backends import DriverConfig, StateConfig
from cosi_driver.core import ids, locking
from cosi_driver.core.backend import CreateBucket
from cosi_driver.core.driver import Driver, Route
from cosi_driver.core.stores import FileStateStore
from cosi_driver.core.types import AuthenticationType
from cosi_driver.core.validation import V1ALPHA1, V1ALPHA2, ApiRules
from cosi_driver.testing.client import expect_error
from tests.conftest import ServeFactory, filesystem_route, make_driver, settings_for
from tests.fakes import Instrumented, Rendezvous, gate, spy
from tests.support import Client, eventually

BOUND = 5.0
BACKEND = "filesystem"


@pytest.fixture
def route(workdir: Path) -> Route:
    """The filesystem backend behind an :class:`Instrumented` spy that gates or counts its calls."""
    return filesystem_route(workdir, wrap=Instrumented)


async def queued(driver: Driver, key: locking.Key) -> None:
    """Return once a call queues for ``key`` in ``driver``; fail after BOUND when none does."""
    await eventually(lambda: driver._locks.waiting(key) > 0, within=BOUND, what=f"a call to queue for {key}")


async def grant(driver: Driver, bucket_id: str, name: str, rules: ApiRules = V1ALPHA1) -> str:
    access = await driver.grant_access(name, [(bucket_id, None)], AuthenticationType.KEY, {}, rules=rules)
    return access.account_id


# -- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rules", [V1ALPHA1, V1ALPHA2], ids=lambda rules: rules.api)
async def test_grant_and_revoke_of_one_access_derive_one_key(workdir: Path, rules: ApiRules) -> None:
    route = filesystem_route(workdir)
    driver = make_driver(workdir, [route])
    bucket = await driver.create_bucket("bucket-a", {})
    account = ids.parse_account_id(await grant(driver, bucket.bucket_id, "ba-1", rules)).account
    scope = "bucket-a" if rules.per_bucket_accounts else ""
    granting = locking.grant_key(BACKEND, route.backend, scope, "ba-1")
    assert granting == locking.revoke_key(BACKEND, route.backend, account, None)
    assert granting != locking.grant_key(BACKEND, route.backend, scope, "ba-2")
    assert granting != locking.grant_key(BACKEND, route.backend, "bucket-b", "ba-1")
    await driver.close()


def test_a_backend_without_account_names_still_shares_name_scoped_keys() -> None:
    """A v1alpha2 Revoke of such a backend reads the access name from the grant record."""
    storage = object()
    assert locking.grant_key(BACKEND, storage, "", "ba-1") == locking.revoke_key(BACKEND, storage, "x-17", "ba-1")
    assert locking.grant_key(BACKEND, storage, "", "ba-1") != locking.grant_key(BACKEND, storage, "", "ba-2")
    assert locking.bucket_key(BACKEND, "a") != locking.bucket_key(BACKEND, "b")
    assert locking.bucket_key(BACKEND, "a") != locking.bucket_key("other", "a")


# -- serialisation -------------------------------------------------------------------------------


async def test_a_delete_waits_for_a_grant_on_its_bucket(workdir: Path, route: Route) -> None:
    driver = make_driver(workdir, [route])
    bucket = await driver.create_bucket("bucket-a", {})
    release = asyncio.Event()
    spy(route).before["grant_access"] = gate(release)
    granting = asyncio.create_task(grant(driver, bucket.bucket_id, "ba-1"))
    await eventually(lambda: spy(route).calls["grant_access"] == 1, what="the grant to reach the backend")
    deleting = asyncio.create_task(driver.delete_bucket(bucket.bucket_id, {}))
    await queued(driver, locking.bucket_key(BACKEND, "bucket-a"))
    assert spy(route).calls["delete_bucket"] == 0
    release.set()
    account_id = await asyncio.wait_for(granting, BOUND)  # the grant did not see its bucket vanish
    await asyncio.wait_for(deleting, BOUND)
    assert account_id.startswith("v2.filesystem.a")
    assert await route.backend.find_bucket("bucket-a") is None
    await driver.close()


@pytest.mark.parametrize("rules", [V1ALPHA1, V1ALPHA2], ids=lambda rules: rules.api)
async def test_a_revoke_waits_for_a_grant_of_the_same_access(workdir: Path, route: Route, rules: ApiRules) -> None:
    driver = make_driver(workdir, [route])
    bucket = await driver.create_bucket("bucket-a", {})
    account_id = await grant(driver, bucket.bucket_id, "ba-1", rules)
    release = asyncio.Event()
    spy(route).before["grant_access"] = gate(release)
    retried = asyncio.create_task(grant(driver, bucket.bucket_id, "ba-1", rules))
    await eventually(lambda: spy(route).calls["grant_access"] == 2, what="the retried grant to reach the backend")
    revoking = asyncio.create_task(driver.revoke_access(account_id, [bucket.bucket_id], rules=rules))
    account = ids.parse_account_id(account_id).account
    await queued(driver, locking.account_key(BACKEND, account))
    assert spy(route).calls["revoke_access"] == 0
    release.set()
    assert await asyncio.wait_for(retried, BOUND) == account_id
    await asyncio.wait_for(revoking, BOUND)
    assert spy(route).calls["revoke_access"] == 1
    await driver.close()


async def test_grants_of_different_accesses_on_one_bucket_run_together(workdir: Path, route: Route) -> None:
    driver = make_driver(workdir, [route])
    bucket = await driver.create_bucket("bucket-a", {})
    spy(route).before["grant_access"] = Rendezvous(2)  # lets them through only when both are inside
    both = [grant(driver, bucket.bucket_id, name) for name in ("ba-1", "ba-2")]
    first, second = await asyncio.wait_for(asyncio.gather(*both), BOUND)
    assert first != second
    await driver.close()


# -- state-store time limits ---------------------------------------------------------------------


class FailingStore:
    """The driver's file store, with every call hanging or failing as the test says."""

    def __init__(self, inner: FileStateStore) -> None:
        self.inner = inner
        self.failure: BaseException | None = None
        self.hang = False

    def __getattr__(self, method: str) -> Any:
        target = getattr(self.inner, method)

        async def call(*args: Any) -> Any:
            if self.hang:
                await asyncio.Event().wait()
            if self.failure is not None:
                raise self.failure
            return await target(*args)

        return call


@pytest.mark.parametrize(
    ("fault", "code", "words"),
    [
        ("hang", StatusCode.DEADLINE_EXCEEDED, "the state store did not answer within 0.3s"),
        ("refuse", StatusCode.UNAVAILABLE, "the state store is unreachable"),
    ],
)
async def test_a_failing_state_store_gives_a_retryable_status_on_every_operation(
    serve: ServeFactory, workdir: Path, fault: str, code: StatusCode, words: str
) -> None:
    store = FailingStore(FileStateStore(workdir / "state"))
    settings = settings_for(COSI_DRIVER_OPERATION_TIMEOUT="0.3")
    driver = new_driver(settings, [filesystem_route(workdir)], store)  # type: ignore[arg-type]
    client = await serve(driver)
    bucket_id = (await client.create("bucket-a")).bucket_id
    account_id = (await client.grant(bucket_id, "ba-1")).account_id
    if fault == "hang":
        store.hang = True
    else:
        store.failure = ConnectionRefusedError()
    calls = {
        "create": client.create("bucket-b"),
        "grant": client.grant(bucket_id, "ba-2"),
        "delete": client.delete(bucket_id),
    }
    for doing, call in calls.items():
        message = await expect_error(call, code)
        assert words in message, (doing, message)
    # A v1alpha1 Revoke touches the store only after the backend revoked: its record removal.
    message = await expect_error(client.revoke(bucket_id, account_id), code)
    assert "grant record" in message


# -- shutdown ------------------------------------------------------------------------------------


class Recording(Instrumented):
    """Logs when a create starts, finishes or is cancelled, and when the backend closes."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.events: list[str] = []
        self.release = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []

    async def create_bucket(self, request: CreateBucket[Any]) -> Any:
        self.events.append("create started")
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        try:
            await self.release.wait()
            info = await self.inner.create_bucket(request)
        except asyncio.CancelledError:
            self.events.append("create cancelled")
            raise
        self.events.append("create finished")
        return info

    async def close(self) -> None:
        self.events.append("backend closed")
        await self.inner.close()


async def start_app(workdir: Path, grace: float) -> tuple[App, Recording, Client]:
    route = filesystem_route(workdir, wrap=Recording)
    settings = settings_for(
        COSI_ENDPOINT=f"unix://{workdir / 'cosi.sock'}",
        COSI_DRIVER_SHUTDOWN_GRACE=f"{grace:g}",
        COSI_DRIVER_OPERATION_TIMEOUT="60",
    )
    config = DriverConfig(
        backends={},
        default=route.name,
        master_key=None,
        master_key_version=0,
        state=StateConfig("file", {"directory": str(workdir / "state")}),
        source="test",
    )
    app = App(settings, config, Hooks(routes=[route]))
    await app.start()
    assert app.server is not None and isinstance(route.backend, Recording)
    return app, route.backend, Client(app.server.spec.address)


async def test_a_call_in_flight_when_stop_begins_is_answered_before_the_backends_close(workdir: Path) -> None:
    app, backend, client = await start_app(workdir, grace=BOUND)
    creating = asyncio.create_task(client.create("bucket-a"))
    await eventually(lambda: backend.events == ["create started"], what="the create to reach the backend")
    closing = asyncio.create_task(app.close())
    assert app.readiness is not None
    await eventually(lambda: not app.readiness.serving, what="the stop to begin")  # type: ignore[union-attr]
    backend.release.set()
    assert (await asyncio.wait_for(creating, BOUND)).bucket_id == "v2.filesystem.b.bucket-a"
    await asyncio.wait_for(closing, BOUND * 2)
    await client.close()
    assert backend.events == ["create started", "create finished", "backend closed"]


async def test_an_operation_its_caller_left_is_drained_before_the_backends_close(workdir: Path) -> None:
    app, backend, client = await start_app(workdir, grace=BOUND)
    creating = asyncio.create_task(client.create("bucket-a"))
    await eventually(lambda: backend.events == ["create started"], what="the create to reach the backend")
    creating.cancel()  # the sidecar went away; the operation goes on for its retry
    await asyncio.gather(creating, return_exceptions=True)
    await client.close()
    closing = asyncio.create_task(app.close())
    assert app.driver is not None
    await eventually(lambda: app.driver.closing, what="the driver to begin closing")  # type: ignore[union-attr]
    assert "backend closed" not in backend.events
    backend.release.set()
    await asyncio.wait_for(closing, BOUND * 2)
    assert backend.events == ["create started", "create finished", "backend closed"]
    assert await backend.inner.find_bucket("bucket-a") is not None


async def test_a_hanging_operation_is_cancelled_at_the_grace_limit_and_the_backends_close_after(
    workdir: Path,
) -> None:
    app, backend, client = await start_app(workdir, grace=0.3)
    creating = asyncio.create_task(client.create("bucket-a"))
    await eventually(lambda: backend.events == ["create started"], what="the create to reach the backend")
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(app.close(), BOUND * 2)
    took = asyncio.get_running_loop().time() - started
    await expect_error(creating, StatusCode.UNAVAILABLE)  # the server's stop ended the call: the sidecar retries
    await client.close()
    assert backend.events == ["create started", "create cancelled", "backend closed"]
    assert all(task.done() for task in backend.tasks)  # ended, not left pending for the garbage collector
    assert took < BOUND  # one grace period for the server's stop and the drain together, not one each
