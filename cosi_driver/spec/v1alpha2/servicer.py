"""Thin v1alpha2 servicers: protobuf in, core call, protobuf out.

The same rules as the v1alpha1 adapter: no validation beyond turning wire enums into core values,
no backend logic. The core checks protocols, modes, ids and ownership; its exceptions reach the
recovery interceptor, the one place that maps them to gRPC status codes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import grpc

from cosi_driver.core.driver import Driver
from cosi_driver.core.errors import InvalidArgument
from cosi_driver.core.types import (
    AccessMode,
    AddressingStyle,
    AuthenticationType,
    AzureBucketInfo,
    AzureCredentials,
    BucketInfo,
    Credentials,
    ObjectProtocol,
    S3BucketInfo,
    S3Credentials,
)
from cosi_driver.core.validation import V1ALPHA2
from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha2 import cosi_pb2_grpc as pb_grpc

_PROTOCOLS = {
    pb.ObjectProtocol.S3: ObjectProtocol.S3,
    pb.ObjectProtocol.AZURE: ObjectProtocol.AZURE,
    pb.ObjectProtocol.GCS: ObjectProtocol.GCS,
}
_PROTOCOLS_TO_PB = {core: wire for wire, core in _PROTOCOLS.items()}
_MODES = {
    pb.AccessMode.READ_WRITE: AccessMode.READ_WRITE,
    pb.AccessMode.READ_ONLY: AccessMode.READ_ONLY,
    pb.AccessMode.WRITE_ONLY: AccessMode.WRITE_ONLY,
}
_AUTH_TYPES = {
    pb.AuthenticationType.KEY: AuthenticationType.KEY,
    pb.AuthenticationType.SERVICE_ACCOUNT: AuthenticationType.SERVICE_ACCOUNT,
}
#: ``expiry_timestamp`` as RFC 3339 in UTC, the form the v1alpha2 sidecar copies into
#: ``COSI_AZURE_EXPIRY_TIMESTAMP`` (v1alpha1 answers Go's time.String() layout instead).
RFC3339_LAYOUT = "%Y-%m-%dT%H:%M:%SZ"
_STYLES = {AddressingStyle.PATH: pb.S3AddressingStyle.PATH, AddressingStyle.VIRTUAL: pb.S3AddressingStyle.VIRTUAL}


def _wire_value(field: str, value: int, table: Mapping[Any, Any], enum: Any) -> Any:
    """A wire enum as its core value; UNKNOWN (unset) or a number this proto does not know is the
    caller's mistake, named by field, since the core cannot be handed a value it has no word for."""
    if value in table:
        return table[value]
    known = ", ".join(name for name in enum.DESCRIPTOR.values_by_name if name != "UNKNOWN")
    shown = enum.Name(value) if value in enum.values() else str(value)
    raise InvalidArgument(f"{field} is {shown}; it must be one of {known}")


def protocols_from_pb(field: str, protocols: Iterable[pb.ObjectProtocol]) -> tuple[ObjectProtocol, ...]:
    return tuple(
        _wire_value(f"{field}[{index}].type", item.type, _PROTOCOLS, pb.ObjectProtocol.Type)
        for index, item in enumerate(protocols)
    )


def bucket_info_to_pb(info: BucketInfo) -> pb.ObjectProtocolAndBucketInfo:
    """One slot per protocol; a bucket the backend describes over S3 fills every S3 field."""
    if isinstance(info, S3BucketInfo):
        return pb.ObjectProtocolAndBucketInfo(
            s3=pb.S3BucketInfo(
                bucket_id=info.bucket_name,
                endpoint=info.endpoint,
                region=info.region,
                addressing_style=pb.S3AddressingStyle(style=_STYLES[info.addressing_style]),
            )
        )
    if isinstance(info, AzureBucketInfo):
        return pb.ObjectProtocolAndBucketInfo(azure=pb.AzureBucketInfo(storage_account=info.storage_account))
    return pb.ObjectProtocolAndBucketInfo()


def credentials_to_pb(credentials: Credentials) -> pb.CredentialInfo:
    if isinstance(credentials, S3Credentials):
        return pb.CredentialInfo(
            s3=pb.S3CredentialInfo(
                access_key_id=credentials.access_key_id,
                access_secret_key=credentials.secret_access_key.reveal(),
            )
        )
    if isinstance(credentials, AzureCredentials):
        expiry = credentials.expiry.astimezone(UTC).strftime(RFC3339_LAYOUT) if credentials.expiry else ""
        return pb.CredentialInfo(
            azure=pb.AzureCredentialInfo(access_token=credentials.access_token.reveal(), expiry_timestamp=expiry)
        )
    raise TypeError(f"unsupported credentials type {type(credentials).__name__}")  # pragma: no cover


