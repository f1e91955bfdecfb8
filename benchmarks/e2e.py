"""Scale on a real control plane: 100 BucketClaims and 100 BucketAccesses applied at once.

The upstream COSI controller and sidecar (v0.2.2, from the ``../shared/k8s`` kit) drive
``cosi-driver serve`` with the filesystem backend. Printed, never asserted. The sidecar's own
client-side throttling (client-go QPS 5, burst 10) and its per-object retry backoff dominate
these times; the driver's part shows in its call counts and memory.
"""

from __future__ import annotations

import asyncio
import time

from benchmarks.harness import peak_rss_mib, scratch
from benchmarks.report import Report
from tests.backend_profiles import FilesystemProfile
from tests.e2e.kube import Cluster, KitError, kit_location, kit_problem, programs_problem
from tests.e2e.stack import Stack

COUNT = 100
TIMEOUT = 1200.0


def scale(report: Report) -> None:
    kit = kit_location()
    problem = programs_problem() or kit_problem(kit)
    if problem:
        report.skip(f"{COUNT} claims + {COUNT} accesses on a real control plane", problem)
        return
    with scratch() as work:
        try:
            cluster = Cluster.start(kit, work / "k8s")
        except KitError as error:
            report.skip(f"{COUNT} claims + {COUNT} accesses on a real control plane", str(error).splitlines()[0])
            return
        try:
            stack = Stack.start(cluster, FilesystemProfile(work / "filesystem"), work / "filesystem")
            try:
                run_scale(report, stack)
            finally:
                stack.stop()
        finally:
            cluster.stop()


def run_scale(report: Report, stack: Stack) -> None:
    scenario = stack.scenario("scale")
    examples = scenario.examples
    bucket_class, access_class = examples.bucket_class(), examples.access_class("readwrite")
    scenario.apply(bucket_class, access_class)
    claims = [examples.claim(f"scale-{i:03d}") for i in range(COUNT)]
    accesses = [
        examples.access(f"scale-{i:03d}-access", claim=claim, access_class=access_class, secret=f"scale-{i:03d}-creds")
        for i, claim in enumerate(claims)
    ]
    started = time.monotonic()
    scenario.apply(*claims, *accesses)
    applied = time.monotonic() - started
    scenario.claims_ready([c["metadata"]["name"] for c in claims], timeout=TIMEOUT)
    claims_done = time.monotonic() - started
    scenario.accesses_granted([a["metadata"]["name"] for a in accesses], timeout=TIMEOUT)
    all_done = time.monotonic() - started

    label = f"{COUNT} claims + {COUNT} accesses"
    report.figure(f"{label}: one kubectl apply", f"{applied:.1f} s")
    report.figure(f"{label}: all claims ready", f"{claims_done:.1f} s", "from the apply")
    report.figure(f"{label}: all accesses granted", f"{all_done:.1f} s", "sidecar throttled at 5 API calls/s")
    report.figure("driver peak RSS during the run", f"{peak_rss_mib(stack.driver.process.pid):.1f} MiB")
    creates, grants = stack.rpcs("DriverCreateBucket"), stack.rpcs("DriverGrantBucketAccess")
    report.figure(
        "DriverCreateBucket calls (OK / all)", f"{_ok(creates)} / {len(creates)}", "repeats are the sidecar's"
    )
    report.figure("DriverGrantBucketAccess calls (OK / all)", f"{_ok(grants)} / {len(grants)}")
    race = stack.race
    report.figure("claim race workaround applied", f"{len(race.hits)} of {COUNT}", f"{race.patches} patches")


def _ok(records: list[dict[str, object]]) -> int:
    return sum(1 for record in records if record.get("code") == "OK")


async def run(report: Report) -> None:
    await asyncio.to_thread(scale, report)
