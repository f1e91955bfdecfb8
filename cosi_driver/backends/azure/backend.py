"""The ``azure-blob`` backend: containers in one storage account, grants as stored access policies.

A bucket is a container (:mod:`.names`); the core's ownership mark is container metadata under a
key Azure accepts (metadata keys must be C# identifiers, and setting metadata replaces all of it,
so the mark is written by read-modify-write). Deleting a container deletes its blobs, so Delete
looks for any blob first unless the class says purge. A grant is a stored access policy and a
service SAS naming it (:mod:`.policies`); a container's policy list is rewritten whole on every
change, so changes to one container are serialised through the core's keyed locks.

The credential is a container SAS URL (public endpoint, container, token): the v0.2.2 Secret has
no endpoint or container field for Azure, and the URL is what Azure's SDKs open directly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from cosi_driver.backends.azure import names
from cosi_driver.backends.azure.config import Account, AzureConfig, resolve_account
from cosi_driver.backends.azure.errors import BEING_DELETED, code_of, edge, is_missing
from cosi_driver.backends.azure.policies import (
    MAX_POLICIES,
    PERMISSIONS,
    PolicyId,
    Tombstones,
    access_key,
    parse_policy_id,
)
from cosi_driver.sdk import (
    AccessParams,
    AzureBucketInfo,
    AzureCredentials,
    BackendContext,
    BucketInfo,
    BucketNotEmpty,
    BucketParams,
    CreateBucket,
    DeleteBucket,
    FoundBucket,
    GrantAccess,
    Granted,
    ResourceExhausted,
    RevokeAccess,
    Secret,
)

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient, ContainerClient

log = structlog.get_logger("cosi_driver.backends.azure")

#: Container metadata key of the core's ownership mark (a C# identifier, as Azure requires).
MARK_KEY = "cosi_driver_owner"
#: What Delete looks for besides current blobs: anything Azure would delete with the container.
_CONTENT = ["snapshots", "uncommittedblobs"]


@dataclass(frozen=True)
class AzureBucketParams(BucketParams):
    """Deletion policy only: Azure Blob containers have no quotas, and versioning is an account setting."""


@dataclass(frozen=True)
class AzureAccessParams(AccessParams):
    pass


class AzureBlobBackend:
    """One storage account through one long-lived aio client, rebuilt when the key changes."""

    def __init__(self, config: AzureConfig, context: BackendContext) -> None:
        self.config = config
        self.context = context
        self.tombstones = Tombstones(context.store, context.name)
        self._client: BlobServiceClient | None = None
        self._client_account: Account | None = None
        self._client_lock = asyncio.Lock()
        resolve_account(config, f"backend {context.name!r}")  # fail fast on a bad configuration

    # -- clients ------------------------------------------------------------------------------

    def account(self) -> Account:
        """Account name, key and endpoints, with the secrets read again (rotation needs no restart)."""
        return resolve_account(self.config, f"backend {self.context.name!r}")

    async def _service(self) -> tuple[BlobServiceClient, Account]:
        account = self.account()
        async with self._client_lock:
            if self._client is None or self._client_account != account:
                from azure.storage.blob.aio import BlobServiceClient

                if self._client is not None:
                    await self._client.close()
                verify: bool | str = str(self.config.ca_bundle) if self.config.ca_bundle else self.config.verify_tls
                self._client = BlobServiceClient(
                    account.endpoint,
                    credential={"account_name": account.name, "account_key": account.key.reveal()},
                    api_version=self.config.api_version,
                    connection_timeout=self.config.connect_timeout,
                    read_timeout=self.config.read_timeout,
                    connection_verify=verify,
                    retry_total=3,
                )
                self._client_account = account
            return self._client, account

    async def _container(self, name: str) -> ContainerClient:
        service, _ = await self._service()
        return service.get_container_client(names.container_name(name))

    # -- buckets ------------------------------------------------------------------------------

    async def find_bucket(self, name: str) -> FoundBucket | None:
        container = await self._container(name)
        with edge(f"look up container {container.container_name!r}"):
            try:
                properties = await container.get_container_properties()
            except Exception as error:
                if is_missing(error):
                    return None
                raise
        return FoundBucket(mark=(properties.metadata or {}).get(MARK_KEY))

    async def create_bucket(self, request: CreateBucket[AzureBucketParams]) -> BucketInfo:
        container = await self._container(request.name)
        if container.container_name != request.name:
            log.info("bucket name mapped to a container name", bucket=request.name, container=container.container_name)
        with edge(f"create container {container.container_name!r}"):
            try:
                await container.create_container(metadata={MARK_KEY: request.mark})
            except Exception as error:
                # Our own earlier attempt (the core checked ownership before calling us): mark it,
                # keeping whatever else its metadata holds (setting metadata replaces all of it).
                if code_of(error) == BEING_DELETED or getattr(error, "status_code", None) != 409:
                    raise
                metadata = dict((await container.get_container_properties()).metadata or {})
                if metadata.get(MARK_KEY) != request.mark:
                    metadata[MARK_KEY] = request.mark
                    await container.set_container_metadata(metadata=metadata)
        return self.bucket_info(request.name)

    def bucket_info(self, name: str) -> BucketInfo:
        return AzureBucketInfo(storage_account=self.account().name)

    async def delete_bucket(self, request: DeleteBucket) -> None:
        container = await self._container(request.name)
        with edge(f"delete container {container.container_name!r}"):
            if not request.purge:
                # Azure deletes a container together with every blob in it: look first.
                async for blob in container.list_blobs(include=_CONTENT, results_per_page=1):
                    raise BucketNotEmpty(request.name, f"it holds blob {blob.name!r} (and maybe more)")
            try:
                await container.delete_container()
            except Exception as error:
                if not is_missing(error):
                    raise

    # -- access -------------------------------------------------------------------------------

    async def grant_access(self, request: GrantAccess[AzureAccessParams]) -> Granted:
        # One container per grant: one SAS cannot span containers (multi_bucket_grants is off, so
        # the core answers a grant of several buckets with OUT_OF_RANGE before calling us).
        container = await self._container(request.bucket)
        policy_id = await self.tombstones.next_id(access_key(request.scope, request.name))
        permission = PERMISSIONS[request.mode]
        key = ("azure-acl", self.context.name, container.container_name)
        with edge(f"grant access to container {container.container_name!r}"):
            async with self.context.locks.hold(key):
                public_access, policies = await _read_policies(container)
                current = policies.get(str(policy_id))
                if current is None:
                    if len(policies) >= MAX_POLICIES:
                        raise ResourceExhausted(
                            f"container {container.container_name!r} already holds {len(policies)} stored access "
                            f"policies, Azure's limit is {MAX_POLICIES} per container: revoke an access to bucket "
                            f"{request.bucket!r} before granting another"
                        )
                    expiry: datetime | None = _now() + timedelta(seconds=self.config.sas_lifetime)
                    policies[str(policy_id)] = _policy(permission, expiry)
                    await container.set_container_access_policy(
                        signed_identifiers=policies, public_access=public_access
                    )
                else:
                    expiry = _as_datetime(current.expiry)
                    if current.permission != permission:  # a v1alpha1 retry with a changed accessMode
                        policies[str(policy_id)] = _policy(permission, expiry)
                        await container.set_container_access_policy(
                            signed_identifiers=policies, public_access=public_access
                        )
        return Granted(
            account=str(policy_id), credentials=self._credentials(container.container_name, policy_id, expiry)
        )

    def _credentials(self, container: str, policy_id: PolicyId, expiry: datetime | None) -> AzureCredentials:
        from azure.storage.blob import generate_container_sas

        account = self.account()
        # Permission and expiry stay in the policy: a token naming a policy carries neither, so the
        # same policy always signs to the same token and revoking the policy revokes it.
        token = generate_container_sas(
            account.name, container, account_key=account.key.reveal(), policy_id=str(policy_id)
        )
        return AzureCredentials(access_token=Secret(f"{account.public_endpoint}/{container}?{token}"), expiry=expiry)

    async def revoke_access(self, request: RevokeAccess) -> None:
        policy_id = parse_policy_id(request.account)
        await self.tombstones.bury(policy_id)
        for bucket in request.buckets:
            container = await self._container(bucket)
            key = ("azure-acl", self.context.name, container.container_name)
            with edge(f"revoke policy {str(policy_id)!r} on container {container.container_name!r}"):
                async with self.context.locks.hold(key):
                    try:
                        public_access, policies = await _read_policies(container)
                    except Exception as error:
                        if is_missing(error):
                            continue  # the container is gone, and the policy with it
                        raise
                    if policies.pop(str(policy_id), None) is not None:
                        await container.set_container_access_policy(
                            signed_identifiers=policies, public_access=public_access
                        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def check_health(self) -> None:
        service, _ = await self._service()
        with edge("check health (List Containers)"):
            async for _ in service.list_containers(results_per_page=1):
                break

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _now() -> datetime:
    # Azure keeps policy times to the second; without the fraction a re-read compares equal.
    return datetime.now(UTC).replace(microsecond=0)


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _policy(permission: str | None, expiry: datetime | None, start: datetime | None = None) -> Any:
    from azure.storage.blob import AccessPolicy

    return AccessPolicy(permission=permission, expiry=expiry, start=start)


async def _read_policies(container: ContainerClient) -> tuple[Any, dict[str, Any]]:
    """The container's public access level and its stored access policies by id (ours and others')."""
    acl = await container.get_container_access_policy()
    policies = {
        identifier.id: _copy(identifier.access_policy) if identifier.access_policy is not None else None
        for identifier in acl.get("signed_identifiers") or []
    }
    return acl.get("public_access"), policies


def _copy(policy: Any) -> Any:
    """A stored policy as read, in the form the write call takes (other tenants' policies too)."""
    return _policy(policy.permission, _as_datetime(policy.expiry), _as_datetime(policy.start))
