"""What the ``ceph-rgw`` backend promises beyond the shared suite, checked on a real RADOS Gateway.

Revoke keeps data readable through other grants (RGW ties objects to their uploader), concurrent
grants on one bucket all keep their policy statements, quotas are enforced, retried grants repair
users changed behind the driver's back, foreign users and buckets are never touched, and a
frozen or unreachable gateway is reported as such.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from botocore.exceptions import ClientError

from cosi_driver.backends.ceph.users import account_uid
from cosi_driver.core import ids
from cosi_driver.testing.acceptance import BACKEND_NAME, S3Session
from cosi_driver.testing.client import expect_error, s3_secrets
from cosi_driver.testing.probes import s3_client
from tests.ceph_support import Harnesses, admin_s3, backend_of, radosgw_admin, user_info, user_keys
from tests.fixtures.ceph import CephRgw
from tests.support import free_port_block

pytestmark = pytest.mark.ceph


@pytest_asyncio.fixture
async def drivers(ceph_rgw: CephRgw) -> AsyncIterator[Harnesses]:
    harnesses = Harnesses(ceph_rgw)
    try:
        yield harnesses
    finally:
        await harnesses.close()


def _account(account_id: str) -> str:
    return ids.parse_account_id(account_id).account


async def _put(secrets: dict[str, str], bucket: str, key: str, body: bytes = b"data") -> None:
    async with s3_client(secrets["endpoint"], secrets["accessKeyID"], secrets["accessSecretKey"]) as s3:
        await s3.put_object(Bucket=bucket, Key=key, Body=body)


async def _read(secrets: dict[str, str], bucket: str, key: str) -> bytes:
    async with s3_client(secrets["endpoint"], secrets["accessKeyID"], secrets["accessSecretKey"]) as s3:
        return bytes(await (await s3.get_object(Bucket=bucket, Key=key))["Body"].read())


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code"))


# -- revoke keeps data ------------------------------------------------------------------------


async def test_revoke_keeps_the_users_uploads_readable_through_other_grants(drivers: Harnesses) -> None:
    h = await drivers.start()
    name = h.new_name()
    bucket_id = (await h.create(name)).bucket_id
    writer = await h.cosi.grant(bucket_id, h.new_name("ba"), accessMode="readwrite")
    reader = s3_secrets(await h.cosi.grant(bucket_id, h.new_name("ba"), accessMode="read"))
    await _put(s3_secrets(writer), name, "from-writer.txt", b"written by a grantee")

    await h.cosi.revoke(bucket_id, writer.account_id)

    assert await user_info(drivers.rgw, _account(writer.account_id)) is None
    assert await S3Session(s3_secrets(writer), 5).eventually_denied("get", name, "from-writer.txt")
    # The object outlives its uploader and stays readable by the other grant and by the owner.
    assert await _read(reader, name, "from-writer.txt") == b"written by a grantee"
    async with admin_s3(drivers.rgw) as s3:
        assert (await (await s3.get_object(Bucket=name, Key="from-writer.txt"))["Body"].read()) == (
            b"written by a grantee"
        )
    # A later grant can still manage it.
    later = s3_secrets(await h.cosi.grant(bucket_id, h.new_name("ba"), accessMode="readwrite"))
    assert await _read(later, name, "from-writer.txt") == b"written by a grantee"
    assert await S3Session(later, 5).allowed("delete", name, "from-writer.txt")


async def test_revoke_removes_only_its_own_statement_and_keeps_the_operators(drivers: Harnesses) -> None:
    h = await drivers.start()
    name = h.new_name()
    bucket_id = (await h.create(name)).bucket_id
    operator_statement = {
        "Sid": "OperatorAudit",
        "Effect": "Allow",
        "Principal": {"AWS": ["arn:aws:iam:::user/auditor"]},
        "Action": ["s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{name}"],
    }
    async with admin_s3(drivers.rgw) as s3:
        policy = {"Version": "2012-10-17", "Statement": [operator_statement]}
        await s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
    first = await h.cosi.grant(bucket_id, h.new_name("ba"))
    second = await h.cosi.grant(bucket_id, h.new_name("ba"))
    await h.cosi.revoke(bucket_id, first.account_id)
    async with admin_s3(drivers.rgw) as s3:
        statements = json.loads((await s3.get_bucket_policy(Bucket=name))["Policy"])["Statement"]
    principals = [p for s in statements for p in s["Principal"]["AWS"]]
    assert operator_statement in statements
    assert f"arn:aws:iam:::user/{drivers.rgw.admin_uid}" in principals
    assert f"arn:aws:iam:::user/{_account(second.account_id)}" in principals
    assert f"arn:aws:iam:::user/{_account(first.account_id)}" not in principals


async def test_a_grant_that_would_overflow_the_policy_size_limit_is_resource_exhausted(drivers: Harnesses) -> None:
    h = await drivers.start()
    name = h.new_name()
    bucket_id = (await h.create(name)).bucket_id

    # An operator's policy just under RGW's 1 MiB limit (rgw_max_put_param_size).
    def statement(i: int) -> dict[str, object]:
        return {
            "Sid": f"Operator{i:05d}",
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam:::user/operator-{i:020d}"]},
            "Action": ["s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{name}"],
        }

    per_statement = len(json.dumps(statement(0), separators=(",", ":"))) + 1
    filler = [statement(i) for i in range((1024 * 1024 - 1000) // per_statement)]
    document = json.dumps({"Version": "2012-10-17", "Statement": filler}, separators=(",", ":"))
    assert 1024 * 1024 - 1100 < len(document) < 1024 * 1024
    async with admin_s3(drivers.rgw) as s3:
        await s3.put_bucket_policy(Bucket=name, Policy=document)
    message = await expect_error(h.cosi.grant(bucket_id, h.new_name("ba")), grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert "policy" in message
    async with admin_s3(drivers.rgw) as s3:
        assert (await s3.get_bucket_policy(Bucket=name))["Policy"] == document


# -- concurrency --------------------------------------------------------------------------------


async def test_ten_concurrent_grants_on_one_bucket_all_keep_working_statements(drivers: Harnesses) -> None:
    h = await drivers.start()
    name = h.new_name()
    bucket_id = (await h.create(name)).bucket_id
    granted = await asyncio.gather(*(h.cosi.grant(bucket_id, f"ba-concurrent-{i}") for i in range(10)))
    assert len({g.account_id for g in granted}) == 10

    async def works(index: int) -> bool:
        session = S3Session(s3_secrets(granted[index]), 5)
        return await session.eventually_allowed("put", name, f"{index}.txt") and await session.allowed(
            "get", name, f"{index}.txt"
        )

    assert all(await asyncio.gather(*(works(i) for i in range(10))))

    # Half of them revoked concurrently: exactly those stop working.
    await asyncio.gather(*(h.cosi.revoke(bucket_id, g.account_id) for g in granted[:5]))
    for index, grant in enumerate(granted):
        session = S3Session(s3_secrets(grant), 5)
        if index < 5:
            assert await session.eventually_denied("put", name, "after.txt"), index
        else:
            assert await session.allowed("put", name, f"after-{index}.txt"), index


# -- quotas and bucket settings ---------------------------------------------------------------


async def test_max_objects_per_bucket_refuses_writes_beyond_it(drivers: Harnesses) -> None:
    h = await drivers.start()
    name = h.new_name()
    bucket_id = (await h.create(name, maxObjectsPerBucket="3")).bucket_id
    keys = s3_secrets(await h.cosi.grant(bucket_id, h.new_name("ba")))
    for index in range(3):
        await _put(keys, name, f"{index}.txt")
    with pytest.raises(ClientError) as refused:
        await _put(keys, name, "3.txt")
    assert _code(refused.value) == "QuotaExceeded"
    _, out = await radosgw_admin(drivers.rgw, "bucket", "stats", f"--bucket={name}")
    quota = json.loads(out)["bucket_quota"]
    assert (quota["enabled"], quota["max_objects"], quota["max_size"]) == (True, 3, -1)


async def test_max_size_per_bucket_is_set_to_the_byte_and_enforced(drivers: Harnesses) -> None:
    h = await drivers.start()
    name = h.new_name()
    bucket_id = (await h.create(name, maxSizePerBucket="1000Ki")).bucket_id
    _, out = await radosgw_admin(drivers.rgw, "bucket", "stats", f"--bucket={name}")
    quota = json.loads(out)["bucket_quota"]
    assert (quota["enabled"], quota["max_size"], quota["max_objects"]) == (True, 1000 * 1024, -1)
    keys = s3_secrets(await h.cosi.grant(bucket_id, h.new_name("ba")))
    await _put(keys, name, "first", b"x" * 600 * 1024)
    with pytest.raises(ClientError) as refused:
        await _put(keys, name, "second", b"x" * 600 * 1024)
    assert _code(refused.value) == "QuotaExceeded"


async def test_a_quota_beyond_what_rgw_can_hold_is_out_of_range_and_makes_nothing(drivers: Harnesses) -> None:
    h = await drivers.start()
    name = h.new_name()
    message = await expect_error(h.create(name, maxSizePerBucket="9Ei"), grpc.StatusCode.OUT_OF_RANGE)
    assert "maxSizePerBucket" in message
    assert not await h.target.probe.bucket_exists(name)
    # The refusal left no intent behind: the same name works with a sane quota.
    await h.create(name, maxSizePerBucket="1Gi")


async def test_versioning_keeps_versions_blocks_plain_delete_and_purge_removes_all(drivers: Harnesses) -> None:
    h = await drivers.start()
    name = h.new_name()
    bucket_id = (await h.create(name, versioning="true")).bucket_id
    keys = s3_secrets(await h.cosi.grant(bucket_id, h.new_name("ba")))
    async with admin_s3(drivers.rgw) as s3:
        assert (await s3.get_bucket_versioning(Bucket=name))["Status"] == "Enabled"
    await _put(keys, name, "doc", b"one")
    await _put(keys, name, "doc", b"two")
    assert await S3Session(keys, 5).allowed("delete", name, "doc")  # leaves a delete marker
    message = await expect_error(h.cosi.delete(bucket_id, versioning="true"), grpc.StatusCode.FAILED_PRECONDITION)
    assert "not empty" in message
    await h.cosi.delete(bucket_id, versioning="true", deletionPolicy="purge")
    assert not await h.target.probe.bucket_exists(name)


async def test_a_bucket_holding_only_an_unfinished_upload_is_not_empty(drivers: Harnesses) -> None:
    # Pacific's own DeleteBucket would delete it and strand the uploaded parts.
    h = await drivers.start()
    name = h.new_name()
    bucket_id = (await h.create(name)).bucket_id
    keys = s3_secrets(await h.cosi.grant(bucket_id, h.new_name("ba")))
    async with s3_client(keys["endpoint"], keys["accessKeyID"], keys["accessSecretKey"]) as s3:
        upload = await s3.create_multipart_upload(Bucket=name, Key="big")
        await s3.upload_part(Bucket=name, Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 1024)
    message = await expect_error(h.cosi.delete(bucket_id), grpc.StatusCode.FAILED_PRECONDITION)
    assert "unfinished" in message
    assert await h.target.probe.bucket_exists(name)
    await h.cosi.delete(bucket_id, deletionPolicy="purge")
    assert not await h.target.probe.bucket_exists(name)


# -- users ------------------------------------------------------------------------------------


async def test_grantees_cannot_create_buckets(drivers: Harnesses) -> None:
    # RGW reads max-buckets 0 as "unlimited"; the driver sets -1, which forbids creating buckets.
    h = await drivers.start()
    bucket_id = (await h.create()).bucket_id
    granted = await h.cosi.grant(bucket_id, h.new_name("ba"))
    info = await user_info(drivers.rgw, _account(granted.account_id))
    assert info is not None and info["max_buckets"] == -1
    keys = s3_secrets(granted)
    async with s3_client(keys["endpoint"], keys["accessKeyID"], keys["accessSecretKey"]) as s3:
        with pytest.raises(ClientError) as refused:
            await s3.create_bucket(Bucket=h.new_name("grantee"))
    assert _code(refused.value) == "AccessDenied"


async def test_a_retried_grant_repairs_a_user_changed_behind_the_drivers_back(drivers: Harnesses) -> None:
    h = await drivers.start()
    name, access = h.new_name(), h.new_name("ba")
    bucket_id = (await h.create(name)).bucket_id
    granted = await h.cosi.grant(bucket_id, access)
    keys = s3_secrets(granted)
    uid = _account(granted.account_id)
    rgw = drivers.rgw
    # Someone replaces the secret, adds a key of their own, suspends the user and lifts max-buckets.
    await radosgw_admin(rgw, "key", "create", f"--uid={uid}", f"--access-key={keys['accessKeyID']}", "--secret=changed")
    await radosgw_admin(rgw, "key", "create", f"--uid={uid}", "--access-key=STRAYKEY000000000001", "--secret=stray")
    await radosgw_admin(rgw, "user", "suspend", f"--uid={uid}")
    await radosgw_admin(rgw, "user", "modify", f"--uid={uid}", "--max-buckets=5")
    assert (await user_keys(rgw, uid)).get(keys["accessKeyID"]) != keys["accessSecretKey"]

    again = await h.cosi.grant(bucket_id, access)

    assert s3_secrets(again) == keys
    assert await user_keys(rgw, uid) == {keys["accessKeyID"]: keys["accessSecretKey"]}
    info = await user_info(rgw, uid)
    assert info is not None and (info["suspended"], info["max_buckets"]) == (0, -1)
    assert await S3Session(keys, 5).eventually_allowed("put", name, "repaired.txt")


async def test_users_the_driver_did_not_create_are_never_taken_over_or_deleted(drivers: Harnesses) -> None:
    h = await drivers.start()
    name, access = h.new_name(), h.new_name("ba")
    bucket_id = (await h.create(name)).bucket_id
    uid = account_uid(name, access)  # squatted before the grant
    await radosgw_admin(
        drivers.rgw, "user", "create", f"--uid={uid}", "--display-name=someone else",
        "--access-key=SQUATTERKEY000000001", "--secret=squatter",
    )  # fmt: skip
    message = await expect_error(h.cosi.grant(bucket_id, access), grpc.StatusCode.FAILED_PRECONDITION)
    assert uid in message
    await expect_error(h.cosi.revoke(bucket_id, f"v1/{BACKEND_NAME}/1/{uid}"), grpc.StatusCode.FAILED_PRECONDITION)
    assert await user_keys(drivers.rgw, uid) == {"SQUATTERKEY000000001": "squatter"}
    await radosgw_admin(drivers.rgw, "user", "rm", f"--uid={uid}")


async def test_a_bucket_owned_by_another_rgw_user_is_never_adopted_even_with_our_mark(drivers: Harnesses) -> None:
    h = await drivers.start()
    rgw = drivers.rgw
    other = h.new_name("tenant-user")
    await radosgw_admin(
        rgw, "user", "create", f"--uid={other}", "--display-name=other",
        "--access-key=OTHERUSERKEY00000001", "--secret=othersecret",
    )  # fmt: skip
    name = h.new_name("theirs")
    try:
        async with s3_client(rgw.endpoint, "OTHERUSERKEY00000001", "othersecret") as s3:
            await s3.create_bucket(Bucket=name)
            await s3.put_object(Bucket=name, Key="theirs.txt", Body=b"not yours")
            # Even a copied ownership tag does not make it ours: the owner must be the driver's user.
            ours = await h.create()
            async with admin_s3(rgw) as admin:
                tags = (await admin.get_bucket_tagging(Bucket=ids.parse_bucket_id(ours.bucket_id).bucket))["TagSet"]
            await s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
            await expect_error(h.create(name), grpc.StatusCode.ALREADY_EXISTS)
            foreign_id = f"v1/{BACKEND_NAME}/{name}"
            await expect_error(h.cosi.grant(foreign_id, "ba-x"), grpc.StatusCode.FAILED_PRECONDITION)
            await expect_error(h.cosi.delete(foreign_id, deletionPolicy="purge"), grpc.StatusCode.FAILED_PRECONDITION)
            assert (await (await s3.get_object(Bucket=name, Key="theirs.txt"))["Body"].read()) == b"not yours"
            await s3.delete_object(Bucket=name, Key="theirs.txt")
            await s3.delete_bucket(Bucket=name)
    finally:
        await radosgw_admin(rgw, "user", "rm", f"--uid={other}", "--purge-data")


# -- failures ---------------------------------------------------------------------------------


async def test_a_frozen_gateway_is_unavailable_or_deadline_exceeded_and_the_driver_recovers(
    drivers: Harnesses,
) -> None:
    h = await drivers.start(operation_timeout=4.0, read_timeout=1.5, connect_timeout=1.0)
    backend = backend_of(h)
    bucket_id = (await h.create()).bucket_id  # a warm connection pool, as in steady state
    with drivers.rgw.paused():
        for call in (h.create(), h.cosi.grant(bucket_id, h.new_name("ba"))):
            try:
                await call
            except grpc.aio.AioRpcError as error:
                assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), error
            else:
                raise AssertionError("a call succeeded while the gateway was frozen")
        with pytest.raises(Exception) as unhealthy:
            await asyncio.wait_for(backend.check_health(), 5)
        assert "did not answer" in str(unhealthy.value)
    await backend.check_health()
    granted = await h.cosi.grant(bucket_id, h.new_name("ba"))
    assert await S3Session(s3_secrets(granted), 5).eventually_allowed(
        "put", ids.parse_bucket_id(bucket_id).bucket, "ok"
    )


async def test_an_unreachable_gateway_is_unavailable(drivers: Harnesses) -> None:
    h = await drivers.start(endpoint=f"http://127.0.0.1:{free_port_block(1)}", connect_timeout=1.0)
    message = await expect_error(h.create(), grpc.StatusCode.UNAVAILABLE)
    assert "unreachable" in message
    reports = await h.driver.check_health() if h.driver else []
    assert [(r.ok, "unreachable" in r.detail) for r in reports] == [(False, True)], reports


async def test_wrong_admin_credentials_are_reported_as_such(drivers: Harnesses) -> None:
    wrong = "WRONGSECRET0123456789abcdefghijklmnopqrs"
    h = await drivers.start(admin_secret_access_key={"value": wrong})
    assert h.driver is not None
    reports = await h.driver.check_health()
    assert not reports[0].ok
    assert "rejects the configured admin credentials" in reports[0].detail
    message = await expect_error(h.create(), grpc.StatusCode.PERMISSION_DENIED)
    assert "admin credentials" in message
    for text in (reports[0].detail, message):
        assert wrong not in text and drivers.rgw.admin_secret_key not in text


async def test_an_admin_user_without_caps_is_reported_as_such(drivers: Harnesses) -> None:
    rgw = drivers.rgw
    uid = "cosi-test-no-caps"
    await radosgw_admin(
        rgw, "user", "create", f"--uid={uid}", "--display-name=no caps",
        "--access-key=NOCAPSKEY00000000001", "--secret=nocapssecret",
    )  # fmt: skip
    try:
        h = await drivers.start(
            admin_access_key_id={"value": "NOCAPSKEY00000000001"},
            admin_secret_access_key={"value": "nocapssecret"},
        )
        assert h.driver is not None
        reports = await h.driver.check_health()
        assert not reports[0].ok
        assert "lacks the admin caps" in reports[0].detail
    finally:
        await radosgw_admin(rgw, "user", "rm", f"--uid={uid}", "--purge-data")


async def test_an_admin_user_with_only_users_and_buckets_caps_is_enough(drivers: Harnesses) -> None:
    # What the README tells operators to grant: users=*;buckets=*, nothing else.
    rgw = drivers.rgw
    uid = "cosi-test-minimal-caps"
    await radosgw_admin(
        rgw, "user", "create", f"--uid={uid}", "--display-name=minimal caps", "--max-buckets=0",
        "--access-key=MINCAPSKEY0000000001", "--secret=mincapssecret", "--caps=users=*;buckets=*",
    )  # fmt: skip
    try:
        h = await drivers.start(
            admin_access_key_id={"value": "MINCAPSKEY0000000001"},
            admin_secret_access_key={"value": "mincapssecret"},
        )
        name = h.new_name()
        bucket_id = (await h.create(name, maxObjectsPerBucket="10", versioning="true")).bucket_id
        granted = await h.cosi.grant(bucket_id, h.new_name("ba"))
        assert await S3Session(s3_secrets(granted), 5).eventually_allowed("put", name, "x.txt")
        await h.cosi.revoke(bucket_id, granted.account_id)
        await h.cosi.delete(bucket_id, versioning="true", maxObjectsPerBucket="10", deletionPolicy="purge")
        assert not await h.target.probe.bucket_exists(name)
        assert h.driver is not None and (await h.driver.check_health())[0].ok
    finally:
        await radosgw_admin(rgw, "user", "rm", f"--uid={uid}", "--purge-data")
