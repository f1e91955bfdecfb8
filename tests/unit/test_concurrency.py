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
STEPS = 1000  # loop turns a task may take to reach a lock's queue


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


# -- reader-writer keys --------------------------------------------------------------------------


class ModeHolder:
    """Like :class:`Holder`, but shared or exclusive, or several keys at once through ``hold_all``."""

    def __init__(
        self,
        locks: KeyedLocks,
        name: str,
        log: list[str],
        *,
        shared: tuple[object, ...] = (),
        exclusive: tuple[object, ...] = (),
    ) -> None:
        self.inside = asyncio.Event()
        self.release = asyncio.Event()
        self.task = asyncio.create_task(self._run(locks, name, log, shared, exclusive))

    async def _run(
        self, locks: KeyedLocks, name: str, log: list[str], shared: tuple[object, ...], exclusive: tuple[object, ...]
    ) -> None:
        async with locks.hold_all(shared=shared, exclusive=exclusive):
            log.append(f"{name} in")
            self.inside.set()
            await self.release.wait()
            log.append(f"{name} out")


async def queued(locks: KeyedLocks, key: object, count: int) -> None:
    """Return once ``count`` callers queue for ``key``, letting the other tasks step meanwhile."""
    for _ in range(STEPS):
        if locks.waiting(key) == count:
            return
        await asyncio.sleep(0)  # one loop turn for the others: a step, not a wait for time
    raise AssertionError(f"{locks.waiting(key)} callers queue for {key!r} after {STEPS} steps, expected {count}")


async def finish(*holders: ModeHolder) -> None:
    """Release every holder and wait for all of them to leave."""
    for holder in holders:
        holder.release.set()
    await asyncio.wait_for(asyncio.gather(*(holder.task for holder in holders)), BOUND)


async def grant_then_delete_then_grant(locks: KeyedLocks, log: list[str]) -> tuple[ModeHolder, ...]:
    """A grant inside "bucket", a delete queued for it, and a later grant queued behind the delete."""
    grant = ModeHolder(locks, "grant", log, shared=("bucket",))
    await asyncio.wait_for(grant.inside.wait(), BOUND)
    delete = ModeHolder(locks, "delete", log, exclusive=("bucket",))
    await queued(locks, "bucket", 1)
    late = ModeHolder(locks, "late-grant", log, shared=("bucket",))
    await queued(locks, "bucket", 2)
    return grant, delete, late


async def test_shared_holders_of_one_key_are_inside_together() -> None:
    locks, log = KeyedLocks(), []
    first = ModeHolder(locks, "grant-1", log, shared=("bucket",))
    second = ModeHolder(locks, "grant-2", log, shared=("bucket",))
    await asyncio.wait_for(asyncio.gather(first.inside.wait(), second.inside.wait()), BOUND)
    assert sorted(log) == ["grant-1 in", "grant-2 in"]
    await finish(first, second)
    assert len(locks) == 0


async def test_an_exclusive_holder_waits_for_every_shared_one_and_shared_ones_wait_for_it() -> None:
    locks, log = KeyedLocks(), []
    grant, delete, late = await grant_then_delete_then_grant(locks, log)
    assert log == ["grant in"]  # the late grant waits behind the delete: grants cannot starve it
    grant.release.set()
    await asyncio.wait_for(delete.inside.wait(), BOUND)
    assert log == ["grant in", "grant out", "delete in"]
    delete.release.set()
    await asyncio.wait_for(late.inside.wait(), BOUND)
    await finish(grant, delete, late)
    assert len(locks) == 0
    assert log == ["grant in", "grant out", "delete in", "delete out", "late-grant in", "late-grant out"]


async def test_an_exclusive_holder_of_one_key_blocks_nobody_on_another() -> None:
    locks, log = KeyedLocks(), []
    delete = ModeHolder(locks, "delete-a", log, exclusive=("bucket-a",))
    await asyncio.wait_for(delete.inside.wait(), BOUND)
    other = ModeHolder(locks, "delete-b", log, exclusive=("bucket-b",))
    grant = ModeHolder(locks, "grant-b", log, shared=("bucket-c",))
    await finish(other, grant)  # both are done while "bucket-a" is still held
    assert "delete-a out" not in log
    await finish(delete)
    assert len(locks) == 0


async def test_a_cancelled_exclusive_waiter_lets_the_shared_ones_behind_it_in() -> None:
    locks, log = KeyedLocks(), []
    grant, delete, late = await grant_then_delete_then_grant(locks, log)
    delete.task.cancel()  # the delete gave up: the grant queued behind it must not wait for nothing
    with pytest.raises(asyncio.CancelledError):
        await delete.task
    await asyncio.wait_for(late.inside.wait(), BOUND)
    assert log == ["grant in", "late-grant in"]
    await finish(grant, late)
    assert len(locks) == 0


