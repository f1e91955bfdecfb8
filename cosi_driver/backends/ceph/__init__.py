"""The ``ceph-rgw`` backend: Ceph RADOS Gateway through its Admin Ops API and S3.

Buckets are made with S3 by the driver's admin user, which therefore owns them; each
BucketAccess becomes one RGW user, with keys derived from the driver master key and a bucket
policy statement for exactly its access mode. This module only declares the configuration and
parameters; the implementation (and aioboto3, aiohttp) is imported when a backend is built, so a
driver that does not use Ceph never loads them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosi_driver.backends.s3kit import endpoints
from cosi_driver.core.backend import BackendContext, BackendType
from cosi_driver.core.options import SECRET, STRING, ConfigProblem, SecretRef, option
from cosi_driver.core.params import AccessParams, BucketParams, Quota, Versioning

if TYPE_CHECKING:
    from cosi_driver.backends.ceph.backend import CephRgwBackend


@dataclass(frozen=True)
class CephRgwConfig:
    endpoint: str = option(
        endpoints.ENDPOINT_URL,
        doc="URL of the RADOS Gateway the driver calls for S3 and Admin Ops, e.g. "
        "http://rook-ceph-rgw-store.rook-ceph.svc.",
    )
    admin_access_key_id: SecretRef = option(
        SECRET, doc="Access key of the RGW user the driver acts as; it owns every bucket the driver creates."
    )
    admin_secret_access_key: SecretRef = option(SECRET, doc="Secret key of that user.")
    public_endpoint: str | None = option(**endpoints.public_endpoint("endpoint"))
    region: str = option(**endpoints.REGION)
    verify_tls: bool = option(**endpoints.VERIFY_TLS)
    ca_bundle: Path | None = option(**endpoints.CA_BUNDLE)
    admin_entry: str = option(
        STRING, default="admin", doc="The gateway's rgw_admin_entry: the path under which Admin Ops is served."
    )
    connect_timeout: float = option(**endpoints.CONNECT_TIMEOUT)
    read_timeout: float = option(**endpoints.READ_TIMEOUT)


@dataclass(frozen=True)
class CephRgwBucketParams(Quota, Versioning, BucketParams):
    """RGW enforces bucket quotas (size and object count) and supports versioning."""


@dataclass(frozen=True)
class CephRgwAccessParams(AccessParams):
    pass


def _build(config: CephRgwConfig, context: BackendContext) -> CephRgwBackend:
    if importlib.util.find_spec("aioboto3") is None:  # found without importing it
        raise ConfigProblem(
            f"backend {context.name!r} (type ceph-rgw)",
            "needs aioboto3, which is not installed",
            "pip install 'cosi-driver[ceph-rgw]'",
        )
    from cosi_driver.backends.ceph.backend import CephRgwBackend

    return CephRgwBackend(config, context)


BACKEND: BackendType[Any, Any, Any] = BackendType(
    type_name="ceph-rgw",
    summary="Ceph RADOS Gateway: buckets and bucket policies over S3, one RGW user per BucketAccess "
    "over the Admin Ops API, keys derived from the driver master key.",
    config=CephRgwConfig,
    bucket_params=CephRgwBucketParams,
    access_params=CephRgwAccessParams,
    build=_build,
    derives_credentials=True,
    s3_compatible=True,
    multi_bucket_grants=True,
)
