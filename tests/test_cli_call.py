"""``cosi-driver call`` against our real server, and against a scripted server hosted by pytest-grpc."""

from __future__ import annotations

import json
import socket
from typing import Any

import grpc
import pytest

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc
from tests.conftest import DRIVER_NAME
from tests.support import Client, run_cli, to_thread


async def call(client: Client, *args: str) -> tuple[int, Any, str]:
    result = await to_thread(lambda: run_cli("call", "--endpoint", client.endpoint, *args))
    document = json.loads(result.stdout) if result.returncode == 0 else None
    return result.returncode, document, result.stderr


async def test_call_walks_a_whole_lifecycle(client: Client) -> None:
    code, info, _ = await call(client, "info")
    assert (code, info) == (0, {"name": DRIVER_NAME})
    code, bucket, _ = await call(client, "create-bucket", "bucket-a", "--param", "deletionPolicy=purge")
    assert code == 0 and bucket["bucket_id"] == "v2.filesystem.b.bucket-a"
    code, access, _ = await call(client, "grant-access", bucket["bucket_id"], "ba-1", "--param", "accessMode=read")
    assert code == 0
    assert access["credentials"]["s3"]["secrets"]["accessSecretKey"] == "***"
    code, shown, _ = await call(client, "grant-access", bucket["bucket_id"], "ba-1", "--param", "accessMode=read",
                                "--show-secrets")  # fmt: skip
    secret = shown["credentials"]["s3"]["secrets"]["accessSecretKey"]
    assert code == 0 and secret not in ("", "***")
    assert shown["account_id"] == access["account_id"]
    assert (await call(client, "revoke-access", bucket["bucket_id"], access["account_id"]))[0] == 0
    assert (await call(client, "delete-bucket", bucket["bucket_id"]))[0] == 0


async def test_call_reports_the_grpc_code_and_message_and_exits_non_zero(client: Client) -> None:
    code, _, stderr = await call(client, "grant-access", "v1/filesystem/missing", "ba-1")
    assert code == 1
    assert stderr.startswith("NOT_FOUND: ") and "missing" in stderr


async def test_call_rejects_a_malformed_param(client: Client) -> None:
    code, _, stderr = await call(client, "create-bucket", "bucket-a", "--param", "no-equals-sign")
    assert code == 2 and "KEY=VALUE" in stderr


def test_call_to_a_missing_endpoint_is_unavailable(workdir: Any) -> None:
    result = run_cli("call", "--endpoint", f"unix://{workdir}/absent.sock", "--timeout", "5", "info")
    assert result.returncode == 1 and result.stderr.startswith("UNAVAILABLE: ")


# -- a scripted synchronous server, hosted by pytest-grpc on 127.0.0.1 ---------------------------


class ScriptedProvisioner(pb_grpc.ProvisionerServicer):  # type: ignore[misc]
    """Answers like a badly behaved third-party driver would."""

    def DriverCreateBucket(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"quota of buckets reached for {request.name}")

    def DriverGrantBucketAccess(self, request: Any, context: grpc.ServicerContext) -> Any:
        secrets = {"accessKeyID": "AK", "accessSecretKey": "leaky-secret", "endpoint": "http://x", "region": "r"}
        return pb.DriverGrantBucketAccessResponse(
            account_id="a-1", credentials={"s3": pb.CredentialDetails(secrets=secrets)}
        )


@pytest.fixture(scope="module")
def grpc_addr() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def grpc_add_to_server() -> Any:
    return pb_grpc.add_ProvisionerServicer_to_server


@pytest.fixture(scope="module")
def grpc_servicer() -> ScriptedProvisioner:
    return ScriptedProvisioner()


@pytest.fixture(scope="module")
def grpc_stub_cls() -> Any:
    return pb_grpc.ProvisionerStub


def test_call_passes_any_driver_error_through(grpc_server: Any, grpc_addr: str) -> None:
    result = run_cli("call", "--endpoint", grpc_addr, "create-bucket", "b-1")
    assert result.returncode == 1
    assert result.stderr.strip() == "RESOURCE_EXHAUSTED: quota of buckets reached for b-1"


def test_call_masks_any_driver_secret(grpc_server: Any, grpc_addr: str) -> None:
    result = run_cli("call", "--endpoint", grpc_addr, "grant-access", "b-1", "ba-1")
    assert result.returncode == 0
    assert "leaky-secret" not in result.stdout
    assert json.loads(result.stdout)["credentials"]["s3"]["secrets"]["accessSecretKey"] == "***"


def test_call_to_an_endpoint_without_identity_is_unimplemented(grpc_server: Any, grpc_addr: str) -> None:
    result = run_cli("call", "--endpoint", grpc_addr, "info")
    assert result.returncode == 1 and result.stderr.startswith("UNIMPLEMENTED: ")
