"""Run the selected checks in order, then clean up; produce the report."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from cosi_driver.testing.conformance.framework import (
    CHECKS,
    Check,
    CheckFailed,
    CheckResult,
    CheckSkipped,
    Cleanup,
    Options,
    Outcome,
    Session,
)


@dataclass
class Report:
    endpoint: str
    driver_name: str | None
    results: list[CheckResult]
    cleanup: Cleanup
    seconds: float
    run_id: str
    prefix: str

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def passed(self) -> bool:
        return self.count(Outcome.FAIL) == 0

    def summary_line(self) -> str:
        return (
            f"{self.count(Outcome.PASS)} passed, {self.count(Outcome.FAIL)} failed, {self.count(Outcome.SKIP)} skipped"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "driver_name": self.driver_name,
            "run_id": self.run_id,
            "name_prefix": f"{self.prefix}-{self.run_id}",
            "seconds": round(self.seconds, 3),
            "passed": self.passed,
            "summary": {
                "passed": self.count(Outcome.PASS),
                "failed": self.count(Outcome.FAIL),
                "skipped": self.count(Outcome.SKIP),
            },
            "checks": [
                {
                    "name": r.name,
                    "outcome": r.outcome.value,
                    "reason": r.reason,
                    "seconds": round(r.seconds, 3),
                    "summary": r.summary,
                }
                for r in self.results
            ],
            "cleanup": {
                "buckets_deleted": self.cleanup.deleted,
                "accesses_revoked": self.cleanup.revoked,
                "left_behind": self.cleanup.left_behind,
            },
        }


def selected(options: Options) -> list[Check]:
    import cosi_driver.testing.conformance.checks  # noqa: F401 - registers the checks

    def matches(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern + ".") for pattern in patterns)

    chosen = [c for c in CHECKS if c.api in options.apis and (not options.focus or matches(c.name, options.focus))]
    return [c for c in chosen if not matches(c.name, options.skip)]


@dataclass
class _Progress:
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def blocker(self, check: Check) -> str | None:
        for required in check.requires:
            outcome = self.outcomes.get(required)
            if outcome is None:
                return f"needs {required}, which was not run (--focus/--skip)"
            if outcome is Outcome.FAIL:
                return f"needs {required}, which failed"
            if outcome is Outcome.SKIP:
                return f"needs {required}, which was skipped"
        return None


async def run(options: Options, on_result: Callable[[CheckResult], None] | None = None) -> Report:
    """Run the suite against ``options.endpoint``; ``on_result`` sees each result as it comes."""
    session = Session(options)
    progress = _Progress()
    results: list[CheckResult] = []
    started = time.monotonic()
    try:
        checks = selected(options)
        wanted = {c.name for c in checks}
        for item in checks:
            for required in item.requires:
                if required not in wanted and required not in progress.outcomes:
                    # A focused run still needs its prerequisites: run them silently first.
                    await _run_hidden(session, progress, required)
            result = await _run_one(session, progress, item)
            progress.outcomes[item.name] = result.outcome
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        cleanup = await session.cleanup()
        await session.close()
    return Report(
        endpoint=options.endpoint,
        driver_name=session.driver_name,
        results=results,
        cleanup=cleanup,
        seconds=time.monotonic() - started,
        run_id=session.run_id,
        prefix=options.prefix,
    )


async def _run_hidden(session: Session, progress: _Progress, name: str) -> None:
    item = next(c for c in CHECKS if c.name == name)
    for required in item.requires:
        if required not in progress.outcomes:
            await _run_hidden(session, progress, required)
    progress.outcomes[name] = (await _run_one(session, progress, item)).outcome


async def _run_one(session: Session, progress: _Progress, item: Check) -> CheckResult:
    started = time.monotonic()
    outcome, reason = await _outcome(session, progress, item)
    return CheckResult(item.name, outcome, reason, time.monotonic() - started, item.summary)


async def _outcome(session: Session, progress: _Progress, item: Check) -> tuple[Outcome, str]:
    blocked = progress.blocker(item)
    if blocked is None and item.needs_s3 and not session.options.s3_check:
        blocked = "data-path check: run with --s3-check"
    if blocked is None and item.needs_azure and not session.options.azure_check:
        blocked = "data-path check: run with --azure-check"
    if blocked:
        return Outcome.SKIP, blocked
    try:
        detail = await item.run(session)
    except CheckFailed as failure:
        return Outcome.FAIL, str(failure)
    except CheckSkipped as skipped:
        return Outcome.SKIP, str(skipped)
    except grpc.aio.AioRpcError as error:
        return Outcome.FAIL, f"unexpected {error.code().name}: {error.details()}"
    except Exception as error:  # a bug in the check or in its libraries: report, keep going
        return Outcome.FAIL, f"the check itself crashed: {type(error).__name__}: {error}"
    return Outcome.PASS, detail or ""
