"""Ceph RGW: a bucket's whole life through the driver vs the same storage calls made directly.

One cycle is Create (with the ownership tag) + Grant (one user with a key and a policy statement)
+ Revoke + Delete. Through the driver it is four gRPC calls to ``cosi-driver serve`` with the
``ceph-rgw`` backend; directly it is the state-changing RGW calls a careful script would make
(CreateBucket, PutBucketTagging, PUT /admin/user, PutBucketPolicy, PutBucketPolicy,
DELETE /admin/user, DeleteBucket), sequentially, over long-lived clients, in the same run against
the same gateway. The driver adds the lookups that make it idempotent and safe (bucket owner and
mark, the current policy, the user's mark, emptiness), its intent record, and gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from benchmarks.harness import child, driver_args, driver_env, lifecycle, scratch, timed_cycles
from benchmarks.report import Report
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from tests.fixtures.ceph import CephRgw

MASTER_KEY = "benchmark-master-key-0123456789abcdefghijklmnopqrstuvwxyz"
WARMUP, CYCLES, ROUNDS = 5, 40, 3
RAM_DISK = "/dev/shm" if os.path.isdir("/dev/shm") else None  # to show what the state store's fsyncs cost


async def _timed(cycle: Callable[[int], Awaitable[None]], start: int) -> list[float]:
    return await timed_cycles(cycle, start, WARMUP, CYCLES)


async def run(report: Report) -> None:
    from tests.fixtures.ceph import start_rgw, stop_rgw

    state = Path(tempfile.mkdtemp(prefix="cosi-bench-ceph-", dir="/tmp")) / "rgw"
    rgw = start_rgw(state)
    if isinstance(rgw, str):
        stop_rgw(state)
        report.skip("Create+Grant+Revoke+Delete, ceph-rgw", rgw.splitlines()[0])
        return
    try:
        await _compare(report, rgw)
    finally:
        stop_rgw(state)


async def _compare(report: Report, rgw: CephRgw) -> None:
    with scratch() as work, tempfile.TemporaryDirectory(dir=RAM_DISK) as ram:
        stores = {"disk": work / "state", "tmpfs": Path(ram) / "state"}
        times: dict[str, list[float]] = {"disk": [], "tmpfs": [], "direct": [], "lookups": []}
        async with Direct(rgw) as direct:
            for round_ in range(ROUNDS):  # alternate, so drift on the machine hits all alike
                for offset, (label, state) in enumerate(stores.items()):
                    times[label] += await _through_driver(rgw, work, state, round_ * 1000 + offset * 100)
                times["direct"] += await _timed(direct.cycle, round_ * 1000)
                times["lookups"] += await _timed(direct.cycle_with_lookups, round_ * 1000 + 500)
    disk, tmpfs, theirs, looked = (statistics.median(times[k]) for k in ("disk", "tmpfs", "direct", "lookups"))
    note = f"median of {len(times['direct'])} cycles"
    report.figure("Create+Grant+Revoke+Delete via driver, ceph-rgw", f"{disk * 1000:.1f} ms", note)
    report.figure("  same, state store on tmpfs (no fsync cost)", f"{tmpfs * 1000:.1f} ms", note)
    report.figure("same RGW calls made directly", f"{theirs * 1000:.1f} ms", "sequential, long-lived clients")
    report.figure("ratio driver / direct", f"{disk / theirs:.2f}x", "target <= 1.10x")
    report.figure("ratio driver (state on tmpfs) / direct", f"{tmpfs / theirs:.2f}x")
    report.figure("same calls plus the driver's lookups, directly", f"{looked * 1000:.1f} ms", "14 RGW calls, not 7")
    report.figure("ratio driver / direct with the same lookups", f"{disk / looked:.2f}x", "gRPC, core, state store")
    report.figure("ratio driver (state on tmpfs) / direct with the lookups", f"{tmpfs / looked:.2f}x", "gRPC and core")


async def _through_driver(rgw: CephRgw, work: Path, state: Path, start: int) -> list[float]:
    env = driver_env(
        work,
        COSI_DRIVER_STATE_DIR=str(state),
        COSI_DRIVER_BACKEND="ceph-rgw",
        COSI_DRIVER_BACKEND_ENDPOINT=rgw.endpoint,
        COSI_DRIVER_BACKEND_ADMIN_ACCESS_KEY_ID=rgw.admin_access_key,
        COSI_DRIVER_BACKEND_ADMIN_SECRET_ACCESS_KEY=rgw.admin_secret_key,
        COSI_DRIVER_MASTER_KEY=MASTER_KEY,
    )
    del env["COSI_DRIVER_BACKEND_ROOT"]
    endpoint = f"unix://{work}/cosi.sock"
    async with child(driver_args(), env, work / "cosi.sock"), grpc.aio.insecure_channel(endpoint) as channel:
        return await _timed(lifecycle(pb_grpc.ProvisionerStub(channel)), start)


class Direct:
    """The same storage calls, made straight against RGW with aioboto3 and signed Admin Ops."""

    def __init__(self, rgw: CephRgw) -> None:
        self.rgw = rgw

    async def __aenter__(self) -> Direct:
        import aioboto3
        from botocore.config import Config

        from cosi_driver.backends.ceph.admin import AdminOps
        from cosi_driver.core.credentials import KeyPair
        from cosi_driver.core.secret import Secret

        keys = KeyPair(self.rgw.admin_access_key, Secret(self.rgw.admin_secret_key))
        session = aioboto3.Session(
            aws_access_key_id=keys.access_key_id,
            aws_secret_access_key=keys.secret_access_key.reveal(),
            region_name="us-east-1",
        )
        config = Config(s3={"addressing_style": "path"}, proxies={})
        self._manager = session.client("s3", endpoint_url=self.rgw.endpoint, config=config)
        self.s3 = await self._manager.__aenter__()
        self.admin = AdminOps(self.rgw.endpoint, lambda: keys, region="us-east-1")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()
        await self._manager.__aexit__(None, None, None)

    async def cycle(self, n: int) -> None:
        await self._cycle(n, lookups=False)

    async def cycle_with_lookups(self, n: int) -> None:
        await self._cycle(n, lookups=True)

    async def _lookup(self, call: Awaitable[object]) -> None:
        with contextlib.suppress(Exception):
            await call

    async def _cycle(self, n: int, *, lookups: bool) -> None:
        """The state-changing calls; with ``lookups``, also every read the driver makes, in the
        same order and with the same concurrency, to show what the driver itself adds."""
        bucket, uid = f"bench-direct-{n}", f"bench-direct-user-{n}"
        owner = self.rgw.admin_uid
        if lookups:
            await self._lookup(self.admin.call("GET", "bucket", {"bucket": bucket}))
        await self.s3.create_bucket(Bucket=bucket)
        await self.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "owner", "Value": "bench"}]})
        create_user = self.admin.call(
            "PUT",
            "user",
            {"uid": uid, "display-name": uid, "access-key": f"BENCHKEY{n:012d}", "secret-key": "s" * 40,
             "max-buckets": -1, "generate-key": False},
        )  # fmt: skip
        statement = {
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam:::user/{uid}"]},
            "Action": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        }
        owner_statement = {**statement, "Principal": {"AWS": [f"arn:aws:iam:::user/{owner}"]}, "Action": ["s3:*"]}
        granted = {"Version": "2012-10-17", "Statement": [owner_statement, statement]}
        revoked = {"Version": "2012-10-17", "Statement": [owner_statement]}
        grant_policy = self.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(granted, separators=(",", ":")))
        revoke_policy = self.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(revoked, separators=(",", ":")))
        delete_user = self.admin.call("DELETE", "user", {"uid": uid})
        if not lookups:
            await create_user
            await grant_policy
            await revoke_policy
            await delete_user
            await self.s3.delete_bucket(Bucket=bucket)
            return
        await self._lookup(self.admin.call("GET", "bucket", {"bucket": bucket}))
        await asyncio.gather(create_user, self._then(self.s3.get_bucket_policy(Bucket=bucket), grant_policy))
        await asyncio.gather(
            self._then(self.s3.get_bucket_policy(Bucket=bucket), revoke_policy),
            self._then(self.admin.call("GET", "user", {"uid": uid}), delete_user),
        )
        await self._lookup(self.admin.call("GET", "bucket", {"bucket": bucket}))
        await self.s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
        await self.s3.delete_bucket(Bucket=bucket)

    async def _then(self, first: Awaitable[object], second: Awaitable[object]) -> None:
        await self._lookup(first)
        await second
