"""``cosi-driver conformance --s3-check`` against a real SeaweedFS (S3 + IAM).

The driver under test is a small scripted one (hosted by pytest-grpc on 127.0.0.1) that does what
an S3 backend does with SeaweedFS's admin keys: buckets through S3, one IAM user per BucketAccess
with an access key and an inline policy for its access mode, revoke by deleting the user. The
correct driver must pass every check, data path included; with a fault switched on (the access
mode ignored, keys left alive on revoke) the matching s3 check must fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from typing import Any

import grpc
import pytest

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from tests.fixtures.seaweedfs import SeaweedFS
from tests.scripted_driver import Scripted, grpc_add_to_server_fixture, grpc_addr_fixture  # noqa: F401
from tests.support import run_cli

pytestmark = pytest.mark.seaweedfs
grpc_max_workers = 16

_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_ACTIONS = {
    "read": ["s3:GetObject", "s3:ListBucket"],
    "write": ["s3:PutObject", "s3:DeleteObject"],
    "readwrite": ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject"],
}
MODES = ("--read-access-param", "accessMode=read", "--write-access-param", "accessMode=write")


class SeaweedDriver:
    """A minimal S3 + IAM COSI driver over SeaweedFS, synchronous (boto3), for pytest-grpc."""

    name = "seaweed.scripted.example.com"

    def __init__(self) -> None:
        self.server: SeaweedFS | None = None
        self.faults: frozenset[str] = frozenset()
        self._keys: dict[str, tuple[str, str]] = {}
        self._params: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def reset(self, server: SeaweedFS, *faults: str) -> SeaweedDriver:
        self.server, self.faults = server, frozenset(faults)
        self._params.clear()
        return self

    def _client(self, service: str) -> Any:
        import boto3

        assert self.server is not None
        return boto3.client(
            service,
            endpoint_url=self.server.endpoint,
            aws_access_key_id=self.server.access_key,
            aws_secret_access_key=self.server.secret_key,
            region_name="us-east-1",
        )

    @staticmethod
    def _check(context: Any, **fields: str) -> None:
        for name, value in fields.items():
            if not value or len(value.encode()) > 128 or any(ord(ch) < 0x20 for ch in value):
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"{name} is missing, too long or has control characters"
                )

    def DriverGetInfo(self, request: Any, context: Any) -> Any:
        return pb.DriverGetInfoResponse(name=self.name)

    def DriverCreateBucket(self, request: Any, context: Any) -> Any:
        self._check(context, name=request.name)
        if not _BUCKET.fullmatch(request.name):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{request.name!r} is not a valid S3 bucket name")
        with self._lock:
            if self._params.setdefault(request.name, dict(request.parameters)) != dict(request.parameters):
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"bucket {request.name} exists with other parameters")
        s3 = self._client("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=request.name)
        return pb.DriverCreateBucketResponse(
            bucket_id=request.name, bucket_info=pb.Protocol(s3=pb.S3(region="us-east-1"))
        )

    def DriverDeleteBucket(self, request: Any, context: Any) -> Any:
        self._check(context, bucket_id=request.bucket_id)
        s3 = self._client("s3")
        if not _BUCKET.fullmatch(request.bucket_id):
            return pb.DriverDeleteBucketResponse()
        try:
            for item in s3.list_objects_v2(Bucket=request.bucket_id).get("Contents", []):
                s3.delete_object(Bucket=request.bucket_id, Key=item["Key"])
            s3.delete_bucket(Bucket=request.bucket_id)
        except s3.exceptions.NoSuchBucket:
            pass
        with self._lock:
            self._params.pop(request.bucket_id, None)
        return pb.DriverDeleteBucketResponse()

    def DriverGrantBucketAccess(self, request: Any, context: Any) -> Any:
        self._check(context, bucket_id=request.bucket_id, name=request.name)
        if request.authentication_type != pb.Key:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only Key authentication is supported")
        mode = dict(request.parameters).get("accessMode", "readwrite")
        if mode not in _ACTIONS or set(request.parameters) - {"accessMode"}:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "parameters: only accessMode read|write|readwrite")
        if not _BUCKET.fullmatch(request.bucket_id) or request.bucket_id not in self._buckets():
            context.abort(grpc.StatusCode.NOT_FOUND, f"bucket {request.bucket_id!r} does not exist")
        user = "u-" + hashlib.sha256(f"{request.bucket_id}/{request.name}".encode()).hexdigest()[:20]
        if "ignore-access-mode" in self.faults:
            mode = "readwrite"
        iam = self._client("iam")
        with self._lock:
            if user not in self._keys:
                iam.create_user(UserName=user)
                key = iam.create_access_key(UserName=user)["AccessKey"]
                self._keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
            resources = [f"arn:aws:s3:::{request.bucket_id}", f"arn:aws:s3:::{request.bucket_id}/*"]
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": _ACTIONS[mode], "Resource": resources}],
            }
            iam.put_user_policy(UserName=user, PolicyName="cosi", PolicyDocument=json.dumps(policy))
            key_id, secret = self._keys[user]
        assert self.server is not None
        secrets = {
            "accessKeyID": key_id,
            "accessSecretKey": secret,
            "endpoint": self.server.endpoint,
            "region": "us-east-1",
        }
        return pb.DriverGrantBucketAccessResponse(
            account_id=user, credentials={"s3": pb.CredentialDetails(secrets=secrets)}
        )

    def DriverRevokeBucketAccess(self, request: Any, context: Any) -> Any:
        self._check(context, bucket_id=request.bucket_id, account_id=request.account_id)
        if "keep-keys-on-revoke" in self.faults or not request.account_id.startswith("u-"):
            return pb.DriverRevokeBucketAccessResponse()
        iam = self._client("iam")
        with self._lock:
            if self._keys.pop(request.account_id, None) is not None:
                for key in iam.list_access_keys(UserName=request.account_id)["AccessKeyMetadata"]:
                    iam.delete_access_key(UserName=request.account_id, AccessKeyId=key["AccessKeyId"])
                iam.delete_user_policy(UserName=request.account_id, PolicyName="cosi")
                iam.delete_user(UserName=request.account_id)
        return pb.DriverRevokeBucketAccessResponse()

    def _buckets(self) -> set[str]:
        return {bucket["Name"] for bucket in self._client("s3").list_buckets().get("Buckets", [])}


@pytest.fixture(scope="module")
def grpc_servicer() -> SeaweedDriver:
    return SeaweedDriver()


@pytest.fixture
def scripted(grpc_server: Any, grpc_addr: str, grpc_servicer: SeaweedDriver, seaweedfs: SeaweedFS) -> Scripted:
    return Scripted(grpc_servicer.reset(seaweedfs), grpc_addr)  # type: ignore[arg-type]


def conformance(address: str, *flags: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("conformance", "--endpoint", address, "--json", "--s3-check", *flags, timeout=300)
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def failures(report: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["reason"] for check in report["checks"] if check["outcome"] == "FAIL"}


def test_a_correct_s3_driver_passes_every_check_with_the_data_path(scripted: Scripted, seaweedfs: SeaweedFS) -> None:
    driver: SeaweedDriver = scripted.driver  # type: ignore[assignment]
    # The scripted driver speaks S3 only: the Azure data-path checks are not its to pass.
    code, report = conformance(scripted.address, "--alt-bucket-param", "x=y", "--skip", "azure", *MODES)
    outcomes = {check["name"]: check["outcome"] for check in report["checks"]}
    assert failures(report) == {}
    assert [name for name, outcome in outcomes.items() if outcome != "PASS"] == []
    assert code == 0
    assert report["cleanup"]["left_behind"] == []
    assert driver._buckets() == set(), "conformance left buckets in SeaweedFS"


@pytest.mark.parametrize(
    ("fault", "check", "says"),
    [
        ("ignore-access-mode", "s3.read-mode", "read-only credentials were allowed S3 put"),
        ("keep-keys-on-revoke", "s3.revoked-credentials-denied", "after Revoke answered OK"),
    ],
)
def test_a_broken_data_path_fails_the_named_check(
    scripted: Scripted, seaweedfs: SeaweedFS, fault: str, check: str, says: str
) -> None:
    driver: SeaweedDriver = scripted.driver  # type: ignore[assignment]
    driver.reset(seaweedfs, fault)
    code, report = conformance(scripted.address, "--focus", "s3", "--propagation-seconds", "3", *MODES)
    assert code == 1
    assert check in failures(report)
    assert says in failures(report)[check]
