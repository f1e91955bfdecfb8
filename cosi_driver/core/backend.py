"""The contract between the driver core and a storage backend.

A backend is a small module that only knows its storage system. The core has already validated
the request, parsed the parameters into the backend's own typed dataclasses, decided that the
bucket is ours, de-duplicated concurrent calls and put a time limit around the call. What is left
for the backend:

* make each operation idempotent *at the storage level* (a retried create of an existing bucket
  succeeds, a revoke of a missing user succeeds);
* carry the core's ownership mark on buckets where the storage can (a tag, a metadata record) and
  report it back from :meth:`Backend.find_bucket`;
* translate storage errors into :mod:`cosi_driver.core.errors` at its edge, with messages that
  never contain a secret.

A backend package exposes one :class:`BackendType` through the ``cosi_driver.backends`` entry
point group; the driver imports only the backends its configuration names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.params import AccessParams, BucketParams
from cosi_driver.core.stores import StateStore
from cosi_driver.core.types import AuthenticationType, BucketInfo, Credentials

BP = TypeVar("BP", bound=BucketParams)
AP = TypeVar("AP", bound=AccessParams)
C = TypeVar("C")


@dataclass(frozen=True)
class FoundBucket:
    """A bucket that exists in storage. ``mark`` is the ownership mark it carries, if any."""

    mark: str | None = None


@dataclass(frozen=True)
class CreateBucket(Generic[BP]):
    name: str
    params: BP
    mark: str  # opaque ownership mark to store with the bucket where the storage can hold one


@dataclass(frozen=True)
class DeleteBucket:
    name: str
    purge: bool  # delete objects, versions and unfinished uploads first


@dataclass(frozen=True)
class GrantAccess(Generic[AP]):
    bucket: str
    name: str  # the BucketAccess's name as the sidecar sends it ("ba-<uid>")
    authentication_type: AuthenticationType
    params: AP


@dataclass(frozen=True)
class Granted:
    account: str  # the backend's own account name; the core wraps it into the opaque account_id
    credentials: Credentials
    key_version: int = 0  # the derivation key version the credentials were made with, 0 if none


@dataclass(frozen=True)
class RevokeAccess:
    bucket: str
    account: str


class Backend(Protocol[BP, AP]):
    """What every backend implements. All methods are coroutines and must be idempotent."""

    async def find_bucket(self, name: str) -> FoundBucket | None:
        """The bucket if it exists (with the mark it carries), None if it does not."""
        ...

    async def create_bucket(self, request: CreateBucket[BP]) -> BucketInfo:
        """Create the bucket, or finish an earlier attempt: apply settings, store the mark."""
        ...

    async def delete_bucket(self, request: DeleteBucket) -> None:
        """Delete an existing bucket; raise BucketNotEmpty when it holds data and purge is off."""
        ...

    async def grant_access(self, request: GrantAccess[AP]) -> Granted:
        """Make (or find again) the account for ``request.name`` and return working credentials."""
        ...

    async def revoke_access(self, request: RevokeAccess) -> None:
        """Remove the account and its keys, keeping the bucket's data. Already gone is success."""
        ...

    async def check_health(self) -> None:
        """Raise a core error (usually Unavailable) when the storage cannot serve requests."""
        ...

    async def close(self) -> None:
        """Release connections and child processes."""
        ...


@dataclass(frozen=True)
class BackendContext:
    """What the core gives a backend when it builds it."""

    name: str  # the configured name, as it appears in ids and in the ``backend`` parameter
    credentials: CredentialKit
    store: StateStore
    locks: KeyedLocks  # shared keyed locks, e.g. to serialise read-modify-write of a bucket policy
    driver_name: str


@dataclass(frozen=True)
class BackendType(Generic[C, BP, AP]):
    """A kind of backend, as registered through the ``cosi_driver.backends`` entry point."""

    type_name: str
    summary: str
    config: type[C]  # a dataclass whose fields are made with cosi_driver.sdk.setting()
    bucket_params: type[BP]
    access_params: type[AP]
    build: Callable[[C, BackendContext], Backend[BP, AP]]
    derives_credentials: bool = False  # needs the driver master key
    supports_iam: bool = False  # accepts authentication_type IAM
    s3_compatible: bool = False  # the acceptance suite runs data-path checks with an S3 client
    # For development and tests, never for real workloads (e.g. credentials no client can use):
    # labelled so in the docs and in the configuration error that lists the types; serve warns.
    development_only: bool = False

    def make(self, config: Any, context: BackendContext) -> Backend[BP, AP]:
        return self.build(config, context)
