"""The shared acceptance suite against a real Ceph RADOS Gateway (the ``ceph-rgw`` backend)."""

from __future__ import annotations

import pytest

from cosi_driver.testing.acceptance import AcceptanceTarget, BackendAcceptanceSuite
from tests.ceph_support import ceph_target
from tests.fixtures.ceph import CephRgw

pytestmark = pytest.mark.ceph


class TestCephRgwBackend(BackendAcceptanceSuite):
    @pytest.fixture
    def target(self, ceph_rgw: CephRgw) -> AcceptanceTarget:
        return ceph_target(ceph_rgw)
