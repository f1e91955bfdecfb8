"""The `s3` backend's admin credentials: read again on use, refused clearly, never logged.

Runs the real `cosi-driver serve` against the session's SeaweedFS, with the admin secret in a file
as a mounted Kubernetes Secret would provide it.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from cosi_driver.core.files import atomic_write_bytes
from cosi_driver.testing.acceptance import S3Session
from cosi_driver.testing.client import CosiClient, expect_error, s3_secrets
from tests.fixtures.seaweedfs import SeaweedFS
from tests.support import start_driver

pytestmark = pytest.mark.seaweedfs


def write_secret(path: Path, value: str) -> None:
    atomic_write_bytes(path, value.encode())  # a new inode, as Kubernetes' atomic swap gives


def s3_env(seaweedfs: SeaweedFS, secret_file: Path) -> dict[str, str]:
    return {
        "COSI_DRIVER_BACKEND": "s3",
        "COSI_DRIVER_BACKEND_ENDPOINT": seaweedfs.endpoint,
        "COSI_DRIVER_BACKEND_ACCESS_KEY_ID": seaweedfs.access_key,
        "COSI_DRIVER_BACKEND_SECRET_ACCESS_KEY_FILE": str(secret_file),
        "COSI_DRIVER_LOG_LEVEL": "debug",
    }


async def test_rotated_admin_secret_is_read_again_and_no_secret_reaches_the_log(
    seaweedfs: SeaweedFS, workdir: Path
) -> None:
    secret_file = workdir / "admin-secret"
    write_secret(secret_file, seaweedfs.secret_key)
    driver = start_driver(s3_env(seaweedfs, secret_file), workdir)
    granted_secrets: list[str] = []
    wrong = "wrong-admin-secret-" + os.urandom(8).hex()
    try:
        async with CosiClient(driver.endpoint) as cosi:
            bucket = f"logs-{os.urandom(6).hex()}"
            bucket_id = (await cosi.create(bucket, deletionPolicy="purge")).bucket_id
            granted = await cosi.grant(bucket_id, "ba-logs", accessMode="readwrite")
            keys = s3_secrets(granted)
            granted_secrets.append(keys["accessSecretKey"])
            assert await S3Session(keys, 15.0).eventually_allowed("put", bucket, "a.txt")

            # The admin secret rotates to a value the server does not know: refused clearly, no restart.
            write_secret(secret_file, wrong)
            message = await expect_error(cosi.grant(bucket_id, "ba-other"), grpc.StatusCode.PERMISSION_DENIED)
            assert "admin credentials" in message
            assert wrong not in message
            await expect_error(cosi.create("Bad_Name"), grpc.StatusCode.INVALID_ARGUMENT)

            # And back to the right one: the next call works, again without a restart.
            write_secret(secret_file, seaweedfs.secret_key)
            other = await cosi.grant(bucket_id, "ba-other", accessMode="read")
            granted_secrets.append(s3_secrets(other)["accessSecretKey"])
            await cosi.revoke(bucket_id, granted.account_id)
            await cosi.revoke(bucket_id, other.account_id)
            await cosi.delete(bucket_id, deletionPolicy="purge")
        assert driver.stop() == 0
    finally:
        driver.stop()
    log = driver.log()
    assert "PERMISSION_DENIED" in log  # the failures were logged...
    for secret in (seaweedfs.secret_key, seaweedfs.access_key, wrong, *granted_secrets):
        assert secret not in log  # ...without any secret (nor the admin's key id)


async def test_unreachable_storage_is_unavailable_naming_it(seaweedfs: SeaweedFS, workdir: Path) -> None:
    from tests.fixtures.seaweedfs import free_seaweedfs_base

    secret_file = workdir / "admin-secret"
    write_secret(secret_file, seaweedfs.secret_key)
    env = {
        **s3_env(seaweedfs, secret_file),
        "COSI_DRIVER_BACKEND_ENDPOINT": f"http://127.0.0.1:{free_seaweedfs_base()}",
    }
    driver = start_driver({**env, "COSI_DRIVER_BACKEND_CONNECT_TIMEOUT": "1"}, workdir)
    try:
        async with CosiClient(driver.endpoint) as cosi:
            message = await expect_error(cosi.create("nobody-home"), grpc.StatusCode.UNAVAILABLE)
            assert "unreachable" in message
    finally:
        driver.stop()
