"""Plain data types the core exchanges with the spec adapters and with backends.

No protobuf and no gRPC here: the v1alpha1 and v1alpha2 adapters convert these to and from the
wire. Where the two APIs name one idea differently (an access mode, a protocol), the core has one
type and each adapter maps its own spelling onto it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from cosi_driver.core.secret import Secret


class AuthenticationType(enum.Enum):
    """How a workload authenticates. IAM is v1alpha1's word, SERVICE_ACCOUNT v1alpha2's."""

    KEY = "Key"
    IAM = "IAM"
    SERVICE_ACCOUNT = "ServiceAccount"


class AccessMode(enum.Enum):
    """What one grant may do in one bucket.

    The values are the spelling of the ``accessMode`` BucketAccessClass parameter (v1alpha1); the
    v1alpha2 adapter maps READ_WRITE/READ_ONLY/WRITE_ONLY onto the same members. The short names
    READ, WRITE and READWRITE are aliases kept for backends written before v1alpha2.
    """

    READ_ONLY = "read"
    WRITE_ONLY = "write"
    READ_WRITE = "readwrite"
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"

    @property
    def can_read(self) -> bool:
        return self in (AccessMode.READ_ONLY, AccessMode.READ_WRITE)

    @property
    def can_write(self) -> bool:
        return self in (AccessMode.WRITE_ONLY, AccessMode.READ_WRITE)


class ObjectProtocol(enum.Enum):
    """An object storage protocol a backend serves (v1alpha2's ``ObjectProtocol.Type``).

    Named so that it never shadows :class:`typing.Protocol`.
    """

    S3 = "S3"
    AZURE = "Azure"
    GCS = "GCS"


class AddressingStyle(enum.Enum):
    """How an S3 client names the bucket: in the path, or as a host name (needs bucket DNS)."""

    PATH = "path"
    VIRTUAL = "virtual"


@dataclass(frozen=True)
class S3BucketInfo:
    """Enough for a client to reach one bucket over S3.

    v1alpha1 sends ``region`` and ``signature_version``; v1alpha2 sends ``bucket_name`` (the REAL
    name in storage, which its sidecar calls ``bucket_id``), ``endpoint``, ``region`` and
    ``addressing_style`` and rejects an answer with any of them empty. The core fills
    ``bucket_name`` when a backend leaves it empty; the endpoint only the backend knows.
    """

    region: str
    signature_version: str = "S3V4"
    bucket_name: str = ""
    endpoint: str = ""
    addressing_style: AddressingStyle = AddressingStyle.PATH


@dataclass(frozen=True)
class AzureBucketInfo:
    storage_account: str


BucketInfo = S3BucketInfo | AzureBucketInfo | None


def protocol_of(info: BucketInfo) -> ObjectProtocol | None:
    """The protocol a bucket info describes (None for a backend that describes none)."""
    if isinstance(info, S3BucketInfo):
        return ObjectProtocol.S3
    if isinstance(info, AzureBucketInfo):
        return ObjectProtocol.AZURE
    return None


@dataclass(frozen=True)
class S3Credentials:
    """The four secrets the sidecar writes into the BucketInfo Secret under ``secretS3``."""

    access_key_id: str
    secret_access_key: Secret
    endpoint: str
    region: str


@dataclass(frozen=True)
class AzureCredentials:
    access_token: Secret
    expiry: datetime | None = None


Credentials = S3Credentials | AzureCredentials


@dataclass(frozen=True)
class Bucket:
    """The answer to CreateBucket and GetExistingBucket: an opaque id the sidecar stores and
    sends back later, and how to reach the bucket."""

    bucket_id: str
    info: BucketInfo
    existing: bool = False  # taken with GetExistingBucket (or a v1alpha1 static Bucket); never deleted


@dataclass(frozen=True)
class GrantedBucket:
    """One bucket of a grant's answer, in the order the request named them."""

    bucket_id: str  # as the request named it
    mode: AccessMode
    info: BucketInfo


@dataclass(frozen=True)
class Access:
    """The answer to GrantBucketAccess: one account (one credential) for every bucket granted."""

    account_id: str
    credentials: Credentials
    buckets: tuple[GrantedBucket, ...] = ()


@dataclass(frozen=True)
class HealthReport:
    """One backend's readiness as the last probe saw it."""

    backend: str
    ok: bool
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)
