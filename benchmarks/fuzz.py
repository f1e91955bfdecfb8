"""The seeded RPC fuzz (cosi_driver.testing.fuzz) on the real backends: s3 on SeaweedFS, ceph-rgw.

Both COSI APIs are fuzzed on the one socket (v1alpha1 and v1alpha2 RPCs mixed about half and half).

``make test`` runs it on the filesystem backend; here the same generator drives ``cosi-driver
serve`` over real storage, where names and parameters reach S3, IAM and the RGW Admin API. The
figures are calls, the codes seen and the time; any UNKNOWN/INTERNAL, unanswered call, secret in a
message or bucket left behind is printed as a problem. COSI_FUZZ_BENCH_CALLS sets the count
(default 2000 per backend: SeaweedFS serialises IAM, so a Grant costs tens of milliseconds).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import child, driver_args, driver_env, scratch
from benchmarks.report import Report
from cosi_driver.testing.fuzz import FuzzReport, fuzz

CALLS = int(os.environ.get("COSI_FUZZ_BENCH_CALLS", "2000"))
SEED = int(os.environ.get("COSI_FUZZ_SEED", "20"))
MASTER_KEY = "fuzz-bench-master-key-0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Target:
    """One real storage system: how the driver reaches it and the admin keys it must never leak."""

    label: str
    backend: str
    endpoint: str
    access_key: str
    secret_key: str
    env: Mapping[str, str]


async def _fuzz(report: Report, target: Target, work: Path) -> None:
    full = {
        **driver_env(work),
        **target.env,
        "COSI_DRIVER_BACKEND": target.backend,
        "COSI_DRIVER_MASTER_KEY": MASTER_KEY,
    }
    del full["COSI_DRIVER_BACKEND_ROOT"]
    async with child(driver_args(), full, work / "cosi.sock") as process:
        result = await fuzz(
            f"unix://{work}/cosi.sock",
            calls=CALLS,
            seed=SEED,
            backend=target.backend,
            concurrency=4,
            secrets=[MASTER_KEY, target.secret_key],
            call_timeout=60.0,
        )
        alive = process.poll() is None
    _print(report, target.label, result, alive)
    left = await _buckets_left(target)
    report.figure(f"fuzz, {target.label}: buckets left behind", str(len(left)), ", ".join(left[:5]))


def _print(report: Report, label: str, result: FuzzReport, alive: bool) -> None:
    codes = ", ".join(f"{name} {n}" for name, n in result.codes.most_common())
    report.figure(f"fuzz, {label}: calls", str(result.calls), f"seed {SEED}")
    report.figure(f"fuzz, {label}: time", f"{result.seconds:.1f} s", f"{result.calls / result.seconds:.0f} calls/s")
    report.figure(f"fuzz, {label}: codes", "", codes)
    per_api = ", ".join(f"{api} {n}" for api, n in sorted(result.by_api.items()))
    report.figure(f"fuzz, {label}: calls per API", "", per_api)
    for rpc, counter in sorted(result.by_rpc.items()):
        report.figure(f"  {rpc}", "", ", ".join(f"{name} {n}" for name, n in counter.most_common()))
    verdict = "ok" if not (result.problems or result.cleanup_failures) and alive else "FAILED"
    report.figure(
        f"fuzz, {label}: problems / cleanup failures",
        f"{len(result.problems)} / {len(result.cleanup_failures)}",
        f"{verdict}; driver {'alive' if alive else 'DEAD'}",
    )
    for line in [*result.problems, *result.cleanup_failures][:10]:
        print(f"    {line}", flush=True)


async def run(report: Report) -> None:
    await _seaweedfs(report)
    await _ceph(report)


async def _seaweedfs(report: Report) -> None:
    from tests.fixtures.seaweedfs import start_seaweedfs, stop_seaweedfs

    with scratch() as work:
        try:
            server, env = start_seaweedfs(work / "seaweedfs")
        except RuntimeError as error:
            report.skip("fuzz, s3 on SeaweedFS", str(error).splitlines()[0])
            return
        try:
            backend_env = {
                "COSI_DRIVER_BACKEND_ENDPOINT": server.endpoint,
                "COSI_DRIVER_BACKEND_ACCESS_KEY_ID": server.access_key,
                "COSI_DRIVER_BACKEND_SECRET_ACCESS_KEY": server.secret_key,
            }
            target = Target("s3 on SeaweedFS", "s3", server.endpoint, server.access_key, server.secret_key, backend_env)
            await _fuzz(report, target, work)
        finally:
            stop_seaweedfs(env)


async def _ceph(report: Report) -> None:
    from tests.fixtures.ceph import start_rgw, stop_rgw

    state = Path(tempfile.mkdtemp(prefix="cosi-bench-fuzz-", dir="/tmp")) / "rgw"
    rgw = start_rgw(state)
    if isinstance(rgw, str):
        stop_rgw(state)
        report.skip("fuzz, ceph-rgw", rgw.splitlines()[0])
        return
    try:
        with scratch() as work:
            backend_env = {
                "COSI_DRIVER_BACKEND_ENDPOINT": rgw.endpoint,
                "COSI_DRIVER_BACKEND_ADMIN_ACCESS_KEY_ID": rgw.admin_access_key,
                "COSI_DRIVER_BACKEND_ADMIN_SECRET_ACCESS_KEY": rgw.admin_secret_key,
            }
            admin = (rgw.admin_access_key, rgw.admin_secret_key)
            await _fuzz(report, Target("ceph-rgw", "ceph-rgw", rgw.endpoint, *admin, backend_env), work)
    finally:
        stop_rgw(state)


async def _buckets_left(target: Target) -> list[str]:
    """Fuzz buckets (``fz<seed>-...``) still in the storage, listed with the admin keys."""
    import aioboto3

    session = aioboto3.Session(
        aws_access_key_id=target.access_key, aws_secret_access_key=target.secret_key, region_name="us-east-1"
    )
    async with session.client("s3", endpoint_url=target.endpoint) as s3:
        listed = await s3.list_buckets()
    return sorted(b["Name"] for b in listed.get("Buckets", []) if b["Name"].startswith(f"fz{SEED % 100000}-"))
