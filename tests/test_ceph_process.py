"""``cosi-driver serve`` with the ``ceph-rgw`` backend as a real process: configured from the
environment (the secret from a file), restarted, and its whole log scanned for secrets."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from cosi_driver.core import ids
from cosi_driver.testing.acceptance import S3Session
from cosi_driver.testing.client import expect_error, s3_secrets
from tests.ceph_support import MASTER_KEY, user_info
from tests.fixtures.ceph import CephRgw
from tests.support import Client, start_driver

pytestmark = pytest.mark.ceph

WRONG_SECRET = "NOTTHEADMINSECRET0123456789abcdefghijklm"


def _env(rgw: CephRgw, workdir: Path, secret: str) -> dict[str, str]:
    (workdir / "admin-secret").write_text(secret + "\n")
    (workdir / "master-key").write_text(MASTER_KEY + "\n")
    return {
        "COSI_DRIVER_BACKEND": "ceph-rgw",
        "COSI_DRIVER_BACKEND_ENDPOINT": rgw.endpoint,
        "COSI_DRIVER_BACKEND_ADMIN_ACCESS_KEY_ID": rgw.admin_access_key,
        "COSI_DRIVER_BACKEND_ADMIN_SECRET_ACCESS_KEY_FILE": str(workdir / "admin-secret"),
        "COSI_DRIVER_BACKEND_REGION": "rgw-test-1",
        "COSI_DRIVER_MASTER_KEY_FILE": str(workdir / "master-key"),
        "COSI_DRIVER_LOG_LEVEL": "debug",
    }


async def test_serve_restart_and_no_secret_in_the_log(ceph_rgw: CephRgw, workdir: Path) -> None:
    env = _env(ceph_rgw, workdir, ceph_rgw.admin_secret_key)
    bucket = f"proc-{workdir.name[-8:].lower().replace('_', '-')}"
    derived: list[str] = []
    driver = start_driver(env, workdir)
    try:
        async with Client(driver.endpoint) as client:
            created = await client.create(bucket, maxObjectsPerBucket="100")
            assert created.bucket_info.s3.region == "rgw-test-1"
            writer = await client.grant(created.bucket_id, "ba-writer", accessMode="readwrite")
            reader = await client.grant(created.bucket_id, "ba-reader", accessMode="read")
            derived += [s3_secrets(writer)["accessSecretKey"], s3_secrets(reader)["accessSecretKey"]]
            assert await S3Session(s3_secrets(writer), 5).eventually_allowed("put", bucket, "kept.txt")
            # Failures are logged too: each must be told precisely, without a secret.
            await expect_error(client.delete(created.bucket_id), grpc.StatusCode.FAILED_PRECONDITION)
            await expect_error(client.create("Not_A_Bucket"), grpc.StatusCode.INVALID_ARGUMENT)
            await expect_error(client.create(bucket + "-big", maxSizePerBucket="9Ei"), grpc.StatusCode.OUT_OF_RANGE)
        assert driver.stop() == 0

        driver = start_driver(env, workdir)
        async with Client(driver.endpoint) as client:
            assert (await client.create(bucket, maxObjectsPerBucket="100")).bucket_id == created.bucket_id
            again = await client.grant(created.bucket_id, "ba-writer", accessMode="readwrite")
            assert again.account_id == writer.account_id
            assert s3_secrets(again) == s3_secrets(writer)
            await client.revoke(created.bucket_id, writer.account_id)
            assert await user_info(ceph_rgw, ids.parse_account_id(writer.account_id).account) is None
            assert await S3Session(s3_secrets(reader), 5).allowed("get", bucket, "kept.txt")
            await client.revoke(created.bucket_id, reader.account_id)
            await client.delete(created.bucket_id, deletionPolicy="purge")
        assert driver.stop() == 0
    finally:
        driver.stop()

    # The same driver with a wrong admin secret: refusals, never the secret it was given.
    bad = start_driver(_env(ceph_rgw, workdir, WRONG_SECRET), workdir, log_name="bad.log")
    try:
        async with Client(bad.endpoint) as client:
            message = await expect_error(client.create(bucket), grpc.StatusCode.PERMISSION_DENIED)
            assert "admin" in message
    finally:
        bad.stop()

    logs = driver.log() + bad.log()
    # The log did record the work: one event per RPC.
    assert '"rpc": "DriverDeleteBucket"' in logs and '"rpc": "DriverRevokeBucketAccess"' in logs
    for secret in (ceph_rgw.admin_access_key, ceph_rgw.admin_secret_key, WRONG_SECRET, MASTER_KEY, *derived):
        assert secret not in logs
