"""Small asyncio COSI clients, one per API version, calling a driver as each sidecar would.

Used by the acceptance suite, the conformance checks and our own tests; handy in a vendor's tests.
"""

from __future__ import annotations

from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc
from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb2
from cosi_driver.spec.v1alpha2 import cosi_pb2_grpc as pb2_grpc

#: v1alpha2 access modes by the names the kit's users type (``READ_WRITE`` ...).
ACCESS_MODES = {name: value for name, value in pb2.AccessMode.Mode.items() if value != pb2.AccessMode.UNKNOWN}


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


class V1Alpha2Client:
    """The v1alpha2 calls: S3 and KEY unless told otherwise; buckets as ``(bucket_id, mode name)`` pairs."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.channel = grpc.aio.insecure_channel(endpoint)
        self.identity = pb2_grpc.IdentityStub(self.channel)
        self.provisioner = pb2_grpc.ProvisionerStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> V1Alpha2Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def info(self) -> Any:
        return await self.identity.DriverGetInfo(pb2.DriverGetInfoRequest())

    async def create(self, name: str, protocols: tuple[str, ...] = (), **params: str) -> Any:
        request = pb2.DriverCreateBucketRequest(name=name, protocols=protocol_list(protocols), parameters=params)
        return await self.provisioner.DriverCreateBucket(request)

    async def get_existing(self, existing_bucket_id: str, protocols: tuple[str, ...] = (), **params: str) -> Any:
        request = pb2.DriverGetExistingBucketRequest(
            existing_bucket_id=existing_bucket_id, protocols=protocol_list(protocols), parameters=params
        )
        return await self.provisioner.DriverGetExistingBucket(request)

    async def delete(self, bucket_id: str, **params: str) -> None:
        await self.provisioner.DriverDeleteBucket(pb2.DriverDeleteBucketRequest(bucket_id=bucket_id, parameters=params))

    async def grant(
        self,
        account_name: str,
        buckets: list[tuple[str, str]],
        *,
        protocol: str = "S3",
        authentication: str = "KEY",
        service_account: str = "",
        **params: str,
    ) -> Any:
        return await self.provisioner.DriverGrantBucketAccess(
            grant_request(
                account_name, buckets, protocol, authentication, service_account=service_account, params=params
            )
        )

    async def revoke(
        self,
        account_id: str,
        bucket_ids: list[str],
        *,
        protocol: str = "S3",
        authentication: str = "KEY",
        **params: str,
    ) -> None:
        await self.provisioner.DriverRevokeBucketAccess(
            revoke_request(account_id, bucket_ids, protocol, authentication, params)
        )


def protocol_list(names: tuple[str, ...] | list[str]) -> list[Any]:
    """``("S3",)`` as the repeated ``ObjectProtocol`` field."""
    return [pb2.ObjectProtocol(type=name) for name in names]


def grant_request(
    account_name: str,
    buckets: list[tuple[str, str]],
    protocol: str = "S3",
    authentication: str = "KEY",
    *,
    service_account: str = "",
    params: dict[str, str] | None = None,
) -> Any:
    """A v1alpha2 Grant request; ``buckets`` pairs a bucket_id with a mode name such as ``READ_ONLY``."""
    return pb2.DriverGrantBucketAccessRequest(
        account_name=account_name,
        protocol=pb2.ObjectProtocol(type=protocol),
        authentication_type=pb2.AuthenticationType(type=authentication),
        service_account_name=service_account,
        parameters=params or {},
        buckets=[
            pb2.DriverGrantBucketAccessRequest.AccessedBucket(
                bucket_id=bucket_id, access_mode=pb2.AccessMode(mode=mode)
            )
            for bucket_id, mode in buckets
        ],
    )


def revoke_request(
    account_id: str,
    bucket_ids: list[str],
    protocol: str = "S3",
    authentication: str = "KEY",
    params: dict[str, str] | None = None,
) -> Any:
    return pb2.DriverRevokeBucketAccessRequest(
        account_id=account_id,
        protocol=pb2.ObjectProtocol(type=protocol),
        authentication_type=pb2.AuthenticationType(type=authentication),
        parameters=params or {},
        buckets=[pb2.DriverRevokeBucketAccessRequest.AccessedBucket(bucket_id=bucket_id) for bucket_id in bucket_ids],
    )


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


__all__ = [
    "ACCESS_MODES",
    "CosiClient",
    "V1Alpha2Client",
    "credential_secrets",
    "expect_error",
    "grant_request",
    "protocol_list",
    "revoke_request",
    "s3_secrets",
]
