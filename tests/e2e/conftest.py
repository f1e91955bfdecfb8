"""Per-scenario fixture: a namespace and the examples renamed for it, timed for the session summary."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.stack import Scenario, Stack
from tests.fixtures.k8s import e2e_stats


@pytest.fixture
def scenario(request: pytest.FixtureRequest, cosi_stack: Stack) -> Iterator[Scenario]:
    """A fresh namespace named after the test (namespaces never finish deleting here, so they stay)."""
    name = request.node.originalname.removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    started = time.monotonic()
    yield cosi_stack.scenario(name)
    e2e_stats(request.config).scenarios[request.node.nodeid] = time.monotonic() - started
