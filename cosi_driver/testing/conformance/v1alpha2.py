"""The v1alpha2 rules (``--api v1alpha2``), as upstream's v1alpha2 sidecar applies them.

What that sidecar needs (../shared/cosi/SIDECAR.md, v1alpha2 section): DriverGetInfo with a valid
name and a non-empty, UNKNOWN-free, duplicate-free ``supported_protocols`` (it exits otherwise);
filled S3 bucket info; idempotent Create and Grant; ALREADY_EXISTS only for a real conflict (it is
terminal there); one credential over several buckets with one mode each; ids of at most 2048
characters from ``[A-Za-z0-9.-]``. Checks are named ``v2.*`` so one report can hold both rule sets.
"""

from __future__ import annotations

import re
from typing import Any

import grpc

from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb2
from cosi_driver.testing.conformance.framework import CheckFailed, CheckSkipped, Session, check, params_text
from cosi_driver.testing.conformance.identity import v1alpha2_name_problem
from cosi_driver.testing.sidecar_formats_v1alpha2 import (
    TERMINAL,
    grant_problems,
    info_problems,
    protocol_names,
    supported_protocols_problem,
)

API = "v1alpha2"
INFO = "v2.identity.get-info"
_ID = re.compile(r"[A-Za-z0-9.-]{1,2048}")
MODES = ("READ_WRITE", "READ_ONLY", "WRITE_ONLY")


def check_id2(field: str, value: str, session: Session) -> None:
    """A returned id must keep to v1alpha2's rule; the run keeps every id for the ids check."""
    session.shared.setdefault("v2_ids", []).append((field, value))
    if not _ID.fullmatch(value):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise CheckFailed(
            f"{field} {shown!r} ({len(value)} characters) breaks v1alpha2's rule: 1-2048 of [A-Za-z0-9.-]"
        )


async def create2(session: Session, name: str | None = None, params: Any = None) -> tuple[str, Any]:
    """A tracked v1alpha2 Create; returns (name, response)."""
    name = name or session.new_name("v2")
    chosen = dict(session.options.bucket_params if params is None else params)
    answer = await session.answer(session.create2_request(name, chosen))
    session.track_bucket2(answer, chosen)
    if not answer.ok:
        raise CheckFailed(f"v1alpha2 DriverCreateBucket {name!r} ({params_text(chosen)}) failed: {answer.describe()}")
    check_id2("bucket_id", answer.response.bucket_id, session)
    return name, answer.response


async def grant2(session: Session, buckets: list[tuple[str, str]], name: str | None = None) -> tuple[str, Any]:
    """A tracked v1alpha2 KEY grant over the run's protocol; returns (account name, response)."""
    name = name or session.new_name("ba")
    answer = await session.answer(session.grant2_request(name, buckets))
    session.track_account2(answer, [bucket_id for bucket_id, _ in buckets])
    if answer.code is grpc.StatusCode.OUT_OF_RANGE and len(buckets) > 1:
        raise CheckSkipped("the driver answers OUT_OF_RANGE: it cannot share one credential across buckets")
    if not answer.ok:
        raise CheckFailed(f"v1alpha2 DriverGrantBucketAccess {name!r} failed: {answer.describe()}")
    response = answer.response
    check_id2("account_id", response.account_id, session)
    problems = grant_problems(response, [bucket_id for bucket_id, _ in buckets], session.v2_protocol())
    if problems:
        raise CheckFailed("; ".join(problems) + ". The v1alpha2 sidecar refuses this answer and retries")
    return name, response


@check(INFO, "v1alpha2 DriverGetInfo: a valid name and supported_protocols", requires=(), api=API)
async def get_info(session: Session) -> str:
    answer = await session.answer(session._call(session.identity2.DriverGetInfo, pb2.DriverGetInfoRequest()))
    if not answer.ok:
        raise CheckFailed(
            f"v1alpha2 DriverGetInfo failed: {answer.describe()}. The v1alpha2 sidecar exits at start-up "
            "(UNIMPLEMENTED: this endpoint does not serve sigs.k8s.io.cosi.v1alpha2)"
        )
    response = answer.response
    session.driver_name = session.driver_name or str(response.name)
    problem = v1alpha2_name_problem(response.name)
    if problem:
        raise CheckFailed(f"the v1alpha2 sidecar exits on this name: {problem}")
    protocols = protocol_names(response.supported_protocols)
    problem = supported_protocols_problem(protocols)
    if problem:
        raise CheckFailed(f"the v1alpha2 sidecar exits: {problem}")
    session.shared["v2_protocols"] = protocols
    return f"{response.name!r}, protocols {', '.join(protocols)}"


@check("v2.create.ok", "v1alpha2 Create answers a valid bucket_id and filled bucket info", requires=(INFO,), api=API)
async def create_ok(session: Session) -> str:
    name, response = await create2(session)
    problems = info_problems("protocols", response.protocols, session.v2_protocol())
    if problems:
        raise CheckFailed("; ".join(problems))
    session.shared["v2_create"] = (name, response)
    return f"{name} -> {response.bucket_id}"


