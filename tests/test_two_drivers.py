"""Two driver processes over one state store and one storage: what a leader handover looks like.

During a handover the old and the new leader's drivers can both be working. These tests build two
complete drivers over the same state directory and the same filesystem backend root and race
them on the filesystem backend; tests/test_s3_two_drivers.py and tests/test_ceph_two_drivers.py race
two drivers on SeaweedFS and Ceph RGW.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cosi_driver.core.errors import AlreadyExists
from cosi_driver.core.types import AuthenticationType
from tests.conftest import make_driver


async def test_racing_creates_with_different_parameters_leave_one_winner(workdir: Path) -> None:
    first, second = make_driver(workdir), make_driver(workdir)
    try:
        results = await asyncio.gather(
            first.create_bucket("shared", {"deletionPolicy": "Delete"}),
            second.create_bucket("shared", {"deletionPolicy": "Retain"}),
            return_exceptions=True,
        )
        won = [result for result in results if not isinstance(result, BaseException)]
        lost = [result for result in results if isinstance(result, BaseException)]
        assert len(won) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], AlreadyExists), lost
        assert "different parameters" in lost[0].message
        # Whoever asks again with the winner's parameters gets the same bucket from either driver.
        winner_policy = "Delete" if results[0] is won[0] else "Retain"
        for driver in (first, second):
            again = await driver.create_bucket("shared", {"deletionPolicy": winner_policy})
            assert again.bucket_id == won[0].bucket_id
    finally:
        await first.close()
        await second.close()


async def test_racing_identical_calls_from_two_drivers_agree(workdir: Path) -> None:
    rounds = 5
    first, second = make_driver(workdir), make_driver(workdir)
    try:
        for round_ in range(rounds):
            name = f"bucket-{round_}"
            made = await asyncio.gather(first.create_bucket(name, {}), second.create_bucket(name, {}))
            assert made[0].bucket_id == made[1].bucket_id
            grants = await asyncio.gather(
                first.grant_access(f"ba-{round_}", [(made[0].bucket_id, None)], AuthenticationType.KEY, {}),
                second.grant_access(f"ba-{round_}", [(made[0].bucket_id, None)], AuthenticationType.KEY, {}),
            )
            assert grants[0].account_id == grants[1].account_id
            assert grants[0].credentials == grants[1].credentials
            await asyncio.gather(
                first.revoke_access(grants[0].account_id, [made[0].bucket_id]),
                second.revoke_access(grants[0].account_id, [made[0].bucket_id]),
            )
            await asyncio.gather(
                first.delete_bucket(made[0].bucket_id, {}), second.delete_bucket(made[0].bucket_id, {})
            )
            assert not (workdir / "data-filesystem" / name).exists()
    finally:
        await first.close()
        await second.close()
