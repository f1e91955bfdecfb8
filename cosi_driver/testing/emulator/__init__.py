"""A stand-in for the v0.2.2 provisioner sidecar: replay its calls, report what users would see.

``cosi-driver emulate`` drives BucketClaims and BucketAccesses through their lifecycle against a
driver endpoint, the way the real sidecar calls it (names, parameters, duplicates, retries with its
backoff, its 40 workers, its delete order), and reports the Events, object statuses and Secrets a
Kubernetes user would have seen, and whether the sidecar would have crashed or wedged. With one
claim it is :func:`emulate`; with a burst of many, :class:`SidecarBurst` / :func:`emulate_burst`.
CI has no Kubernetes control plane: this is what stands in for it there.
"""

from cosi_driver.testing.emulator.burst import BurstRecord, SidecarBurst, emulate_burst
from cosi_driver.testing.emulator.options import EmulatorOptions
from cosi_driver.testing.emulator.record import Call, Event, Problem, Record
from cosi_driver.testing.emulator.session import Observer, SidecarSession
from cosi_driver.testing.emulator.sidecar import SidecarEmulator, emulate

__all__ = [
    "BurstRecord",
    "Call",
    "EmulatorOptions",
    "Event",
    "Observer",
    "Problem",
    "Record",
    "SidecarBurst",
    "SidecarEmulator",
    "SidecarSession",
    "emulate",
    "emulate_burst",
]
