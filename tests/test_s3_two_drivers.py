"""Two drivers over one state directory and one real SeaweedFS, racing (see tests/two_drivers_support.py).

The ``s3`` backend mints IAM keys the storage shows only once and keeps them in the state store,
first writer wins: whichever driver loses a race deletes the key it minted and returns the stored
one, so the storage never holds a second key and both callers return the same, working one.
"""

from __future__ import annotations

import pytest

from cosi_driver.testing.acceptance import AcceptanceTarget
from tests.fixtures.seaweedfs import SeaweedFS
from tests.test_s3_seaweedfs import iam_admin_session, s3_target
from tests.two_drivers_support import TwoDriverRaces

pytestmark = pytest.mark.seaweedfs


class TestTwoDriversOnSeaweedFS(TwoDriverRaces):
    @pytest.fixture
    def target(self, seaweedfs: SeaweedFS) -> AcceptanceTarget:
        self.server = seaweedfs
        return s3_target(seaweedfs)

    async def account_keys(self, target: AcceptanceTarget, account: str) -> set[str]:
        from botocore.exceptions import ClientError

        async with iam_admin_session(self.server) as iam:
            try:
                listed = await iam.list_access_keys(UserName=account)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "NoSuchEntity":
                    return set()
                raise
        return {str(key["AccessKeyId"]) for key in listed.get("AccessKeyMetadata", [])}
