"""The `s3` backend against a real SeaweedFS: the shared acceptance suite, then what SeaweedFS makes hard.

SeaweedFS deletes versioned buckets and buckets holding only unfinished uploads *with their data*,
keeps a deleted user's inline policies for the next user of that name, and answers many calls
about missing things with 200. These tests prove the backend is correct anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from cosi_driver.backends.s3 import user_name
from cosi_driver.backends.s3kit.policy import policy_document
from cosi_driver.core import ids
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.stores import FileStateStore
from cosi_driver.core.types import AccessMode
from cosi_driver.testing.acceptance import (
    BACKEND_NAME,
    AcceptanceTarget,
    BackendAcceptanceSuite,
    Harness,
    S3Session,
)
from cosi_driver.testing.client import expect_error, s3_secrets
from cosi_driver.testing.probes import S3AdminProbe
from tests.fixtures.seaweedfs import SeaweedFS

pytestmark = pytest.mark.seaweedfs


@contextlib.asynccontextmanager
async def iam_admin_session(server: SeaweedFS) -> AsyncIterator[Any]:
    """An aioboto3 IAM client with the server's admin keys."""
    import aioboto3

    session = aioboto3.Session(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name="us-east-1"
    )
    async with session.client("iam", endpoint_url=server.endpoint) as iam:
        yield iam


def iam_user_exists(server: SeaweedFS) -> Callable[[str], Awaitable[bool]]:
    async def exists(account: str) -> bool:
        from botocore.exceptions import ClientError

        async with iam_admin_session(server) as iam:
            try:
                await iam.get_user(UserName=account)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "NoSuchEntity":
                    return False
                raise
            return True

    return exists


def admin_probe(server: SeaweedFS) -> S3AdminProbe:
    return S3AdminProbe(server.endpoint, server.access_key, server.secret_key, account_exists=iam_user_exists(server))


def s3_target(server: SeaweedFS, **config: Any) -> AcceptanceTarget:
    return AcceptanceTarget(backend_type="s3", config={**server.config, **config}, probe=admin_probe(server))


