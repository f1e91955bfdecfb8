"""DriverGetInfo: the name the sidecar matches BucketClasses against and names its Lease after."""

from __future__ import annotations

import re

from cosi_driver.core.values import ValueProblem, parse_driver_name
from cosi_driver.testing.conformance.framework import CheckFailed, Session, check

# The v1alpha1 rule for DriverGetInfoResponse.name (spec.v1alpha1.md): up to 63 characters of
# letters, digits, '-' and '.', with a letter or digit first and last.
_V1ALPHA1_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")


def v1alpha1_name_problem(name: str) -> str | None:
    if not name:
        return "the name is empty (it is REQUIRED)"
    if len(name) > 63:
        return f"the name is {len(name)} characters long; the limit is 63"
    if not _V1ALPHA1_NAME.fullmatch(name):
        return "the name must begin and end with a letter or digit and hold only letters, digits, '-' and '.'"
    return None


def v1alpha2_name_problem(name: str) -> str | None:
    if name != name.strip():
        return "the name has leading or trailing whitespace"
    try:
        parse_driver_name(name)
    except ValueProblem as problem:
        return str(problem)
    return None


@check("identity.get-info", "DriverGetInfo answers OK with a name", requires=())
async def get_info(session: Session) -> str:
    answer = await session.answer(session.get_info())
    if not answer.ok:
        raise CheckFailed(
            f"DriverGetInfo failed: {answer.describe()}. The sidecar calls it once at start-up and exits on any "
            "error, so no claim would ever be served"
        )
    session.driver_name = str(answer.response.name)
    if not session.driver_name:
        raise CheckFailed("DriverGetInfo returned an empty name; BucketClasses select a driver by it")
    return f"name {session.driver_name!r}"


@check("identity.name-v1alpha1", "the name follows the v1alpha1 rule (<= 63 chars, alphanumerics, '-', '.')")
async def name_v1alpha1(session: Session) -> str:
    name = session.driver_name or ""
    problem = v1alpha1_name_problem(name)
    if problem:
        raise CheckFailed(f"{problem}: {name!r}")
    return f"{name!r}"


@check(
    "identity.name-v1alpha2",
    "the name follows the stricter v1alpha2 rule (lowercase DNS labels starting with a letter)",
)
async def name_v1alpha2(session: Session) -> str:
    name = session.driver_name or ""
    problem = v1alpha2_name_problem(name)
    if problem:
        raise CheckFailed(f"the v1alpha2 sidecar will refuse this name: {problem}")
    return f"{name!r} suits both sidecar generations"
