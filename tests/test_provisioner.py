"""Each RPC's success path and error codes, over real gRPC on a real UNIX socket."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grpc import StatusCode

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.testing.client import expect_error, s3_secrets
from tests.conftest import DRIVER_NAME
from tests.support import Client


async def test_get_info_returns_the_configured_name(client: Client) -> None:
    assert await client.info() == DRIVER_NAME


# -- CreateBucket -------------------------------------------------------------------------------


async def test_create_returns_an_id_and_s3_bucket_info(client: Client, workdir: Path) -> None:
    response = await client.create("bucket-a")
    assert response.bucket_id == "v2.filesystem.b.bucket-a"
    assert response.bucket_info.WhichOneof("type") == "s3"
    assert response.bucket_info.s3.region == "local"
    assert (workdir / "data-filesystem" / "buckets" / "bucket-a").is_dir()


async def test_create_again_with_same_parameters_returns_the_same_id(client: Client) -> None:
    first = await client.create("bucket-a", deletionPolicy="purge")
    second = await client.create("bucket-a", deletionPolicy="PURGE")  # same value, other spelling
    assert second.bucket_id == first.bucket_id


async def test_explicit_default_parameter_is_the_same_request_as_none(client: Client) -> None:
    first = await client.create("bucket-a")
    second = await client.create("bucket-a", deletionPolicy="delete")
    assert second.bucket_id == first.bucket_id


async def test_create_with_different_parameters_is_already_exists(client: Client) -> None:
    await client.create("bucket-a", deletionPolicy="purge")
    message = await expect_error(client.create("bucket-a", deletionPolicy="retain"), StatusCode.ALREADY_EXISTS)
    assert "different parameters" in message


async def test_create_never_adopts_a_foreign_bucket(client: Client, workdir: Path) -> None:
    foreign = workdir / "data-filesystem" / "buckets" / "not-ours"
    foreign.mkdir(parents=True)
    (foreign / "precious.txt").write_text("data")
    message = await expect_error(client.create("not-ours"), StatusCode.ALREADY_EXISTS)
    assert "not created by driver" in message
    assert (foreign / "precious.txt").read_text() == "data"
    # ...and does not delete or grant on it either, even with a crafted id.
    await expect_error(client.delete("v1/filesystem/not-ours"), StatusCode.FAILED_PRECONDITION)
    await expect_error(client.grant("v1/filesystem/not-ours", "ba-1"), StatusCode.FAILED_PRECONDITION)
    assert (foreign / "precious.txt").exists()


async def test_create_finishes_our_own_bucket_after_a_crash_before_the_mark(client: Client, workdir: Path) -> None:
    """The intent was recorded and the directory made, then the process died before marking it."""
    first = await client.create("bucket-a")
    mark = workdir / "data-filesystem" / ".cosi" / "marks" / "bucket-a.json"
    mark.unlink()
    again = await client.create("bucket-a")
    assert again.bucket_id == first.bucket_id
    assert json.loads(mark.read_text())["mark"].startswith("cosi-driver/")


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("", {}, "name"),
        ("x" * 129, {}, "name"),
        (" padded", {}, "name"),
        ("bucket/evil", {}, "name"),
        ("bucket-a", {"colour": "blue"}, "colour"),
        ("bucket-a", {"versioning": "true"}, "versioning"),
        ("bucket-a", {"deletionPolicy": "shred"}, "deletionPolicy"),
        ("bucket-a", {"backend": "nowhere"}, "backend"),
        ("bucket-a", {"bad key!": "x"}, "bad key!"),
        ("bucket-a", {"big": "v" * 4100}, "parameters"),
    ],
)
async def test_create_rejects_bad_input_naming_the_field(
    client: Client, workdir: Path, name: str, params: dict[str, str], field: str
) -> None:
    message = await expect_error(client.create(name, **params), StatusCode.INVALID_ARGUMENT)
    assert field in message
    assert "Traceback" not in message
    buckets = workdir / "data-filesystem" / "buckets"
    assert list(buckets.iterdir()) == [], "a rejected create must leave nothing behind"


async def test_unknown_parameter_error_lists_the_accepted_ones(client: Client) -> None:
    message = await expect_error(client.create("bucket-a", colour="blue"), StatusCode.INVALID_ARGUMENT)
    assert "deletionPolicy" in message


# -- DeleteBucket -------------------------------------------------------------------------------


async def test_delete_removes_an_empty_bucket_and_repeats_are_ok(client: Client, workdir: Path) -> None:
    bucket_id = (await client.create("bucket-a")).bucket_id
    await client.delete(bucket_id)
    assert not (workdir / "data-filesystem" / "buckets" / "bucket-a").exists()
    await client.delete(bucket_id)  # already gone: still OK


async def test_delete_of_a_non_empty_bucket_is_failed_precondition(client: Client, workdir: Path) -> None:
    bucket_id = (await client.create("bucket-a")).bucket_id
    (workdir / "data-filesystem" / "buckets" / "bucket-a" / "object").write_text("x")
    message = await expect_error(client.delete(bucket_id), StatusCode.FAILED_PRECONDITION)
    assert "not empty" in message and "purge" in message
    assert (workdir / "data-filesystem" / "buckets" / "bucket-a" / "object").exists()


async def test_delete_with_purge_removes_the_data(client: Client, workdir: Path) -> None:
    bucket_id = (await client.create("bucket-a", deletionPolicy="purge")).bucket_id
    (workdir / "data-filesystem" / "buckets" / "bucket-a" / "object").write_text("x")
    await client.delete(bucket_id, deletionPolicy="purge")
    assert not (workdir / "data-filesystem" / "buckets" / "bucket-a").exists()


async def test_delete_without_context_uses_the_recorded_policy(client: Client, workdir: Path) -> None:
    bucket_id = (await client.create("bucket-a", deletionPolicy="retain")).bucket_id
    await client.delete(bucket_id)
    assert (workdir / "data-filesystem" / "buckets" / "bucket-a").is_dir()


@pytest.mark.parametrize(
    ("bucket_id", "code"),
    [
        ("", StatusCode.INVALID_ARGUMENT),
        ("v1/filesystem/" + "b" * 115, StatusCode.INVALID_ARGUMENT),  # 129 bytes
        ("v1/filesystem/bell\x07", StatusCode.INVALID_ARGUMENT),
        ("v1/elsewhere/bucket-a", StatusCode.NOT_FOUND),
    ],
)
async def test_delete_rejects_empty_oversized_and_unroutable_ids(
    client: Client, bucket_id: str, code: StatusCode
) -> None:
    message = await expect_error(client.delete(bucket_id), code)
    assert "bucket_id" in message


# Ids in no layout this driver ever issued: nothing of ours can exist under them.
FOREIGN_BUCKET_IDS = ["bucket-a", "v9/filesystem/bucket-a", "v1/Filesystem/bucket-a", "v1/filesystem/", "///"]


@pytest.mark.parametrize("bucket_id", FOREIGN_BUCKET_IDS)
async def test_delete_of_an_id_we_never_issued_is_ok_and_touches_nothing(
    client: Client, workdir: Path, bucket_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sidecar retries every error forever and keeps the Bucket's finalizer meanwhile."""
    kept = (await client.create("bucket-a", deletionPolicy="purge")).bucket_id
    await client.delete(bucket_id, deletionPolicy="purge")
    assert (workdir / "data-filesystem" / "buckets" / "bucket-a").is_dir()
    assert "ignoring an id this driver never issued" in capsys.readouterr().out
    await client.delete(kept)  # a real id still works


