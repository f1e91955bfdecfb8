"""A supervised `weed mini` child process: S3 and IAM on 127.0.0.1, state in one directory.

Why each start flag is there (measured on SeaweedFS 4.48):

* every flag is passed on every start: `weed mini` persists flags in ``data/mini.options`` and
  re-applies omitted ones, so a flag dropped from a later release of this file would otherwise
  linger;
* ``-s3.allowDeleteBucketNotEmpty=false``: DeleteBucket must refuse a bucket holding objects
  (the backend checks versions and uploads itself, which this flag does not cover);
* ``-s3.iam.readOnly=false``: the driver creates users, keys and policies through IAM;
* ``-master.volumeSizeLimitMB``: each bucket holding data takes at least one volume; the default
  (30 GB) reserves so much that a handful of buckets exhausts a laptop's disk;
* loopback only (``-ip``, ``-ip.bind``), no telemetry, no admin UI, WebDAV, Iceberg or Lance ports.

Ready means S3 answers an authenticated call AND the master lists a data node: before that,
object reads and writes fail with 500 for a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cosi_driver.core.secret import Secret

_MAX_SOCKET_PATH = 100  # UNIX socket paths are limited to 107 bytes
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WeedSettings:
    weed: str
    directory: Path
    base_port: int
    access_key_id: str
    secret_access_key: Secret
    volume_size_limit_mb: int = 64
    memory_limit: str = "256MiB"

    @property
    def master_port(self) -> int:
        return self.base_port

    @property
    def s3_port(self) -> int:
        return self.base_port + 3

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    @property
    def pid_path(self) -> Path:
        return self.directory / "weed.pid"

    def args(self) -> list[str]:
        base = self.base_port
        args = [
            self.weed,
            "mini",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={base}",
            f"-volume.port={base + 1}",
            f"-filer.port={base + 2}",
            f"-s3.port={base + 3}",
            f"-admin.port={base + 4}",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam.readOnly=false",
            "-s3.allowDeleteBucketNotEmpty=false",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
        ]
        # Private sockets keep two instances apart; skipped when the directory's path is too long
        # for a UNIX socket (SeaweedFS then uses its per-port defaults).
        for name in ("filer", "s3"):
            path = self.directory / f"{name}.sock"
            if len(str(path)) <= _MAX_SOCKET_PATH:
                args.append(f"-{name}.localSocket={path}")
        return args


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook giving the child SIGTERM when the driver dies without stopping it (Linux).

    libc is looked up here, in the parent: the hook runs between fork and exec of a multi-threaded
    process (gRPC's threads), where loading a library could deadlock; it only calls prctl.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


class WeedProcess:
    """Start, watch and stop one `weed mini` child."""

    def __init__(self, settings: WeedSettings) -> None:
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process is not None else None

    def start(self) -> None:
        s = self.settings
        s.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._stop_leftover()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("AWS_") and key not in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")
        }
        # weed mini takes its admin identity from these two variables.
        env["AWS_ACCESS_KEY_ID"] = s.access_key_id
        env["AWS_SECRET_ACCESS_KEY"] = s.secret_access_key.reveal()
        env.setdefault("GOMEMLIMIT", s.memory_limit)
        with s.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                s.args(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=s.directory,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the driver, which stops us in order
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 - prctl only, see _die_with_parent
            )
        s.pid_path.write_text(f"{self.process.pid}\n")

    def _stop_leftover(self) -> None:
        """A weed left running on this directory by a driver that was killed: stop it (by PID)."""
        try:
            pid = int(self.settings.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if f"-dir={self.settings.data}".encode() not in cmdline:
            return  # the PID was reused by something else
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists():  # not our child, so it cannot be waited for
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    async def wait_ready(self, healthy: Callable[[], Awaitable[bool]], within: float) -> None:
        """Return when S3 answers and a data node is registered; raise RuntimeError otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if not self.running():
                raise RuntimeError(f"weed exited with status {self.exit_code()} during start-up")
            if await asyncio.to_thread(self._data_node_registered) and await healthy():
                return
            if loop.time() > deadline:
                raise RuntimeError(f"SeaweedFS was not ready within {within:g}s")
            await asyncio.sleep(0.1)

    def _data_node_registered(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        url = f"http://127.0.0.1:{self.settings.master_port}/dir/status"
        try:
            with opener.open(url, timeout=2) as answer:
                status = json.loads(answer.read())
            centres = status["Topology"]["DataCenters"] or []
            return any(rack.get("DataNodes") for centre in centres for rack in centre.get("Racks") or [])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return False

    async def stop(self, grace: float = 30.0) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; always reaps the child."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, grace)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        with contextlib.suppress(FileNotFoundError):
            self.settings.pid_path.unlink()