@check("v2.create.idempotent", "a repeated v1alpha2 Create answers the same", requires=("v2.create.ok",), api=API)
async def create_idempotent(session: Session) -> None:
    name, first = session.shared["v2_create"]
    _, again = await create2(session, name)
    if again.bucket_id != first.bucket_id or again.protocols != first.protocols:
        raise CheckFailed(f"a repeated Create of {name!r} answered {again.bucket_id!r}, first {first.bucket_id!r}")


@check(
    "v2.create.protocols",
    "Create with a supported protocol is OK; with one the driver lacks INVALID_ARGUMENT naming it",
    requires=("v2.create.ok",),
    api=API,
)
async def create_protocols(session: Session) -> str:
    supported = session.shared["v2_protocols"]
    name = session.new_name("v2")
    answer = await session.answer(session.create2_request(name, None, tuple(supported)))
    session.track_bucket2(answer, session.options.bucket_params)
    if not answer.ok:
        raise CheckFailed(f"Create with protocols {supported} (all supported) answered {answer.describe()}")
    lacking = [p for p in pb2.ObjectProtocol.Type.DESCRIPTOR.values_by_name if p not in supported and p != "UNKNOWN"]
    if not lacking:
        return f"{', '.join(supported)} accepted; the driver serves every protocol"
    other = session.new_name("v2")
    refused = await session.answer(session.create2_request(other, None, (lacking[0],)))
    session.track_bucket2(refused, session.options.bucket_params)
    if refused.code is not grpc.StatusCode.INVALID_ARGUMENT or lacking[0].lower() not in refused.message.lower():
        raise CheckFailed(
            f"Create asking for {lacking[0]}, which the driver does not list, answered {refused.describe()}; "
            f"expected INVALID_ARGUMENT naming {lacking[0]}"
        )
    return f"{', '.join(supported)} accepted, {lacking[0]} refused"


@check("v2.create.conflict", "Create with other parameters is ALREADY_EXISTS", requires=("v2.create.ok",), api=API)
async def create_conflict(session: Session) -> str:
    alt = session.options.alt_bucket_params
    if alt is None:
        raise CheckSkipped("give --alt-bucket-param K=V: a second valid BucketClass")
    name, _ = session.shared["v2_create"]
    answer = await session.answer(session.create2_request(name, alt))
    if answer.code is not grpc.StatusCode.ALREADY_EXISTS:
        raise CheckFailed(f"Create of {name!r} with {params_text(alt)} answered {answer.describe()}")
    return params_text(alt)


@check(
    "v2.grant.ok",
    "a v1alpha2 KEY grant over one bucket answers what the sidecar checks",
    requires=("v2.create.ok",),
    api=API,
)
async def grant_ok(session: Session) -> str:
    _, created = session.shared["v2_create"]
    name, response = await grant2(session, [(created.bucket_id, "READ_WRITE")])
    session.shared["v2_grant"] = (name, [(created.bucket_id, "READ_WRITE")], response)
    return f"{name} -> {response.account_id}"


@check("v2.grant.idempotent", "a repeated grant answers the same account and keys", requires=("v2.grant.ok",), api=API)
async def grant_idempotent(session: Session) -> None:
    name, buckets, first = session.shared["v2_grant"]
    answer = await session.answer(session.grant2_request(name, buckets))
    session.track_account2(answer, [bucket_id for bucket_id, _ in buckets])
    if not answer.ok:
        raise CheckFailed(f"a repeated grant answered {answer.describe()}")
    if answer.response.account_id != first.account_id:
        raise CheckFailed(
            f"a repeated grant answered account {answer.response.account_id!r}, first {first.account_id!r}"
        )
    if answer.response.credentials != first.credentials:
        raise CheckFailed("a repeated grant answered other keys; the Secret of the first must keep working")


@check(
    "v2.grant.multi-bucket",
    "one grant over three buckets (READ_WRITE, READ_ONLY, WRITE_ONLY) answers one entry per bucket",
    requires=("v2.create.ok",),
    api=API,
)
async def grant_multi(session: Session) -> str:
    buckets = []
    for mode in MODES:
        _, created = await create2(session)
        buckets.append((created.bucket_id, mode))
    name, response = await grant2(session, buckets)
    session.shared["v2_multi"] = (name, buckets, response)
    return f"{name} -> {response.account_id} over {len(buckets)} buckets"


@check(
    "v2.grant.conflict",
    "the same account name with other modes or other buckets is ALREADY_EXISTS",
    requires=("v2.grant.multi-bucket",),
    api=API,
)
async def grant_conflict(session: Session) -> None:
    name, buckets, _ = session.shared["v2_multi"]
    variants = {
        "other modes": [(bucket_id, "READ_ONLY") for bucket_id, _ in buckets],
        "fewer buckets": buckets[:1],
    }
    for what, changed in variants.items():
        answer = await session.answer(session.grant2_request(name, changed))
        session.track_account2(answer, [bucket_id for bucket_id, _ in changed])
        if answer.code is not grpc.StatusCode.ALREADY_EXISTS:
            raise CheckFailed(
                f"a grant under {name!r} with {what} answered {answer.describe()}; expected ALREADY_EXISTS, "
                "the v1alpha2 sidecar's terminal answer for a changed BucketAccess"
            )


