"""A bounded sweep of malformed and oversized input: never UNKNOWN, never a traceback, never a crash.

Each RPC gets a fixed list of cases (about fifty calls in all): strings just over the spec's
128-byte limit and far over it, odd Unicode, NUL and newline, path tricks, maps far over 4 KiB,
empty and odd keys, garbage ids. The driver may accept or refuse each one, but a refusal must be a
deliberate status: UNKNOWN (an uncaught exception in most gRPC servers), INTERNAL, a traceback in
the message, or a server that stops answering are failures. Afterwards the driver must still serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import grpc

from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.testing.conformance.access import CRASHES_SIDECAR
from cosi_driver.testing.conformance.framework import Answer, CheckFailed, Session, check

_BAD_CODES = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
    }
)
_TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/', "goroutine ", "panic:")

ODD_STRINGS: dict[str, str] = {
    "129 bytes": "a" * 129,
    "10 KiB": "b" * 10240,
    "odd Unicode (RTL override, zero-width joiner, emoji)": "x-\u202e\u200d\u00fc\U0001faa3-y",
    "combining marks": "e\u0301" * 20,
    "a NUL byte": "name\x00tail",
    "a newline": "name\nINJECTED",
    "a path traversal": "../../etc/passwd",
    "'..'": "..",
    "a slash": "a/b",
    "surrounding spaces": "  spaced  ",
}

ODD_MAPS: dict[str, dict[str, str]] = {
    "5000 entries (~250 KiB)": {f"key-{i:05d}": "v" * 32 for i in range(5000)},
    "a 10 KiB value": {"deletionPolicy": "z" * 10240},
    "an empty key": {"": "value"},
    "a 129-byte key": {"k" * 129: "value"},
    "an odd Unicode key and value": {
        "\u043a\u043b\u044e\u0447\u200d": "\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435"
    },
    "a NUL in a value": {"deletionPolicy": "delete\x00"},
}

GARBAGE_IDS: dict[str, str] = {
    "a random string": "no-such-id-7f3a",
    "129 bytes": "i" * 129,
    "10 KiB": "j" * 10240,
    "odd Unicode": "\u202e\U0001faa3/\u200d",
    "a NUL byte": "id\x00id",
    "a path traversal": "v1/../../../etc",
    "only slashes": "///",
}


@dataclass(frozen=True)
class Case:
    label: str
    call: Callable[[], Awaitable[Any]]
    after: Callable[[Answer], None] = lambda answer: None


def _problem(rpc: str, case: Case, answer: Answer) -> str | None:
    if answer.code in _BAD_CODES:
        return f"{rpc} with {case.label} answered {answer.describe()}"
    if any(marker in answer.message for marker in _TRACEBACK_MARKERS):
        return f"{rpc} with {case.label} put a stack trace in its status message"
    if rpc == "Grant" and answer.code is grpc.StatusCode.ALREADY_EXISTS:
        return f"Grant with {case.label} answered ALREADY_EXISTS ({CRASHES_SIDECAR})"
    return None


async def _sweep(session: Session, rpc: str, cases: list[Case]) -> str:
    problems = []
    for case in cases:
        answer = await session.answer(case.call())
        case.after(answer)
        problem = _problem(rpc, case, answer)
        if problem:
            problems.append(problem)
    if problems:
        shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
        raise CheckFailed(f"{len(problems)} of {len(cases)} malformed {rpc} calls got no deliberate answer: {shown}")
    return f"{len(cases)} malformed calls, each answered deliberately"


@check("robustness.create", "malformed and oversized Creates never yield UNKNOWN, INTERNAL or a traceback")
async def robust_create(session: Session) -> str:
    params = dict(session.options.bucket_params)

    def track(used: dict[str, str]) -> Callable[[Answer], None]:
        return lambda answer: session.track_bucket(answer, used)

    cases = [
        Case(f"a name of {label}", partial(session.create_request, text, params), track(params))
        for label, text in ODD_STRINGS.items()
    ]
    for label, extra in ODD_MAPS.items():
        used = {**params, **extra}
        cases.append(
            Case(f"parameters with {label}", partial(session.create_request, session.new_name(), used), track(used))
        )
    return await _sweep(session, "Create", cases)


@check(
    "robustness.grant",
    "malformed and oversized Grants never yield UNKNOWN, INTERNAL, ALREADY_EXISTS or a traceback",
    requires=("create.ok",),
)
async def robust_grant(session: Session) -> str:
    _, bucket_id = await session.create()
    access = dict(session.options.access_params)

    def track(target: str) -> Callable[[Answer], None]:
        return lambda answer: session.track_account(target, answer)

    def grant(target: str, name: str | None = None, params: dict[str, str] | None = None, auth: Any = pb.Key) -> Case:
        call = partial(session.grant_request, target, name or session.new_name("ba"), params, auth)
        return Case("", call, track(target))

    cases = [replace(grant(text), label=f"a bucket_id of {label}") for label, text in GARBAGE_IDS.items()]
    cases += [replace(grant(bucket_id, text), label=f"a name of {label}") for label, text in ODD_STRINGS.items()]
    cases += [
        replace(grant(bucket_id, params={**access, **extra}), label=f"parameters with {label}")
        for label, extra in ODD_MAPS.items()
    ]
    cases.append(replace(grant(bucket_id, auth=99), label="authentication_type 99 (outside the enum)"))
    cases.append(replace(grant(bucket_id, auth=pb.IAM), label="authentication_type IAM"))
    result = await _sweep(session, "Grant", cases)
    invented = [target for target, _ in session.accounts if target in GARBAGE_IDS.values()]
    if invented:
        raise CheckFailed(f"Grant on {len(invented)} bucket ids that were never issued answered OK")
    return result


@check("robustness.delete", "malformed DeleteBuckets never yield UNKNOWN, INTERNAL or a traceback")
async def robust_delete(session: Session) -> str:
    cases = [
        Case(f"a bucket_id of {label}", partial(session.delete_request, text, {}))
        for label, text in GARBAGE_IDS.items()
    ]
    return await _sweep(session, "Delete", cases)


@check("robustness.revoke", "malformed Revokes never yield UNKNOWN, INTERNAL or a traceback", requires=("create.ok",))
async def robust_revoke(session: Session) -> str:
    _, bucket_id = session.shared["bucket"]
    cases = [
        Case(f"a bucket_id of {label}", partial(session.revoke_request, text, text))
        for label, text in GARBAGE_IDS.items()
    ]
    cases += [
        Case(f"an account_id of {label}", partial(session.revoke_request, bucket_id, text))
        for label, text in GARBAGE_IDS.items()
    ]
    return await _sweep(session, "Revoke", cases)


@check(
    "robustness.still-serving",
    "after the sweep the driver still answers DriverGetInfo, Create and Delete",
    requires=("identity.get-info", "create.ok"),
)
async def still_serving(session: Session) -> None:
    info = await session.answer(session.get_info())
    if not info.ok:
        raise CheckFailed(
            f"after the malformed calls DriverGetInfo answered {info.describe()}: the driver died or hung"
        )
    _, bucket_id = await session.create()
    await session.delete(bucket_id)
