"""Two complete drivers over one state directory and one real storage: a leader handover, in a test.

During a handover the old leader's driver may still be finishing calls while the new leader's
sidecar sends its own, so the same or conflicting calls reach two driver processes at once. Each
driver here is what ``serve`` builds (its own server on its own socket, its own backend objects,
locks and store object); they share only the state directory and the storage, as two pods share
a Kubernetes store and a gateway.

:class:`TwoDriverRaces` holds the races every backend must survive; a backend's test module
subclasses it with a ``target`` fixture and says how to list an account's keys in the storage.
Each race runs a few rounds, the two calls started together with ``asyncio.gather``.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest_asyncio

from cosi_driver.core import ids
from cosi_driver.testing.acceptance import AcceptanceTarget, Harness
from cosi_driver.testing.client import s3_secrets
from cosi_driver.testing.probes import S3Session

T = TypeVar("T")
ROUNDS = 3
#: What the sidecar treats as "try again" and a driver may answer to the loser of a race.
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED)
#: How often a call that failed retryably is repeated, as the sidecar would (without its backoff).
RETRIES = 5


class Pair:
    """Two started harnesses sharing one state directory and one backend configuration."""

    def __init__(self, first: Harness, second: Harness, directory: Path) -> None:
        self.first = first
        self.second = second
        self.directory = directory
        self.retried: list[str] = []  # retryable failures seen, for the assertion messages

    @property
    def both(self) -> tuple[Harness, Harness]:
        return self.first, self.second

    async def until_ok(self, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """The call's answer, repeated like the sidecar repeats it while it fails retryably.

        A non-retryable failure (UNKNOWN, INTERNAL, a refusal) is raised at once: a race must never
        make a driver answer something the sidecar would not retry.
        """
        for _ in range(RETRIES):
            try:
                return await call(*args, **kwargs)
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRYABLE:
                    raise
                self.retried.append(f"{error.code().name}: {error.details()}")
        return await call(*args, **kwargs)


def account_of(account_id: str) -> str:
    return ids.parse_account_id(account_id).account


def secrets_key(response: Any) -> tuple[str, str]:
    secrets = s3_secrets(response)
    return secrets["accessKeyID"], secrets["accessSecretKey"]


class TwoDriverRaces:
    """The races; subclass as ``Test...`` with a ``target`` fixture and :meth:`account_keys`."""

    async def account_keys(self, target: AcceptanceTarget, account: str) -> set[str]:
        """The access key ids the storage holds for ``account`` (empty when the account is gone)."""
        raise NotImplementedError

    @pytest_asyncio.fixture
    async def pair(self, target: AcceptanceTarget) -> AsyncIterator[Pair]:
        directory = Path(tempfile.mkdtemp(prefix="cosi-pair-", dir="/tmp"))
        state = directory / "state"
        harnesses = [Harness(target, directory / side, state) for side in ("a", "b")]
        try:
            for harness in harnesses:
                harness.workdir.mkdir()
                await harness.start()
            yield Pair(harnesses[0], harnesses[1], directory)
        finally:
            for harness in harnesses:
                try:
                    await harness.cleanup()
                finally:
                    await harness.stop()
            shutil.rmtree(directory, ignore_errors=True)

    async def _works(self, pair: Pair, response: Any, bucket: str) -> bool:
        """The returned keys write and read back an object in ``bucket`` (after propagation)."""
        session = S3Session(s3_secrets(response), pair.first.target.propagation_seconds)
        key = f"probe-{uuid.uuid4().hex[:8]}"
        return await session.eventually_allowed("put", bucket, key) and await session.allowed("get", bucket, key)

    async def test_identical_grants_from_both_leave_one_working_key(self, pair: Pair) -> None:
        a, b = pair.both
        name = a.new_name()
        bucket_id = (await a.create(name)).bucket_id
        for round_ in range(ROUNDS):
            access = f"ba-same-{round_}-{uuid.uuid4().hex[:6]}"
            one, two = await asyncio.gather(
                pair.until_ok(a.cosi.grant, bucket_id, access, accessMode="readwrite"),
                pair.until_ok(b.cosi.grant, bucket_id, access, accessMode="readwrite"),
            )
            assert one.account_id == two.account_id
            assert secrets_key(one) == secrets_key(two), f"the two drivers returned different keys ({pair.retried})"
            keys = await self.account_keys(a.target, account_of(one.account_id))
            assert keys == {secrets_key(one)[0]}, f"round {round_}: storage holds keys {sorted(keys)}"
            assert await self._works(pair, one, name)
            # A retry on either side afterwards still returns that key.
            for harness in pair.both:
                again = await harness.cosi.grant(bucket_id, access, accessMode="readwrite")
                assert secrets_key(again) == secrets_key(one)

    async def test_grant_against_revoke_ends_granted_and_working_or_revoked_and_gone(self, pair: Pair) -> None:
        a, b = pair.both
        name = a.new_name()
        bucket_id = (await a.create(name)).bucket_id
        outcomes = set()
        for round_ in range(ROUNDS):
            access = f"ba-gvr-{round_}-{uuid.uuid4().hex[:6]}"
            granted = await a.cosi.grant(bucket_id, access, accessMode="readwrite")
            account = account_of(granted.account_id)
            # The old leader retries the Grant while the new one revokes (alternating sides).
            granter, revoker = (a, b) if round_ % 2 == 0 else (b, a)
            regrant, _ = await asyncio.gather(
                pair.until_ok(granter.cosi.grant, bucket_id, access, accessMode="readwrite"),
                pair.until_ok(revoker.cosi.revoke, bucket_id, granted.account_id),
            )
            assert regrant.account_id == granted.account_id
            keys = await self.account_keys(a.target, account)
            if keys:
                outcomes.add("granted")
                assert keys == {secrets_key(regrant)[0]}, f"round {round_}: storage holds keys {sorted(keys)}"
                assert await self._works(pair, regrant, name), f"round {round_}: the account exists, its keys fail"
            else:
                outcomes.add("revoked")
                assert not await a.target.probe.account_exists(account), f"round {round_}: keyless account left"
                session = S3Session(s3_secrets(regrant), a.target.propagation_seconds)
                assert await session.eventually_denied("put", name, "after-revoke")
            # Either way a revoke now leaves nothing, from either side.
            await b.cosi.revoke(bucket_id, granted.account_id)
            assert not await a.target.probe.account_exists(account)
        assert outcomes, "no round ran"

    async def test_create_against_delete_ends_with_a_bucket_the_driver_owns_or_none(self, pair: Pair) -> None:
        a, b = pair.both
        for round_ in range(ROUNDS):
            name = a.new_name()
            bucket_id = (await a.create(name)).bucket_id
            creator, deleter = (a, b) if round_ % 2 == 0 else (b, a)
            made, _ = await asyncio.gather(
                pair.until_ok(creator.cosi.create, name),
                pair.until_ok(deleter.cosi.delete, bucket_id),
            )
            assert made.bucket_id == bucket_id
            if await a.target.probe.bucket_exists(name):
                # Still ours: either driver grants on it and deletes it.
                access = await b.cosi.grant(bucket_id, f"ba-cvd-{round_}", accessMode="readwrite")
                assert await self._works(pair, access, name)
                await a.cosi.revoke(bucket_id, access.account_id)
                await a.cosi.delete(bucket_id, deletionPolicy="purge")
                assert not await a.target.probe.bucket_exists(name)
            else:
                # Gone, and the driver agrees: creating it again makes it anew under the same id.
                again = await b.cosi.create(name)
                assert again.bucket_id == bucket_id
                assert await a.target.probe.bucket_exists(name)
                await a.cosi.delete(bucket_id)
            assert not await a.target.probe.bucket_exists(name)

    async def test_grants_of_different_accesses_to_one_bucket_from_both_all_work(self, pair: Pair) -> None:
        a = pair.first
        name = a.new_name()
        bucket_id = (await a.create(name)).bucket_id
        per_round = 4
        live: dict[str, Any] = {}
        for round_ in range(ROUNDS):
            accesses = [f"ba-many-{round_}-{i}-{uuid.uuid4().hex[:6]}" for i in range(per_round)]
            responses = await asyncio.gather(
                *(
                    pair.until_ok(
                        lambda h=pair.both[i % 2], n=access: h.cosi.grant(bucket_id, n, accessMode="readwrite")
                    )
                    for i, access in enumerate(accesses)
                )
            )
            live.update({r.account_id: r for r in responses})
            await self.check_statements(a.target, name, {account_of(account) for account in live})
            assert all(await asyncio.gather(*(self._works(pair, r, name) for r in live.values())))
            # Half of the live ones revoked from both drivers at once; exactly those stop working.
            gone = sorted(live)[: len(live) // 2]
            await asyncio.gather(
                *(pair.until_ok(pair.both[i % 2].cosi.revoke, bucket_id, account) for i, account in enumerate(gone))
            )
            revoked = [live.pop(account) for account in gone]
            await self.check_statements(a.target, name, {account_of(account) for account in live})
            assert all(await asyncio.gather(*(self._works(pair, r, name) for r in live.values())))
            for response in revoked:
                session = S3Session(s3_secrets(response), a.target.propagation_seconds)
                assert await session.eventually_denied("put", name, "after-revoke")

    async def check_statements(self, target: AcceptanceTarget, bucket: str, accounts: set[str]) -> None:
        """Where grants share a document (a bucket policy), it names exactly ``accounts``; else no check."""
