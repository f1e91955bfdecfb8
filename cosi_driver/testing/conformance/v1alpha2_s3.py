"""With --s3-check, the v1alpha2 data path: one key over several buckets, each in exactly its mode.

The key is used as a workload uses its Secrets: at the endpoint, region and bucket name each
bucket's ``S3BucketInfo`` names. A second READ_WRITE grant over the same buckets (the "seeder")
writes the objects the modes are tested on and later shows they survived the revoke.
"""

from __future__ import annotations

from typing import Any

from cosi_driver.testing.conformance.framework import CheckFailed, Session, check
from cosi_driver.testing.conformance.s3 import PROBE_KEY, Consumer
from cosi_driver.testing.conformance.v1alpha2 import API, create2, grant2

WRITTEN_KEY = "cosi-conformance/by-v1alpha2-key.txt"


def consumer(session: Session, response: Any, label: str) -> Consumer:
    """The grant's key as a :class:`Consumer`, at the endpoint its first bucket names."""
    first = response.buckets[0].bucket_info.s3
    endpoint = first.endpoint
    if not endpoint.startswith(("http://", "https://")):
        raise CheckFailed(f"--s3-check needs an http(s) S3 endpoint; the grant named {endpoint!r}")
    secrets = {
        "endpoint": endpoint,
        "region": first.region,
        "accessKeyID": response.credentials.s3.access_key_id,
        "accessSecretKey": response.credentials.s3.access_secret_key,
    }
    return Consumer(session, secrets, label)


def real_names(response: Any) -> dict[str, str]:
    """bucket_id -> the bucket's name in storage, as the grant tells the workload."""
    return {item.bucket_id: item.bucket_info.s3.bucket_id for item in response.buckets}


@check(
    "v2.s3.modes",
    "one key reaches each bucket in exactly its mode, and a third bucket not at all",
    requires=("v2.grant.multi-bucket",),
    needs_s3=True,
    api=API,
)
async def modes(session: Session) -> str:
    _, buckets, granted = session.shared["v2_multi"]
    names = real_names(granted)
    _, outsider = await create2(session)
    _, seeded = await grant2(session, [*[(b, "READ_WRITE") for b, _ in buckets], (outsider.bucket_id, "READ_WRITE")])
    seeder = consumer(session, seeded, "seeder (read-write on every bucket)")
    names.update(real_names(seeded))

    async def remove() -> None:
        for bucket in names.values():
            for key in (PROBE_KEY, WRITTEN_KEY):
                await seeder.s3.allowed("delete", bucket, key)

    session.on_cleanup(remove)
    for bucket in names.values():
        await seeder.must("put", bucket, PROBE_KEY, eventually=True)
    key = consumer(session, granted, "multi-bucket")
    by_mode = {mode: names[bucket_id] for bucket_id, mode in buckets}
    rw, ro, wo = by_mode["READ_WRITE"], by_mode["READ_ONLY"], by_mode["WRITE_ONLY"]
    await key.must("get", rw, PROBE_KEY, eventually=True)
    for operation in ("list", "put", "delete"):
        await key.must(operation, rw, WRITTEN_KEY if operation != "list" else None)
    await key.must("get", ro, PROBE_KEY, eventually=True)
    await key.must("list", ro)
    await key.must_not("put", ro, WRITTEN_KEY)
    await key.must_not("delete", ro, PROBE_KEY)
    await key.must("put", wo, WRITTEN_KEY, eventually=True)
    await key.must_not("get", wo, PROBE_KEY)
    await key.must_not("list", wo)
    other = names[outsider.bucket_id]
    for operation in ("get", "put", "list"):
        await key.must_not(operation, other, PROBE_KEY if operation != "list" else None)
    session.shared["v2_s3"] = (granted, buckets, key, seeder, by_mode)
    return f"READ_WRITE {rw}, READ_ONLY {ro}, WRITE_ONLY {wo}; {other} unreachable"


@check(
    "v2.s3.revoke",
    "after Revoke the key is refused on every bucket of the grant, and the objects are still there",
    requires=("v2.s3.modes",),
    needs_s3=True,
    api=API,
)
async def revoke(session: Session) -> None:
    granted, buckets, key, seeder, by_mode = session.shared["v2_s3"]
    answer = await session.answer(session.revoke2_request(granted.account_id, [b for b, _ in buckets]))
    if not answer.ok:
        raise CheckFailed(f"Revoke of {granted.account_id!r} answered {answer.describe()}")
    session.accounts2.pop(granted.account_id, None)
    probes = [("get", by_mode["READ_WRITE"], PROBE_KEY), ("get", by_mode["READ_ONLY"], PROBE_KEY),
              ("put", by_mode["WRITE_ONLY"], WRITTEN_KEY)]  # fmt: skip
    for operation, bucket, object_key in probes:
        if not await key.s3.eventually_denied(operation, bucket, object_key):
            raise CheckFailed(
                f"the revoked key still may {operation} in {bucket} {key.s3.propagation_seconds:g}s after Revoke"
            )
    for bucket in by_mode.values():
        await seeder.must("get", bucket, PROBE_KEY)
    await seeder.must("get", by_mode["WRITE_ONLY"], WRITTEN_KEY)
