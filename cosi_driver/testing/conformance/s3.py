"""With --s3-check: the granted credentials work, the access mode holds, and revoked keys stop.

Credentials are exercised exactly as a workload would use its Secret: at the endpoint and region
the Grant returned, on the bucket named as in DriverCreateBucket (the sidecar tells consumers that
name as ``BucketInfo.spec.bucketName``). Objects the checks write are removed before cleanup.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosi_driver.testing.conformance.access import credentials_of
from cosi_driver.testing.conformance.framework import CheckFailed, CheckSkipped, Session, check, params_text
from cosi_driver.testing.probes import S3Session

PROBE_KEY = "cosi-conformance/probe.txt"


class Consumer:
    """One grant's credentials, with storage errors turned into check failures that say what to fix."""

    def __init__(self, session: Session, secrets: Mapping[str, str], label: str) -> None:
        self.s3 = S3Session(secrets, session.options.propagation_seconds)
        self.endpoint = secrets.get("endpoint", "")
        self.label = label

    async def can(self, operation: str, bucket: str, key: str | None = None, *, eventually: bool = False) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if eventually:
                return await self.s3.eventually_allowed(operation, bucket, key)
            return await self.s3.allowed(operation, bucket, key)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "?")
            hint = ""
            if code in ("NoSuchBucket", "404"):
                hint = (
                    "; the storage bucket must carry the name given to DriverCreateBucket, which the sidecar "
                    "tells consumers as BucketInfo.spec.bucketName"
                )
            raise CheckFailed(
                f"S3 {operation} on {bucket}/{key or ''} with the {self.label} credentials at {self.endpoint} "
                f"failed with {code}{hint}"
            ) from None
        except (BotoCoreError, OSError) as error:
            raise CheckFailed(
                f"the S3 endpoint {self.endpoint} from the Grant is unreachable ({type(error).__name__}); "
                "it must be reachable by workloads"
            ) from None

    async def must(self, operation: str, bucket: str, key: str | None = None, *, eventually: bool = False) -> None:
        if not await self.can(operation, bucket, key, eventually=eventually):
            within = f" within {self.s3.propagation_seconds:g}s" if eventually else ""
            raise CheckFailed(f"the {self.label} credentials were denied S3 {operation} on {bucket}{within}")

    async def must_not(self, operation: str, bucket: str, key: str | None = None) -> None:
        if await self.can(operation, bucket, key):
            raise CheckFailed(f"the {self.label} credentials were allowed S3 {operation} on {bucket}/{key or ''}")


def _s3_secrets(response: Any) -> dict[str, str]:
    credentials = credentials_of(response)
    if "s3" not in credentials:
        raise CheckFailed(f"--s3-check needs s3 credentials; the Grant returned {sorted(credentials)}")
    secrets = credentials["s3"]
    endpoint = secrets.get("endpoint", "")
    if not endpoint.startswith(("http://", "https://")):
        raise CheckFailed(f"--s3-check needs an http(s) S3 endpoint; the Grant returned {endpoint!r}")
    return secrets


async def _granted(session: Session, bucket_id: str, params: Mapping[str, str] | None, label: str) -> Consumer:
    _, response = await session.grant(bucket_id, params=params)
    return Consumer(session, _s3_secrets(response), label)


def _remove_later(session: Session, consumer: Consumer, bucket: str, key: str) -> None:
    async def remove() -> None:
        await consumer.s3.allowed("delete", bucket, key)

    session.on_cleanup(remove)


@check(
    "s3.credentials-work",
    "read-write credentials put, get, list and delete on the returned endpoint",
    requires=("grant.ok",),
    needs_s3=True,
)
async def credentials_work(session: Session) -> str:
    name, bucket_id = await session.create()
    writer = await _granted(session, bucket_id, None, "read-write")
    _remove_later(session, writer, name, PROBE_KEY)
    await writer.must("put", name, PROBE_KEY, eventually=True)
    for operation in ("get", "list", "delete"):
        await writer.must(operation, name, PROBE_KEY)
    await writer.must("put", name, PROBE_KEY)  # leave one object for the access-mode checks
    session.shared["s3"] = (name, bucket_id, writer)
    return f"at {writer.endpoint}"


@check(
    "s3.other-buckets-denied",
    "credentials for one bucket are denied on another",
    requires=("s3.credentials-work",),
    needs_s3=True,
)
async def other_buckets_denied(session: Session) -> None:
    name, _, writer = session.shared["s3"]
    other, other_id = await session.create()
    owner = await _granted(session, other_id, None, "other bucket's")
    _remove_later(session, owner, other, PROBE_KEY)
    await owner.must("put", other, PROBE_KEY, eventually=True)
    writer.label = f"{name!r} read-write"
    for operation in ("get", "put", "list", "delete"):
        await writer.must_not(operation, other, PROBE_KEY)


@check(
    "s3.read-mode",
    "read-only credentials get and list but cannot put or delete",
    requires=("s3.credentials-work",),
    needs_s3=True,
)
async def read_mode(session: Session) -> str:
    params = session.options.read_access_params
    if params is None:
        raise CheckSkipped("give --read-access-param K=V: the parameters of a read-only BucketAccessClass")
    name, bucket_id, writer = session.shared["s3"]
    reader = await _granted(session, bucket_id, params, "read-only")
    await reader.must("get", name, PROBE_KEY, eventually=True)
    await reader.must("list", name)
    await reader.must_not("put", name, "cosi-conformance/by-reader.txt")
    await reader.must_not("delete", name, PROBE_KEY)
    await writer.must("get", name, PROBE_KEY)
    return params_text(params)


@check(
    "s3.write-mode",
    "write-only credentials put but cannot get or list",
    requires=("s3.credentials-work",),
    needs_s3=True,
)
async def write_mode(session: Session) -> str:
    params = session.options.write_access_params
    if params is None:
        raise CheckSkipped("give --write-access-param K=V: the parameters of a write-only BucketAccessClass")
    name, bucket_id, _ = session.shared["s3"]
    writer_only = await _granted(session, bucket_id, params, "write-only")
    key = "cosi-conformance/by-writer.txt"
    _remove_later(session, session.shared["s3"][2], name, key)
    await writer_only.must("put", name, key, eventually=True)
    await writer_only.must_not("get", name, PROBE_KEY)
    await writer_only.must_not("list", name)
    return params_text(params)


@check(
    "s3.revoked-credentials-denied",
    "after Revoke the credentials stop working",
    requires=("s3.credentials-work",),
    needs_s3=True,
)
async def revoked_denied(session: Session) -> None:
    name, bucket_id, _ = session.shared["s3"]
    _, response = await session.grant(bucket_id)
    consumer = Consumer(session, _s3_secrets(response), "revoked")
    await consumer.must("get", name, PROBE_KEY, eventually=True)
    await session.revoke(bucket_id, response.account_id)
    if not await consumer.s3.eventually_denied("get", name, PROBE_KEY):
        raise CheckFailed(
            f"credentials still read {name}/{PROBE_KEY} {consumer.s3.propagation_seconds:g}s after Revoke answered OK"
        )
