"""Azure Blob views for the acceptance suite and the conformance kit (needs the ``azure`` extra).

:class:`AzureAdminProbe` looks at a storage account with its key (the suite's out-of-band view);
:class:`AzureSession` uses a granted container SAS URL exactly as a consumer would, and can aim the
same token at another container of the account to show it is refused there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cosi_driver.testing.probes import poll

#: Operations a session tries: "create" makes a new blob (no overwrite), "put" overwrites one.
OPERATIONS = ("create", "put", "get", "list", "delete")


def _is_denied(error: BaseException) -> bool:
    return getattr(error, "status_code", None) in (401, 403)


class AzureAdminProbe:
    """Container and blob checks with the account key.

    ``container_of`` maps a COSI bucket name to its container, as the backend under test does
    (``cosi_driver.backends.azure.names.container_name`` for ``azure-blob``; the framework does not
    import backends, so the test hands it in).
    """

    def __init__(
        self,
        endpoint: str,
        account_name: str,
        account_key: str,
        api_version: str | None = None,
        container_of: Callable[[str], str] = str,
    ) -> None:
        self.endpoint = endpoint
        self.container_of = container_of
        self.account_name = account_name
        self._key = account_key
        self.api_version = api_version

    @asynccontextmanager
    async def service(self) -> AsyncIterator[Any]:
        from azure.storage.blob.aio import BlobServiceClient

        options: dict[str, Any] = {"retry_total": 0}
        if self.api_version:
            options["api_version"] = self.api_version
        credential = {"account_name": self.account_name, "account_key": self._key}
        async with BlobServiceClient(self.endpoint, credential=credential, **options) as service:
            yield service

    async def bucket_exists(self, bucket: str) -> bool:
        async with self.service() as service:
            return bool(await service.get_container_client(self.container_of(bucket)).exists())

    async def put_object(self, bucket: str, key: str, data: bytes) -> None:
        async with self.service() as service:
            await service.get_container_client(self.container_of(bucket)).upload_blob(key, data, overwrite=True)

    async def object_exists(self, bucket: str, key: str) -> bool:
        async with self.service() as service:
            return bool(await service.get_container_client(self.container_of(bucket)).get_blob_client(key).exists())

    async def create_foreign_bucket(self, bucket: str) -> None:
        async with self.service() as service:
            await service.create_container(self.container_of(bucket))

    async def remove_foreign_bucket(self, bucket: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        async with self.service() as service:
            with suppress(ResourceNotFoundError):
                await service.delete_container(self.container_of(bucket))

    async def policies(self, bucket: str) -> dict[str, Any]:
        """The container's stored access policies by id."""
        async with self.service() as service:
            acl = await service.get_container_client(self.container_of(bucket)).get_container_access_policy()
        return {item.id: item.access_policy for item in acl.get("signed_identifiers") or []}

    async def account_exists(self, account: str) -> bool:
        """An account is a stored access policy id: it exists while any container holds it."""
        async with self.service() as service:
            async for container in service.list_containers():
                client = service.get_container_client(container.name)
                acl = await client.get_container_access_policy()
                if any(item.id == account for item in acl.get("signed_identifiers") or []):
                    return True
        return False


class AzureSession:
    """Use a container SAS URL as a consumer would; ``container=`` aims the same token elsewhere."""

    def __init__(self, sas_url: str, propagation_seconds: float = 30.0, api_version: str | None = None) -> None:
        self.sas_url = sas_url
        self.propagation_seconds = propagation_seconds
        self.api_version = api_version
        parts = urlsplit(sas_url)
        self.container = parts.path.rstrip("/").rsplit("/", 1)[-1]

    def url_for(self, container: str | None) -> str:
        if container is None or container == self.container:
            return self.sas_url
        parts = urlsplit(self.sas_url)
        path = parts.path.rstrip("/").rsplit("/", 1)[0] + "/" + container
        return urlunsplit(parts._replace(path=path))

    async def allowed(self, operation: str, key: str | None = None, container: str | None = None) -> bool:
        """True if the service accepted the operation, False if it refused the token (401/403)."""
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob.aio import ContainerClient

        options: dict[str, Any] = {"retry_total": 0}
        if self.api_version:
            options["api_version"] = self.api_version
        key = key or "cosi-check.txt"
        async with ContainerClient.from_container_url(self.url_for(container), **options) as client:
            try:
                if operation == "create":
                    await client.upload_blob(key, b"cosi check", overwrite=False)
                elif operation == "put":
                    await client.upload_blob(key, b"cosi check", overwrite=True)
                elif operation == "get":
                    await (await client.download_blob(key)).readall()
                elif operation == "list":
                    async for _ in client.list_blobs(results_per_page=1):
                        break
                elif operation == "delete":
                    await client.delete_blob(key)
                else:  # pragma: no cover - a typo in a caller
                    raise ValueError(operation)
            except HttpResponseError as error:
                if _is_denied(error):
                    return False
                raise
        return True

    async def eventually_allowed(self, operation: str, key: str | None = None) -> bool:
        return await poll(lambda: self.allowed(operation, key), self.propagation_seconds)

    async def eventually_denied(self, operation: str, key: str | None = None) -> bool:
        async def denied() -> bool:
            return not await self.allowed(operation, key)

        return await poll(denied, self.propagation_seconds)
