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
  never contain a secret;
* describe how a client reaches a bucket (:meth:`Backend.bucket_info`), and answer
  :meth:`Backend.find_bucket` for any bucket name, including buckets the driver did not make (an
  *existing* bucket the operator allowed carries no mark; the core never deletes one).

Grants (since v1alpha2) name several buckets, each with its own access mode. A backend that can
put one credential on several buckets sets ``BackendType.multi_bucket_grants``; for one that
cannot, the core answers a grant of more than one bucket with OUT_OF_RANGE and the backend only
ever sees one bucket (``GrantAccess.bucket`` / ``GrantAccess.mode``).

A backend package exposes one :class:`BackendType` through the ``cosi_driver.backends`` entry
point group; the driver imports only the backends its configuration names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.params import AccessParams, BucketParams
from cosi_driver.core.stores import StateStore
from cosi_driver.core.types import AccessMode, AuthenticationType, BucketInfo, Credentials, ObjectProtocol

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
class AccessedBucket:
    """One bucket of a grant and what the credential may do in it."""

    bucket: str  # the real bucket name in storage
    mode: AccessMode
    existing: bool = False  # an operator-allowed bucket the driver did not make (carries no mark)


@dataclass(frozen=True)
class GrantAccess(Generic[AP]):
    """Make (or find again) one account whose credential reaches exactly ``buckets``.

    ``per_bucket`` says how the account is named, which is part of the storage's state:

    * True (every v1alpha1 grant): the account belongs to (bucket, name), as every account made
      before v1alpha2 did; there is exactly one bucket. A retry with another mode applies it.
    * False (v1alpha2): the account belongs to ``name`` alone and may cover several buckets. The
      core has already checked that a retry names the same buckets and modes as before.
    """

    name: str  # the BucketAccess's name as the sidecar sends it ("ba-<uid>")
    buckets: tuple[AccessedBucket, ...]
    authentication_type: AuthenticationType
    params: AP
    per_bucket: bool = True

    @property
    def only(self) -> AccessedBucket:
        """The one bucket of a one-bucket grant (all a backend without multi-bucket grants sees)."""
        if len(self.buckets) != 1:
            raise ValueError(f"a grant of {len(self.buckets)} buckets has no single bucket")
        return self.buckets[0]

    @property
    def bucket(self) -> str:
        return self.only.bucket

    @property
    def mode(self) -> AccessMode:
        return self.only.mode

    @property
    def scope(self) -> str:
        """What the account name is derived from besides ``name``: the bucket, or "" (name alone)."""
        return self.buckets[0].bucket if self.per_bucket else ""


@dataclass(frozen=True)
class Granted:
    account: str  # the backend's own account name; the core wraps it into the opaque account_id
    credentials: Credentials
    key_version: int = 0  # the derivation key version the credentials were made with, 0 if none


@dataclass(frozen=True)
class RevokeAccess:
    """Remove ``account`` and its keys, and its access to ``buckets`` (every bucket it was given)."""

    account: str
    buckets: tuple[str, ...]

    @property
    def bucket(self) -> str:
        """The first bucket: the only one for a one-bucket grant."""
        return self.buckets[0]


class Backend(Protocol[BP, AP]):
    """What every backend implements. All methods are coroutines and must be idempotent."""

    async def find_bucket(self, name: str) -> FoundBucket | None:
        """The bucket if it exists (with the mark it carries), None if it does not."""
        ...

    async def create_bucket(self, request: CreateBucket[BP]) -> BucketInfo:
        """Create the bucket, or finish an earlier attempt: apply settings, store the mark.

        Returns what :meth:`bucket_info` returns for the bucket (the v1alpha1 and v1alpha2 answer).
        """
        ...

    def bucket_info(self, name: str) -> BucketInfo:
        """How a client reaches bucket ``name``, with no storage call. For S3: the real bucket
        name, the public endpoint, the region and the addressing style, all non-empty."""
        ...

    async def delete_bucket(self, request: DeleteBucket) -> None:
        """Delete an existing bucket; raise BucketNotEmpty when it holds data and purge is off."""
        ...

    async def grant_access(self, request: GrantAccess[AP]) -> Granted:
        """Make (or find again) the account for ``request.name`` and return working credentials
        that reach each bucket of ``request.buckets`` in exactly its mode and nothing else."""
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


@runtime_checkable
class NamesAccounts(Protocol):
    """A backend whose account name follows from the grant alone, before any storage call.

    Optional. With it the core locks a Grant and a Revoke of one account under one key (the
    account name): Revoke knows only the account, Grant only the access name and its scope.
    ``scope`` is :attr:`GrantAccess.scope`: the bucket of a one-bucket (v1alpha1) account, ""
    for a name-scoped one.
    """

    def account_name(self, scope: str, access_name: str) -> str: ...


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
    supports_iam: bool = False  # accepts authentication_type IAM (v1alpha1)
    supports_service_account: bool = False  # accepts authentication_type SERVICE_ACCOUNT (v1alpha2)
    # One credential can reach several buckets (v1alpha2 grants); without it the core answers a
    # grant of several buckets with OUT_OF_RANGE and the backend sees one bucket per grant.
    multi_bucket_grants: bool = False
    protocols: tuple[ObjectProtocol, ...] = (ObjectProtocol.S3,)  # what its bucket infos describe
    s3_compatible: bool = False  # the acceptance suite runs data-path checks with an S3 client
    # For development and tests, never for real workloads (e.g. credentials no client can use):
    # labelled so in the docs and in the configuration error that lists the types; serve warns.
    development_only: bool = False

    def make(self, config: Any, context: BackendContext) -> Backend[BP, AP]:
        return self.build(config, context)