@check(
    "v2.grant.bad-input",
    "a grant with no buckets, an UNKNOWN mode or an unknown bucket is refused for good",
    requires=("v2.create.ok",),
    api=API,
)
async def grant_bad_input(session: Session) -> None:
    _, created = session.shared["v2_create"]
    cases: list[tuple[str, list[tuple[str, str]], tuple[grpc.StatusCode, ...]]] = [
        ("no buckets", [], (grpc.StatusCode.INVALID_ARGUMENT,)),
        ("access mode UNKNOWN", [(created.bucket_id, "UNKNOWN")], (grpc.StatusCode.INVALID_ARGUMENT,)),
        ("a bucket id never issued", [(session.never_issued_id(), "READ_WRITE")], (grpc.StatusCode.NOT_FOUND,)),
    ]
    for what, buckets, expected in cases:
        answer = await session.answer(session.grant2_request(session.new_name("ba"), buckets))
        session.track_account2(answer, [bucket_id for bucket_id, _ in buckets])
        if answer.code not in expected:
            wanted = " or ".join(code.name for code in expected)
            raise CheckFailed(f"a grant with {what} answered {answer.describe()}; expected {wanted}")


@check(
    "v2.grant.service-account",
    "SERVICE_ACCOUNT is granted or refused with a terminal code, never an internal error",
    requires=("v2.create.ok",),
    api=API,
)
async def grant_service_account(session: Session) -> str:
    _, created = session.shared["v2_create"]
    buckets = [(created.bucket_id, "READ_WRITE")]
    answer = await session.answer(
        session.grant2_request(
            session.new_name("ba"), buckets, authentication="SERVICE_ACCOUNT", service_account="conformance"
        )
    )
    session.track_account2(answer, [created.bucket_id])
    if not answer.ok and answer.code not in TERMINAL:
        raise CheckFailed(f"SERVICE_ACCOUNT answered {answer.describe()}; the sidecar would retry it forever")
    return answer.describe()


@check(
    "v2.existing.refused",
    "GetExistingBucket of a bucket nobody made or allowed is not OK",
    requires=(INFO,),
    api=API,
)
async def existing_refused(session: Session) -> str:
    request = pb2.DriverGetExistingBucketRequest(
        existing_bucket_id=session.never_issued_id(), parameters=dict(session.options.bucket_params)
    )
    answer = await session.answer(session._call(session.provisioner2.DriverGetExistingBucket, request))
    session.track_bucket2(answer, session.options.bucket_params)
    if answer.ok:
        raise CheckFailed(f"GetExistingBucket of {session.never_issued_id()!r} answered OK for a bucket nobody made")
    if answer.code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
        raise CheckFailed(f"GetExistingBucket answered {answer.describe()}: an internal error, not a refusal")
    return answer.describe()


@check("v2.revoke.ok", "Revoke answers OK, and OK again", requires=("v2.grant.ok",), api=API)
async def revoke_ok(session: Session) -> None:
    _, buckets, response = session.shared["v2_grant"]
    bucket_ids = [bucket_id for bucket_id, _ in buckets]
    for attempt in ("Revoke", "a repeated Revoke"):
        answer = await session.answer(session.revoke2_request(response.account_id, bucket_ids))
        if not answer.ok:
            raise CheckFailed(f"{attempt} of {response.account_id!r} answered {answer.describe()}")
    session.accounts2.pop(response.account_id, None)


@check("v2.delete.ok", "Delete answers OK, and a repeat OK or NOT_FOUND", requires=("v2.create.ok",), api=API)
async def delete_ok(session: Session) -> None:
    _, response = await create2(session)
    for attempt, allowed in (
        ("Delete", (grpc.StatusCode.OK,)),
        ("a repeated Delete", (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND)),
    ):
        answer = await session.answer(session.delete2_request(response.bucket_id))
        if answer.code not in allowed:
            raise CheckFailed(f"{attempt} of {response.bucket_id!r} answered {answer.describe()}")
    session.buckets2.pop(response.bucket_id, None)


@check(
    "v2.ids",
    "every id the run was given keeps to [A-Za-z0-9.-], 1-2048 characters",
    requires=("v2.create.ok",),
    api=API,
)
async def ids(session: Session) -> str:
    seen = session.shared.get("v2_ids", [])
    bad = [f"{field} {value[:60]!r}" for field, value in seen if not _ID.fullmatch(value)]
    if bad:
        raise CheckFailed(f"ids outside v1alpha2's rule: {', '.join(bad)}")
    return f"{len(seen)} ids, longest {max((len(v) for _, v in seen), default=0)} characters"
