"""The backend profiles every end-to-end scenario runs against (the ``cosi_stack`` fixture is
parametrized over :data:`PROFILES`); the profiles themselves live in ``tests/backend_profiles.py``,
shared with the emulator scenarios.

``need(fixture_name)`` returns a session fixture's value (``request.getfixturevalue`` under pytest),
so a profile's server is started only when its scenarios run, and a missing server skips (locally)
or fails (CI) through that fixture's own ``unavailable()`` call. The e2e suite's servers are its own
(``e2e_seaweedfs``, ``e2e_ceph_rgw``): its outages stop and freeze them. ``make bench`` uses the
filesystem profile only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.backend_profiles import BackendProfile, CephRGWProfile, FilesystemProfile, SeaweedFSProfile

ProfileFactory = Callable[[Path, Callable[[str], Any]], BackendProfile]

#: Every backend the end-to-end scenarios run against: name -> factory(workdir, need).
PROFILES: dict[str, ProfileFactory] = {
    "filesystem": lambda workdir, need: FilesystemProfile(workdir / "filesystem"),
    "seaweedfs": lambda workdir, need: SeaweedFSProfile(need("e2e_seaweedfs")),
    "ceph-rgw": lambda workdir, need: CephRGWProfile(need("e2e_ceph_rgw")),
}