# -- GrantBucketAccess --------------------------------------------------------------------------


async def test_grant_returns_exactly_one_s3_credential_entry(client: Client) -> None:
    bucket_id = (await client.create("bucket-a")).bucket_id
    response = await client.grant(bucket_id, "ba-1", accessMode="read")
    assert response.account_id.startswith("v2.filesystem.a0.")
    secrets = s3_secrets(response)
    assert set(secrets) == {"accessKeyID", "accessSecretKey", "endpoint", "region"}
    assert all(secrets.values())


async def test_grant_again_returns_the_same_account_and_the_same_secret(client: Client) -> None:
    bucket_id = (await client.create("bucket-a")).bucket_id
    first = await client.grant(bucket_id, "ba-1")
    second = await client.grant(bucket_id, "ba-1")
    assert second.account_id == first.account_id
    assert s3_secrets(second) == s3_secrets(first)


async def test_grants_with_different_names_get_different_accounts(client: Client) -> None:
    bucket_id = (await client.create("bucket-a")).bucket_id
    one = await client.grant(bucket_id, "ba-1")
    two = await client.grant(bucket_id, "ba-2")
    assert one.account_id != two.account_id
    assert s3_secrets(one)["accessSecretKey"] != s3_secrets(two)["accessSecretKey"]


async def test_grant_on_a_missing_bucket_is_not_found(client: Client) -> None:
    await expect_error(client.grant("v1/filesystem/missing", "ba-1"), StatusCode.NOT_FOUND)


