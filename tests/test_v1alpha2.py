"""COSI v1alpha2 beside v1alpha1: one process, one socket, both APIs, the kit's v1alpha2 commands.

In-process: our server with both adapters on a real UNIX socket, called by a v1alpha1 and a
v1alpha2 client at once. Out of process: ``cosi-driver serve`` (both APIs by default) checked by
``cosi-driver conformance --api both``, ``call --api v1alpha2`` and ``emulate --api v1alpha2``,
with the data path on the session's SeaweedFS and Ceph RGW.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from cosi_driver.spec.v1alpha1 import servicer as v1alpha1
from cosi_driver.spec.v1alpha2 import servicer as v1alpha2
from cosi_driver.testing.client import V1Alpha2Client, expect_error
from tests.conftest import DRIVER_NAME, ServeFactory
from tests.support import run_cli, start_driver, to_thread

BOTH = (v1alpha1.ADAPTER, v1alpha2.ADAPTER)
MODE_FLAGS = ("--read-access-param", "accessMode=read", "--write-access-param", "accessMode=write")


@pytest.fixture
async def clients(serve: ServeFactory) -> Any:
    """A v1alpha1 client and a v1alpha2 client on one socket of one server."""
    first = await serve(adapters=BOTH)
    second = V1Alpha2Client(first.endpoint)
    yield first, second
    await second.close()


async def test_both_apis_answer_on_one_socket(clients: Any) -> None:
    old, new = clients
    assert await old.info() == DRIVER_NAME
    info = await new.info()
    assert info.name == DRIVER_NAME
    assert [item.type for item in info.supported_protocols] == [v1alpha2.pb.ObjectProtocol.S3]


async def test_create_fills_every_s3_field_and_repeats_the_same_answer(clients: Any) -> None:
    _, new = clients
    first = await new.create("bc-0a1b", ("S3",))
    s3 = first.protocols.s3
    assert s3.bucket_id == "bc-0a1b"  # the real bucket name in storage
    assert s3.endpoint and s3.region
    assert s3.addressing_style.style == v1alpha2.pb.S3AddressingStyle.PATH
    assert await new.create("bc-0a1b", ("S3",)) == first
    message = await expect_error(new.create("bc-0a1c", ("GCS",)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "protocols[0]" in message and "GCS" in message


async def test_a_bucket_made_on_one_api_is_granted_and_deleted_on_the_other(clients: Any) -> None:
    old, new = clients
    made = await new.create("bc-shared")
    granted = await old.grant(made.bucket_id, "ba-old", accessMode="read")
    assert granted.account_id and granted.credentials["s3"].secrets["accessSecretKey"]
    await old.revoke(made.bucket_id, granted.account_id)
    await old.delete(made.bucket_id)
    again = await new.create("bc-shared")
    assert again.bucket_id == made.bucket_id


async def test_one_grant_over_three_buckets_one_mode_each(clients: Any) -> None:
    _, new = clients
    ids = [(await new.create(f"bc-multi-{n}")).bucket_id for n in range(3)]
    buckets = list(zip(ids, ("READ_WRITE", "READ_ONLY", "WRITE_ONLY"), strict=True))
    first = await new.grant("ba-multi", buckets)
    assert [item.bucket_id for item in first.buckets] == ids
    assert [item.bucket_info.s3.bucket_id for item in first.buckets] == ["bc-multi-0", "bc-multi-1", "bc-multi-2"]
    assert first.credentials.s3.access_key_id and first.credentials.s3.access_secret_key
    assert await new.grant("ba-multi", buckets) == first  # same account, same keys
    changed = [(ids[0], "READ_WRITE"), (ids[1], "READ_WRITE"), (ids[2], "WRITE_ONLY")]
    await expect_error(new.grant("ba-multi", changed), grpc.StatusCode.ALREADY_EXISTS)
    await new.revoke(first.account_id, ids)
    await new.revoke(first.account_id, ids)  # already gone: OK


async def test_grant_input_the_sidecar_cannot_fix_is_invalid_argument_naming_the_field(clients: Any) -> None:
    _, new = clients
    bucket_id = (await new.create("bc-bad-input")).bucket_id
    message = await expect_error(new.grant("ba-x", [(bucket_id, "UNKNOWN")]), grpc.StatusCode.INVALID_ARGUMENT)
    assert "buckets[0].access_mode" in message
    message = await expect_error(
        new.grant("ba-x", [(bucket_id, "READ_WRITE")], authentication="SERVICE_ACCOUNT", service_account="sa"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "SERVICE_ACCOUNT" in message.upper().replace("SERVICEACCOUNT", "SERVICE_ACCOUNT")
    message = await expect_error(
        new.grant("ba-x", [(bucket_id, "READ_WRITE")], protocol="UNKNOWN"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "protocol.type" in message


async def test_an_existing_bucket_nobody_allowed_is_refused_naming_the_setting(clients: Any) -> None:
    _, new = clients
    message = await expect_error(new.get_existing("legacy-data"), grpc.StatusCode.PERMISSION_DENIED)
    assert "existingBuckets" in message


# -- the real process ------------------------------------------------------------------------------


def conformance(endpoint: str, *flags: str, timeout: float = 300) -> tuple[int, dict[str, Any]]:
    result = run_cli("conformance", "--endpoint", endpoint, "--json", "--timeout", "30", *flags, timeout=timeout)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def not_passed(report: dict[str, Any]) -> dict[str, str]:
    return {
        check["name"]: f"{check['outcome']}: {check['reason']}"
        for check in report["checks"]
        if check["outcome"] != "PASS"
    }


def test_serve_answers_both_apis_and_passes_both_rule_sets_on_one_socket(workdir: Path) -> None:
    driver = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    try:
        info = run_cli("call", "--endpoint", driver.endpoint, "--api", "v1alpha2", "info")
        code, report = conformance(driver.endpoint, "--api", "both", "--alt-bucket-param", "deletionPolicy=retain",
                                   "--skip", "azure", "--skip", "v2.azure", *MODE_FLAGS)  # fmt: skip
    finally:
        assert driver.stop() == 0
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["supported_protocols"] == [{"type": "S3"}]
    names = {check["name"] for check in report["checks"]}
    assert {"identity.get-info", "grant.ok", "v2.identity.get-info", "v2.grant.multi-bucket", "v2.ids"} <= names
    # The filesystem backend serves no data path: only the --s3-check checks may skip.
    assert {name: why for name, why in not_passed(report).items() if not name.startswith(("s3.", "v2.s3."))} == {}
    assert code == 0
    assert report["cleanup"]["left_behind"] == []
    assert list((workdir / "data" / "buckets").iterdir()) == [], "conformance left buckets behind"


def test_cosi_driver_apis_narrows_what_is_served(workdir: Path) -> None:
    driver = start_driver({"COSI_DRIVER_APIS": "v1alpha1"}, workdir)
    try:
        new = run_cli("call", "--endpoint", driver.endpoint, "--api", "v1alpha2", "info")
        old = run_cli("call", "--endpoint", driver.endpoint, "info")
        code, report = conformance(driver.endpoint, "--api", "v1alpha2")
    finally:
        assert driver.stop() == 0
    assert new.returncode == 1 and new.stderr.startswith("UNIMPLEMENTED")
    assert old.returncode == 0
    # What the v1alpha2 sidecar would meet: it exits at start-up, and conformance says why.
    assert code == 1
    assert not_passed(report)["v2.identity.get-info"].startswith("FAIL: v1alpha2 DriverGetInfo failed: UNIMPLEMENTED")
    bad = run_cli("serve", env={"COSI_DRIVER_APIS": "v1beta1", "COSI_DRIVER_BACKEND": "filesystem"})
    assert bad.returncode == 2
    assert "COSI_DRIVER_APIS" in bad.stderr and "v1alpha1" in bad.stderr and "v1alpha2" in bad.stderr


async def test_call_v1alpha2_walks_a_multi_bucket_lifecycle(clients: Any) -> None:
    _, new = clients

    async def call(*args: str) -> tuple[int, Any, str]:
        result = await to_thread(lambda: run_cli("call", "--endpoint", new.endpoint, "--api", "v1alpha2", *args))
        return result.returncode, json.loads(result.stdout) if result.returncode == 0 else None, result.stderr

    ids = []
    for name in ("bc-call-a", "bc-call-b"):
        code, made, err = await call("create-bucket", name)
        assert code == 0, err
        ids.append(made["bucket_id"])
    code, granted, err = await call("grant-access", "ba-call", "--bucket", f"{ids[0]}=READ_WRITE",
                                    "--bucket", f"{ids[1]}=READ_ONLY")  # fmt: skip
    assert code == 0, err
    assert granted["credentials"]["s3"]["access_secret_key"] == "***"
    assert [b["bucket_id"] for b in granted["buckets"]] == ids
    code, _, err = await call("grant-access", "ba-call", "--bucket", f"{ids[0]}=SOMETIMES")
    assert code == 2 and "SOMETIMES" in err
    code, _, err = await call("revoke-access", granted["account_id"], "--bucket", ids[0], "--bucket", ids[1])
    assert code == 0, err


async def test_emulate_v1alpha2_shows_one_secret_per_claim(clients: Any) -> None:
    _, new = clients
    flags = ("--api", "v1alpha2", "--json", "--mode", "READ_WRITE", "--mode", "READ_ONLY", "--max-backoff", "0.05")
    result = await to_thread(lambda: run_cli("emulate", "--endpoint", new.endpoint, *flags))
    report = json.loads(result.stdout)
    assert report["problems"] == [] and result.returncode == 0
    assert len(report["secrets"]) == 2
    expected = {"PROTOCOL", "S3_BUCKET_ID", "S3_ENDPOINT", "S3_REGION", "S3_ADDRESSING_STYLE", "S3_ACCESS_KEY_ID",
                "S3_ACCESS_SECRET_KEY"}  # fmt: skip
    for data in report["secrets"].values():
        assert set(data) == {f"COSI_{key}" for key in expected}
        assert data["COSI_S3_ACCESS_SECRET_KEY"] == "***" and data["COSI_S3_BUCKET_ID"].startswith("bc-")
    keys = {data["COSI_S3_ACCESS_KEY_ID"] for data in report["secrets"].values()}
    assert len(keys) == 1, "one BucketAccess, one key for all its claims"


# -- the data path on real S3 servers ----------------------------------------------------------------


def _data_path_setup(kind: str, request: pytest.FixtureRequest, workdir: Path) -> dict[str, str]:
    from tests.test_conformance_backends import ceph_env, s3_env

    env, _ = (s3_env if kind == "s3" else ceph_env)(request, workdir)
    return env


@pytest.mark.parametrize(
    "kind", [pytest.param("s3", marks=pytest.mark.seaweedfs), pytest.param("ceph-rgw", marks=pytest.mark.ceph)]
)
def test_both_rule_sets_pass_with_the_data_path(kind: str, request: pytest.FixtureRequest, workdir: Path) -> None:
    """v1alpha1 and v1alpha2 conformance with --s3-check on one socket: multi-bucket keys work per mode,
    a third bucket is unreachable, revoke stops the key on every bucket, objects survive."""
    env = _data_path_setup(kind, request, workdir)
    prefix = f"v2-{workdir.name[-6:].lower().replace('_', '-')}"
    driver = start_driver(env, workdir)
    try:
        code, report = conformance(driver.endpoint, "--api", "both", "--s3-check", "--name-prefix", prefix,
                                   "--alt-bucket-param", "deletionPolicy=retain", "--skip", "azure",
                                   "--skip", "v2.azure", *MODE_FLAGS, timeout=900)  # fmt: skip
    finally:
        assert driver.stop() == 0
    assert not_passed(report) == {}
    assert code == 0
    assert report["cleanup"]["left_behind"] == []
