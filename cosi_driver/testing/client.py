"""A small asyncio COSI v1alpha1 client, as the sidecar would call a driver.

Used by the acceptance suite, the conformance checks and our own tests; handy in a vendor's tests.
"""

from __future__ import annotations

from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc


class CosiClient:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.channel = grpc.aio.insecure_channel(endpoint)
        self.identity = pb_grpc.IdentityStub(self.channel)
        self.provisioner = pb_grpc.ProvisionerStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> CosiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def info(self) -> str:
        response = await self.identity.DriverGetInfo(pb.DriverGetInfoRequest())
        return str(response.name)

    async def create(self, name: str, **params: str) -> Any:
        return await self.provisioner.DriverCreateBucket(pb.DriverCreateBucketRequest(name=name, parameters=params))

    async def delete(self, bucket_id: str, **context: str) -> None:
        await self.provisioner.DriverDeleteBucket(
            pb.DriverDeleteBucketRequest(bucket_id=bucket_id, delete_context=context)
        )

    async def grant(self, bucket_id: str, name: str, auth: Any = pb.Key, /, **params: str) -> Any:
        request = pb.DriverGrantBucketAccessRequest(
            bucket_id=bucket_id, name=name, authentication_type=auth, parameters=params
        )
        return await self.provisioner.DriverGrantBucketAccess(request)

    async def revoke(self, bucket_id: str, account_id: str) -> None:
        request = pb.DriverRevokeBucketAccessRequest(bucket_id=bucket_id, account_id=account_id)
        await self.provisioner.DriverRevokeBucketAccess(request)


def s3_secrets(response: Any) -> dict[str, str]:
    """The ``s3`` credential entry of a Grant response; fails unless it is the only entry."""
    assert list(response.credentials) == ["s3"], f"expected exactly one 's3' entry, got {list(response.credentials)}"
    return dict(response.credentials["s3"].secrets)


def credential_secrets(response: Any) -> dict[str, str]:
    """The secrets of a Grant response's one credential entry (``s3`` or ``azure``), whichever it is."""
    assert len(response.credentials) == 1, f"expected exactly one entry, got {list(response.credentials)}"
    (entry,) = response.credentials.values()
    return dict(entry.secrets)


async def expect_error(awaitable: Any, code: grpc.StatusCode) -> str:
    """Await a call that must fail with ``code``; return the status message."""
    try:
        await awaitable
    except grpc.aio.AioRpcError as error:
        assert error.code() == code, f"expected {code.name}, got {error.code().name}: {error.details()}"
        return error.details() or ""
    raise AssertionError(f"expected {code.name}, but the call succeeded")
