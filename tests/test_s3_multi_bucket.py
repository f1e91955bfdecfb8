"""v1alpha2 accounts of the `s3` backend on a real SeaweedFS, beyond the shared acceptance suite.

The suite checks each bucket's mode on the data path; here: what the account looks like in IAM
(named after the access, one policy naming exactly the granted buckets, gone after revoke) and
that revoke refuses a user of a look-alike name the driver never derives.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from cosi_driver.backends.s3 import POLICY_NAME
from cosi_driver.core import ids
from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.types import AccessMode, AuthenticationType
from cosi_driver.core.validation import V1ALPHA2
from cosi_driver.testing.acceptance import BACKEND_NAME, Harness, running
from tests.fixtures.seaweedfs import SeaweedFS
from tests.test_s3_seaweedfs import iam_admin, s3_target

pytestmark = [pytest.mark.seaweedfs, pytest.mark.asyncio(loop_scope="function")]


@pytest_asyncio.fixture
async def harness(seaweedfs: SeaweedFS) -> AsyncIterator[Harness]:
    async with running(s3_target(seaweedfs)) as started:
        yield started


def _resources(document: Any) -> set[str]:
    """Every resource the policy names (SeaweedFS answers a one-element list as a plain string)."""
    parsed = json.loads(document) if isinstance(document, str) else document
    found: set[str] = set()
    for statement in parsed["Statement"]:
        resource = statement["Resource"]
        found.update([resource] if isinstance(resource, str) else resource)
    return found


async def test_a_v1alpha2_account_is_one_user_with_one_policy_naming_exactly_its_buckets(harness: Harness) -> None:
    names = [harness.new_name() for _ in range(3)]
    bucket_ids = [(await harness.create(name)).bucket_id for name in names]
    access_name = harness.new_name("ba")
    wanted = [(bucket_ids[0], AccessMode.READ_ONLY), (bucket_ids[1], AccessMode.WRITE_ONLY)]
    access = await harness.driver.grant_access(access_name, wanted, AuthenticationType.KEY, {}, rules=V1ALPHA2)
    user = ids.parse_account_id(access.account_id).account
    assert re.fullmatch(rf"cosi-{access_name}_[0-9a-f]{{20}}", user)  # named after the access alone
    async with iam_admin(harness) as iam:
        assert (await iam.list_user_policies(UserName=user))["PolicyNames"] == [POLICY_NAME]
        document = (await iam.get_user_policy(UserName=user, PolicyName=POLICY_NAME))["PolicyDocument"]
    assert {resource.split(":::")[1].split("/")[0] for resource in _resources(document)} == set(names[:2])
    await harness.driver.revoke_access(access.account_id, bucket_ids[:2], rules=V1ALPHA2)
    assert not await harness.target.probe.account_exists(user)


async def test_revoke_refuses_an_iam_user_the_driver_did_not_derive(harness: Harness) -> None:
    bucket_id = (await harness.create()).bucket_id
    lookalike = "cosi-lookalike_0123"  # the v1alpha2 shape, but no 20-digit digest
    async with iam_admin(harness) as iam:
        await iam.create_user(UserName=lookalike)
    try:
        foreign = ids.AccountRef(BACKEND_NAME, lookalike, 0).encode()
        with pytest.raises(InvalidArgument, match=lookalike):
            await harness.driver.revoke_access(foreign, [bucket_id], rules=V1ALPHA2)
        assert await harness.target.probe.account_exists(lookalike)
    finally:
        async with iam_admin(harness) as iam:
            await iam.delete_user(UserName=lookalike)
