"""Foundation figures: server overhead, filesystem backend throughput, cold start, idle memory."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import grpc

from benchmarks.harness import child, driver_args, driver_env, info_rate, rate, rss_mib, scratch, wait_for_info
from benchmarks.report import Report
from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc


async def get_info_throughput(report: Report) -> None:
    ours, bare = [], []
    with scratch() as work:
        env = driver_env(work)
        bare_socket = work / "bare.sock"
        for _ in range(3):  # alternate, so drift on the machine hits both alike
            async with child(driver_args(), env, work / "cosi.sock"):
                ours.append(await info_rate(f"unix://{work}/cosi.sock"))
            async with child([sys.executable, "-m", "benchmarks.bare_server", str(bare_socket)], {}, bare_socket):
                bare.append(await info_rate(f"unix://{bare_socket}"))
    ours_rate, bare_rate = statistics.median(ours), statistics.median(bare)
    report.figure("DriverGetInfo calls/s, cosi-driver serve", f"{ours_rate:,.0f}", "32 concurrent, median of 3")
    report.figure("DriverGetInfo calls/s, bare grpc.aio servicer", f"{bare_rate:,.0f}", "same socket kind, same run")
    report.figure("ratio cosi-driver / bare", f"{ours_rate / bare_rate:.2f}x", "target >= 0.80x")


async def create_delete_pairs(report: Report) -> None:
    with scratch() as work:
        endpoint = f"unix://{work}/cosi.sock"
        async with (
            child(driver_args(), driver_env(work), work / "cosi.sock"),
            grpc.aio.insecure_channel(endpoint) as channel,
        ):
            stub = pb_grpc.ProvisionerStub(channel)

            async def pair(n: int) -> object:
                created = await stub.DriverCreateBucket(pb.DriverCreateBucketRequest(name=f"bench-{n}"))
                return await stub.DriverDeleteBucket(pb.DriverDeleteBucketRequest(bucket_id=created.bucket_id))

            for concurrency in (1, 64):
                pairs = await rate(pair, concurrency, 3.0)
                report.figure(f"Create+Delete pairs/s, filesystem, concurrency {concurrency}", f"{pairs:,.0f}")


async def cold_start_and_memory(report: Report) -> None:
    times, rss = [], []
    for _ in range(5):
        with scratch() as work:
            env = driver_env(work)
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "cosi_driver", "serve"],
                env={**env, "PATH": "/usr/bin:/bin"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await wait_for_info(f"unix://{work}/cosi.sock")
                times.append(time.perf_counter() - started)
                rss.append(rss_mib(process.pid))
            finally:
                process.terminate()
                process.wait(30)
    report.figure(
        "cold start to first DriverGetInfo", f"{statistics.median(times):.3f} s", "median of 5; target <= 1.0 s"
    )
    report.figure("idle RSS after start", f"{statistics.median(rss):.1f} MiB", "median of 5; target <= 80 MiB")


async def run(report: Report) -> None:
    await get_info_throughput(report)
    await create_delete_pairs(report)
    await cold_start_and_memory(report)
