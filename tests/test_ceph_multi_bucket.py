"""v1alpha2 grants and existing buckets of the `ceph-rgw` backend on a real gateway, beyond the suite.

The shared acceptance suite checks each bucket's mode on the data path; here: the policies behind
it (each bucket holds the account's statements in its own mode, the Deny that write-only needs on
RGW only where it is needed, the owner statement kept, the account's statements gone from every
bucket after revoke), and an existing bucket owned by another RGW user, whose policy RGW lets only
its owner change (measured): refused with the fix, and left as it was.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from cosi_driver.backends.ceph import policy
from cosi_driver.core import ids
from cosi_driver.core.errors import FailedPrecondition
from cosi_driver.core.types import AccessMode, AuthenticationType
from cosi_driver.core.validation import V1ALPHA2
from cosi_driver.testing.acceptance import EXISTING_PREFIX, AcceptanceTarget, Harness, running
from cosi_driver.testing.probes import s3_client
from tests.ceph_support import MASTER_KEY, admin_s3, radosgw_admin, rgw_probe
from tests.fixtures.ceph import CephRgw

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


async def _statements(rgw: CephRgw, bucket: str, principal: str) -> list[dict[str, Any]]:
    """The statements of ``bucket``'s policy that name ``principal``."""
    async with admin_s3(rgw) as s3:
        document = json.loads((await s3.get_bucket_policy(Bucket=bucket))["Policy"])
    return [s for s in document["Statement"] if principal in s["Principal"]["AWS"]]


async def test_each_bucket_holds_the_accounts_statements_in_its_own_mode(harness: Harness, ceph_rgw: CephRgw) -> None:
    names = {mode: harness.new_name() for mode in (AccessMode.WRITE_ONLY, AccessMode.READ_WRITE)}
    bucket_ids = {mode: (await harness.create(name)).bucket_id for mode, name in names.items()}
    wanted = [(bucket_id, mode) for mode, bucket_id in bucket_ids.items()]
    access = await harness.driver.grant_access(
        harness.new_name("ba"), wanted, AuthenticationType.KEY, {}, rules=V1ALPHA2
    )
    account = policy.principal(ids.parse_account_id(access.account_id).account)
    for mode, name in names.items():
        statements = await _statements(ceph_rgw, name, account)
        allowed = {a for s in statements if s["Effect"] == "Allow" for a in s["Action"]}
        denied = {a for s in statements if s["Effect"] == "Deny" for a in s["Action"]}
        assert "s3:PutObject" in allowed
        assert ("s3:GetObject" in allowed) is mode.can_read
        assert ("s3:GetObject" in denied) is not mode.can_read  # the Deny only where reads are not granted
        assert {r.split(":::")[1].split("/")[0] for s in statements for r in s["Resource"]} == {name}
    await harness.driver.revoke_access(access.account_id, list(bucket_ids.values()), rules=V1ALPHA2)
    for name in names.values():
        assert await _statements(ceph_rgw, name, account) == []
        assert await _statements(ceph_rgw, name, policy.principal(ceph_rgw.admin_uid))  # the owner's stays


async def test_an_existing_bucket_of_another_rgw_user_is_refused_with_the_fix(
    harness: Harness, ceph_rgw: CephRgw
) -> None:
    name, uid = harness.new_name(EXISTING_PREFIX), harness.new_name("owner")
    keys = (uid.upper().replace("-", "")[:20], uid * 2)
    code, _ = await radosgw_admin(
        ceph_rgw,
        "user",
        "create",
        f"--uid={uid}",
        "--display-name=someone",
        f"--access-key={keys[0]}",
        f"--secret={keys[1]}",
    )
    assert code == 0
    try:
        async with s3_client(ceph_rgw.endpoint, *keys) as theirs:
            await theirs.create_bucket(Bucket=name)
            await theirs.put_object(Bucket=name, Key="theirs.txt", Body=b"foreign data")
        taken = await harness.driver.get_existing_bucket(name, {}, rules=V1ALPHA2)
        with pytest.raises(FailedPrecondition, match=f"owned by RGW user '{uid}'.*radosgw-admin bucket link"):
            await harness.driver.grant_access(
                harness.new_name("ba"),
                [(taken.bucket_id, AccessMode.READ_ONLY)],
                AuthenticationType.KEY,
                {},
                rules=V1ALPHA2,
            )
        await harness.driver.delete_bucket(taken.bucket_id, {"deletionPolicy": "purge"}, rules=V1ALPHA2)
        async with s3_client(ceph_rgw.endpoint, *keys) as theirs:
            body = await (await theirs.get_object(Bucket=name, Key="theirs.txt"))["Body"].read()
            assert body == b"foreign data"
            await theirs.delete_object(Bucket=name, Key="theirs.txt")
            await theirs.delete_bucket(Bucket=name)
    finally:
        await radosgw_admin(ceph_rgw, "user", "rm", f"--uid={uid}", "--purge-data")