async def test_a_waiter_cancelled_as_it_is_granted_gives_the_key_back() -> None:
    locks, log = KeyedLocks(), []
    first = ModeHolder(locks, "first", log, exclusive=("k",))
    await asyncio.wait_for(first.inside.wait(), BOUND)
    second = ModeHolder(locks, "second", log, exclusive=("k",))
    await queued(locks, "k", 1)
    first.release.set()
    await asyncio.wait_for(first.task, BOUND)  # the key is now granted to ``second``, which has not run yet
    second.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second.task
    assert len(locks) == 0  # not held by a task that never entered
    async with asyncio.timeout(BOUND), locks.hold("k"):
        pass


async def test_several_keys_named_in_opposite_orders_do_not_deadlock() -> None:
    # Taken in the order given, this is a cycle: "one" holds a and queues for b behind delete-b,
    # delete-b waits for "two" to leave b, "two" queues for a behind delete-a, which waits for "one".
    locks, log = KeyedLocks(), []
    blocker_a = ModeHolder(locks, "blocker-a", log, exclusive=("a",))
    blocker_b = ModeHolder(locks, "blocker-b", log, exclusive=("b",))
    await asyncio.wait_for(asyncio.gather(blocker_a.inside.wait(), blocker_b.inside.wait()), BOUND)
    one = ModeHolder(locks, "one", log, shared=("a", "b"), exclusive=("access-1",))
    two = ModeHolder(locks, "two", log, shared=("b", "a"), exclusive=("access-2",))
    await queued(locks, "a", 2)  # both start with "a", whatever order they named the keys in
    delete_a = ModeHolder(locks, "delete-a", log, exclusive=("a",))
    delete_b = ModeHolder(locks, "delete-b", log, exclusive=("b",))
    await queued(locks, "a", 3)
    await queued(locks, "b", 1)
    await finish(blocker_a, blocker_b, one, two, delete_a, delete_b)
    assert len(locks) == 0


async def test_a_key_named_shared_and_exclusive_is_held_exclusively() -> None:
    locks, log = KeyedLocks(), []
    both = ModeHolder(locks, "both", log, shared=("k",), exclusive=("k",))
    await asyncio.wait_for(both.inside.wait(), BOUND)
    reader = ModeHolder(locks, "reader", log, shared=("k",))
    await queued(locks, "k", 1)
    both.release.set()
    await asyncio.wait_for(reader.inside.wait(), BOUND)
    await finish(both, reader)
    assert len(locks) == 0
    assert log == ["both in", "both out", "reader in", "reader out"]


@given(seed=st.integers(min_value=0, max_value=2**32), keys=st.integers(min_value=1, max_value=3))
def test_random_mixed_holders_never_meet_an_exclusive_one_and_never_deadlock(seed: int, keys: int) -> None:
    async def scenario() -> int:
        chooser = random.Random(seed)
        locks = KeyedLocks()
        readers: dict[int, int] = {}
        writers: dict[int, int] = {}

        async def worker(shared: set[int], exclusive: set[int], steps: int) -> None:
            async with locks.hold_all(shared=shared, exclusive=exclusive):
                held_shared = shared - exclusive
                for key in held_shared:
                    readers[key] = readers.get(key, 0) + 1
                for key in exclusive:
                    writers[key] = writers.get(key, 0) + 1
                for key in held_shared | exclusive:
                    assert writers.get(key, 0) <= 1, f"two exclusive holders of {key}"
                    assert not (writers.get(key, 0) and readers.get(key, 0)), f"shared and exclusive on {key}"
                for _ in range(steps):
                    await asyncio.sleep(0)  # let the others run; not a synchronisation
                for key in held_shared:
                    readers[key] -= 1
                for key in exclusive:
                    writers[key] -= 1

        def some() -> set[int]:
            return {key for key in range(keys) if chooser.random() < 0.5}

        work = [worker(some(), some(), chooser.randrange(4)) for _ in range(30)]
        await asyncio.wait_for(asyncio.gather(*work), BOUND)
        return len(locks)

    assert asyncio.run(scenario()) == 0


# -- draining -------------------------------------------------------------------------------------


async def test_drain_waits_for_an_operation_whose_callers_left() -> None:
    flight, gate = SingleFlight(), Gate("finished")
    (caller,) = await join(flight, "k", gate, 1)
    caller.cancel()
    await asyncio.gather(caller, return_exceptions=True)
    draining = asyncio.create_task(flight.drain(BOUND))
    await asyncio.wait_for(gate.started.wait(), BOUND)
    assert not draining.done()
    gate.open.set()
    assert await asyncio.wait_for(draining, BOUND * 2) == 0  # nothing had to be cancelled
    assert len(flight) == 0


async def test_drain_cancels_what_outlives_the_grace_and_waits_for_it_to_unwind() -> None:
    flight, unwound = SingleFlight(), asyncio.Event()
    entered = asyncio.Event()

    async def hanging() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            unwound.set()

    caller = asyncio.create_task(flight.do("k", hanging))
    await asyncio.wait_for(entered.wait(), BOUND)
    assert await asyncio.wait_for(flight.drain(0.0), BOUND) == 1
    assert unwound.is_set()  # cancelled and finished before drain returned, not left pending
    assert len(flight) == 0
    with pytest.raises(asyncio.CancelledError):
        await caller
