"""The S3 toolkit's pure parts: bucket naming rules, IAM user names, policies, error translation, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cosi_driver.backends.s3 import MAX_USER_NAME, S3Config, user_name
from cosi_driver.backends.s3kit.contents import find_content
from cosi_driver.backends.s3kit.errors import translate
from cosi_driver.backends.s3kit.marks import read_mark, write_mark
from cosi_driver.backends.s3kit.names import bucket_name_problem, check_bucket_name
from cosi_driver.backends.s3kit.policy import actions_for, policy_document
from cosi_driver.core.backend import FoundBucket
from cosi_driver.core.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    Unimplemented,
)
from cosi_driver.core.options import ConfigProblem, parse_options
from cosi_driver.core.types import AccessMode
from tests.support import run_cli


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("ab", "3 to 63 characters"),
        ("a" * 64, "3 to 63 characters"),
        ("Upper-case", "lowercase letters"),
        ("under_score", "lowercase letters"),
        ("-leading", "begin and end"),
        ("two..dots", "adjacent periods"),
        ("dot.-dash", "next to a hyphen"),
        ("10.0.0.1", "IP address"),
        ("xn--punycode", "reserved"),
        ("bucket-s3alias", "reserved"),
    ],
)
def test_bad_bucket_names_name_the_rule(name: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_bucket_name(name)
    assert rule in caught.value.message
    assert "not a valid S3 bucket name" in caught.value.message


@pytest.mark.parametrize("name", ["abc", "my.bucket-1", "bc-0b9f0c1e-5c5a-4f8e-9c57-3a0a8f3e9d11", "a" * 63])
def test_good_bucket_names_pass(name: str) -> None:
    assert bucket_name_problem(name) is None


def test_user_names_fit_iam_and_differ_per_access() -> None:
    long_bucket = "b" * 63
    names = {user_name("cosi-", long_bucket, f"ba-{n}") for n in range(50)}
    assert len(names) == 50
    for name in names:
        assert len(name) <= MAX_USER_NAME
        assert all(c.isalnum() or c in "+=,.@_-" for c in name)
    assert user_name("cosi-", "photos", "ba-1") == user_name("cosi-", "photos", "ba-1")
    assert user_name("cosi-", "photos", "ba-1").startswith("cosi-photos-")


def test_account_names_are_the_ones_earlier_releases_made() -> None:
    """Accounts are found again by name only: a changed rule would orphan every existing account."""
    from cosi_driver.backends.ceph.users import account_uid
    from cosi_driver.backends.filesystem import FilesystemBackend

    assert user_name("cosi-", "photos", "ba-1") == "cosi-photos-2248f5b8f7a56c6e9a67"
    assert account_uid("photos", "ba-1") == "cosi-2248f5b8f7a56c6e9a677836"
    assert FilesystemBackend.account_name("photos", "ba-1") == "acct-2248f5b8f7a56c6e9a677836"


def test_policies_allow_only_the_mode_on_only_the_bucket() -> None:
    rejected_by_seaweedfs = {"s3:ListBucketMultipartUploads", "s3:ListMultipartUploadParts"}
    for mode in AccessMode:
        document = json.loads(policy_document("photos", mode))
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert statement["Resource"] in (["arn:aws:s3:::photos"], ["arn:aws:s3:::photos/*"])
            assert not rejected_by_seaweedfs & set(statement["Action"])
    read_bucket, read_objects = actions_for(AccessMode.READ)
    write_bucket, write_objects = actions_for(AccessMode.WRITE)
    assert "s3:GetObject" in read_objects
    assert "s3:PutObject" not in read_objects
    assert "s3:PutObject" in write_objects
    assert "s3:GetObject" not in write_objects
    assert "s3:ListBucket" in read_bucket
    assert "s3:ListBucket" not in write_bucket


def _client_error(code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": code, "Message": "server text secret-ish"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "CreateUser")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("SignatureDoesNotMatch", 403), PermissionDenied),
        (_client_error("Unknown", 403), PermissionDenied),  # SeaweedFS IAM's XML 403 has no code
        (_client_error("NoSuchBucket", 404), NotFound),
        (_client_error("InvalidBucketName", 400), InvalidArgument),
        (_client_error("SlowDown", 503), Unavailable),
        (_client_error("InternalError", 500), Unavailable),
        (_client_error("XNotImplemented", 501), Unimplemented),
        (_client_error("Unknown", 501), Unimplemented),
        # Not-offered answers have ordinary meanings too: at the edge they stay retried, not terminal.
        (_client_error("MethodNotAllowed", 405), FailedPrecondition),
        (_client_error("InvalidAction", 400), FailedPrecondition),
    ],
)
def test_storage_errors_become_core_errors_without_server_text(error: Exception, expected: type) -> None:
    translated = translate(error, "do a thing")
    assert isinstance(translated, expected)
    assert "server text" not in translated.message
    assert "do a thing" in translated.message


class _NoVersioningS3:
    """An S3 server whose versions listing and bucket tagging answer one "not here" error."""

    def __init__(self, answer: Exception) -> None:
        self.answer = answer

    async def list_object_versions(self, **_: object) -> dict[str, object]:
        raise self.answer

    async def get_bucket_tagging(self, **_: object) -> dict[str, object]:
        raise self.answer

    async def put_bucket_tagging(self, **_: object) -> dict[str, object]:
        raise self.answer

    async def head_bucket(self, **_: object) -> dict[str, object]:
        return {}

    async def list_objects_v2(self, **_: object) -> dict[str, object]:
        return {"Contents": [{"Key": "a.txt"}]}

    async def list_multipart_uploads(self, **_: object) -> dict[str, object]:
        return {}


@pytest.mark.parametrize(
    "answer",
    [
        _client_error("NotImplemented", 501),
        _client_error("MethodNotAllowed", 405),
        _client_error("Unknown", 501),
    ],
)
async def test_every_s3kit_fallback_takes_the_same_not_offered_answers(answer: Exception) -> None:
    s3 = _NoVersioningS3(answer)
    assert await find_content(s3, "b") == "it holds objects"  # listed without versions instead
    assert await read_mark(s3, "b") == FoundBucket(mark=None)  # the bucket exists, untagged
    assert await write_mark(s3, "b", "mark") is False  # tagging is not offered: the store alone marks


def test_connection_errors_are_unavailable() -> None:
    from botocore.exceptions import EndpointConnectionError

    translated = translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "list buckets")
    assert isinstance(translated, Unavailable)
    assert translate(ValueError("a bug"), "x") is None  # not botocore's: not ours to explain


def test_user_prefix_must_be_iam_characters() -> None:
    with pytest.raises(ConfigProblem) as caught:
        parse_options(
            S3Config,
            {
                "endpoint": "http://s3",
                "access_key_id": {"value": "a"},
                "secret_access_key": {"value": "b"},
                "user_prefix": "bad prefix!",
            },
            "s3.config",
        )
    assert "user_prefix" in str(caught.value)


def test_loading_the_s3_backends_imports_no_sdk() -> None:
    script = (
        "import sys\n"
        "from cosi_driver.core import registry\n"
        "registry.load('s3'); registry.load('seaweedfs')\n"
        "heavy = [m for m in ('aioboto3', 'botocore', 'aiobotocore', 'aiohttp') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_seaweedfs_needs_both_admin_keys_or_neither(tmp_path: Path) -> None:
    env = {
        "COSI_ENDPOINT": f"unix://{tmp_path}/cosi.sock",
        "COSI_DRIVER_STATE_DIR": str(tmp_path / "state"),
        "COSI_DRIVER_BACKEND": "seaweedfs",
        "COSI_DRIVER_BACKEND_DIRECTORY": str(tmp_path / "sw"),
        "COSI_DRIVER_BACKEND_ACCESS_KEY_ID": "ONLYTHEID",
    }
    result = run_cli("serve", env=env, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "secret_access_key" in result.stderr
