"""The shared acceptance suite against a real Ceph RADOS Gateway (the ``ceph-rgw`` backend)."""

from __future__ import annotations

import pytest

from cosi_driver.testing.acceptance import AcceptanceTarget, BackendAcceptanceSuite
from tests.ceph_support import MASTER_KEY, rgw_probe
from tests.fixtures.ceph import CephRgw

pytestmark = pytest.mark.ceph


class TestCephRgwBackend(BackendAcceptanceSuite):
    @pytest.fixture
    def target(self, ceph_rgw: CephRgw) -> AcceptanceTarget:
        return AcceptanceTarget(
            backend_type="ceph-rgw",
            config=ceph_rgw.config(),
            probe=rgw_probe(ceph_rgw),
            master_key=MASTER_KEY,
            propagation_seconds=5.0,
        )
