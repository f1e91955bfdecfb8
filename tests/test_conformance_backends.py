"""``cosi-driver conformance`` with its data path against ``cosi-driver serve`` on every storage backend.

The filesystem backend's run is in tests/test_conformance.py (it serves no data path). Here the real
driver process serves the ``s3`` backend on the session's SeaweedFS, the ``seaweedfs`` backend with
its own embedded ``weed``, and the ``ceph-rgw`` backend on the session's RADOS Gateway, and the
``azure-blob`` backend on the session's Azurite (``--azure-check``); each must pass every check, the
data path included (granted keys work on the returned endpoint, read-only and write-only classes are
enforced, revoked keys stop working), and leave nothing behind in the storage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cosi_driver.testing.probes import s3_client
from tests.ceph_support import MASTER_KEY
from tests.fixtures.azurite import Azurite
from tests.fixtures.ceph import CephRgw
from tests.fixtures.seaweedfs import SeaweedFS, free_seaweedfs_base
from tests.support import run_cli, start_driver

MODE_FLAGS = ("--read-access-param", "accessMode=read", "--write-access-param", "accessMode=write")


def s3_env(request: pytest.FixtureRequest, workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    env = {
        "COSI_DRIVER_BACKEND": "s3",
        "COSI_DRIVER_BACKEND_ENDPOINT": server.endpoint,
        "COSI_DRIVER_BACKEND_ACCESS_KEY_ID": server.access_key,
        "COSI_DRIVER_BACKEND_SECRET_ACCESS_KEY": server.secret_key,
    }
    return env, {"endpoint": server.endpoint, "key": server.access_key, "secret": server.secret_key}


def seaweedfs_env(request: pytest.FixtureRequest, workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    base = free_seaweedfs_base()
    env = {
        "COSI_DRIVER_BACKEND": "seaweedfs",
        "COSI_DRIVER_BACKEND_DIRECTORY": str(workdir / "seaweedfs"),
        "COSI_DRIVER_BACKEND_BASE_PORT": str(base),
    }
    return env, {}  # the embedded server's admin keys are the driver's own: the report's cleanup says it


def ceph_env(request: pytest.FixtureRequest, workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    rgw: CephRgw = request.getfixturevalue("ceph_rgw")
    env = {
        "COSI_DRIVER_BACKEND": "ceph-rgw",
        "COSI_DRIVER_BACKEND_ENDPOINT": rgw.endpoint,
        "COSI_DRIVER_BACKEND_ADMIN_ACCESS_KEY_ID": rgw.admin_access_key,
        "COSI_DRIVER_BACKEND_ADMIN_SECRET_ACCESS_KEY": rgw.admin_secret_key,
        "COSI_DRIVER_MASTER_KEY": MASTER_KEY,
    }
    return env, {"endpoint": rgw.endpoint, "key": rgw.admin_access_key, "secret": rgw.admin_secret_key}


def azure_env(request: pytest.FixtureRequest, workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    server: Azurite = request.getfixturevalue("azurite")
    env = {
        "COSI_DRIVER_BACKEND": "azure-blob",
        "COSI_DRIVER_BACKEND_ACCOUNT_NAME": server.account_name,
        "COSI_DRIVER_BACKEND_ACCOUNT_KEY": server.account_key,
        "COSI_DRIVER_BACKEND_ENDPOINT": server.endpoint,
        "NO_PROXY": "127.0.0.1",
    }
    return env, {"azure": server.connection_string}


Setup = Callable[[pytest.FixtureRequest, Path], tuple[dict[str, str], dict[str, str]]]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(s3_env, id="s3", marks=pytest.mark.seaweedfs),
        pytest.param(seaweedfs_env, id="seaweedfs", marks=pytest.mark.seaweedfs),
        pytest.param(ceph_env, id="ceph-rgw", marks=pytest.mark.ceph),
        pytest.param(azure_env, id="azure-blob", marks=pytest.mark.azurite),
    ],
)
async def test_every_check_passes_with_the_data_path(
    setup: Setup, request: pytest.FixtureRequest, workdir: Path
) -> None:
    env, admin = setup(request, workdir)
    prefix = f"conf-{workdir.name[-6:].lower().replace('_', '-')}"
    driver = start_driver(env, workdir)
    try:
        result = run_cli(
            "conformance",
            "--endpoint",
            driver.endpoint,
            "--json",
            *(("--azure-check", "--skip", "s3") if "azure" in admin else ("--s3-check", "--skip", "azure")),
            "--name-prefix",
            prefix,
            "--alt-bucket-param",
            "deletionPolicy=retain",
            *MODE_FLAGS,
            timeout=600,
        )
        assert result.stdout, result.stderr
        report: dict[str, Any] = json.loads(result.stdout)
        failed = {check["name"]: check["reason"] for check in report["checks"] if check["outcome"] != "PASS"}
        assert failed == {}
        assert result.returncode == 0
        assert report["cleanup"]["left_behind"] == []
        if "azure" in admin:
            from azure.storage.blob.aio import BlobServiceClient

            async with BlobServiceClient.from_connection_string(admin["azure"]) as service:
                containers = [container.name async for container in service.list_containers()]
            assert [name for name in containers if name.startswith(prefix)] == []
        elif admin:
            # Seen by the storage's administrator, not by the driver: no bucket of the run remains.
            async with s3_client(admin["endpoint"], admin["key"], admin["secret"]) as s3:
                buckets = [bucket["Name"] for bucket in (await s3.list_buckets()).get("Buckets", [])]
            assert [name for name in buckets if name.startswith(prefix)] == []
    finally:
        assert driver.stop() == 0
