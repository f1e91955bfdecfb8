"""Two drivers over one state directory and one real Ceph RGW, racing (see tests/two_drivers_support.py).

RGW keeps every grant of a bucket in one policy document, so this is where a lost update between
two driver processes would show: every race ends with the policy naming exactly the live grants.
"""

from __future__ import annotations

import json

import pytest

from cosi_driver.backends.ceph import policy
from cosi_driver.testing.acceptance import AcceptanceTarget
from tests.ceph_support import admin_s3, ceph_target, user_info
from tests.fixtures.ceph import CephRgw
from tests.two_drivers_support import TwoDriverRaces

pytestmark = pytest.mark.ceph


class TestTwoDriversOnCephRgw(TwoDriverRaces):
    @pytest.fixture
    def target(self, ceph_rgw: CephRgw) -> AcceptanceTarget:
        self.rgw = ceph_rgw
        return ceph_target(ceph_rgw)

    async def account_keys(self, target: AcceptanceTarget, account: str) -> set[str]:
        info = await user_info(self.rgw, account)
        return set() if info is None else {key["access_key"] for key in info["keys"]}

    async def check_statements(self, target: AcceptanceTarget, bucket: str, accounts: set[str]) -> None:
        async with admin_s3(self.rgw) as s3:
            statements = json.loads((await s3.get_bucket_policy(Bucket=bucket))["Policy"])["Statement"]
        sids = {statement["Sid"] for statement in statements}
        wanted = {sid for account in accounts for sid in policy.access_sids(account)}
        ours = {sid for sid in sids if sid != policy.OWNER_SID}
        assert ours == wanted, f"missing {sorted(wanted - ours)}, left over {sorted(ours - wanted)}"
        assert policy.OWNER_SID in sids
