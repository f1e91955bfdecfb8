"""The shared acceptance suite against the built-in filesystem backend and a third-party plug-in.

The plug-in (tests/plugins/cosi-example-backend) is a separately installed package, discovered
only through the ``cosi_driver.backends`` entry point, exactly as a vendor's backend would be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cosi_driver.core import registry
from cosi_driver.testing.acceptance import AcceptanceTarget, BackendAcceptanceSuite
from cosi_driver.testing.probes import FilesystemProbe

MASTER_KEY = "acceptance-master-key-0123456789abcdefghijklmnop"


class TestFilesystemBackend(BackendAcceptanceSuite):
    @pytest.fixture
    def target(self, tmp_path: Path) -> AcceptanceTarget:
        root = tmp_path / "filesystem"
        return AcceptanceTarget(backend_type="filesystem", config={"root": str(root)}, probe=FilesystemProbe(root))


class TestThirdPartyPluginBackend(BackendAcceptanceSuite):
    @pytest.fixture
    def target(self, tmp_path: Path) -> AcceptanceTarget:
        plugin = pytest.importorskip(
            "cosi_example_backend", reason="make test installs tests/plugins/cosi-example-backend"
        )
        assert "example-kv" in registry.available(), "the plug-in is installed but not found through its entry point"
        path = tmp_path / "example.json"
        return AcceptanceTarget(
            backend_type="example-kv",
            config={"path": str(path)},
            probe=plugin.ExampleProbe(path),
            master_key=MASTER_KEY,
        )