@pytest.mark.parametrize("bucket_id", FOREIGN_BUCKET_IDS)
async def test_grant_on_an_id_we_never_issued_is_not_found(client: Client, workdir: Path, bucket_id: str) -> None:
    await client.create("bucket-a")
    message = await expect_error(client.grant(bucket_id, "ba-1"), StatusCode.NOT_FOUND)
    assert "bucket_id" in message
    assert list((workdir / "data-filesystem" / ".cosi" / "accounts").iterdir()) == []


@pytest.mark.parametrize(
    ("bucket_id", "name", "auth", "field"),
    [("", "ba-1", pb.Key, "bucket_id"), ("bucket-a", "", pb.Key, "name"), ("bucket-a", "ba-1", 0, "authentication")],
)
async def test_grant_with_a_foreign_id_and_a_missing_field_names_the_field(
    client: Client, bucket_id: str, name: str, auth: int, field: str
) -> None:
    message = await expect_error(client.grant(bucket_id, name, auth), StatusCode.INVALID_ARGUMENT)
    assert field in message


@pytest.mark.parametrize(
    ("name", "auth", "params", "field"),
    [
        ("", pb.Key, {}, "name"),
        ("ba-1", pb.IAM, {}, "IAM"),
        ("ba-1", pb.UnknownAuthenticationType, {}, "authentication_type"),
        ("ba-1", pb.Key, {"accessMode": "admin"}, "accessMode"),
        ("ba-1", pb.Key, {"backend": "filesystem"}, "backend"),
    ],
)
async def test_grant_rejects_bad_input_naming_the_field(
    client: Client, workdir: Path, name: str, auth: int, params: dict[str, str], field: str
) -> None:
    bucket_id = (await client.create("bucket-a")).bucket_id
    message = await expect_error(client.grant(bucket_id, name, auth, **params), StatusCode.INVALID_ARGUMENT)
    assert field in message
    assert list((workdir / "data-filesystem" / ".cosi" / "accounts").iterdir()) == []


# -- RevokeBucketAccess -------------------------------------------------------------------------


async def test_revoke_removes_the_account_and_repeats_are_ok(client: Client, workdir: Path) -> None:
    bucket_id = (await client.create("bucket-a")).bucket_id
    (workdir / "data-filesystem" / "buckets" / "bucket-a" / "kept").write_text("data")
    account_id = (await client.grant(bucket_id, "ba-1")).account_id
    await client.revoke(bucket_id, account_id)
    assert list((workdir / "data-filesystem" / ".cosi" / "accounts").iterdir()) == []
    await client.revoke(bucket_id, account_id)
    assert (workdir / "data-filesystem" / "buckets" / "bucket-a" / "kept").read_text() == "data"


async def test_revoke_after_the_bucket_is_gone_is_ok(client: Client) -> None:
    """The sidecar sends DeleteBucket before RevokeBucketAccess when a claim goes first."""
    bucket_id = (await client.create("bucket-a")).bucket_id
    account_id = (await client.grant(bucket_id, "ba-1")).account_id
    await client.delete(bucket_id)
    await client.revoke(bucket_id, account_id)


@pytest.mark.parametrize(
    ("account_id", "field"),
    [("", "account_id"), ("v1/other/0/acct-1", "belongs to backend"), ("v1/filesystem/0/" + "a" * 113, "128")],
)
async def test_revoke_rejects_bad_account_ids(client: Client, account_id: str, field: str) -> None:
    bucket_id = (await client.create("bucket-a")).bucket_id
    message = await expect_error(client.revoke(bucket_id, account_id), StatusCode.INVALID_ARGUMENT)
    assert field in message


@pytest.mark.parametrize(
    ("bucket_id", "account_id"),
    [
        ("v1/filesystem/bucket-a", "acct-1"),
        ("v1/filesystem/bucket-a", "v1/filesystem/\u00b2/acct-1"),  # a digit, but not 0-9
        ("v1/filesystem/bucket-a", "v2/filesystem/0/acct-1"),
        ("bucket-a", "ACCOUNT"),
    ],
)
async def test_revoke_of_ids_we_never_issued_is_ok_and_keeps_real_accounts(
    client: Client, workdir: Path, bucket_id: str, account_id: str
) -> None:
    real = (await client.create("bucket-a")).bucket_id
    await client.grant(real, "ba-1")
    await client.revoke(bucket_id, account_id)
    assert len(list((workdir / "data-filesystem" / ".cosi" / "accounts").iterdir())) == 1
