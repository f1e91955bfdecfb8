"""A burst: many BucketClaims, each with one BucketAccess, applied at once to one emulated sidecar.

All objects share one :class:`SidecarSession` (one connection, 40 workers, one clock); each keeps
its own backoff and its own calls, Events, Secret and verdict, as each Kubernetes object does.
Provisioning and deletion are separate steps so that a test can look into storage in between;
:func:`emulate_burst` runs both, as ``cosi-driver emulate --claims N`` does.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any

from cosi_driver.testing.emulator.options import EmulatorOptions
from cosi_driver.testing.emulator.record import Call, Problem, Record, verdict_json
from cosi_driver.testing.emulator.session import Observer, SidecarSession
from cosi_driver.testing.emulator.sidecar import SidecarEmulator


@dataclass
class BurstRecord:
    endpoint: str
    driver_name: str | None = None
    start: list[Call] = field(default_factory=list)  # DriverGetInfo at sidecar start
    problems: list[Problem] = field(default_factory=list)  # the sidecar's own, before any object
    objects: list[Record] = field(default_factory=list)  # one per claim with its access

    @property
    def crashed(self) -> bool:
        return any(p.kind == "crashed" for p in self.problems) or any(o.crashed for o in self.objects)

    @property
    def wedged(self) -> bool:
        return any(o.wedged for o in self.objects)

    @property
    def ok(self) -> bool:
        return not self.problems and all(o.ok for o in self.objects)

    def to_json(self, show_secrets: bool = False) -> dict[str, Any]:
        return {
            **verdict_json(self),
            "start": [asdict(call) for call in self.start],
            "objects": [record.to_json(show_secrets) for record in self.objects],
        }

    def to_text(self, show_secrets: bool = False) -> str:
        claims = len(self.objects)
        out = [f"Sidecar v0.2.2 emulation of a burst of {claims} claims, each with one access, against {self.endpoint}"]
        out += [f"  DriverGetInfo {call.code} {call.message}" for call in self.start]
        for record in self.objects:
            failed = sum(1 for call in record.calls if call.code != "OK")
            out.append(f"\n{record.names['BucketClaim']} / {record.names['BucketAccess']}")
            out.append(f"  calls: {len(record.calls)} ({failed} refused)")
            for event in record.events:
                out.append(f"  Event {event.reason} {event.kind} x{event.count}: {event.message}")
            final = record.after_delete or {"provisioned": "yes" if record.provisioned else "no"}
            out.append("  final: " + "; ".join(f"{kind} {state}" for kind, state in final.items()))
            if record.secret is not None:
                out.append(
                    "  Secret BucketInfo: " + json.dumps(record.masked_secret(show_secrets), separators=(",", ":"))
                )
            for problem in record.problems:
                out.append(f"  {problem.kind.upper()}: {problem.text}")
        out.append("")
        done = sum(1 for record in self.objects if record.ok)
        for problem in self.problems:
            out.append(f"Verdict: {problem.kind.upper()} - {problem.text}")
        if self.ok:
            out.append(f"Verdict: OK - all {claims} claims and accesses went through their lifecycle")
        elif not self.problems:
            out.append(f"Verdict: PROBLEMS - {done} of {claims} claims and accesses went through cleanly")
        return "\n".join(out)


class SidecarBurst:
    """``async with SidecarBurst(options) as burst: await burst.provision(); ...; await burst.delete()``."""

    def __init__(self, options: EmulatorOptions, observer: Observer | None = None) -> None:
        self.options = options
        self._session = SidecarSession(options, observer)
        self.emulators = [SidecarEmulator(options, self._session, index) for index in range(max(1, options.claims))]
        self.record = BurstRecord(endpoint=options.endpoint, objects=[e.record for e in self.emulators])
        self._provisioned: list[SidecarEmulator] = []

    async def __aenter__(self) -> SidecarBurst:
        await self._session.__aenter__()
        try:
            call, problem = await self._session.start()
        except BaseException:
            await self._session.__aexit__(None, None, None)
            raise
        self.record.start.append(call)
        self.record.driver_name = self._session.driver_name
        if problem is not None:
            self.record.problems.append(problem)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._session.__aexit__(kind, error, trace)

    async def provision(self) -> BurstRecord:
        """Every claim and access at once; returns when each is provisioned or given up on."""
        if not self.record.problems:
            done = await asyncio.gather(*(emulator.provision() for emulator in self.emulators))
            self._provisioned = [emulator for emulator, ok in zip(self.emulators, done, strict=True) if ok]
        return self.record

    async def delete(self) -> BurstRecord:
        """Delete every provisioned claim and access at once."""
        await asyncio.gather(*(emulator.delete() for emulator in self._provisioned))
        return self.record


async def emulate_burst(options: EmulatorOptions, observer: Observer | None = None) -> BurstRecord:
    """``options.claims`` claims with one access each, provisioned and then deleted, all at once."""
    async with SidecarBurst(options, observer) as burst:
        await burst.provision()
        await burst.delete()
    return burst.record
