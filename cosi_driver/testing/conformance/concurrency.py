"""Concurrent identical calls: the sidecar duplicates Creates and Grants, sometimes at once."""

from __future__ import annotations

import grpc

from cosi_driver.testing.conformance.access import CRASHES_SIDECAR, credentials_of
from cosi_driver.testing.conformance.buckets import WEDGES_CREATE
from cosi_driver.testing.conformance.framework import Answer, CheckFailed, Session, check

# The spec lets a driver refuse a secondary call for the same bucket with ABORTED; the sidecar retries it.
_TOLERATED = (grpc.StatusCode.OK, grpc.StatusCode.ABORTED)


def _judge(answers: list[Answer], what: str, already_exists: str) -> list[Answer]:
    codes = sorted({answer.code.name for answer in answers})
    for answer in answers:
        if answer.code is grpc.StatusCode.ALREADY_EXISTS:
            raise CheckFailed(f"{len(answers)} concurrent identical {what} answered {codes}; {already_exists}")
        if answer.code not in _TOLERATED:
            raise CheckFailed(f"{len(answers)} concurrent identical {what}: one answered {answer.describe()}")
    succeeded = [answer for answer in answers if answer.ok]
    if not succeeded:
        raise CheckFailed(f"all {len(answers)} concurrent identical {what} answered ABORTED; at least one must succeed")
    return succeeded


@check(
    "concurrency.create",
    "concurrent identical Creates all answer OK (or ABORTED) with one bucket_id",
    requires=("create.ok",),
)
async def concurrent_creates(session: Session) -> str:
    name = session.new_name()
    count = session.options.concurrency
    answers = await session.gather([session.create_request(name) for _ in range(count)])
    for answer in answers:
        session.track_bucket(answer, session.options.bucket_params)
    succeeded = _judge(answers, "Creates", WEDGES_CREATE)
    ids = {answer.response.bucket_id for answer in succeeded}
    if len(ids) != 1:
        raise CheckFailed(
            f"{count} concurrent identical Creates returned {len(ids)} different bucket_ids: {sorted(ids)}"
        )
    return f"{len(succeeded)} of {count} OK"


@check(
    "concurrency.grant",
    "concurrent identical Grants all answer OK (or ABORTED) with one account and one key",
    requires=("grant.ok",),
)
async def concurrent_grants(session: Session) -> str:
    _, bucket_id = await session.create()
    name = session.new_name("ba")
    count = session.options.concurrency
    answers = await session.gather([session.grant_request(bucket_id, name) for _ in range(count)])
    for answer in answers:
        session.track_account(bucket_id, answer)
    succeeded = _judge(answers, "Grants", CRASHES_SIDECAR)
    accounts = {answer.response.account_id for answer in succeeded}
    if len(accounts) != 1:
        raise CheckFailed(f"{count} concurrent identical Grants returned {len(accounts)} different account_ids")
    keys = {repr(sorted((k, sorted(v.items())) for k, v in credentials_of(a.response).items())) for a in succeeded}
    if len(keys) != 1:
        raise CheckFailed(
            f"{count} concurrent identical Grants returned {len(keys)} different credentials; the sidecar keeps "
            "whichever it wrote first, so all of them must work"
        )
    return f"{len(succeeded)} of {count} OK"
