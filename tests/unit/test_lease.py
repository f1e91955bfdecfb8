"""Leases in the state store (cosi_driver.backends.lease): exclusion between two driver processes.

Two ``FileStateStore`` objects over one directory stand for two pods sharing a store. The clock is
the test's own where expiry matters; interleavings are made with events, and the pause between
attempts only yields to the loop, so no test waits for time to pass.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cosi_driver.backends.lease import Leases, lease_key
from cosi_driver.core.errors import Unavailable
from cosi_driver.core.stores import FileStateStore

BOUND = 5.0


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Pauses:
    """Counts the waits between attempts and only yields, so a waiter keeps retrying at once."""

    def __init__(self, enough: int = 3) -> None:
        self.count = 0
        self.enough = enough
        self.retried_enough = asyncio.Event()  # set once the waiter has been turned away ``enough`` times

    async def __call__(self, seconds: float) -> None:
        assert 0 < seconds <= 0.5
        self.count += 1
        if self.count >= self.enough:
            self.retried_enough.set()
        await asyncio.sleep(0)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def pod(state: Path, clock: Clock | None = None, wait: float = 30.0, pauses: Pauses | None = None) -> Leases:
    """One driver process's view: its own store object over the shared directory."""
    return Leases(
        FileStateStore(state),
        "test",
        ttl=10.0,
        wait=wait,
        clock=clock or Clock(),
        pause=pauses or Pauses(),
    )


async def test_a_second_pod_waits_until_the_first_releases(state: Path) -> None:
    pauses = Pauses()
    first, second = pod(state), pod(state, pauses=pauses)
    entered, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def hold(leases: Leases, who: str, until: asyncio.Event | None) -> None:
        async with leases.hold("bucket", "the bucket"):
            order.append(f"{who} in")
            entered.set()
            if until is not None:
                await until.wait()
            order.append(f"{who} out")

    holding = asyncio.create_task(hold(first, "first", release))
    await asyncio.wait_for(entered.wait(), BOUND)
    waiting = asyncio.create_task(hold(second, "second", None))
    await asyncio.wait_for(pauses.retried_enough.wait(), BOUND)  # it keeps trying...
    assert order == ["first in"]  # ...and stays out while the first holds
    release.set()
    await asyncio.wait_for(asyncio.gather(holding, waiting), BOUND)
    assert order == ["first in", "first out", "second in", "second out"]
    assert await FileStateStore(state).keys("lease/") == []  # released leases leave nothing


async def test_different_names_do_not_wait_for_each_other(state: Path) -> None:
    first, second = pod(state, wait=0), pod(state, wait=0)
    async with first.hold("one", "one"), second.hold("two", "two"):
        assert sorted(await FileStateStore(state).keys("lease/")) == [
            lease_key("test", "one"),
            lease_key("test", "two"),
        ]


async def test_a_dead_holders_lease_blocks_until_it_expires_then_is_taken_over(state: Path) -> None:
    store = FileStateStore(state)
    await store.create(lease_key("test", "bucket"), {"holder": "a pod that died", "expires": 1005.0})
    clock = Clock(1000.0)
    leases = pod(state, clock, wait=0)
    with pytest.raises(Unavailable) as refused:
        async with leases.hold("bucket", "the policy of bucket 'b'"):
            pytest.fail("entered a lease another holder still has")
    assert "the policy of bucket 'b'" in refused.value.message
    assert "another driver instance" in refused.value.message
    clock.now = 1005.5
    async with leases.hold("bucket", "the bucket"):
        held = await store.get(lease_key("test", "bucket"))
        assert held is not None and held["holder"] != "a pod that died"
    assert await store.get(lease_key("test", "bucket")) is None


async def test_a_holder_that_outlived_its_lease_does_not_release_the_next_holders(state: Path) -> None:
    clock = Clock(1000.0)
    store = FileStateStore(state)
    key = lease_key("test", "bucket")
    slow = pod(state, clock, wait=0).hold("bucket", "the bucket")
    await slow.__aenter__()
    clock.now += 11  # the slow holder's lease (ttl 10) has run out; another pod takes it over
    other = pod(state, clock, wait=0).hold("bucket", "the bucket")
    await other.__aenter__()
    taken = await store.get(key)
    await slow.__aexit__(None, None, None)
    assert await store.get(key) == taken, "the slow holder released a lease it no longer had"
    await other.__aexit__(None, None, None)
    assert await store.get(key) is None


async def test_a_release_close_to_expiry_marks_the_lease_free_instead_of_deleting(state: Path) -> None:
    clock = Clock(1000.0)
    leases = pod(state, clock, wait=0)
    key = lease_key("test", "bucket")
    async with leases.hold("bucket", "the bucket"):
        clock.now += 9  # one second left of ten: too close to delete safely
    left = await FileStateStore(state).get(key)
    assert left == {"holder": "", "expires": 0}
    async with pod(state, clock, wait=0).hold("bucket", "the bucket"):  # free: taken at once
        pass
    assert await FileStateStore(state).get(key) is None
