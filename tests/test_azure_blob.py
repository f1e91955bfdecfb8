"""The `azure-blob` backend against a real Azurite: the shared acceptance suite, then Azure's own limits.

Azurite stores more than five stored access policies, accepts any policy id and revives old
tokens when a policy id is re-created; these tests show the backend holds Azure's rules itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from cosi_driver.backends.azure.config import API_VERSION
from cosi_driver.backends.azure.names import container_name, is_container_name
from cosi_driver.backends.azure.policies import MAX_POLICIES
from cosi_driver.core import ids
from cosi_driver.spec.v1alpha2 import servicer as v1alpha2
from cosi_driver.testing.acceptance import AcceptanceTarget, BackendAcceptanceSuite, running
from cosi_driver.testing.azure import AzureAdminProbe, AzureSession
from cosi_driver.testing.client import V1Alpha2Client, expect_error
from tests.fixtures.azurite import Azurite
from tests.support import run_cli, start_driver

pytestmark = pytest.mark.azurite


def azure_target(server: Azurite, **config: Any) -> AcceptanceTarget:
    probe = AzureAdminProbe(
        server.endpoint, server.account_name, server.account_key, api_version=API_VERSION, container_of=container_name
    )
    return AcceptanceTarget(backend_type="azure-blob", config={**server.config, **config}, probe=probe)


class TestAzureBlobOnAzurite(BackendAcceptanceSuite):
    @pytest.fixture
    def target(self, azurite: Azurite) -> AcceptanceTarget:
        return azure_target(azurite)


def serve_env(server: Azurite) -> dict[str, str]:
    """``cosi-driver serve`` on the azure-blob backend over ``server``."""
    return {
        "COSI_DRIVER_BACKEND": "azure-blob",
        "COSI_DRIVER_BACKEND_ACCOUNT_NAME": server.account_name,
        "COSI_DRIVER_BACKEND_ACCOUNT_KEY": server.account_key,
        "COSI_DRIVER_BACKEND_ENDPOINT": server.endpoint,
        "NO_PROXY": "127.0.0.1",
    }


def sas_url(response: Any) -> str:
    assert list(response.credentials) == ["azure"]
    return str(response.credentials["azure"].secrets["accessToken"])


async def test_a_sixth_access_to_one_container_is_resource_exhausted_and_the_five_keep_working(
    azurite: Azurite,
) -> None:
    async with running(azure_target(azurite)) as harness:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        sessions = []
        for _ in range(MAX_POLICIES):
            granted = await harness.cosi.grant(bucket_id, harness.new_name("ba"), accessMode="readwrite")
            sessions.append(AzureSession(sas_url(granted)))
        message = await expect_error(
            harness.cosi.grant(bucket_id, harness.new_name("ba"), accessMode="read"), grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        assert "5 stored access policies" in message and name in message
        assert len(await harness.target.probe.policies(name)) == MAX_POLICIES  # type: ignore[attr-defined]
        for number, session in enumerate(sessions):
            assert await session.allowed("put", f"from-{number}.txt"), number


async def test_a_revoked_name_granted_again_gets_a_new_policy_and_the_old_token_stays_dead(azurite: Azurite) -> None:
    async with running(azure_target(azurite)) as harness:
        bucket_id = (await harness.create()).bucket_id
        access = harness.new_name("ba")
        first = await harness.cosi.grant(bucket_id, access, accessMode="readwrite")
        old = AzureSession(sas_url(first))
        assert await old.allowed("put", "a.txt")
        await harness.cosi.revoke(bucket_id, first.account_id)
        assert await old.eventually_denied("get", "a.txt")
        again = await harness.cosi.grant(bucket_id, access, accessMode="readwrite")
        assert again.account_id != first.account_id
        assert await AzureSession(sas_url(again)).allowed("get", "a.txt")
        assert not await old.allowed("get", "a.txt")


async def test_other_stored_policies_on_an_existing_container_are_kept(azurite: Azurite) -> None:
    from azure.storage.blob import AccessPolicy

    async with running(azure_target(azurite)) as harness:
        probe: AzureAdminProbe = harness.target.probe  # type: ignore[assignment]
        name = harness.new_name("acc-existing")
        await probe.create_foreign_bucket(name)
        try:
            async with probe.service() as service:
                await service.get_container_client(name).set_container_access_policy(
                    {"theirs": AccessPolicy(permission="r", expiry="2099-01-01T00:00:00Z")}
                )
            granted = await harness.cosi.grant(name, harness.new_name("ba"), accessMode="read")
            assert set(await probe.policies(name)) == {"theirs", ids.parse_account_id(granted.account_id).account}
            await harness.cosi.revoke(name, granted.account_id)
            assert set(await probe.policies(name)) == {"theirs"}
        finally:
            await probe.remove_foreign_bucket(name)


async def test_a_name_azure_refuses_is_mapped_and_the_sas_names_the_container(azurite: Azurite) -> None:
    async with running(azure_target(azurite)) as harness:
        name = harness.new_name("Upper.Case")
        bucket_id = (await harness.create(name)).bucket_id
        assert ids.parse_bucket_id(bucket_id).bucket == name
        container = container_name(name)
        assert container != name and is_container_name(container)
        session = AzureSession(sas_url(await harness.cosi.grant(bucket_id, harness.new_name("ba"))))
        assert session.container == container
        assert await session.allowed("list")


def test_the_name_mapping_is_deterministic_valid_and_keeps_valid_names() -> None:
    assert (
        container_name("bucket-0c5e8b1e-4f5a-4a43-9b8e-0123456789ab") == "bucket-0c5e8b1e-4f5a-4a43-9b8e-0123456789ab"
    )
    odd = ["ab", "a" * 64, "Bucket.Name", "x--y", "-lead", "名前", "bucket_" + "z" * 300]
    mapped = [container_name(name) for name in odd]
    assert all(is_container_name(name) for name in mapped), mapped
    assert mapped == [container_name(name) for name in odd]
    assert len(set(mapped)) == len(odd)
    assert container_name("Bucket.Name") != container_name("bucket-name")


async def test_the_pinned_api_version_works_with_azurites_version_check_on(azurite_checked: Azurite) -> None:
    async with running(azure_target(azurite_checked)) as harness:
        name = harness.new_name()
        bucket_id = (await harness.create(name)).bucket_id
        granted = await harness.cosi.grant(bucket_id, harness.new_name("ba"), accessMode="readwrite")
        session = AzureSession(sas_url(granted), api_version=API_VERSION)
        assert await session.allowed("put", "v.txt")
        await harness.cosi.revoke(bucket_id, granted.account_id)
        await harness.cosi.delete(bucket_id, deletionPolicy="purge")
        assert not await harness.target.probe.bucket_exists(name)


async def test_the_sdk_default_api_version_is_refused_there_which_is_why_it_is_pinned(
    azurite_checked: Azurite,
) -> None:
    async with running(azure_target(azurite_checked, api_version="2026-10-06")) as harness:
        message = await expect_error(harness.create(), grpc.StatusCode.FAILED_PRECONDITION)
        assert "api_version" in message


async def test_a_connection_string_configures_the_backend(azurite: Azurite) -> None:
    target = azure_target(azurite)
    target.config = {"connection_string": {"value": azurite.connection_string}}
    async with running(target) as harness:
        bucket_id = (await harness.create()).bucket_id
        session = AzureSession(sas_url(await harness.cosi.grant(bucket_id, harness.new_name("ba"))))
        assert session.sas_url.startswith(azurite.endpoint + "/")
        assert await session.allowed("list")


async def test_wrong_account_key_is_permission_denied_without_the_key(azurite: Azurite) -> None:
    wrong = "A" * 86 + "=="
    async with running(azure_target(azurite, account_key={"value": wrong})) as harness:
        message = await expect_error(harness.create(), grpc.StatusCode.PERMISSION_DENIED)
        assert "account_key" in message and wrong not in message and azurite.account_key not in message


def test_emulate_shows_the_azure_secret_under_both_sidecars(azurite: Azurite, tmp_path: Path) -> None:
    driver = start_driver(serve_env(azurite), tmp_path)
    fast = ("--endpoint", driver.endpoint, "--json", "--max-backoff", "0.05")
    try:
        result = run_cli("emulate", *fast, "--deletion-policy", "Delete")
        v2 = run_cli("emulate", *fast, "--api", "v1alpha2", "--bucket-param", "deletionPolicy=purge")
        v2_two = run_cli("emulate", *fast, "--api", "v1alpha2", "--mode", "READ_WRITE", "--mode", "READ_ONLY")
    finally:
        assert driver.stop() == 0
    report = json.loads(result.stdout)
    assert (result.returncode, report["problems"], report["events"]) == (0, [], [])
    spec = report["secret_bucket_info"]["spec"]
    assert spec["secretS3"] is None and spec["secretAzure"]["acessToken"] == "***"
    expiry = datetime.fromisoformat(spec["secretAzure"]["expiryTimeStamp"].replace("Z", "+00:00"))
    assert timedelta(days=364) < expiry - datetime.now(UTC) <= timedelta(days=365)
    flat = report["secret_v1alpha2"]
    assert flat["COSI_PROTOCOL"] == "Azure" and flat["COSI_AZURE_STORAGE_ACCOUNT"] == azurite.account_name
    assert flat["COSI_AZURE_ACCESS_TOKEN"] == "***"
    assert flat["COSI_AZURE_EXPIRY_TIMESTAMP"] == spec["secretAzure"]["expiryTimeStamp"]
    assert azurite.account_key not in result.stdout

    # The v1alpha2 sidecar itself, asking for Azure because the driver lists only that: the Secret it
    # writes has the keys the preview above promised, the expiry in the same RFC 3339 form.
    second = json.loads(v2.stdout)
    assert (v2.returncode, second["problems"]) == (0, [])
    assert [call["rpc"] for call in second["calls"]][:3] == [
        "DriverGetInfo",
        "DriverCreateBucket",
        "DriverCreateBucket",
    ]
    (written,) = second["secrets"].values()
    assert set(written) == set(flat) and written["COSI_PROTOCOL"] == "Azure"
    assert written["COSI_AZURE_STORAGE_ACCOUNT"] == azurite.account_name and written["COSI_AZURE_ACCESS_TOKEN"] == "***"
    v2_expiry = datetime.strptime(written["COSI_AZURE_EXPIRY_TIMESTAMP"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(days=364) < v2_expiry - datetime.now(UTC) <= timedelta(days=365)
    assert second["after_delete"]["revoke"] == "OK" and azurite.account_key not in v2.stdout

    # Two claims in one BucketAccess: one SAS cannot span two containers. OUT_OF_RANGE is terminal
    # for the v1alpha2 sidecar: one Grant, no retry, no Secret, and the buckets are cleaned up.
    third = json.loads(v2_two.stdout)
    assert v2_two.returncode == 1 and third["secrets"] == {}
    grants = [call for call in third["calls"] if call["rpc"] == "DriverGrantBucketAccess"]
    assert [call["code"] for call in grants] == ["OUT_OF_RANGE"]
    assert [problem["kind"] for problem in third["problems"]] == ["stuck"]
    assert all(value == "OK" for key, value in third["after_delete"].items() if key.startswith("delete "))


async def test_a_v1alpha2_lifecycle_on_one_socket_with_the_sas_on_the_data_path(azurite: Azurite) -> None:
    async with running(azure_target(azurite)) as harness:
        assert harness.app is not None and harness.app.server is not None
        async with V1Alpha2Client(harness.app.server.spec.address) as new:
            info = await new.info()
            assert [item.type for item in info.supported_protocols] == [v1alpha2.pb.ObjectProtocol.AZURE]
            name = harness.new_name("bc")
            created = await new.create(name, ("AZURE",))
            harness.buckets.add(created.bucket_id)
            assert created.protocols.azure.storage_account == azurite.account_name
            assert await new.create(name, ("AZURE",)) == created
            message = await expect_error(new.create(harness.new_name("bc"), ("S3",)), grpc.StatusCode.INVALID_ARGUMENT)
            assert "protocols[0]" in message and "S3" in message

            granted = await new.grant("ba-v2", [(created.bucket_id, "READ_WRITE")], protocol="AZURE")
            assert [item.bucket_info.azure.storage_account for item in granted.buckets] == [azurite.account_name]
            azure = granted.credentials.azure
            expiry = datetime.strptime(azure.expiry_timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            assert timedelta(days=364) < expiry - datetime.now(UTC) <= timedelta(days=365)
            assert await new.grant("ba-v2", [(created.bucket_id, "READ_WRITE")], protocol="AZURE") == granted
            message = await expect_error(
                new.grant("ba-s3", [(created.bucket_id, "READ_WRITE")], protocol="S3"), grpc.StatusCode.INVALID_ARGUMENT
            )
            assert message.startswith("protocol:") and "S3" in message

            session = AzureSession(azure.access_token)
            assert await session.allowed("put", "v2.txt") and await session.allowed("get", "v2.txt")
            await new.revoke(granted.account_id, [created.bucket_id], protocol="AZURE")
            assert await session.eventually_denied("get", "v2.txt")
            await new.revoke(granted.account_id, [created.bucket_id], protocol="AZURE")  # already gone: OK
            assert await harness.target.probe.bucket_exists(name)

            other = await new.create(harness.new_name("bc"), ("AZURE",))
            harness.buckets.add(other.bucket_id)
            both = [(created.bucket_id, "READ_WRITE"), (other.bucket_id, "READ_ONLY")]
            message = await expect_error(new.grant("ba-two", both, protocol="AZURE"), grpc.StatusCode.OUT_OF_RANGE)
            assert "several buckets" in message

            await expect_error(new.delete(created.bucket_id), grpc.StatusCode.FAILED_PRECONDITION)  # v2.txt is there
            await new.delete(created.bucket_id, deletionPolicy="purge")
            assert not await harness.target.probe.bucket_exists(name)


def test_v1alpha2_conformance_with_the_azure_data_path(azurite: Azurite, tmp_path: Path) -> None:
    driver = start_driver(serve_env(azurite), tmp_path)
    try:
        result = run_cli(
            "conformance", "--endpoint", driver.endpoint, "--json", "--api", "v1alpha2", "--azure-check",
            "--name-prefix", "conf-v2az", "--alt-bucket-param", "deletionPolicy=retain", timeout=300,
        )  # fmt: skip
    finally:
        assert driver.stop() == 0
    report = json.loads(result.stdout)
    outcomes = {check["name"]: check["outcome"] for check in report["checks"]}
    failed = {check["name"]: check["reason"] for check in report["checks"] if check["outcome"] == "FAIL"}
    assert failed == {} and result.returncode == 0
    assert outcomes["v2.azure.modes"] == outcomes["v2.azure.revoke"] == "PASS"
    skipped = {name for name, outcome in outcomes.items() if outcome == "SKIP"}
    # One SAS cannot span containers: the multi-bucket grant (and what builds on it) is skipped, and
    # the S3 data path does not apply.
    assert skipped == {"v2.grant.multi-bucket", "v2.grant.conflict", "v2.s3.modes", "v2.s3.revoke"}
    assert report["cleanup"]["left_behind"] == []
