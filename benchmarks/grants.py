"""What a v1alpha2 grant of 1 and of 5 buckets costs next to a v1alpha1 grant, on SeaweedFS and Ceph RGW.

Each grant is made for a fresh account name (a first grant, not a retry) and revoked right after,
so the storage holds the same number of users all along (SeaweedFS's IAM slows down as they pile
up). The calls go to the driver core in-process over the real backends, with each API's rules:
what differs between the three kinds is the backend's work (one IAM policy naming 5 buckets; 5
bucket policies on RGW) and the core's grant record, not gRPC, which costs the same for all.
The kinds take turns within each round, so drift on the machine hits all of them alike.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import Report
from cosi_driver.core.types import AccessMode, AuthenticationType
from cosi_driver.core.validation import V1ALPHA1, V1ALPHA2, ApiRules
from cosi_driver.observability.logging import configure
from cosi_driver.testing.acceptance import BACKEND_NAME, AcceptanceTarget, Harness
from cosi_driver.testing.probes import S3AdminProbe

WARMUP, CYCLES, ROUNDS = 2, 8, 3
MODES = (AccessMode.READ_WRITE, AccessMode.READ_ONLY, AccessMode.WRITE_ONLY)
MASTER_KEY = "benchmark-master-key-0123456789abcdefghijklmnopqrstuvwxyz"


async def run(report: Report) -> None:
    from tests.fixtures.ceph import start_rgw, stop_rgw

    configure(level="warning")  # the driver runs in this process: keep its per-call log lines out of the report
    from tests.fixtures.seaweedfs import running_seaweedfs

    parent = Path(tempfile.mkdtemp(prefix="cosi-bench-grants-", dir="/tmp"))
    try:
        with running_seaweedfs(parent / "seaweedfs") as server:
            probe = S3AdminProbe(server.endpoint, server.access_key, server.secret_key)
            target = AcceptanceTarget("s3", server.config, probe)
            await _compare(report, "s3 on SeaweedFS", target, Path(tempfile.mkdtemp(dir=parent)))
    except BaseException as error:  # the fixture's unavailable() is a pytest skip outside pytest
        if type(error).__name__ != "Skipped":
            raise
        report.skip("grants, s3 on SeaweedFS", str(error).splitlines()[0])
    finally:
        shutil.rmtree(parent, ignore_errors=True)

    state = Path(tempfile.mkdtemp(prefix="cosi-bench-grants-ceph-", dir="/tmp")) / "rgw"
    rgw = start_rgw(state)
    if isinstance(rgw, str):
        stop_rgw(state)
        report.skip("grants, ceph-rgw", rgw.splitlines()[0])
        return
    try:
        probe = S3AdminProbe(rgw.endpoint, rgw.admin_access_key, rgw.admin_secret_key)
        target = AcceptanceTarget("ceph-rgw", rgw.config(), probe, master_key=MASTER_KEY)
        await _compare(report, "ceph-rgw", target, Path(tempfile.mkdtemp(dir=state.parent)))
    finally:
        stop_rgw(state)


async def _compare(report: Report, label: str, target: AcceptanceTarget, workdir: Path) -> None:
    harness = Harness(target, workdir)
    await harness.start()
    try:
        ids = [(await harness.create()).bucket_id for _ in range(5)]
        kinds: dict[str, tuple[ApiRules, list[tuple[str, AccessMode | None]]]] = {
            "v1alpha1 grant, 1 bucket": (V1ALPHA1, [(ids[0], None)]),
            "v1alpha2 grant, 1 bucket": (V1ALPHA2, [(ids[0], AccessMode.READ_WRITE)]),
            "v1alpha2 grant, 5 buckets (mixed modes)": (V1ALPHA2, [(b, MODES[i % 3]) for i, b in enumerate(ids)]),
        }
        grants: dict[str, list[float]] = {kind: [] for kind in kinds}
        inside: dict[str, list[float]] = {kind: [] for kind in kinds}
        revokes: dict[str, list[float]] = {kind: [] for kind in kinds}
        clock = _BackendClock(harness)
        for round_ in range(ROUNDS):
            for kind, (rules, buckets) in kinds.items():
                for cycle in range(WARMUP + CYCLES):
                    granted, revoked = await _cycle(harness, rules, buckets, f"ba-{round_}-{cycle}-{len(buckets)}")
                    spent = clock.take()
                    if cycle >= WARMUP:
                        grants[kind].append(granted)
                        inside[kind].append(spent)
                        revokes[kind].append(revoked)
        for kind in kinds:
            ms = {name: statistics.median(times[kind]) * 1000 for name, times in (("in", inside), ("rv", revokes))}
            note = f"median of {len(grants[kind])}; backend {ms['in']:.1f} ms of it; revoke {ms['rv']:.1f} ms"
            report.figure(f"{kind}, {label}", f"{statistics.median(grants[kind]) * 1000:.1f} ms", note)
        await harness.cleanup()
    finally:
        await harness.stop()


async def _cycle(
    harness: Harness, rules: ApiRules, buckets: Sequence[tuple[str, AccessMode | None]], name: str
) -> tuple[float, float]:
    assert harness.server is not None
    driver: Any = harness.server.driver
    began = time.perf_counter()
    access = await driver.grant_access(name + rules.api, list(buckets), AuthenticationType.KEY, {}, rules=rules)
    granted = time.perf_counter()
    await driver.revoke_access(access.account_id, [bucket_id for bucket_id, _ in buckets], rules=rules)
    return granted - began, time.perf_counter() - granted


class _BackendClock:
    """Time spent inside the backend's grant_access, to tell the backend's share from the core's."""

    def __init__(self, harness: Harness) -> None:
        assert harness.server is not None
        self.backend: Any = harness.server.driver.routes[BACKEND_NAME].backend
        self.inner = self.backend.grant_access
        self.spent: list[float] = []
        setattr(self.backend, "grant_access", self._timed)  # noqa: B010 (an instance wrapper, not a class change)

    async def _timed(self, request: Any) -> Any:
        began = time.perf_counter()
        try:
            return await self.inner(request)
        finally:
            self.spent.append(time.perf_counter() - began)

    def take(self) -> float:
        spent, self.spent = sum(self.spent), []
        return spent
