"""v1alpha2 multi-bucket grants and existing buckets with the `s3` backend on a real SeaweedFS.

SeaweedFS does not evaluate Deny, so the one IAM policy of an account must allow each bucket
exactly its mode and name nothing else; these tests check that from the consumer's side.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from cosi_driver.backends.s3 import POLICY_NAME
from cosi_driver.core import ids
from cosi_driver.core.errors import AlreadyExists, InvalidArgument
from cosi_driver.core.types import AccessMode
from cosi_driver.core.validation import V1ALPHA2
from cosi_driver.testing.acceptance import EXISTING_PREFIX, Harness, running
from tests.fixtures.seaweedfs import SeaweedFS
from tests.multi_bucket_support import check_an_existing_bucket, check_modes_per_bucket, driver_of, grant, revoke
from tests.test_s3_seaweedfs import iam_admin, s3_target

pytestmark = [pytest.mark.seaweedfs, pytest.mark.asyncio(loop_scope="function")]


@pytest_asyncio.fixture
async def harness(seaweedfs: SeaweedFS) -> AsyncIterator[Harness]:
    target = s3_target(seaweedfs)
    async with running(target) as started:
        yield started


async def test_each_bucket_is_reachable_in_exactly_its_mode_until_revoked(harness: Harness) -> None:
    outcome = await check_modes_per_bucket(harness)
    account = ids.parse_account_id(outcome.access.account_id).account
    assert re.fullmatch(r"cosi-ba-[0-9a-f]{16}_[0-9a-f]{20}", account)  # a v1alpha2 account, by name alone
    assert not await harness.target.probe.account_exists(account)


async def test_the_account_holds_one_policy_naming_exactly_the_granted_buckets(harness: Harness) -> None:
    names = [harness.new_name() for _ in range(3)]
    bucket_ids = [(await harness.create(name)).bucket_id for name in names]
    access = await grant(
        harness, harness.new_name("ba"), [(bucket_ids[0], AccessMode.READ_ONLY), (bucket_ids[1], AccessMode.READ_ONLY)]
    )
    user = ids.parse_account_id(access.account_id).account
    async with iam_admin(harness) as iam:
        assert (await iam.list_user_policies(UserName=user))["PolicyNames"] == [POLICY_NAME]
        document = (await iam.get_user_policy(UserName=user, PolicyName=POLICY_NAME))["PolicyDocument"]
    text = document if isinstance(document, str) else str(document)
    assert names[0] in text and names[1] in text
    assert names[2] not in text
    await revoke(harness, access, bucket_ids[:2])


async def test_the_same_name_with_other_buckets_is_refused_and_changes_nothing(harness: Harness) -> None:
    first, second = (await harness.create()).bucket_id, (await harness.create()).bucket_id
    name = harness.new_name("ba")
    access = await grant(harness, name, [(first, AccessMode.READ_WRITE)])
    with pytest.raises(AlreadyExists, match="newly requested"):
        await grant(harness, name, [(first, AccessMode.READ_WRITE), (second, AccessMode.READ_ONLY)])
    again = await grant(harness, name, [(first, AccessMode.READ_WRITE)])
    assert again.credentials == access.credentials
    await revoke(harness, access, [first])


async def test_an_existing_bucket_is_granted_and_never_deleted(harness: Harness) -> None:
    await check_an_existing_bucket(harness, harness.new_name(EXISTING_PREFIX))


async def test_revoke_refuses_an_iam_user_the_driver_did_not_derive(harness: Harness) -> None:
    bucket_id = (await harness.create()).bucket_id
    async with iam_admin(harness) as iam:
        await iam.create_user(UserName="cosi-lookalike_0123")
    try:
        foreign = ids.AccountRef("under-test", "cosi-lookalike_0123", 0).encode()
        with pytest.raises(InvalidArgument, match="cosi-lookalike_0123"):
            await driver_of(harness).revoke_access(foreign, [bucket_id], rules=V1ALPHA2)
        assert await harness.target.probe.account_exists("cosi-lookalike_0123")
    finally:
        async with iam_admin(harness) as iam:
            await iam.delete_user(UserName="cosi-lookalike_0123")
