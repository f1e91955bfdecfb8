"""A small, correct, synchronous COSI driver with switchable faults, hosted by pytest-grpc.

It stands in for a third-party driver: the conformance suite and the sidecar emulator must pass
it as it is and name the right rule when one of its faults is switched on. It keeps everything in
memory and validates input the way the spec asks.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc
from tests.support import free_port_block

NAME = "scripted.cosi-driver.example.com"

FAULTS = frozenset(
    {
        "create-already-exists",  # a repeated Create answers ALREADY_EXISTS (storage error passed through)
        "create-new-id",  # every Create answers a new bucket_id
        "grant-new-keys",  # every Grant mints a new secret key
        "grant-already-exists",  # a repeated Grant answers ALREADY_EXISTS
        "unknown-on-bad-input",  # no input checks: long names raise inside the servicer (UNKNOWN)
        "delete-refused-while-granted",  # DeleteBucket is FAILED_PRECONDITION while accounts exist
        "foreign-id-invalid",  # ids it did not issue answer INVALID_ARGUMENT (Delete, Grant, Revoke)
        "flaky",  # the first two calls of each Provisioner RPC answer UNAVAILABLE
    }
)


@dataclass
class _State:
    buckets: dict[str, dict[str, str]] = field(default_factory=dict)
    accounts: dict[str, tuple[str, str]] = field(default_factory=dict)  # account_id -> (bucket, secret)
    failures: dict[str, int] = field(default_factory=dict)


def _check_string(context: Any, field_name: str, value: str) -> None:
    if not value:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field_name} is required")
    if len(value.encode()) > 128 or any(ord(ch) < 0x20 for ch in value):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field_name} is too long or holds control characters")


def _check_map(context: Any, field_name: str, values: Any) -> None:
    if sum(len(k.encode()) + len(v.encode()) for k, v in values.items()) > 4096:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field_name} exceeds 4 KiB")


class ScriptedDriver(pb_grpc.IdentityServicer, pb_grpc.ProvisionerServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: frozenset[str] = frozenset()
        self.state = _State()
        self.calls: list[str] = []
        self.issued_secrets: list[str] = []

    def reset(self, *faults: str) -> ScriptedDriver:
        unknown = set(faults) - FAULTS
        assert not unknown, unknown
        with self._lock:
            self.faults = frozenset(faults)
            self.state = _State()
            self.calls = []
            self.issued_secrets = []
        return self

    def _enter(self, rpc: str, context: Any) -> None:
        with self._lock:
            self.calls.append(rpc)
            if "flaky" in self.faults and rpc != "DriverGetInfo":
                seen = self.state.failures.get(rpc, 0)
                if seen < 2:
                    self.state.failures[rpc] = seen + 1
                    context.abort(grpc.StatusCode.UNAVAILABLE, "storage is restarting")

    def _validate(self, context: Any, **fields: str) -> None:
        if "unknown-on-bad-input" in self.faults:
            for value in fields.values():
                if len(value) > 128:
                    raise ValueError("name too long for the storage's database column")
            return
        for name, value in fields.items():
            _check_string(context, name, value)

    def DriverGetInfo(self, request: Any, context: Any) -> Any:
        self._enter("DriverGetInfo", context)
        return pb.DriverGetInfoResponse(name=NAME)

    def DriverCreateBucket(self, request: Any, context: Any) -> Any:
        self._enter("DriverCreateBucket", context)
        self._validate(context, name=request.name)
        _check_map(context, "parameters", request.parameters)
        params = dict(request.parameters)
        with self._lock:
            existing = self.state.buckets.get(request.name)
            if existing is not None and (existing != params or "create-already-exists" in self.faults):
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"bucket {request.name} already exists")
            self.state.buckets[request.name] = params
        suffix = f"/{uuid.uuid4().hex[:8]}" if "create-new-id" in self.faults else ""
        return pb.DriverCreateBucketResponse(bucket_id=f"sb/{request.name}{suffix}")

    def DriverDeleteBucket(self, request: Any, context: Any) -> Any:
        self._enter("DriverDeleteBucket", context)
        self._validate(context, bucket_id=request.bucket_id)
        self._refuse_foreign(context, request.bucket_id)
        name = request.bucket_id.removeprefix("sb/")
        with self._lock:
            in_use = any(bucket == name for bucket, _ in self.state.accounts.values())
            if in_use and "delete-refused-while-granted" in self.faults:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"bucket {name} still has accounts")
            self.state.buckets.pop(name, None)
        return pb.DriverDeleteBucketResponse()

    def DriverGrantBucketAccess(self, request: Any, context: Any) -> Any:
        self._enter("DriverGrantBucketAccess", context)
        self._validate(context, bucket_id=request.bucket_id, name=request.name)
        _check_map(context, "parameters", request.parameters)
        self._refuse_foreign(context, request.bucket_id)
        if request.authentication_type != pb.Key:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "authentication_type must be Key")
        bucket = request.bucket_id.removeprefix("sb/")
        account_id = "acct-" + hashlib.sha256(f"{bucket}\0{request.name}".encode()).hexdigest()[:24]
        with self._lock:
            if bucket not in self.state.buckets:
                context.abort(grpc.StatusCode.NOT_FOUND, f"bucket {bucket} does not exist")
            existing = self.state.accounts.get(account_id)
            if existing is not None and "grant-already-exists" in self.faults:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"user {request.name} already exists")
            if existing is None or "grant-new-keys" in self.faults:
                existing = (bucket, uuid.uuid4().hex)
                self.state.accounts[account_id] = existing
                self.issued_secrets.append(existing[1])
        secrets = {
            "accessKeyID": account_id.upper()[:20],
            "accessSecretKey": existing[1],
            "endpoint": "https://objects.example.invalid",
            "region": "us-east-1",
        }
        return pb.DriverGrantBucketAccessResponse(
            account_id=account_id, credentials={"s3": pb.CredentialDetails(secrets=secrets)}
        )

    def DriverRevokeBucketAccess(self, request: Any, context: Any) -> Any:
        self._enter("DriverRevokeBucketAccess", context)
        self._validate(context, bucket_id=request.bucket_id, account_id=request.account_id)
        self._refuse_foreign(context, request.bucket_id, request.account_id)
        with self._lock:
            self.state.accounts.pop(request.account_id, None)
        return pb.DriverRevokeBucketAccessResponse()

    def _refuse_foreign(self, context: Any, bucket_id: str, account_id: str = "acct-") -> None:
        if "foreign-id-invalid" in self.faults and not (bucket_id.startswith("sb/") and account_id.startswith("acct-")):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not an id issued by this driver")


def add_to_server(servicer: ScriptedDriver, server: Any) -> None:
    pb_grpc.add_IdentityServicer_to_server(servicer, server)
    pb_grpc.add_ProvisionerServicer_to_server(servicer, server)


# -- pytest-grpc hosting: import these fixtures into a test module (they register under their name=) --


@dataclass(frozen=True)
class Scripted:
    driver: ScriptedDriver
    address: str  # host:port on 127.0.0.1


@pytest.fixture(scope="module", name="grpc_addr")
def grpc_addr_fixture() -> str:
    return f"127.0.0.1:{free_port_block(1)}"


@pytest.fixture(scope="module", name="grpc_add_to_server")
def grpc_add_to_server_fixture() -> Any:
    return add_to_server


@pytest.fixture(scope="module", name="grpc_servicer")
def grpc_servicer_fixture() -> ScriptedDriver:
    return ScriptedDriver()


@pytest.fixture(name="scripted")
def scripted_fixture(grpc_server: Any, grpc_addr: str, grpc_servicer: ScriptedDriver) -> Scripted:
    """The scripted driver, reset to correct behaviour; switch faults on with ``driver.reset(...)``."""
    return Scripted(grpc_servicer.reset(), grpc_addr)
