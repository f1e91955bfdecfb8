"""Helpers for the Ceph RGW tests: an out-of-band view of the gateway, independent of the driver.

Accounts are looked up with ``radosgw-admin`` (straight from RADOS, not through our Admin Ops
client), objects and buckets with the admin user's S3 keys.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from cosi_driver.testing.probes import S3AdminProbe
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
