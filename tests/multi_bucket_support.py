"""One scenario for every S3-speaking backend: a v1alpha2 grant of several buckets on a real server.

Three buckets granted read-only, write-only and read-write to one account, a fourth not granted:
the keys must reach each bucket in exactly its mode and never the fourth, a retried grant must
return the very same keys, and a revoke must kill the keys everywhere while every object stays.
Calls go through the driver core with the v1alpha2 rules (the same operations the v1alpha2
adapter calls), on the server a :class:`~cosi_driver.testing.acceptance.Harness` started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cosi_driver.core.driver import Driver
from cosi_driver.core.types import Access, AccessMode, AuthenticationType, S3Credentials
from cosi_driver.core.validation import V1ALPHA2
from cosi_driver.testing.acceptance import Harness
from cosi_driver.testing.probes import S3Session

SEED = b"written before the grant"


def driver_of(harness: Harness) -> Driver:
    assert harness.server is not None, "the harness is not started"
    return harness.server.driver


def secrets_of(access: Access) -> dict[str, str]:
    """The Secret a consumer would get (the keys the S3 session reads)."""
    credentials = access.credentials
    assert isinstance(credentials, S3Credentials)
    return {
        "endpoint": credentials.endpoint,
        "region": credentials.region,
        "accessKeyID": credentials.access_key_id,
        "accessSecretKey": credentials.secret_access_key.reveal(),
    }


async def grant(harness: Harness, name: str, buckets: Sequence[tuple[str, AccessMode]]) -> Access:
    return await driver_of(harness).grant_access(name, list(buckets), AuthenticationType.KEY, {}, rules=V1ALPHA2)


async def revoke(harness: Harness, access: Access, bucket_ids: Sequence[str]) -> None:
    await driver_of(harness).revoke_access(access.account_id, list(bucket_ids), rules=V1ALPHA2)


@dataclass
class Outcome:
    """What the scenario saw, for a backend's own further checks."""

    access: Access
    names: dict[str, str]  # role (ro, wo, rw, other) -> bucket name
    bucket_ids: dict[str, str]


async def check_modes_per_bucket(harness: Harness) -> Outcome:
    """Grant ro/wo/rw of three buckets (a fourth not), check the data path, retry, revoke, check."""
    probe = harness.target.probe
    names = {role: harness.new_name(role) for role in ("ro", "wo", "rw", "other")}
    ids = {role: (await harness.create(name)).bucket_id for role, name in names.items()}
    for name in names.values():
        await probe.put_object(name, "seed.txt", SEED)
    wanted = [
        (ids["ro"], AccessMode.READ_ONLY),
        (ids["wo"], AccessMode.WRITE_ONLY),
        (ids["rw"], AccessMode.READ_WRITE),
    ]
    account = harness.new_name("ba")
    access = await grant(harness, account, wanted)
    keys = S3Session(secrets_of(access), harness.target.propagation_seconds)
    ro, wo, rw, other = (names[role] for role in ("ro", "wo", "rw", "other"))

    assert await keys.eventually_allowed("get", ro, "seed.txt")
    assert await keys.allowed("list", ro)
    assert not await keys.allowed("put", ro, "from-ro.txt")
    assert not await keys.allowed("delete", ro, "seed.txt")

    assert await keys.eventually_allowed("put", wo, "from-wo.txt")
    assert not await keys.allowed("get", wo, "seed.txt")
    assert not await keys.allowed("get", wo, "from-wo.txt")  # not even what it wrote itself
    assert not await keys.allowed("list", wo)

    assert await keys.eventually_allowed("put", rw, "from-rw.txt")
    assert await keys.allowed("get", rw, "from-rw.txt")
    assert await keys.allowed("get", rw, "seed.txt")
    assert await keys.allowed("list", rw)

    for operation, key in (("get", "seed.txt"), ("list", None), ("put", "intruder.txt")):
        assert not await keys.allowed(operation, other, key), f"{operation} reached the bucket not granted"

    again = await grant(harness, account, list(reversed(wanted)))
    assert again.account_id == access.account_id
    assert secrets_of(again) == secrets_of(access)

    await revoke(harness, access, [bucket_id for bucket_id, _ in wanted])
    assert await keys.eventually_denied("get", rw, "seed.txt")
    assert await keys.eventually_denied("get", ro, "seed.txt")
    assert await keys.eventually_denied("put", wo, "after-revoke.txt")
    assert await keys.eventually_denied("put", rw, "after-revoke.txt")
    for role, key in (("ro", "seed.txt"), ("wo", "seed.txt"), ("wo", "from-wo.txt"), ("rw", "from-rw.txt")):
        assert await probe.object_exists(names[role], key), f"{role}/{key} did not survive the revoke"
    assert await probe.object_exists(other, "seed.txt")
    return Outcome(access, names, ids)


async def check_an_existing_bucket(harness: Harness, name: str) -> None:
    """An allowed bucket the test made with the admin's S3 keys, holding foreign data: granted, never deleted.

    ``name`` must match the backend's existingBuckets patterns in the harness's configuration.
    """
    probe = harness.target.probe
    await probe.create_foreign_bucket(name)
    try:
        await probe.put_object(name, "theirs.txt", b"foreign data")
        driver = driver_of(harness)
        taken = await driver.get_existing_bucket(name, {}, rules=V1ALPHA2)
        assert taken.existing
        access = await grant(harness, harness.new_name("ba"), [(taken.bucket_id, AccessMode.READ_WRITE)])
        keys = S3Session(secrets_of(access), harness.target.propagation_seconds)
        assert await keys.eventually_allowed("get", name, "theirs.txt")
        assert await keys.allowed("put", name, "ours.txt")
        await revoke(harness, access, [taken.bucket_id])
        assert await keys.eventually_denied("get", name, "theirs.txt")
        await driver.delete_bucket(taken.bucket_id, {"deletionPolicy": "purge"}, rules=V1ALPHA2)
        await driver.delete_bucket(taken.bucket_id, {}, rules=V1ALPHA2)
        assert await probe.bucket_exists(name)
        assert await probe.object_exists(name, "theirs.txt")
        assert await probe.object_exists(name, "ours.txt")
    finally:
        await probe.remove_foreign_bucket(name)
