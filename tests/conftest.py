"""Fixtures: a driver core over the filesystem backend, served by the real server on a real socket.

pytest-grpc hosts *synchronous* servicers on a TCP port; our servicers are grpc.aio coroutines
and must be reached over a UNIX socket with controlled permissions, so the equivalent fixtures
live here (see docs/testing.md). pytest-grpc is used where it fits: hosting
deliberately misbehaving synchronous COSI servers for the client-side tests (tests/test_cli_call.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cosi_driver.app import new_driver
from cosi_driver.backends.filesystem import BACKEND as FILESYSTEM
from cosi_driver.backends.filesystem import FilesystemConfig
from cosi_driver.config.backends import BackendEntry
from cosi_driver.config.build import build_route
from cosi_driver.config.settings import Settings, load_settings
from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.driver import Driver, Route
from cosi_driver.core.instrument import OperationInstrument
from cosi_driver.core.stores import FileStateStore
from cosi_driver.spec.v1alpha1 import servicer as v1alpha1
from cosi_driver.transport.adapter import ApiAdapter
from cosi_driver.transport.server import CosiServer, ServerOptions
from cosi_driver.transport.socket import SocketSpec
from tests.support import Client, short_tmpdir

DRIVER_NAME = "test.cosi-driver.example.com"

# Every module in tests/fixtures/ is a plugin (real-server session fixtures), one file each.
_FIXTURES = Path(__file__).parent / "fixtures"
pytest_plugins = sorted(f"tests.fixtures.{path.stem}" for path in _FIXTURES.glob("*.py") if path.stem != "__init__")


#: Scenario -> seconds, for the tests that ask for ``scenario_clock``; listed after the run.
SCENARIO_TIMES = pytest.StashKey[dict[str, float]]()


@pytest.fixture
def scenario_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Time the test (a session server it starts first is counted in), for the terminal summary."""
    started = time.monotonic()
    yield
    times = request.config.stash.setdefault(SCENARIO_TIMES, {})
    times[request.node.nodeid.split("::", 1)[-1]] = time.monotonic() - started


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    times = config.stash.get(SCENARIO_TIMES, {})
    if times:
        terminalreporter.section("scenario times (emulated sidecar)")
        for name, seconds in times.items():
            terminalreporter.write_line(f"{seconds:7.1f} s  {name}")


@pytest.fixture
def workdir() -> Iterator[Path]:
    with short_tmpdir() as path:
        yield path


def settings_for(**values: str) -> Settings:
    """The settings an operator would give, by variable name; the driver name is the tests' own."""
    return load_settings({}, {"COSI_DRIVER_NAME": DRIVER_NAME, **values})


def filesystem_route(workdir: Path, name: str = "filesystem", wrap: Callable[[Any], Any] | None = None) -> Route:
    """A filesystem backend built as the composition root builds a configured one."""
    store = FileStateStore(workdir / "state")
    entry = BackendEntry(name, FILESYSTEM, FilesystemConfig(root=workdir / f"data-{name}"))
    route = build_route(entry, store, CredentialKit(store), KeyedLocks(), DRIVER_NAME)
    return Route(name=name, type=FILESYSTEM, backend=wrap(route.backend)) if wrap else route


def make_driver(
    workdir: Path,
    routes: list[Route] | None = None,
    timeout: float = 10.0,
    health_timeout: float | None = None,
    instrument: OperationInstrument | None = None,
) -> Driver:
    """A driver over in-process backends (the filesystem one by default), complete when made."""
    values = {"COSI_DRIVER_OPERATION_TIMEOUT": f"{timeout:g}"}
    if health_timeout is not None:
        values["COSI_DRIVER_HEALTH_TIMEOUT"] = f"{health_timeout:g}"
    routes = routes or [filesystem_route(workdir)]
    return new_driver(settings_for(**values), routes, FileStateStore(workdir / "state"), instrument)


ServeFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def serve(workdir: Path) -> AsyncIterator[ServeFactory]:
    """Start our real server (in this event loop) on a UNIX socket and return a connected client.

    The fixture owns every driver it serves: it closes each after its server has stopped."""
    servers: list[CosiServer] = []
    clients: list[Client] = []

    async def start(
        driver: Driver | None = None,
        options: ServerOptions | None = None,
        adapters: Sequence[ApiAdapter] = (v1alpha1.ADAPTER,),
        **spec: Any,
    ) -> Client:
        spec.setdefault("path", workdir / f"cosi-{len(servers)}.sock")
        server = CosiServer(driver or make_driver(workdir), SocketSpec(**spec), adapters, options)
        await server.start()
        servers.append(server)
        client = Client(server.spec.address)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()
    for server in servers:
        await server.stop()
        await server.driver.close()


@pytest.fixture
async def client(serve: ServeFactory) -> Client:
    return await serve()
