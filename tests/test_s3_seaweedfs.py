"""The `s3` backend against a real SeaweedFS: the shared acceptance suite, then what SeaweedFS makes hard.

SeaweedFS deletes versioned buckets and buckets holding only unfinished uploads *with their data*,
keeps a deleted user's inline policies for the next user of that name, and answers many calls
about missing things with 200. These tests prove the backend is correct anyway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cosi_driver.testing.acceptance import AcceptanceTarget, BackendAcceptanceSuite
from cosi_driver.testing.probes import S3AdminProbe
from tests.fixtures.seaweedfs import SeaweedFS

pytestmark = pytest.mark.seaweedfs


def iam_user_exists(server: SeaweedFS) -> Callable[[str], Awaitable[bool]]:
    async def exists(account: str) -> bool:
        import aioboto3
        from botocore.exceptions import ClientError

        session = aioboto3.Session(
            aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name="us-east-1"
        )
        async with session.client("iam", endpoint_url=server.endpoint) as iam:
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
