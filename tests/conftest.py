"""Fixtures: a driver core over the filesystem backend, served by the real server on a real socket.

pytest-grpc hosts *synchronous* servicers on a TCP port; our servicers are grpc.aio coroutines
and must be reached over a UNIX socket with controlled permissions, so the equivalent fixtures
live here (see docs/testing.md). pytest-grpc is used where it fits: hosting
deliberately misbehaving synchronous COSI servers for the client-side tests (tests/test_cli_call.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cosi_driver.backends.filesystem import BACKEND as FILESYSTEM
from cosi_driver.backends.filesystem import FilesystemConfig
from cosi_driver.core.backend import BackendContext
from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.driver import Driver, Route
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


@pytest.fixture
def workdir() -> Iterator[Path]:
    with short_tmpdir() as path:
        yield path


def filesystem_route(workdir: Path, name: str = "filesystem", wrap: Callable[[Any], Any] | None = None) -> Route:
    store = FileStateStore(workdir / "state")
    context = BackendContext(
        name=name, credentials=CredentialKit(store), store=store, locks=KeyedLocks(), driver_name=DRIVER_NAME
    )
    backend: Any = FILESYSTEM.make(FilesystemConfig(root=workdir / f"data-{name}"), context)
    return Route(name=name, type=FILESYSTEM, backend=wrap(backend) if wrap else backend)


def make_driver(workdir: Path, routes: list[Route] | None = None, timeout: float = 10.0) -> Driver:
    routes = routes or [filesystem_route(workdir)]
    return Driver(
        name=DRIVER_NAME,
        routes={route.name: route for route in routes},
        default=routes[0].name,
        store=FileStateStore(workdir / "state"),
        timeout=timeout,
    )


ServeFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def serve(workdir: Path) -> AsyncIterator[ServeFactory]:
    """Start our real server (in this event loop) on a UNIX socket and return a connected client."""
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


@pytest.fixture
async def client(serve: ServeFactory) -> Client:
    return await serve()
