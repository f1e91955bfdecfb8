"""The unit tier: pure functions and in-process objects, no sockets, no subprocesses, no servers.

Hypothesis runs derandomized and without its example database here, so a run is reproducible
from the code alone (the same examples in CI as on a laptop) and leaves no `.hypothesis/`
directory behind. A failing example is printed in full, which is all that is needed to replay it.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("unit", derandomize=True, database=None, deadline=None, max_examples=200)
settings.load_profile("unit")
