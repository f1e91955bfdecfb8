"""Shared benchmark machinery: child server processes, load loops, memory readings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("COSI_SHARED_DIR", ROOT.parent / "shared")).resolve()


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cosi-bench-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _status_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmRSS")


def peak_rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmHWM")


async def wait_for_info(endpoint: str, timeout: float = 30.0) -> float:
    """Seconds until DriverGetInfo succeeds on ``endpoint``.

    The socket is polled with plain connects first: a gRPC channel that fails its first connect
    backs off for a second, which would measure grpc's backoff instead of our start-up.
    """
    started = time.perf_counter()
    deadline = started + timeout
    path = endpoint.removeprefix("unix://")
    while True:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            break
        except OSError:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"nothing listens on {endpoint} after {timeout}s") from None
            await asyncio.sleep(0.001)
        finally:
            probe.close()
    async with grpc.aio.insecure_channel(endpoint) as channel:
        await pb_grpc.IdentityStub(channel).DriverGetInfo(pb.DriverGetInfoRequest(), timeout=timeout)
    return time.perf_counter() - started


@contextlib.asynccontextmanager
async def child(args: list[str], env: Mapping[str, str], socket_path: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """A server child process that is ready (answers DriverGetInfo) when the block starts."""
    process = subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await wait_for_info(f"unix://{socket_path}")
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def driver_args() -> list[str]:
    return [sys.executable, "-m", "cosi_driver", "serve"]


def driver_env(workdir: Path, **extra: str) -> dict[str, str]:
    return {
        "COSI_ENDPOINT": f"unix://{workdir}/cosi.sock",
        "COSI_DRIVER_STATE_DIR": str(workdir / "state"),
        "COSI_DRIVER_BACKEND": "filesystem",
        "COSI_DRIVER_BACKEND_ROOT": str(workdir / "data"),
        "COSI_DRIVER_LOG_LEVEL": "warning",
        "COSI_DRIVER_LOG_FORMAT": "json",
        **extra,
    }


async def rate(operation: Callable[[int], Awaitable[object]], concurrency: int, seconds: float) -> float:
    """Operations per second with ``concurrency`` workers looping for ``seconds``."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal done
        n = 0
        while time.perf_counter() < stop_at:
            await operation(index * 1_000_000 + n)
            n += 1
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started)


@contextlib.asynccontextmanager
async def info_caller(endpoint: str, concurrency: int = 32) -> AsyncIterator[Callable[[int], Awaitable[object]]]:
    """A DriverGetInfo call on one channel to ``endpoint``, warmed up with ``concurrency`` workers."""
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = pb_grpc.IdentityStub(channel)
        request = pb.DriverGetInfoRequest()

        async def call(_: int) -> object:
            return await stub.DriverGetInfo(request)

        await rate(call, concurrency, 0.5)
        yield call


async def info_rate(endpoint: str, concurrency: int = 32, seconds: float = 3.0) -> float:
    async with info_caller(endpoint, concurrency) as call:
        return await rate(call, concurrency, seconds)


async def timed_cycles(cycle: Callable[[int], Awaitable[None]], start: int, warmup: int, cycles: int) -> list[float]:
    """Seconds per call of ``cycle(n)`` for ``cycles`` numbers after ``warmup`` untimed ones."""
    for n in range(start, start + warmup):
        await cycle(n)
    times = []
    for n in range(start + warmup, start + warmup + cycles):
        began = time.perf_counter()
        await cycle(n)
        times.append(time.perf_counter() - began)
    return times


def lifecycle(stub: pb_grpc.ProvisionerStub) -> Callable[[int], Awaitable[None]]:
    """One bucket's whole life through a driver, as the sidecar calls it: Create, Grant, Revoke, Delete."""

    async def cycle(n: int) -> None:
        created = await stub.DriverCreateBucket(pb.DriverCreateBucketRequest(name=f"bench-driver-{n}"))
        granted = await stub.DriverGrantBucketAccess(
            pb.DriverGrantBucketAccessRequest(bucket_id=created.bucket_id, name=f"ba-{n}", authentication_type=pb.Key)
        )
        await stub.DriverRevokeBucketAccess(
            pb.DriverRevokeBucketAccessRequest(bucket_id=created.bucket_id, account_id=granted.account_id)
        )
        await stub.DriverDeleteBucket(pb.DriverDeleteBucketRequest(bucket_id=created.bucket_id))

    return cycle
