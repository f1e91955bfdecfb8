"""Observability figures: what tracing and metrics cost a call, and what they add to start-up.

DriverGetInfo throughput of six servers in the same run, alternated so drift on the machine hits
all alike: the bare grpc.aio servicer; ``cosi-driver serve`` with telemetry off (no OTEL_* exporter,
no HTTP address: opentelemetry is not even imported); with Prometheus metrics on
(COSI_DRIVER_HTTP_ADDR); with tracing too (every span sampled, batched to a no-op exporter); and
with one trace in ten sampled (OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG 0.1). A sixth,
the bare servicer wrapped by opentelemetry-instrumentation-grpc's interceptor alone, shows what
that interceptor costs by itself: the ceiling for any server that uses it.
Besides calls/s, each server's own CPU time per call is shown: on a shared machine it is the
steadier figure.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import child, driver_args, driver_env, info_caller, rate, scratch, wait_for_info
from benchmarks.report import Report

SECONDS = 3.0
CONCURRENCY = 32


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(endpoint: str, pid: int) -> tuple[float, float]:
    """(calls/s, server CPU microseconds per call) for DriverGetInfo."""
    async with info_caller(endpoint, CONCURRENCY) as call:
        cpu_before = cpu_seconds(pid)
        calls_per_second = await rate(call, CONCURRENCY, SECONDS)
        cpu = cpu_seconds(pid) - cpu_before
    return calls_per_second, cpu / (calls_per_second * SECONDS) * 1e6


def variants(work: Path) -> dict[str, tuple[list[str], dict[str, str], Path]]:
    bare_socket, sock = work / "bare.sock", work / "cosi.sock"
    metrics_env = driver_env(work, COSI_DRIVER_HTTP_ADDR="127.0.0.1:0")  # any free port
    return {
        "bare grpc.aio servicer": ([sys.executable, "-m", "benchmarks.bare_server", str(bare_socket)], {}, bare_socket),
        "bare + OTel interceptor alone": (
            [sys.executable, "-m", "benchmarks.bare_server", str(bare_socket), "--otel"],
            {},
            bare_socket,
        ),
        "telemetry off": (driver_args(), driver_env(work), sock),
        "metrics on": (driver_args(), metrics_env, sock),
        "tracing + metrics on": ([sys.executable, "-m", "benchmarks.instrumented_server"], metrics_env, sock),
        "tracing sampled 10% + metrics on": (
            [sys.executable, "-m", "benchmarks.instrumented_server"],
            {**metrics_env, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            sock,
        ),
    }


async def throughput(report: Report) -> None:
    results: dict[str, list[tuple[float, float]]] = {}
    with scratch() as work:
        servers = variants(work)
        for _ in range(3):
            for name, (args, env, sock) in servers.items():
                async with child(args, env, sock) as process:
                    results.setdefault(name, []).append(await measure(f"unix://{sock}", process.pid))
    medians = {
        name: (statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in results.items()
    }
    bare_rate, bare_cpu = medians["bare grpc.aio servicer"]
    for name, (calls, cpu) in medians.items():
        report.figure(
            f"DriverGetInfo calls/s, {name}",
            f"{calls:,.0f}",
            f"{calls / bare_rate:.2f}x bare; server CPU {cpu:,.0f} us/call ({cpu / bare_cpu:.2f}x)",
        )
    full = medians["tracing + metrics on"][0] / bare_rate
    report.figure("ratio full instrumentation / bare", f"{full:.2f}x", "target >= 0.80x; 32 concurrent, median of 3")
    floor = medians["bare + OTel interceptor alone"][0] / bare_rate
    report.figure(
        "ratio OpenTelemetry's interceptor alone / bare",
        f"{floor:.2f}x",
        f"the most any server using it can reach here; full instrumentation is {full / floor:.2f}x of it",
    )


async def cold_start(report: Report) -> None:
    times = []
    for _ in range(3):
        with scratch() as work:
            env = driver_env(work, COSI_DRIVER_HTTP_ADDR="127.0.0.1:0")
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.instrumented_server"],
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                await wait_for_info(f"unix://{work}/cosi.sock")
                times.append(time.perf_counter() - started)
            finally:
                process.terminate()
                process.wait(30)
    report.figure(
        "cold start, tracing + metrics on", f"{statistics.median(times):.3f} s", "median of 3; telemetry off: see core"
    )


async def run(report: Report) -> None:
    await throughput(report)
    await cold_start(report)
