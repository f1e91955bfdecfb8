"""SingleFlight and KeyedLocks (cosi_driver.core.concurrency), driven step by step with events.

No test here waits for time to pass: each one makes the interleaving it needs with asyncio events
and checks what had happened when the test regains control. ``wait_for`` bounds only the waits
that would otherwise hang if the code under test deadlocked.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cosi_driver.core.concurrency import KeyedLocks, SingleFlight
from cosi_driver.core.errors import Unavailable

BOUND = 5.0  # seconds before a deadlock fails the test instead of hanging it


class Gate:
    """An operation that counts its runs and finishes only when the test opens the gate."""

    def __init__(self, result: object = "done", error: BaseException | None = None) -> None:
        self.runs = 0
        self.started = asyncio.Event()
        self.open = asyncio.Event()
        self.result = result
        self.error = error

    async def __call__(self) -> object:
        self.runs += 1
        self.started.set()
        await self.open.wait()
        if self.error is not None:
            raise self.error
        return self.result


Operation = Callable[[], Awaitable[object]]


async def join(flight: SingleFlight, key: object, operation: Operation, n: int) -> list[asyncio.Task[object]]:
    """Start ``n`` callers of ``flight.do`` and return once every one of them is waiting in it."""
    entered = 0
    everyone = asyncio.Event()

    async def caller() -> object:
        nonlocal entered
        entered += 1
        if entered == n:
            everyone.set()
        # do() registers or joins the flight before its first await, so a caller counted above
        # is already attached to the shared operation when this task next yields.
        return await flight.do(key, operation)

    tasks = [asyncio.create_task(caller()) for _ in range(n)]
    await asyncio.wait_for(everyone.wait(), BOUND)
    return tasks


async def test_concurrent_identical_calls_run_the_operation_once_and_share_its_result() -> None:
    flight, gate = SingleFlight(), Gate(result={"bucket_id": "v1/local/b"})
    tasks = await join(flight, ("create", "b"), gate, 8)
    assert len(flight) == 1
    gate.open.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
    assert gate.runs == 1
    assert all(result is gate.result for result in results)
    assert len(flight) == 0


async def test_different_keys_do_not_share_an_operation() -> None:
    flight, first, second = SingleFlight(), Gate("a"), Gate("b")
    one = await join(flight, "a", first, 1)
    two = await join(flight, "b", second, 1)
    assert len(flight) == 2
    first.open.set()
    second.open.set()
    assert await asyncio.wait_for(asyncio.gather(*one, *two), BOUND) == ["a", "b"]
    assert (first.runs, second.runs) == (1, 1)


async def test_an_error_reaches_every_waiter_and_the_next_call_tries_again() -> None:
    flight, gate = SingleFlight(), Gate(error=Unavailable("storage unreachable"))
    tasks = await join(flight, "k", gate, 3)
    gate.open.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), BOUND)
    assert all(outcome is gate.error for outcome in outcomes)
    assert len(flight) == 0  # a failure is not remembered: the sidecar's retry must run again
    retry = Gate("recovered")
    retry.open.set()
    assert await flight.do("k", retry) == "recovered"
    assert (gate.runs, retry.runs) == (1, 1)


async def test_a_result_is_not_cached_once_the_operation_finished() -> None:
    flight, gate = SingleFlight(), Gate()
    gate.open.set()
    await flight.do("k", gate)
    await flight.do("k", gate)
    assert gate.runs == 2


async def test_one_cancelled_waiter_does_not_cancel_the_operation_for_the_others() -> None:
    flight, gate = SingleFlight(), Gate("shared")
    leaver, *stayers = await join(flight, "k", gate, 3)
    leaver.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await leaver
    gate.open.set()
    assert await asyncio.wait_for(asyncio.gather(*stayers), BOUND) == ["shared", "shared"]
    assert gate.runs == 1


async def test_an_operation_whose_callers_all_left_is_picked_up_by_the_retry() -> None:
    flight, gate = SingleFlight(), Gate("finished")
    tasks = await join(flight, "k", gate, 2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert len(flight) == 1  # still running for whoever asks next
    retry = await join(flight, "k", gate, 1)
    gate.open.set()
    assert await asyncio.wait_for(retry[0], BOUND) == "finished"
    assert gate.runs == 1


class Holder:
    """A task that holds one key of a KeyedLocks until the test releases it, logging what it did."""

    def __init__(self, locks: KeyedLocks, key: object, name: str, log: list[str]) -> None:
        self.asking = asyncio.Event()
        self.inside = asyncio.Event()
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self._run(locks, key, name, log))

    async def _run(self, locks: KeyedLocks, key: object, name: str, log: list[str]) -> None:
        self.asking.set()
        # From here to the lock's own wait (or into the body) nothing yields.
        async with locks.hold(key):
            log.append(f"{name} in")
            self.inside.set()
            await self.release.wait()
            log.append(f"{name} out")


async def test_calls_on_one_key_run_one_after_the_other() -> None:
    locks, log = KeyedLocks(), []
    first = Holder(locks, "bucket", "first", log)
    await asyncio.wait_for(first.inside.wait(), BOUND)
    second = Holder(locks, "bucket", "second", log)
    await asyncio.wait_for(second.asking.wait(), BOUND)
    assert log == ["first in"]  # the second is waiting at the lock, not inside
    first.release.set()
    await asyncio.wait_for(second.inside.wait(), BOUND)
    second.release.set()
    await asyncio.wait_for(asyncio.gather(first.task, second.task), BOUND)
    assert log == ["first in", "first out", "second in", "second out"]


async def test_a_held_key_does_not_block_another_key() -> None:
    locks, log = KeyedLocks(), []
    slow = Holder(locks, "bucket-a", "a", log)
    await asyncio.wait_for(slow.inside.wait(), BOUND)
    quick = Holder(locks, "bucket-b", "b", log)
    quick.release.set()
    await asyncio.wait_for(quick.task, BOUND)  # finishes while "a" is still held
    assert log == ["a in", "b in", "b out"]
    slow.release.set()
    await asyncio.wait_for(slow.task, BOUND)


async def test_locks_are_dropped_once_nobody_holds_or_waits() -> None:
    locks, log = KeyedLocks(), []
    first = Holder(locks, "k", "first", log)
    await asyncio.wait_for(first.inside.wait(), BOUND)
    waiter = Holder(locks, "k", "waiter", log)
    await asyncio.wait_for(waiter.asking.wait(), BOUND)
    assert len(locks) == 1
    waiter.task.cancel()  # a waiter that gives up must not leave its count behind
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    first.release.set()
    await asyncio.wait_for(first.task, BOUND)
    assert len(locks) == 0
    assert log == ["first in", "first out"]


async def test_an_error_inside_releases_the_key() -> None:
    locks = KeyedLocks()
    with pytest.raises(Unavailable):
        async with locks.hold("k"):
            raise Unavailable("storage unreachable")
    assert len(locks) == 0
    async with asyncio.timeout(BOUND), locks.hold("k"):
        pass


@given(seed=st.integers(min_value=0, max_value=2**32), keys=st.integers(min_value=1, max_value=4))
def test_random_interleavings_never_put_two_holders_of_one_key_inside(seed: int, keys: int) -> None:
    async def scenario() -> tuple[int, int]:
        chooser = random.Random(seed)
        locks = KeyedLocks()
        inside: dict[int, int] = {}
        most_at_once = 0

        async def worker(key: int, steps: int) -> None:
            nonlocal most_at_once
            async with locks.hold(key):
                inside[key] = inside.get(key, 0) + 1
                assert inside[key] == 1, f"two holders of key {key}"
                most_at_once = max(most_at_once, sum(inside.values()))
                for _ in range(steps):
                    await asyncio.sleep(0)  # let the others run; not a synchronisation
                inside[key] -= 1

        work = [worker(chooser.randrange(keys), chooser.randrange(4)) for _ in range(30)]
        await asyncio.wait_for(asyncio.gather(*work), BOUND)
        return most_at_once, len(locks)

    most_at_once, left = asyncio.run(scenario())
    assert left == 0
    assert 1 <= most_at_once <= keys
