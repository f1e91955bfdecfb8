"""Plain data types the core exchanges with the spec adapters and with backends.

No protobuf and no gRPC here: the v1alpha1 adapter converts these to and from the wire, and a
future v1alpha2 adapter will do the same over the same types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from cosi_driver.core.secret import Secret


class AuthenticationType(enum.Enum):
    KEY = "Key"
    IAM = "IAM"


@dataclass(frozen=True)
class S3BucketInfo:
    """What the spec's ``Protocol.s3`` carries: enough for a client to reach the bucket."""

    region: str
    signature_version: str = "S3V4"


@dataclass(frozen=True)
class AzureBucketInfo:
    storage_account: str


BucketInfo = S3BucketInfo | AzureBucketInfo | None


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
    """The answer to CreateBucket: an opaque id the sidecar stores and sends back later."""

    bucket_id: str
    info: BucketInfo


@dataclass(frozen=True)
class Access:
    """The answer to GrantBucketAccess."""

    account_id: str
    credentials: Credentials


@dataclass(frozen=True)
class HealthReport:
    """One backend's readiness as the last probe saw it."""

    backend: str
    ok: bool
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)
