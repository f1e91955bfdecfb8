"""DriverGrantBucketAccess and DriverRevokeBucketAccess, and the delete-before-revoke order."""

from __future__ import annotations

from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.testing.conformance.buckets import check_id
from cosi_driver.testing.conformance.framework import CheckFailed, Session, check, params_text
from cosi_driver.testing.sidecar_formats import S3_SECRETS, credential_problems

CRASHES_SIDECAR = (
    "ALREADY_EXISTS from Grant crashes the v0.2.2 sidecar (nil-pointer dereference), for every claim it serves"
)


def credentials_of(response: Any) -> dict[str, dict[str, str]]:
    return {key: dict(details.secrets) for key, details in response.credentials.items()}


def differences(first: dict[str, dict[str, str]], second: dict[str, dict[str, str]]) -> list[str]:
    """Which credential fields differ, by name only: values are secrets."""
    if set(first) != set(second):
        return [f"entries {sorted(first)} became {sorted(second)}"]
    changed = []
    for key, old in first.items():
        new = second[key]
        changed += [f"{key}.{name}" for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
    return changed


@check("grant.ok", "DriverGrantBucketAccess (Key) answers OK with an account_id", requires=("create.ok",))
async def grant_ok(session: Session) -> str:
    _, bucket_id = await session.create()
    name, response = await session.grant(bucket_id)
    check_id("account_id", response.account_id)
    session.shared["grant"] = (bucket_id, name, response)
    return f"{name} -> {response.account_id} ({params_text(session.options.access_params)})"


@check(
    "grant.credentials-format",
    "the credentials are exactly one entry: s3 (accessKeyID, accessSecretKey, endpoint, region) or azure",
    requires=("grant.ok",),
)
async def grant_format(session: Session) -> str:
    _, _, response = session.shared["grant"]
    credentials = credentials_of(response)
    problems = credential_problems(credentials)
    if problems:
        raise CheckFailed("; ".join(problems) + ". The sidecar retries such a Grant forever or writes a useless Secret")
    ((key, secrets),) = credentials.items()
    extra = sorted(set(secrets) - set(S3_SECRETS)) if key == "s3" else []
    return f"{key} entry" + (f" (the sidecar ignores extra keys {extra})" if extra else "")


@check(
    "grant.idempotent",
    "a repeated Grant (same bucket and name) answers OK with the same account_id",
    requires=("grant.ok",),
)
async def grant_idempotent(session: Session) -> None:
    bucket_id, name, first = session.shared["grant"]
    answer = await session.answer(session.grant_request(bucket_id, name))
    session.track_account(bucket_id, answer)
    if answer.code is grpc.StatusCode.ALREADY_EXISTS:
        raise CheckFailed(f"a repeated Grant answered {answer.describe()}; {CRASHES_SIDECAR}")
    if not answer.ok:
        raise CheckFailed(f"a repeated Grant answered {answer.describe()}")
    session.shared["grant_again"] = answer.response
    if answer.response.account_id != first.account_id:
        raise CheckFailed(
            f"a repeated Grant returned account_id {answer.response.account_id!r}, the first {first.account_id!r}; "
            "the sidecar revokes only the one it stored last, so the other account leaks"
        )


@check("grant.stable-credentials", "a repeated Grant returns the same credentials", requires=("grant.idempotent",))
async def grant_stable(session: Session) -> None:
    _, _, first = session.shared["grant"]
    changed = differences(credentials_of(first), credentials_of(session.shared["grant_again"]))
    if changed:
        raise CheckFailed(
            f"a repeated Grant returned different credentials ({', '.join(changed)} changed); the sidecar writes the "
            "Secret once and never rewrites it, so workloads keep the first credentials, which must keep working"
        )


@check(
    "grant.never-already-exists",
    "Grant never answers ALREADY_EXISTS (other parameters for the same name, same name on another bucket)",
    requires=("grant.ok",),
)
async def grant_never_already_exists(session: Session) -> str:
    bucket_id, name, _ = session.shared["grant"]
    _, other_bucket = await session.create()
    variants = [
        ("the same name on another bucket", other_bucket, session.options.access_params),
        *[
            (f"the same name with {params_text(params)}", bucket_id, params)
            for params in (session.options.read_access_params, session.options.write_access_params)
            if params is not None and dict(params) != dict(session.options.access_params)
        ],
    ]
    seen = []
    for label, target, params in variants:
        answer = await session.answer(session.grant_request(target, name, params))
        session.track_account(target, answer)
        if answer.code is grpc.StatusCode.ALREADY_EXISTS:
            raise CheckFailed(f"Grant of {label} answered {answer.describe()}; {CRASHES_SIDECAR}")
        seen.append(f"{label}: {answer.code.name}")
    return "; ".join(seen)


@check("grant.missing-bucket", "Grant on a bucket that no longer exists is NOT_FOUND", requires=("delete.ok",))
async def grant_missing_bucket(session: Session) -> None:
    bucket_id = session.shared["deleted_bucket"]
    answer = await session.answer(session.grant_request(bucket_id, session.new_name("ba")))
    session.track_account(bucket_id, answer)
    if answer.code is not grpc.StatusCode.NOT_FOUND:
        raise CheckFailed(f"Grant on deleted bucket {bucket_id!r} answered {answer.describe()}; expected NOT_FOUND")


@check(
    "grant.missing-fields",
    "Grant without bucket_id, name or authentication_type is INVALID_ARGUMENT",
    requires=("create.ok",),
)
async def grant_missing_fields(session: Session) -> None:
    _, bucket_id = session.shared["bucket"]
    cases = [
        ("an empty bucket_id", "", session.new_name("ba"), pb.Key),
        ("an empty name", bucket_id, "", pb.Key),
        ("authentication_type unset", bucket_id, session.new_name("ba"), pb.UnknownAuthenticationType),
    ]
    for label, target, name, auth in cases:
        answer = await session.answer(session.grant_request(target, name, None, auth))
        session.track_account(target, answer)
        if answer.code is not grpc.StatusCode.INVALID_ARGUMENT:
            raise CheckFailed(f"Grant with {label} answered {answer.describe()}; expected INVALID_ARGUMENT")


@check("revoke.ok", "DriverRevokeBucketAccess of a granted account answers OK", requires=("grant.ok",))
async def revoke_ok(session: Session) -> None:
    _, bucket_id = await session.create()
    _, response = await session.grant(bucket_id)
    await session.revoke(bucket_id, response.account_id)
    session.shared["revoked"] = (bucket_id, response.account_id)


@check("revoke.idempotent", "Revoke of an access already revoked answers OK", requires=("revoke.ok",))
async def revoke_idempotent(session: Session) -> None:
    bucket_id, account_id = session.shared["revoked"]
    answer = await session.answer(session.revoke_request(bucket_id, account_id))
    if not answer.ok:
        raise CheckFailed(
            f"a repeated Revoke answered {answer.describe()}; the sidecar retries every error, NOT_FOUND included, "
            "forever, so the BucketAccess would never go away"
        )


@check("revoke.missing-fields", "Revoke without bucket_id or account_id is INVALID_ARGUMENT", requires=("grant.ok",))
async def revoke_missing_fields(session: Session) -> None:
    bucket_id, _, response = session.shared["grant"]
    for label, target, account in (
        ("an empty bucket_id", "", response.account_id),
        ("an empty account_id", bucket_id, ""),
    ):
        answer = await session.answer(session.revoke_request(target, account))
        if answer.code is not grpc.StatusCode.INVALID_ARGUMENT:
            raise CheckFailed(f"Revoke with {label} answered {answer.describe()}; expected INVALID_ARGUMENT")


@check(
    "revoke.unknown-ids",
    "Revoke with ids the driver never issued answers OK",
    requires=("grant.ok",),
)
async def revoke_unknown_ids(session: Session) -> None:
    bucket_id, _, _ = session.shared["grant"]
    unknown = session.never_issued_id()
    for label, target, account in (
        ("an account_id it never issued", bucket_id, unknown),
        ("a bucket_id and an account_id it never issued", unknown, unknown),
    ):
        answer = await session.answer(session.revoke_request(target, account))
        if not answer.ok:
            raise CheckFailed(
                f"Revoke with {label} answered {answer.describe()}; no such access can exist, and the sidecar "
                "retries a failed Revoke forever, so the BucketAccess would never go away"
            )


@check("grant.unknown-bucket-id", "Grant on a bucket_id the driver never issued is NOT_FOUND")
async def grant_unknown_bucket_id(session: Session) -> None:
    bucket_id = session.never_issued_id()
    answer = await session.answer(session.grant_request(bucket_id, session.new_name("ba")))
    session.track_account(bucket_id, answer)
    if answer.code is not grpc.StatusCode.NOT_FOUND:
        raise CheckFailed(
            f"Grant on {bucket_id!r}, a bucket_id this driver never issued, answered {answer.describe()}; "
            "expected NOT_FOUND (no such bucket)"
        )


@check(
    "lifecycle.delete-before-revoke",
    "the sidecar's order when a claim goes first: DeleteBucket (OK or FAILED_PRECONDITION), Revoke OK, DeleteBucket OK",
    requires=("grant.ok",),
)
async def delete_before_revoke(session: Session) -> str:
    _, bucket_id = await session.create()
    _, response = await session.grant(bucket_id)
    first = await session.answer(session.delete_request(bucket_id))
    if not (first.ok or first.code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)):
        raise CheckFailed(
            f"DeleteBucket while an access exists answered {first.describe()}; expected OK or FAILED_PRECONDITION "
            "(the sidecar retries until the access is revoked)"
        )
    revoke = await session.answer(session.revoke_request(bucket_id, response.account_id))
    if not revoke.ok:
        raise CheckFailed(
            f"Revoke after DeleteBucket ({first.code.name}) answered {revoke.describe()}; the sidecar retries it "
            "forever, so the BucketAccess and the BucketClaim would never go away"
        )
    session.accounts.pop((bucket_id, response.account_id), None)
    second = await session.answer(session.delete_request(bucket_id))
    if not (second.ok or second.code is grpc.StatusCode.NOT_FOUND):
        raise CheckFailed(f"DeleteBucket after the Revoke answered {second.describe()}")
    session.buckets.pop(bucket_id, None)
    return f"first DeleteBucket: {first.code.name}"
