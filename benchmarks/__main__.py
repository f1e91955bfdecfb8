"""Run the benchmark sections and print one line per figure."""

from __future__ import annotations

import asyncio
import importlib
import os
import platform
import sys
from datetime import UTC, datetime

from benchmarks.report import Report

SECTIONS = ["core", "observability", "s3", "ceph", "grants", "azure", "e2e", "fuzz"]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


async def main(names: list[str]) -> int:
    report = Report()
    print(f"# cosi-driver benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    for name in names or SECTIONS:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"\n## {name}")
        await module.run(report)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
