"""The filesystem backend when its root goes away (a volume unmounted or detached) and comes back."""

from __future__ import annotations

from pathlib import Path

import grpc

from cosi_driver.core import ids
from cosi_driver.testing.client import expect_error
from tests.conftest import ServeFactory


async def test_a_missing_root_is_unavailable_and_nothing_is_lost_when_it_returns(
    serve: ServeFactory, workdir: Path
) -> None:
    client = await serve()
    bucket_id = (await client.create("bucket-a")).bucket_id
    account_id = (await client.grant(bucket_id, "ba-1")).account_id
    root = workdir / "data-filesystem"
    account_file = root / ".cosi" / "accounts" / f"{ids.parse_account_id(account_id).account}.json"
    assert account_file.exists()

    root.rename(workdir / "unmounted")
    for call in (
        client.create("bucket-b"),
        client.grant(bucket_id, "ba-2"),
        client.revoke(bucket_id, account_id),
        client.delete(bucket_id),
    ):
        message = await expect_error(call, grpc.StatusCode.UNAVAILABLE)
        assert f"filesystem root {root}" in message
        assert "Traceback" not in message
    assert not root.exists(), "the driver must not recreate an absent root"

    (workdir / "unmounted").rename(root)
    assert account_file.exists(), "a revoke during the outage must not have been reported as done"
    await client.revoke(bucket_id, account_id)
    assert not account_file.exists()
    await client.delete(bucket_id)
    assert not (root / "buckets" / "bucket-a").exists()
    assert (await client.create("bucket-b")).bucket_id == ids.BucketRef("filesystem", "bucket-b").encode()
