"""DriverCreateBucket and DriverDeleteBucket: success, idempotency, conflicts, required fields."""

from __future__ import annotations

import grpc

from cosi_driver.testing.conformance.framework import CheckFailed, CheckSkipped, Session, check, params_text

MAX_ID_BYTES = 128  # the ids come back in request fields the spec limits to 128 bytes

WEDGES_CREATE = (
    "the v0.2.2 sidecar treats ALREADY_EXISTS from Create as a nil response and retries forever: "
    "the Bucket never becomes ready"
)


def check_id(kind: str, value: str) -> None:
    size = len(value.encode())
    if size > MAX_ID_BYTES:
        raise CheckFailed(
            f"{kind} is {size} bytes long; the sidecar sends it back in a field the spec limits to {MAX_ID_BYTES} bytes"
        )


@check("create.ok", "DriverCreateBucket with the BucketClass parameters answers OK with a bucket_id")
async def create_ok(session: Session) -> str:
    name, bucket_id = await session.create()
    check_id("bucket_id", bucket_id)
    session.shared["bucket"] = (name, bucket_id)
    return f"{name} -> {bucket_id} ({params_text(session.options.bucket_params)})"


@check(
    "create.idempotent",
    "a repeated Create (same name, same parameters) answers OK with the same bucket_id",
    requires=("create.ok",),
)
async def create_idempotent(session: Session) -> None:
    name, bucket_id = session.shared["bucket"]
    for attempt in (2, 3):
        answer = await session.answer(session.create_request(name))
        session.track_bucket(answer, session.options.bucket_params)
        if answer.code is grpc.StatusCode.ALREADY_EXISTS:
            raise CheckFailed(f"attempt {attempt} of an identical Create answered {answer.describe()}; {WEDGES_CREATE}")
        if not answer.ok:
            raise CheckFailed(f"attempt {attempt} of an identical Create answered {answer.describe()}")
        if answer.response.bucket_id != bucket_id:
            raise CheckFailed(
                f"attempt {attempt} of an identical Create returned bucket_id {answer.response.bucket_id!r}, the first "
                f"{bucket_id!r}; the sidecar may store either, so later calls would reach the wrong bucket"
            )


@check(
    "create.conflicting-parameters",
    "Create of an existing name with different parameters is ALREADY_EXISTS and changes nothing",
    requires=("create.ok",),
)
async def create_conflict(session: Session) -> str:
    alt = session.options.alt_bucket_params
    if alt is None:
        raise CheckSkipped("give --alt-bucket-param K=V: a second valid BucketClass that differs from --bucket-param")
    if dict(alt) == dict(session.options.bucket_params):
        raise CheckSkipped("--alt-bucket-param equals --bucket-param; it must differ")
    name, bucket_id = await session.create()
    answer = await session.answer(session.create_request(name, alt))
    session.track_bucket(answer, alt)
    if answer.code is not grpc.StatusCode.ALREADY_EXISTS:
        raise CheckFailed(
            f"Create of existing {name!r} with other parameters ({params_text(alt)}) answered {answer.describe()}; "
            "the spec requires ALREADY_EXISTS for a bucket of the same name with different parameters"
        )
    again = await session.answer(session.create_request(name))
    if not again.ok or again.response.bucket_id != bucket_id:
        raise CheckFailed(
            f"after the conflicting Create, the original Create answered {again.describe()}"
            + (f" with bucket_id {again.response.bucket_id!r}, not {bucket_id!r}" if again.ok else "")
        )
    return f"other parameters: {params_text(alt)}"


@check("create.missing-name", "Create without a name is INVALID_ARGUMENT")
async def create_missing_name(session: Session) -> None:
    answer = await session.answer(session.create_request(""))
    session.track_bucket(answer, session.options.bucket_params)
    if answer.code is not grpc.StatusCode.INVALID_ARGUMENT:
        raise CheckFailed(f"Create with an empty name answered {answer.describe()}; the name is REQUIRED")


@check("delete.ok", "DriverDeleteBucket of a bucket answers OK", requires=("create.ok",))
async def delete_ok(session: Session) -> None:
    _, bucket_id = await session.create()
    answer = await session.answer(session.delete_request(bucket_id))
    if not answer.ok:
        raise CheckFailed(f"DeleteBucket of empty bucket {bucket_id!r} answered {answer.describe()}")
    session.buckets.pop(bucket_id, None)
    session.shared["deleted_bucket"] = bucket_id


@check(
    "delete.idempotent", "DeleteBucket of a bucket already deleted answers OK (or NOT_FOUND)", requires=("delete.ok",)
)
async def delete_idempotent(session: Session) -> str:
    bucket_id = session.shared["deleted_bucket"]
    answer = await session.answer(session.delete_request(bucket_id))
    if answer.ok or answer.code is grpc.StatusCode.NOT_FOUND:
        return f"answered {answer.code.name}"
    raise CheckFailed(
        f"a repeated DeleteBucket of {bucket_id!r} answered {answer.describe()}; the spec says no error when the "
        "bucket is already gone, and the sidecar retries anything but OK and NOT_FOUND forever"
    )


@check("delete.missing-bucket-id", "DeleteBucket without a bucket_id is INVALID_ARGUMENT")
async def delete_missing_id(session: Session) -> None:
    answer = await session.answer(session.delete_request("", {}))
    if answer.code is not grpc.StatusCode.INVALID_ARGUMENT:
        raise CheckFailed(f"DeleteBucket with an empty bucket_id answered {answer.describe()}; it is REQUIRED")


@check(
    "delete.unknown-id",
    "DeleteBucket of a bucket_id the driver never issued answers OK (or NOT_FOUND)",
    requires=("identity.get-info",),
)
async def delete_unknown_id(session: Session) -> str:
    bucket_id = session.never_issued_id()
    answer = await session.answer(session.delete_request(bucket_id, {}))
    if answer.ok or answer.code is grpc.StatusCode.NOT_FOUND:
        return f"answered {answer.code.name}"
    raise CheckFailed(
        f"DeleteBucket of {bucket_id!r}, an id this driver never issued, answered {answer.describe()}; nothing can "
        "exist under it, and the sidecar retries anything but OK and NOT_FOUND forever and keeps the finalizer"
    )
