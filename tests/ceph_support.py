"""Helpers for the Ceph RGW tests: an out-of-band view of the gateway, independent of the driver.

Accounts are looked up with ``radosgw-admin`` (straight from RADOS, not through our Admin Ops
client), objects and buckets with the admin user's S3 keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cosi_driver.testing.acceptance import BACKEND_NAME, AcceptanceTarget, Harness
from cosi_driver.testing.probes import S3AdminProbe, s3_client
from tests.fixtures.ceph import CephRgw

MASTER_KEY = "ceph-test-master-key-0123456789abcdefghijklmnopqrstuv"


async def radosgw_admin(rgw: CephRgw, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "radosgw-admin",
        "-c",
        rgw.env["CEPH_RGW_CONF"],
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def user_info(rgw: CephRgw, uid: str) -> dict[str, Any] | None:
    code, out = await radosgw_admin(rgw, "user", "info", f"--uid={uid}")
    return json.loads(out) if code == 0 else None


def rgw_probe(rgw: CephRgw) -> S3AdminProbe:
    async def account_exists(uid: str) -> bool:
        return await user_info(rgw, uid) is not None

    return S3AdminProbe(rgw.endpoint, rgw.admin_access_key, rgw.admin_secret_key, account_exists=account_exists)


async def user_keys(rgw: CephRgw, uid: str) -> dict[str, str]:
    """access key -> secret key of an RGW user, as RADOS has them."""
    info = await user_info(rgw, uid)
    assert info is not None, f"user {uid} does not exist"
    return {key["access_key"]: key["secret_key"] for key in info["keys"]}


def ceph_target(rgw: CephRgw, operation_timeout: float = 30.0, **config: object) -> AcceptanceTarget:
    """The acceptance target for the session's gateway, with ``config`` over its defaults."""
    return AcceptanceTarget(
        backend_type="ceph-rgw",
        config=rgw.config(**config),
        probe=rgw_probe(rgw),
        master_key=MASTER_KEY,
        propagation_seconds=5.0,
        operation_timeout=operation_timeout,
    )


def admin_s3(rgw: CephRgw) -> Any:
    """An aioboto3 S3 client context manager with the admin user's keys."""
    return s3_client(rgw.endpoint, rgw.admin_access_key, rgw.admin_secret_key)


class Harnesses:
    """Drivers over the session's gateway, each on its own socket and state directory."""

    def __init__(self, rgw: CephRgw) -> None:
        self.rgw = rgw
        self.started: list[tuple[Harness, Path]] = []

    async def start(self, operation_timeout: float = 30.0, **config: object) -> Harness:
        workdir = Path(tempfile.mkdtemp(prefix="cosi-ceph-t-", dir="/tmp"))
        harness = Harness(ceph_target(self.rgw, operation_timeout, **config), workdir)
        await harness.start()
        self.started.append((harness, workdir))
        return harness

    async def close(self) -> None:
        for harness, workdir in reversed(self.started):
            with contextlib.suppress(Exception):
                await harness.cleanup()
            await harness.stop()
            shutil.rmtree(workdir, ignore_errors=True)


def backend_of(harness: Harness) -> Any:
    """The live backend object behind a harness (for health reports)."""
    return harness.driver.routes[BACKEND_NAME].backend
