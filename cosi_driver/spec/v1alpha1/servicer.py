"""Thin v1alpha1 servicers: protobuf in, core call, protobuf out.

No validation beyond what protobuf cannot express and no backend logic: that is the core's job.
Errors propagate as core exceptions to the recovery interceptor, the one place that maps them to
gRPC status codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from cosi_driver.core.driver import Driver
from cosi_driver.core.types import (
    Access,
    AuthenticationType,
    AzureBucketInfo,
    AzureCredentials,
    BucketInfo,
    S3BucketInfo,
    S3Credentials,
)
from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

_AUTH_TYPES = {pb.Key: AuthenticationType.KEY, pb.IAM: AuthenticationType.IAM}
_SIGNATURES = {"S3V2": pb.S3V2, "S3V4": pb.S3V4}
GO_TIME_LAYOUT = "%Y-%m-%d %H:%M:%S.%f %z %Z"  # close to Go's time.String(), which the sidecar parses


def bucket_info_to_pb(info: BucketInfo) -> pb.Protocol:
    if isinstance(info, S3BucketInfo):
        return pb.Protocol(
            s3=pb.S3(region=info.region, signature_version=_SIGNATURES.get(info.signature_version, pb.S3V4))
        )
    if isinstance(info, AzureBucketInfo):
        return pb.Protocol(azureBlob=pb.AzureBlob(storage_account=info.storage_account))
    return pb.Protocol()


def credentials_to_pb(access: Access) -> dict[str, pb.CredentialDetails]:
    """Exactly one entry, keyed ``s3`` or ``azure``, as the sidecar requires."""
    creds = access.credentials
    if isinstance(creds, S3Credentials):
        secrets = {
            "accessKeyID": creds.access_key_id,
            "accessSecretKey": creds.secret_access_key.reveal(),
            "endpoint": creds.endpoint,
            "region": creds.region,
        }
        return {"s3": pb.CredentialDetails(secrets=secrets)}
    if isinstance(creds, AzureCredentials):
        expiry = creds.expiry.strftime(GO_TIME_LAYOUT) if creds.expiry else ""
        secrets = {"accessToken": creds.access_token.reveal(), "expiryTs": expiry}
        return {"azure": pb.CredentialDetails(secrets=secrets)}
    raise TypeError(f"unsupported credentials type {type(creds).__name__}")  # pragma: no cover


class IdentityServicer(pb_grpc.IdentityServicer):  # type: ignore[misc]
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def DriverGetInfo(self, request: pb.DriverGetInfoRequest, context: Any) -> pb.DriverGetInfoResponse:
        return pb.DriverGetInfoResponse(name=self._driver.get_info())


class ProvisionerServicer(pb_grpc.ProvisionerServicer):  # type: ignore[misc]
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def DriverCreateBucket(
        self, request: pb.DriverCreateBucketRequest, context: Any
    ) -> pb.DriverCreateBucketResponse:
        bucket = await self._driver.create_bucket(request.name, dict(request.parameters))
        return pb.DriverCreateBucketResponse(bucket_id=bucket.bucket_id, bucket_info=bucket_info_to_pb(bucket.info))

    async def DriverDeleteBucket(
        self, request: pb.DriverDeleteBucketRequest, context: Any
    ) -> pb.DriverDeleteBucketResponse:
        await self._driver.delete_bucket(request.bucket_id, dict(request.delete_context))
        return pb.DriverDeleteBucketResponse()

    async def DriverGrantBucketAccess(
        self, request: pb.DriverGrantBucketAccessRequest, context: Any
    ) -> pb.DriverGrantBucketAccessResponse:
        access = await self._driver.grant_access(
            request.name,
            [(request.bucket_id, None)],  # a v1alpha1 grant takes its mode from the class parameters
            _AUTH_TYPES.get(request.authentication_type),
            dict(request.parameters),
        )
        return pb.DriverGrantBucketAccessResponse(account_id=access.account_id, credentials=credentials_to_pb(access))

    async def DriverRevokeBucketAccess(
        self, request: pb.DriverRevokeBucketAccessRequest, context: Any
    ) -> pb.DriverRevokeBucketAccessResponse:
        await self._driver.revoke_access(request.account_id, [request.bucket_id])
        return pb.DriverRevokeBucketAccessResponse()


def add_to_server(server: grpc.aio.Server, driver: Driver) -> None:
    pb_grpc.add_IdentityServicer_to_server(IdentityServicer(driver), server)
    pb_grpc.add_ProvisionerServicer_to_server(ProvisionerServicer(driver), server)


SERVICE_NAMES = tuple(service.full_name for service in pb.DESCRIPTOR.services_by_name.values())


@dataclass(frozen=True)
class Adapter:
    """This version as the transport's ``ApiAdapter``: what to register and under which names.

    Provisioner's health status is the readiness answer (it needs the storage); Identity's is
    liveness (it only names the driver), so a storage outage never fails a liveness probe.
    """

    name: str = "v1alpha1"
    services: tuple[str, ...] = SERVICE_NAMES
    ready_services: tuple[str, ...] = (pb.DESCRIPTOR.services_by_name["Provisioner"].full_name,)

    def add_to_server(self, server: grpc.aio.Server, driver: Driver) -> None:
        add_to_server(server, driver)


#: What a server builder passes to serve COSI v1alpha1: ``CosiServer(driver, spec, [ADAPTER])``.
ADAPTER = Adapter()
