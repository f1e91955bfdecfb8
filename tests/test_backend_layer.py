"""The backend layer: the registry, the config file, several backends in one driver, the credential kit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from cosi_driver.core.credentials import CredentialKit, KeyPair
from cosi_driver.core.options import SecretRef
from cosi_driver.core.secret import Secret
from cosi_driver.core.stores import MemoryStateStore
from cosi_driver.testing.client import CosiClient, expect_error, s3_secrets
from tests.support import run_cli, start_driver

MASTER_KEY = "b7c1e0f4a9d2c3b8e5f6a7d0c9b8a7f6e5d4c3b2"


def plugin_installed() -> None:
    pytest.importorskip("cosi_example_backend", reason="make test installs tests/plugins/cosi-example-backend")


def two_backend_config(tmp_path: Path) -> Path:
    config = tmp_path / "driver.yaml"
    config.write_text(
        f"""
backends:
  local:
    type: filesystem
    default: true
    config:
      root: {tmp_path / "fs"}
      region: eu-local-1
  kv:
    type: example-kv
    config:
      path: {tmp_path / "kv.json"}
      endpoint: https://kv.example.com
master_key: {{file: {tmp_path / "master.key"}}}
"""
    )
    (tmp_path / "master.key").write_text(MASTER_KEY + "\n")
    return config


async def test_two_differently_configured_backends_in_one_driver(tmp_path: Path) -> None:
    plugin_installed()
    driver = start_driver({"COSI_DRIVER_CONFIG": str(two_backend_config(tmp_path))}, tmp_path)
    try:
        async with CosiClient(driver.endpoint) as client:
            local = await client.create("bucket-one")
            remote = await client.create("bucket-two", backend="kv")
            assert local.bucket_id == "v2.local.b.bucket-one"
            assert local.bucket_info.s3.region == "eu-local-1"
            assert remote.bucket_id == "v2.kv.b.bucket-two"
            assert (tmp_path / "fs" / "buckets" / "bucket-one").is_dir()
            assert "bucket-two" in (tmp_path / "kv.json").read_text()
            # Later calls route by the id alone.
            granted = await client.grant(remote.bucket_id, "ba-1")
            assert granted.account_id.startswith("v2.kv.a1.")  # key version 1 recorded
            assert s3_secrets(granted)["endpoint"] == "https://kv.example.com"
            await client.revoke(remote.bucket_id, granted.account_id)
            await client.delete(remote.bucket_id)
            assert "bucket-two" not in (tmp_path / "kv.json").read_text()
    finally:
        assert driver.stop() == 0


def test_listing_backends_imports_none_and_serving_imports_only_the_configured(tmp_path: Path) -> None:
    plugin_installed()
    script = (
        "import sys\n"
        "from cosi_driver.core import registry\n"
        "assert 'example-kv' in registry.available()\n"
        "assert 'cosi_example_backend' not in sys.modules, 'listing imported a backend'\n"
        "registry.load('filesystem')\n"
        "assert 'cosi_example_backend' not in sys.modules, 'loading one backend imported another'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "COSI_DRIVER_MASTER_KEY_FILE"),
        ("short-key", "shorter than 32 bytes"),
        ("a" * 40, "distinct characters"),
    ],
)
def test_a_missing_or_weak_master_key_fails_start_up(tmp_path: Path, key: str | None, message: str) -> None:
    plugin_installed()
    env = {
        "COSI_ENDPOINT": f"unix://{tmp_path}/cosi.sock",
        "COSI_DRIVER_STATE_DIR": str(tmp_path / "state"),
        "COSI_DRIVER_BACKEND": "example-kv",
        "COSI_DRIVER_BACKEND_PATH": str(tmp_path / "kv.json"),
    }
    if key is not None:
        env["COSI_DRIVER_MASTER_KEY"] = key
    result = run_cli("serve", env=env, timeout=30)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    if key is not None:
        assert key not in result.stderr, "the key itself must never be printed"


def test_secret_files_are_read_again_when_they_change(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("first-value\n")
    ref = SecretRef(file=path)
    assert ref.get().reveal() == "first-value"
    # Kubernetes rotates a mounted Secret by swapping a symlink to a new file: a new inode.
    replacement = tmp_path / "secret.new"
    replacement.write_text("second-value\n")
    os.replace(replacement, path)
    assert ref.get().reveal() == "second-value"


def test_secret_references_never_show_the_value() -> None:
    ref = SecretRef(inline=Secret("hunter2-hunter2"))
    assert "hunter2" not in repr(ref)
    assert "hunter2" not in str(ref.get())
    assert "hunter2" not in f"{ref.get()}"


def test_derived_credentials_are_stable_and_distinct() -> None:
    kit = CredentialKit(MemoryStateStore(), SecretRef(env="COSI_TEST_MASTER"), key_version=1)
    os.environ["COSI_TEST_MASTER"] = MASTER_KEY
    try:
        one = kit.derive(backend="ceph", bucket="b1", account="a1")
        assert kit.derive(backend="ceph", bucket="b1", account="a1") == one
        others = {
            kit.derive(backend="ceph", bucket="b2", account="a1"),
            kit.derive(backend="ceph", bucket="b1", account="a2"),
            kit.derive(backend="rgw2", bucket="b1", account="a1"),
            kit.derive(backend="ceph", bucket="b1", account="a1", key_version=2),
        }
        assert one not in others and len(others) == 4
        assert len(one.access_key_id) == 20 and one.access_key_id.isalnum() and one.access_key_id.isupper()
        assert len(one.secret_access_key.reveal()) == 40
        os.environ["COSI_TEST_MASTER"] = MASTER_KEY[::-1]  # another master key: other credentials
        assert kit.derive(backend="ceph", bucket="b1", account="a1") != one
    finally:
        del os.environ["COSI_TEST_MASTER"]


async def test_stored_credentials_round_trip() -> None:
    kit = CredentialKit(MemoryStateStore())
    assert await kit.recall("s3", "user-1") is None
    await kit.remember("s3", "user-1", KeyPair("AKID", Secret("sekret")))
    assert await kit.recall("s3", "user-1") == KeyPair("AKID", Secret("sekret"))
    await kit.forget("s3", "user-1")
    assert await kit.recall("s3", "user-1") is None


@pytest.mark.parametrize(
    ("backend", "key_prefix"),
    [("s3", "COSI_DRIVER_BACKEND_"), ("ceph-rgw", "COSI_DRIVER_BACKEND_ADMIN_")],
)
async def test_unreadable_admin_credentials_are_unavailable_in_every_s3_backend(
    backend: str, key_prefix: str, tmp_path: Path
) -> None:
    """The mounted admin Secret disappears after start: an outage to retry through, named, not denied."""
    secret_file = tmp_path / "admin-secret"
    secret_file.write_text("admin-secret-value-0123456789\n")
    env = {
        "COSI_DRIVER_BACKEND": backend,
        "COSI_DRIVER_BACKEND_ENDPOINT": "http://127.0.0.1:9",  # never reached: the keys are read first
        f"{key_prefix}ACCESS_KEY_ID": "ADMINKEYID0000000001",
        f"{key_prefix}SECRET_ACCESS_KEY_FILE": str(secret_file),
        "COSI_DRIVER_MASTER_KEY": MASTER_KEY,
    }
    driver = start_driver(env, tmp_path)
    try:
        secret_file.unlink()
        async with CosiClient(driver.endpoint) as client:
            message = await expect_error(client.create("bucket-one"), grpc.StatusCode.UNAVAILABLE)
        assert "cannot read its admin credentials" in message
        assert str(secret_file) in message
        assert "admin-secret-value" not in message and "ADMINKEYID" not in message
    finally:
        assert driver.stop() == 0