class IdentityServicer(pb_grpc.IdentityServicer):  # type: ignore[misc]
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def DriverGetInfo(self, request: pb.DriverGetInfoRequest, context: Any) -> pb.DriverGetInfoResponse:
        return pb.DriverGetInfoResponse(
            name=self._driver.get_info(),
            supported_protocols=[
                pb.ObjectProtocol(type=_PROTOCOLS_TO_PB[protocol]) for protocol in self._driver.supported_protocols()
            ],
        )


class ProvisionerServicer(pb_grpc.ProvisionerServicer):  # type: ignore[misc]
    def __init__(self, driver: Driver) -> None:
        self._driver = driver

    async def DriverCreateBucket(
        self, request: pb.DriverCreateBucketRequest, context: Any
    ) -> pb.DriverCreateBucketResponse:
        bucket = await self._driver.create_bucket(
            request.name, dict(request.parameters), protocols_from_pb("protocols", request.protocols), rules=V1ALPHA2
        )
        return pb.DriverCreateBucketResponse(bucket_id=bucket.bucket_id, protocols=bucket_info_to_pb(bucket.info))

    async def DriverGetExistingBucket(
        self, request: pb.DriverGetExistingBucketRequest, context: Any
    ) -> pb.DriverGetExistingBucketResponse:
        bucket = await self._driver.get_existing_bucket(
            request.existing_bucket_id,
            dict(request.parameters),
            protocols_from_pb("protocols", request.protocols),
            rules=V1ALPHA2,
        )
        return pb.DriverGetExistingBucketResponse(bucket_id=bucket.bucket_id, protocols=bucket_info_to_pb(bucket.info))

    async def DriverDeleteBucket(
        self, request: pb.DriverDeleteBucketRequest, context: Any
    ) -> pb.DriverDeleteBucketResponse:
        await self._driver.delete_bucket(request.bucket_id, dict(request.parameters), rules=V1ALPHA2)
        return pb.DriverDeleteBucketResponse()

    async def DriverGrantBucketAccess(
        self, request: pb.DriverGrantBucketAccessRequest, context: Any
    ) -> pb.DriverGrantBucketAccessResponse:
        buckets = [
            (
                item.bucket_id,
                _wire_value(f"buckets[{index}].access_mode", item.access_mode.mode, _MODES, pb.AccessMode.Mode),
            )
            for index, item in enumerate(request.buckets)
        ]
        access = await self._driver.grant_access(
            request.account_name,
            buckets,
            _wire_value(
                "authentication_type.type", request.authentication_type.type, _AUTH_TYPES, pb.AuthenticationType.Type
            ),
            dict(request.parameters),
            _wire_value("protocol.type", request.protocol.type, _PROTOCOLS, pb.ObjectProtocol.Type),
            rules=V1ALPHA2,
        )
        return pb.DriverGrantBucketAccessResponse(
            account_id=access.account_id,
            buckets=[
                pb.DriverGrantBucketAccessResponse.BucketInfo(
                    bucket_id=granted.bucket_id, bucket_info=bucket_info_to_pb(granted.info)
                )
                for granted in access.buckets
            ],
            credentials=credentials_to_pb(access.credentials),
        )

    async def DriverRevokeBucketAccess(
        self, request: pb.DriverRevokeBucketAccessRequest, context: Any
    ) -> pb.DriverRevokeBucketAccessResponse:
        await self._driver.revoke_access(
            request.account_id, [item.bucket_id for item in request.buckets], rules=V1ALPHA2
        )
        return pb.DriverRevokeBucketAccessResponse()


SERVICE_NAMES = tuple(service.full_name for service in pb.DESCRIPTOR.services_by_name.values())


@dataclass(frozen=True)
class Adapter:
    """This version as the transport's ``ApiAdapter``; health follows the v1alpha1 split
    (Provisioner: readiness, Identity: liveness)."""

    name: str = "v1alpha2"
    services: tuple[str, ...] = SERVICE_NAMES
    ready_services: tuple[str, ...] = (pb.DESCRIPTOR.services_by_name["Provisioner"].full_name,)

    def add_to_server(self, server: grpc.aio.Server, driver: Driver) -> None:
        pb_grpc.add_IdentityServicer_to_server(IdentityServicer(driver), server)
        pb_grpc.add_ProvisionerServicer_to_server(ProvisionerServicer(driver), server)


#: What a server builder passes to serve COSI v1alpha2, alone or beside v1alpha1's adapter.
ADAPTER = Adapter()