class TestS3BackendOnSeaweedFS(BackendAcceptanceSuite):
    @pytest.fixture
    def target(self, seaweedfs: SeaweedFS) -> AcceptanceTarget:
        return s3_target(seaweedfs)

    # -- what SeaweedFS makes hard --------------------------------------------------------------

    async def test_versioning_parameter_turns_versioning_on(self, harness: Harness) -> None:
        name = harness.new_name()
        await harness.create(name, versioning="true")
        async with admin(harness) as s3:
            assert (await s3.get_bucket_versioning(Bucket=name)).get("Status") == "Enabled"

    async def test_a_bad_bucket_name_names_the_rule_and_leaves_nothing(self, harness: Harness) -> None:
        message = await expect_error(harness.cosi.create("Not_A_Bucket"), grpc.StatusCode.INVALID_ARGUMENT)
        assert "not a valid S3 bucket name" in message
        assert "lowercase" in message
        assert not await harness.target.probe.bucket_exists("not-a-bucket")
        assert await FileStateStore(harness.workdir / "state").keys("bucket/") == []

    async def test_delete_refuses_a_versioned_bucket_holding_only_old_versions(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name, versioning="true")).bucket_id
        async with admin(harness) as s3:
            await s3.put_object(Bucket=name, Key="gone.txt", Body=b"old data")
            await s3.delete_object(Bucket=name, Key="gone.txt")  # now: one old version + a delete marker
            assert (await s3.list_objects_v2(Bucket=name)).get("KeyCount") == 0
            message = await expect_error(harness.cosi.delete(bucket_id), grpc.StatusCode.FAILED_PRECONDITION)
            assert "not empty" in message
            versions = await s3.list_object_versions(Bucket=name)
        assert await harness.target.probe.bucket_exists(name)
        assert [v["Key"] for v in versions.get("Versions", [])] == ["gone.txt"]

    async def test_delete_refuses_a_bucket_holding_only_a_delete_marker(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name, versioning="true")).bucket_id
        async with admin(harness) as s3:
            await s3.delete_object(Bucket=name, Key="never-existed.txt")  # a lone delete marker
            message = await expect_error(harness.cosi.delete(bucket_id), grpc.StatusCode.FAILED_PRECONDITION)
        assert "delete markers" in message
        assert await harness.target.probe.bucket_exists(name)

    async def test_delete_refuses_a_bucket_holding_only_an_unfinished_upload(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        async with admin(harness) as s3:
            upload = await s3.create_multipart_upload(Bucket=name, Key="big.bin")
            await s3.upload_part(
                Bucket=name, Key="big.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024
            )
            message = await expect_error(harness.cosi.delete(bucket_id), grpc.StatusCode.FAILED_PRECONDITION)
            assert "unfinished multipart uploads" in message
            uploads = await s3.list_multipart_uploads(Bucket=name)
        assert [u["UploadId"] for u in uploads.get("Uploads", [])] == [upload["UploadId"]]

    async def test_purge_empties_a_versioned_bucket_with_markers_and_uploads(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name, versioning="true", deletionPolicy="purge")).bucket_id
        async with admin(harness) as s3:
            for body in (b"v1", b"v2", b"v3"):
                await s3.put_object(Bucket=name, Key="doc.txt", Body=body)
            await s3.delete_object(Bucket=name, Key="doc.txt")
            await s3.put_object(Bucket=name, Key="other/kept.txt", Body=b"current")
            await s3.create_multipart_upload(Bucket=name, Key="unfinished.bin")
            listed = await s3.list_object_versions(Bucket=name)
            assert len(listed.get("Versions", [])) == 4
            assert len(listed.get("DeleteMarkers", [])) == 1
        await harness.cosi.delete(bucket_id, deletionPolicy="purge")
        assert not await harness.target.probe.bucket_exists(name)

    async def test_a_lost_stored_secret_is_rotated_into_working_credentials(self, harness: Harness) -> None:
        name, access = harness.new_name(), harness.new_name("ba")
        bucket_id = (await harness.create(name)).bucket_id
        first = await harness.cosi.grant(bucket_id, access)
        old = s3_secrets(first)
        assert await S3Session(old, PROPAGATION).eventually_allowed("put", name, "before.txt")
        kit = CredentialKit(FileStateStore(harness.workdir / "state"))
        await kit.forget(BACKEND_NAME, account_name(first.account_id))  # the state store lost the secret
        second = await harness.cosi.grant(bucket_id, access)
        new = s3_secrets(second)
        assert second.account_id == first.account_id
        assert new["accessKeyID"] != old["accessKeyID"]
        assert await S3Session(new, PROPAGATION).eventually_allowed("put", name, "after.txt")
        assert await S3Session(old, PROPAGATION).eventually_denied("get", name, "after.txt")
        assert s3_secrets(await harness.cosi.grant(bucket_id, access)) == new  # and stable again

    async def test_grant_removes_policies_a_deleted_user_of_the_same_name_left(self, harness: Harness) -> None:
        name, other, access = harness.new_name(), harness.new_name(), harness.new_name("ba")
        bucket_id = (await harness.create(name)).bucket_id
        await harness.create(other)
        await harness.target.probe.put_object(other, "private.txt", b"not for this access")
        user = user_name("cosi-", name, access)
        async with iam_admin(harness) as iam:
            # SeaweedFS keeps a deleted user's inline policies and gives them to the next user of the name.
            await iam.create_user(UserName=user)
            everything = policy_document(other, AccessMode.READWRITE)
            await iam.put_user_policy(UserName=user, PolicyName="leftover", PolicyDocument=everything)
            await iam.delete_user(UserName=user)
        granted = s3_secrets(await harness.cosi.grant(bucket_id, access, accessMode="read"))
        async with iam_admin(harness) as iam:
            assert (await iam.list_user_policies(UserName=user))["PolicyNames"] == ["cosi-bucket-access"]
        s3 = S3Session(granted, PROPAGATION)
        assert await s3.eventually_allowed("list", name)
        assert not await s3.allowed("get", other, "private.txt")

    async def test_revoke_removes_keys_the_user_minted_for_itself(self, harness: Harness) -> None:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        granted = await harness.cosi.grant(bucket_id, harness.new_name("ba"))
        keys = s3_secrets(granted)
        assert await S3Session(keys, PROPAGATION).eventually_allowed("put", name, "x.txt")
        import aioboto3

        session = aioboto3.Session(
            aws_access_key_id=keys["accessKeyID"],
            aws_secret_access_key=keys["accessSecretKey"],
            region_name="us-east-1",
        )
        async with session.client("iam", endpoint_url=keys["endpoint"]) as iam:
            minted = (await iam.create_access_key(UserName=account_name(granted.account_id)))["AccessKey"]
        extra = {**keys, "accessKeyID": minted["AccessKeyId"], "accessSecretKey": minted["SecretAccessKey"]}
        assert await S3Session(extra, PROPAGATION).eventually_allowed("get", name, "x.txt")
        await harness.cosi.revoke(bucket_id, granted.account_id)
        assert await S3Session(extra, PROPAGATION).eventually_denied("get", name, "x.txt")
        assert await S3Session(keys, PROPAGATION).eventually_denied("get", name, "x.txt")

    async def test_revoke_refuses_an_account_the_driver_did_not_derive(self, harness: Harness) -> None:
        bucket_id = (await harness.create()).bucket_id
        async with iam_admin(harness) as iam:
            await iam.create_user(UserName="someone-else")
        try:
            message = await expect_error(
                harness.cosi.revoke(bucket_id, f"v1/{BACKEND_NAME}/0/someone-else"), grpc.StatusCode.INVALID_ARGUMENT
            )
            assert "someone-else" in message
            assert await harness.target.probe.account_exists("someone-else")
        finally:
            async with iam_admin(harness) as iam:
                await iam.delete_user(UserName="someone-else")


PROPAGATION = 15.0


@contextlib.asynccontextmanager
async def admin(harness: Harness) -> AsyncIterator[Any]:
    probe = harness.target.probe
    assert isinstance(probe, S3AdminProbe)
    async with probe.client() as s3:
        yield s3


@contextlib.asynccontextmanager
async def iam_admin(harness: Harness) -> AsyncIterator[Any]:
    import aioboto3

    config = harness.target.config
    session = aioboto3.Session(
        aws_access_key_id=config["access_key_id"]["value"],
        aws_secret_access_key=config["secret_access_key"]["value"],
        region_name="us-east-1",
    )
    async with session.client("iam", endpoint_url=config["endpoint"]) as iam:
        yield iam


def account_name(account_id: str) -> str:
    return ids.parse_account_id(account_id).account
