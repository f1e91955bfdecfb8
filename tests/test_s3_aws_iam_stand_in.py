"""AWS-only IAM behaviour, against moto in server mode as a labelled stand-in for AWS IAM.

SeaweedFS ignores user paths and tags and lets DeleteUser remove a user that still has policies;
AWS keeps paths and tags and refuses DeleteUser (DeleteConflict) until policies and keys are gone,
and needs a LocationConstraint outside us-east-1. moto reproduces those rules on 127.0.0.1. It
enforces no policies on the data path, so only the control plane is checked here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from cosi_driver.backends.s3 import POLICY_NAME, TAG_BUCKET, TAG_DRIVER, USER_PATH, user_name
from cosi_driver.core import ids
from cosi_driver.testing.acceptance import DRIVER_NAME, AcceptanceTarget, Harness, running
from cosi_driver.testing.client import expect_error, s3_secrets
from cosi_driver.testing.probes import S3AdminProbe
from tests.fixtures import unavailable
from tests.support import free_port_block

KEY, SECRET = "AKIAMOTOSTANDIN00001", "moto-stand-in-secret-key-0123456789abcdef"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("moto[server] is not installed (dev extra)")
    port = free_port_block(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
async def harness(moto_endpoint: str) -> AsyncIterator[Harness]:
    config = {
        "endpoint": moto_endpoint,
        "access_key_id": {"value": KEY},
        "secret_access_key": {"value": SECRET},
        "region": "eu-west-1",
    }
    probe = S3AdminProbe(moto_endpoint, KEY, SECRET, region="eu-west-1")
    async with running(AcceptanceTarget(backend_type="s3", config=config, probe=probe)) as harness:
        yield harness


def iam(endpoint: str) -> Any:
    import aioboto3

    session = aioboto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1")
    return session.client("iam", endpoint_url=endpoint)


async def test_aws_iam_stand_in_bucket_outside_us_east_1_gets_its_location(harness: Harness) -> None:
    name = harness.new_name()
    response = await harness.create(name)
    assert response.bucket_info.s3.region == "eu-west-1"
    async with harness.target.probe.client() as s3:  # type: ignore[attr-defined]
        assert (await s3.get_bucket_location(Bucket=name))["LocationConstraint"] == "eu-west-1"


async def test_aws_iam_stand_in_users_carry_path_tags_and_one_policy(harness: Harness, moto_endpoint: str) -> None:
    name, access = harness.new_name(), harness.new_name("ba")
    bucket_id = (await harness.create(name)).bucket_id
    first = await harness.cosi.grant(bucket_id, access, accessMode="read")
    assert s3_secrets(await harness.cosi.grant(bucket_id, access, accessMode="read")) == s3_secrets(first)
    user = user_name("cosi-", name, access)
    async with iam(moto_endpoint) as client:
        record = (await client.get_user(UserName=user))["User"]
        tags = {tag["Key"]: tag["Value"] for tag in (await client.list_user_tags(UserName=user))["Tags"]}
        policies = (await client.list_user_policies(UserName=user))["PolicyNames"]
        keys = (await client.list_access_keys(UserName=user))["AccessKeyMetadata"]
    assert record["Path"] == USER_PATH
    assert tags == {TAG_DRIVER: DRIVER_NAME, TAG_BUCKET: name}
    assert policies == [POLICY_NAME]
    assert [key["AccessKeyId"] for key in keys] == [s3_secrets(first)["accessKeyID"]]


async def test_aws_iam_stand_in_revoke_clears_policies_and_keys_before_deleting(
    harness: Harness, moto_endpoint: str
) -> None:
    name = harness.new_name()
    bucket_id = (await harness.create(name)).bucket_id
    granted = await harness.cosi.grant(bucket_id, harness.new_name("ba"))
    user = ids.parse_account_id(granted.account_id).account
    async with iam(moto_endpoint) as client:
        await client.create_access_key(UserName=user)  # a second key, as a user may mint for itself
    await harness.cosi.revoke(bucket_id, granted.account_id)  # AWS answers DeleteConflict to a careless order
    async with iam(moto_endpoint) as client:
        with pytest.raises(client.exceptions.NoSuchEntityException):
            await client.get_user(UserName=user)
    await harness.cosi.revoke(bucket_id, granted.account_id)


async def test_aws_iam_stand_in_revoke_refuses_a_user_tagged_for_another_bucket(
    harness: Harness, moto_endpoint: str
) -> None:
    name = harness.new_name()
    bucket_id = (await harness.create(name)).bucket_id
    user = user_name("cosi-", name, "ba-planted")
    async with iam(moto_endpoint) as client:
        await client.create_user(UserName=user, Path=USER_PATH, Tags=[{"Key": TAG_BUCKET, "Value": "someone-elses"}])
    message = await expect_error(
        harness.cosi.revoke(bucket_id, f"v1/under-test/0/{user}"), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "someone-elses" in message
    async with iam(moto_endpoint) as client:
        assert (await client.get_user(UserName=user))["User"]["UserName"] == user
        await client.delete_user(UserName=user)
