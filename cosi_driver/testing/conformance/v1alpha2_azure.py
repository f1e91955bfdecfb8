"""With --azure-check, the v1alpha2 data path on Azure: one grant per mode, each SAS in exactly its mode.

A v1alpha2 grant over Azure answers ``CredentialInfo.azure.access_token``; it is used as a
workload uses ``COSI_AZURE_ACCESS_TOKEN``, through the same :class:`~.azure.Consumer` as the v1alpha1
checks. One SAS cannot span containers, so a driver may answer a multi-bucket grant with
OUT_OF_RANGE (``v2.grant.multi-bucket`` is then skipped); the modes are checked here one bucket
per grant, which every Azure driver must serve.
"""

from __future__ import annotations

from typing import Any

from cosi_driver.testing.conformance.azure import PROBE_BLOB, Consumer
from cosi_driver.testing.conformance.framework import CheckFailed, CheckSkipped, Session, check
from cosi_driver.testing.conformance.v1alpha2 import API, create2, grant2

WRITTEN_BLOB = "cosi-conformance-by-v1alpha2-sas.txt"


def consumer(session: Session, response: Any, label: str) -> Consumer:
    if not response.credentials.HasField("azure"):
        raise CheckFailed("--azure-check needs credentials.azure; the grant answered another slot")
    return Consumer(session, {"accessToken": response.credentials.azure.access_token}, label)


@check(
    "v2.azure.modes",
    "v1alpha2 SAS per mode: READ_WRITE does everything, READ_ONLY only reads, WRITE_ONLY only writes",
    requires=("v2.grant.ok",),
    needs_azure=True,
    api=API,
)
async def modes(session: Session) -> str:
    if session.v2_protocol() != "AZURE":
        raise CheckSkipped("the driver lists S3: the v1alpha2 data path is checked by --s3-check")
    _, created = await create2(session)
    sessions = {}
    for mode in ("READ_WRITE", "READ_ONLY", "WRITE_ONLY"):
        _, response = await grant2(session, [(created.bucket_id, mode)])
        sessions[mode] = (response, consumer(session, response, mode))
    _, writer = sessions["READ_WRITE"]
    _, reader = sessions["READ_ONLY"]
    _, write_only = sessions["WRITE_ONLY"]

    async def remove() -> None:
        for blob in (PROBE_BLOB, WRITTEN_BLOB):
            await writer.azure.allowed("delete", blob)

    session.on_cleanup(remove)
    await writer.must("create", PROBE_BLOB, eventually=True)
    for operation in ("put", "get", "list"):
        await writer.must(operation, PROBE_BLOB)
    await reader.must("get", PROBE_BLOB, eventually=True)
    await reader.must("list")
    for operation in ("put", "delete"):
        await reader.must_not(operation, PROBE_BLOB)
    await write_only.must("create", WRITTEN_BLOB, eventually=True)
    for operation in ("get", "list", "delete"):
        await write_only.must_not(operation, PROBE_BLOB)
    _, other = await create2(session)
    _, stranger = await grant2(session, [(other.bucket_id, "READ_WRITE")])
    foreign = consumer(session, stranger, "other container's").container
    for operation in ("get", "put", "list"):
        await writer.must_not(operation, PROBE_BLOB, container=foreign)
    session.shared["v2_azure"] = (created.bucket_id, sessions)
    return f"container {writer.container}; {foreign} unreachable"


@check(
    "v2.azure.revoke",
    "after a v1alpha2 Revoke the SAS is refused, and the blobs stay",
    requires=("v2.azure.modes",),
    needs_azure=True,
    api=API,
)
async def revoke(session: Session) -> None:
    bucket_id, sessions = session.shared["v2_azure"]
    response, reader = sessions["READ_ONLY"]
    answer = await session.answer(session.revoke2_request(response.account_id, [bucket_id]))
    if not answer.ok:
        raise CheckFailed(f"Revoke of {response.account_id!r} answered {answer.describe()}")
    session.accounts2.pop(response.account_id, None)
    if not await reader.azure.eventually_denied("get", PROBE_BLOB):
        raise CheckFailed(
            f"the revoked SAS still reads {reader.container}/{PROBE_BLOB} "
            f"{reader.azure.propagation_seconds:g}s after Revoke answered OK"
        )
    _, writer = sessions["READ_WRITE"]
    for blob in (PROBE_BLOB, WRITTEN_BLOB):
        if not await writer.can("get", blob):
            raise CheckFailed(f"{writer.container}/{blob} is gone after Revoke: revoking must keep the data")
