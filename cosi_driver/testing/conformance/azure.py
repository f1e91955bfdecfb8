"""With --azure-check: granted SAS URLs work on their container, keep to their mode, stop when revoked.

The ``azure`` credential's ``accessToken`` is used as a workload would use its Secret. A bare SAS
token names no container and no endpoint (the v0.2.2 Secret has neither for Azure), so the checks
need the container SAS URL form ``<blob endpoint>/<container>?<token>``; a driver that returns a
bare token fails ``azure.credentials-work`` with a message saying so. Blobs the checks write are
removed before cleanup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosi_driver.testing.conformance.access import credentials_of
from cosi_driver.testing.conformance.framework import CheckFailed, CheckSkipped, Session, check, params_text

PROBE_BLOB = "cosi-conformance-probe.txt"
_OTHER_PROBE = "cosi-conformance-other.txt"


class Consumer:
    """One grant's SAS URL, with service errors turned into check failures that say what to fix."""

    def __init__(self, session: Session, secrets: Mapping[str, str], label: str) -> None:
        from cosi_driver.testing.azure import AzureSession

        token = secrets.get("accessToken", "")
        if not token.startswith(("http://", "https://")) or "?" not in token:
            raise CheckFailed(
                "--azure-check needs accessToken as a container SAS URL (<blob endpoint>/<container>?<token>); "
                "a bare token tells a workload neither the endpoint nor the container"
            )
        self.azure = AzureSession(token, session.options.propagation_seconds)
        self.label = label

    @property
    def container(self) -> str:
        return self.azure.container

    async def can(self, operation: str, key: str | None = None, *, container: str | None = None) -> bool:
        from azure.core.exceptions import AzureError

        try:
            return await self.azure.allowed(operation, key, container=container)
        except AzureError as error:
            code = getattr(error, "error_code", None)
            code_text = str(getattr(code, "value", code) or type(error).__name__)
            raise CheckFailed(
                f"Azure {operation} on {container or self.container}/{key or ''} with the {self.label} SAS failed "
                f"with {code_text}"
            ) from None

    async def must(self, operation: str, key: str | None = None, *, eventually: bool = False) -> None:
        if eventually:
            allowed = await self.azure.eventually_allowed(operation, key)
        else:
            allowed = await self.can(operation, key)
        if not allowed:
            within = f" within {self.azure.propagation_seconds:g}s" if eventually else ""
            raise CheckFailed(f"the {self.label} SAS was denied {operation} on {self.container}{within}")

    async def must_not(self, operation: str, key: str | None = None, *, container: str | None = None) -> None:
        if await self.can(operation, key, container=container):
            where = container or self.container
            raise CheckFailed(f"the {self.label} SAS was allowed {operation} on {where}/{key or ''}")


def _azure_secrets(response: Any) -> dict[str, str]:
    credentials = credentials_of(response)
    if "azure" not in credentials:
        raise CheckFailed(f"--azure-check needs azure credentials; the Grant returned {sorted(credentials)}")
    return credentials["azure"]


async def _granted(session: Session, bucket_id: str, params: Mapping[str, str] | None, label: str) -> Consumer:
    _, response = await session.grant(bucket_id, params=params)
    return Consumer(session, _azure_secrets(response), label)


def _remove_later(session: Session, consumer: Consumer, key: str) -> None:
    async def remove() -> None:
        await consumer.azure.allowed("delete", key)

    session.on_cleanup(remove)


@check(
    "azure.credentials-work",
    "a read-write SAS creates, overwrites, reads, lists and deletes blobs in its container",
    requires=("grant.ok",),
    needs_azure=True,
)
async def credentials_work(session: Session) -> str:
    _, bucket_id = await session.create()
    writer = await _granted(session, bucket_id, None, "read-write")
    _remove_later(session, writer, PROBE_BLOB)
    await writer.must("create", PROBE_BLOB, eventually=True)
    for operation in ("put", "get", "list", "delete"):
        await writer.must(operation, PROBE_BLOB)
    await writer.must("put", PROBE_BLOB)  # leave one blob for the mode and revoke checks
    session.shared["azure"] = (bucket_id, writer)
    return f"container {writer.container}"


@check(
    "azure.other-containers-denied",
    "a SAS for one container is refused on another",
    requires=("azure.credentials-work",),
    needs_azure=True,
)
async def other_containers_denied(session: Session) -> None:
    _, writer = session.shared["azure"]
    _, other_id = await session.create()
    owner = await _granted(session, other_id, None, "other container's")
    _remove_later(session, owner, _OTHER_PROBE)
    await owner.must("put", _OTHER_PROBE, eventually=True)
    for operation in ("get", "put", "list", "delete"):
        await writer.must_not(operation, _OTHER_PROBE, container=owner.container)


@check(
    "azure.read-mode",
    "a read-only SAS reads and lists but cannot create, overwrite or delete",
    requires=("azure.credentials-work",),
    needs_azure=True,
)
async def read_mode(session: Session) -> str:
    params = session.options.read_access_params
    if params is None:
        raise CheckSkipped("give --read-access-param K=V: the parameters of a read-only BucketAccessClass")
    bucket_id, writer = session.shared["azure"]
    reader = await _granted(session, bucket_id, params, "read-only")
    await reader.must("get", PROBE_BLOB, eventually=True)
    await reader.must("list")
    await reader.must_not("create", "cosi-conformance-by-reader.txt")
    await reader.must_not("put", PROBE_BLOB)
    await reader.must_not("delete", PROBE_BLOB)
    await writer.must("get", PROBE_BLOB)
    return params_text(params)


@check(
    "azure.write-mode",
    "a write-only SAS creates and overwrites but cannot read, list or delete",
    requires=("azure.credentials-work",),
    needs_azure=True,
)
async def write_mode(session: Session) -> str:
    params = session.options.write_access_params
    if params is None:
        raise CheckSkipped("give --write-access-param K=V: the parameters of a write-only BucketAccessClass")
    bucket_id, writer = session.shared["azure"]
    writer_only = await _granted(session, bucket_id, params, "write-only")
    key = "cosi-conformance-by-writer.txt"
    _remove_later(session, writer, key)
    await writer_only.must("create", key, eventually=True)
    await writer_only.must("put", key)
    for operation in ("get", "list", "delete"):
        await writer_only.must_not(operation, PROBE_BLOB)
    return params_text(params)


@check(
    "azure.revoked-sas-denied",
    "after Revoke the SAS is refused, and the blobs it wrote stay",
    requires=("azure.credentials-work",),
    needs_azure=True,
)
async def revoked_denied(session: Session) -> None:
    bucket_id, writer = session.shared["azure"]
    _, response = await session.grant(bucket_id)
    consumer = Consumer(session, _azure_secrets(response), "revoked")
    key = "cosi-conformance-by-revoked.txt"
    _remove_later(session, writer, key)
    await consumer.must("put", key, eventually=True)
    await session.revoke(bucket_id, response.account_id)
    if not await consumer.azure.eventually_denied("get", key):
        raise CheckFailed(
            f"the SAS still reads {consumer.container}/{key} {consumer.azure.propagation_seconds:g}s after Revoke "
            "answered OK"
        )
    if not await writer.can("get", key):
        raise CheckFailed(f"{consumer.container}/{key} is gone after Revoke: revoking must keep the data")
