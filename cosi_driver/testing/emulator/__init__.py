"""A stand-in for the v0.2.2 provisioner sidecar: replay its calls, report what users would see.

``cosi-driver emulate`` drives one BucketClaim and one BucketAccess through their lifecycle
against a driver endpoint, the way the real sidecar calls it (names, parameters, duplicates,
retries with its backoff, its delete order), and reports the Events, object statuses and Secret a
Kubernetes user would have seen, and whether the sidecar would have crashed or wedged.
"""

from cosi_driver.testing.emulator.record import Call, Event, Problem, Record
from cosi_driver.testing.emulator.sidecar import EmulatorOptions, SidecarEmulator, emulate

__all__ = ["Call", "EmulatorOptions", "Event", "Problem", "Record", "SidecarEmulator", "emulate"]
