"""The UNIX socket: mode and owner from the first instant, live/stale/foreign paths, shutdown."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cosi_driver.spec.v1alpha1 import servicer as v1alpha1
from cosi_driver.transport.server import CosiServer
from cosi_driver.transport.socket import SocketError, SocketSpec
from tests.conftest import ServeFactory, make_driver
from tests.support import PROJECT_ROOT, Client, eventually, start_driver

NOBODY = 65534  # a uid/gid that is not ours; the sidecar's is 65532 upstream


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(scope="module")
def bindspy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler: the bind() spy cannot be built (.ci/run installs gcc)")
    library = tmp_path_factory.mktemp("bindspy") / "bindspy.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(PROJECT_ROOT / "tests" / "bindspy.c"), "-ldl"],
        check=True,
    )
    return library


def bind_records(log: Path) -> list[tuple[int, int, int]]:
    rows = [line.split() for line in log.read_text().splitlines()]
    return [(int(mode, 8), int(uid), int(gid)) for _, mode, uid, gid in rows]


async def test_socket_gets_the_configured_mode(serve: ServeFactory, workdir: Path) -> None:
    await serve(mode=0o600, path=workdir / "a.sock")
    assert mode_of(workdir / "a.sock") == 0o600
    await serve(mode=0o660, path=workdir / "b.sock")
    assert mode_of(workdir / "b.sock") == 0o660


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a socket's owner needs root")
async def test_socket_gets_the_configured_owner_and_group(serve: ServeFactory, workdir: Path) -> None:
    path = workdir / "owned.sock"
    await serve(mode=0o660, uid=NOBODY, gid=NOBODY, path=path)
    info = path.lstat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (NOBODY, NOBODY, 0o660)


@pytest.mark.parametrize(("perms", "expected"), [("0660", 0o660), ("0600", 0o600), ("0666", 0o666)])
def test_socket_is_never_wider_than_configured_at_bind_time(
    bindspy: Path, workdir: Path, perms: str, expected: int
) -> None:
    log = workdir / "binds.log"
    driver = start_driver(
        {"X_COSI_ENDPOINT_PERMS": perms, "LD_PRELOAD": str(bindspy), "BINDSPY_LOG": str(log)}, workdir
    )
    try:
        records = bind_records(log)
        assert records, "the spy saw no bind()"
        assert all(mode == expected for mode, _, _ in records), records
        assert mode_of(driver.socket_path) == expected
    finally:
        assert driver.stop() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a socket's owner needs root")
def test_socket_for_another_owner_is_owner_only_until_chowned(bindspy: Path, workdir: Path) -> None:
    log = workdir / "binds.log"
    env = {
        "X_COSI_ENDPOINT_PERMS": "0660",
        "X_COSI_ENDPOINT_GROUP": str(NOBODY),
        "LD_PRELOAD": str(bindspy),
        "BINDSPY_LOG": str(log),
    }
    driver = start_driver(env, workdir)
    try:
        # At bind: owned by us (root) and owner-only, so root's group could not connect meanwhile.
        assert bind_records(log) == [(0o600, 0, 0)]
        info = driver.socket_path.lstat()
        assert (stat.S_IMODE(info.st_mode), info.st_gid) == (0o660, NOBODY)
    finally:
        driver.stop()


def test_the_bind_spy_does_catch_a_server_that_chmods_after_bind(bindspy: Path, workdir: Path) -> None:
    """Control: a plain grpc.aio server (umask 022, chmod afterwards) is caught with a 0755 socket."""
    path, log = workdir / "naive.sock", workdir / "binds.log"
    script = (
        "import asyncio, os, grpc\n"
        "async def main():\n"
        "    os.umask(0o022)\n"
        "    server = grpc.aio.server()\n"
        f"    server.add_insecure_port('unix://{path}')\n"
        f"    os.chmod('{path}', 0o660)\n"
        "    await server.start(); await server.stop(0)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "LD_PRELOAD": str(bindspy), "BINDSPY_LOG": str(log)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    assert bind_records(log)[0][0] == 0o755


async def test_refuses_to_start_on_a_live_socket(workdir: Path) -> None:
    path = workdir / "busy.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        server = CosiServer(make_driver(workdir), SocketSpec(path), [v1alpha1.ADAPTER])
        with pytest.raises(SocketError, match="already listening"):
            await server.start()
        assert path.exists(), "the live socket must be left alone"
    finally:
        listener.close()


def test_a_second_driver_on_the_same_socket_exits_with_a_clear_error(workdir: Path) -> None:
    first = start_driver({}, workdir)
    try:
        second = start_driver({}, workdir, log_name="second.log", wait=False)
        assert second.process.wait(30) == 1
        assert "already listening" in second.log()
        assert first.process.poll() is None
    finally:
        assert first.stop() == 0


async def test_removes_a_stale_socket(serve: ServeFactory, workdir: Path) -> None:
    path = workdir / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a killed driver leaves behind
    client = await serve(path=path)
    assert await client.info()


async def test_refuses_a_path_that_is_not_a_socket(workdir: Path) -> None:
    path = workdir / "regular.sock"
    path.write_text("not a socket")
    with pytest.raises(SocketError, match="not a socket"):
        await CosiServer(make_driver(workdir), SocketSpec(path), [v1alpha1.ADAPTER]).start()
    assert path.read_text() == "not a socket"


async def test_creates_a_missing_parent_directory(serve: ServeFactory, workdir: Path) -> None:
    client = await serve(path=workdir / "deeper" / "still" / "cosi.sock")
    assert await client.info()


async def test_stop_removes_the_socket(workdir: Path) -> None:
    server = CosiServer(make_driver(workdir), SocketSpec(workdir / "gone.sock"), [v1alpha1.ADAPTER])
    await server.start()
    client = Client(server.spec.address)
    assert await client.info()
    await client.close()
    await server.stop()
    assert not (workdir / "gone.sock").exists()


async def test_graceful_stop_lets_an_in_flight_call_finish(workdir: Path) -> None:
    from tests.conftest import filesystem_route
    from tests.fakes import Instrumented, gate

    route = filesystem_route(workdir, wrap=Instrumented)
    release = asyncio.Event()
    route.backend.before["create_bucket"] = gate(release)
    server = CosiServer(make_driver(workdir, [route]), SocketSpec(workdir / "grace.sock"), [v1alpha1.ADAPTER])
    await server.start()
    client = Client(server.spec.address)
    call = asyncio.ensure_future(client.create("bucket-a"))
    await eventually(lambda: route.backend.calls["create_bucket"] > 0, what="the create to reach the backend")
    stopping = asyncio.ensure_future(server.stop())
    await asyncio.sleep(0)  # let stop() begin: it must not cut the call off
    release.set()
    assert (await call).bucket_id == "v2.filesystem.b.bucket-a"
    await stopping
    await client.close()
    assert not (workdir / "grace.sock").exists()
