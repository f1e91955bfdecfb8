"""Helpers shared by the test modules: short socket paths, real clients, real driver processes."""

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cosi_driver.testing.client import CosiClient

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("COSI_SHARED_DIR", PROJECT_ROOT.parent / "shared")).resolve()


@contextlib.contextmanager
def short_tmpdir(prefix: str = "cosi-") -> Iterator[Path]:
    """UNIX socket paths are limited to 107 bytes; pytest's tmp_path can be longer."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# The shipped client is the one our tests use, too.
Client = CosiClient


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll a condition with a deadline (a condition wait, not a sleep-as-sync)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def eventually(predicate: Any, within: float = 10.0, what: str = "a condition") -> None:
    """Await a condition with a deadline, for conditions no event signals (a counter in a spy)."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.005)


def free_port_block(size: int = 1, start: int = 20000, end: int = 32000) -> int:
    """The first port of ``size`` consecutive free ports on 127.0.0.1 (for servers that take a base port)."""
    import random

    for _ in range(200):
        base = random.randrange(start, end - size)
        sockets = []
        try:
            for port in range(base, base + size):
                probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise RuntimeError(f"no block of {size} free ports found")


def answers_info(endpoint: str) -> bool:
    import grpc

    from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
    from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

    with grpc.insecure_channel(endpoint) as channel:
        try:
            pb_grpc.IdentityStub(channel).DriverGetInfo(pb.DriverGetInfoRequest(), timeout=1.0)
        except grpc.RpcError:
            return False
    return True


def socket_accepts(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


@dataclass
class DriverProcess:
    """A real ``cosi-driver serve`` child process, with its log captured to a file."""

    process: subprocess.Popen[bytes]
    socket_path: Path
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket_path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until DriverGetInfo answers: the socket accepts connections from bind() on, but
        the server answers only once it has started, after the socket got its final owner and mode."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"driver exited with {self.process.returncode}:\n{self.log()}")
            return socket_accepts(self.socket_path) and answers_info(self.endpoint)

        wait_until(ready, timeout, f"the driver on {self.socket_path} to answer DriverGetInfo")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def start_driver(
    env: Mapping[str, str], workdir: Path, *args: str, log_name: str = "driver.log", wait: bool = True
) -> DriverProcess:
    """Start ``cosi-driver serve``. The driver has no default backend; unless ``env`` names one
    (``COSI_DRIVER_BACKEND`` or ``COSI_DRIVER_CONFIG``), the tests' choice is ``filesystem``."""
    socket_path = Path(env.get("COSI_ENDPOINT", f"unix://{workdir}/cosi.sock").removeprefix("unix://"))
    log_path = workdir / log_name
    backend = {} if {"COSI_DRIVER_BACKEND", "COSI_DRIVER_CONFIG"} & set(env) else {"COSI_DRIVER_BACKEND": "filesystem"}
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "COSI_ENDPOINT": f"unix://{socket_path}",
        "COSI_DRIVER_STATE_DIR": str(workdir / "state"),
        "COSI_DRIVER_LOG_FORMAT": "json",
        **backend,
        **env,
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cosi_driver", "serve", *args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    driver = DriverProcess(process, socket_path, log_path)
    if wait:
        driver.wait_ready()
    return driver


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cosi_driver", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


async def to_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)
