"""v1alpha2 multi-bucket grants and existing buckets with the `ceph-rgw` backend on a real gateway.

An account's statements live in each granted bucket's policy, with the Deny write-only needs on
RGW (the uploader otherwise reads back its own objects, measured); revoke removes exactly the
account's statements from every bucket. An existing bucket is grantable when the driver's admin
user owns it; one owned by another RGW user is refused with the fix (RGW lets only the owner change
a bucket policy, measured), and neither is ever deleted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from cosi_driver.backends.ceph import policy
from cosi_driver.core import ids
from cosi_driver.core.errors import FailedPrecondition
from cosi_driver.core.types import AccessMode
from cosi_driver.testing.acceptance import AcceptanceTarget, Harness, running
from cosi_driver.testing.probes import s3_client
from tests.ceph_support import MASTER_KEY, admin_s3, radosgw_admin, rgw_probe
from tests.fixtures.ceph import CephRgw
from tests.multi_bucket_support import check_an_existing_bucket, check_modes_per_bucket, driver_of, grant, revoke

pytestmark = [pytest.mark.ceph, pytest.mark.asyncio(loop_scope="function")]


@pytest_asyncio.fixture
async def harness(ceph_rgw: CephRgw) -> AsyncIterator[Harness]:
    target = AcceptanceTarget(
        backend_type="ceph-rgw",
        config=ceph_rgw.config(),
        probe=rgw_probe(ceph_rgw),
        master_key=MASTER_KEY,
        propagation_seconds=5.0,
    )
    async with running(target) as started:
        yield started


async def _statements(rgw: CephRgw, bucket: str) -> list[dict[str, object]]:
    async with admin_s3(rgw) as s3:
        return list(json.loads((await s3.get_bucket_policy(Bucket=bucket))["Policy"])["Statement"])


async def test_each_bucket_is_reachable_in_exactly_its_mode_until_revoked(harness: Harness, ceph_rgw: CephRgw) -> None:
    outcome = await check_modes_per_bucket(harness)
    uid = ids.parse_account_id(outcome.access.account_id).account
    for role in ("ro", "wo", "rw"):
        principals = [p for s in await _statements(ceph_rgw, outcome.names[role]) for p in s["Principal"]["AWS"]]  # type: ignore[index]
        assert policy.principal(uid) not in principals, f"a statement for the revoked account stayed on {role}"
        assert policy.principal(ceph_rgw.admin_uid) in principals  # the owner keeps reading grantees' uploads


async def test_a_write_only_bucket_denies_reads_explicitly_and_only_there(harness: Harness, ceph_rgw: CephRgw) -> None:
    wo, rw = harness.new_name(), harness.new_name()
    wo_id, rw_id = (await harness.create(wo)).bucket_id, (await harness.create(rw)).bucket_id
    access = await grant(
        harness, harness.new_name("ba"), [(wo_id, AccessMode.WRITE_ONLY), (rw_id, AccessMode.READ_WRITE)]
    )
    uid = ids.parse_account_id(access.account_id).account
    denies = {
        bucket: [
            s
            for s in await _statements(ceph_rgw, bucket)
            if s["Effect"] == "Deny" and policy.principal(uid) in s["Principal"]["AWS"]
        ]  # type: ignore[index]
        for bucket in (wo, rw)
    }
    assert any("s3:GetObject" in s["Action"] for s in denies[wo])  # type: ignore[operator]
    assert not any("s3:GetObject" in s["Action"] for s in denies[rw])  # type: ignore[operator]
    await revoke(harness, access, [wo_id, rw_id])


async def test_an_existing_bucket_is_granted_and_never_deleted(harness: Harness) -> None:
    await check_an_existing_bucket(harness, harness.new_name(EXISTING_PREFIX))


async def test_an_existing_bucket_of_another_rgw_user_is_refused_with_the_fix(
    harness: Harness, ceph_rgw: CephRgw
) -> None:
    name, uid = harness.new_name(EXISTING_PREFIX), harness.new_name("owner")
    code, _ = await radosgw_admin(
        ceph_rgw,
        "user",
        "create",
        f"--uid={uid}",
        "--display-name=someone",
        "--access-key=" + uid.upper()[:20],
        "--secret=" + uid * 2,
    )
    assert code == 0
    try:
        async with s3_client(ceph_rgw.endpoint, uid.upper()[:20], uid * 2) as theirs:
            await theirs.create_bucket(Bucket=name)
            await theirs.put_object(Bucket=name, Key="theirs.txt", Body=b"foreign data")
        taken = await driver_of(harness).get_existing_bucket(name, {})
        with pytest.raises(FailedPrecondition, match=f"owned by RGW user '{uid}'.*radosgw-admin bucket link"):
            await grant(harness, harness.new_name("ba"), [(taken.bucket_id, AccessMode.READ_ONLY)])
        await driver_of(harness).delete_bucket(taken.bucket_id, {"deletionPolicy": "purge"})
        async with s3_client(ceph_rgw.endpoint, uid.upper()[:20], uid * 2) as theirs:
            body = await (await theirs.get_object(Bucket=name, Key="theirs.txt"))["Body"].read()
            assert body == b"foreign data"
            await theirs.delete_object(Bucket=name, Key="theirs.txt")
            await theirs.delete_bucket(Bucket=name)
    finally:
        await radosgw_admin(ceph_rgw, "user", "rm", f"--uid={uid}", "--purge-data")
