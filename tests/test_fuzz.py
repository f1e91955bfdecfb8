"""Issue 20: a seeded fuzz of every RPC of both COSI APIs against a real ``cosi-driver serve``
(filesystem backend, serving v1alpha1 and v1alpha2 on one socket).

COSI_FUZZ_CALLS (default 10000, across both APIs) and COSI_FUZZ_SEED (default 20) choose the run;
the figures are printed whatever the outcome. The s3 and ceph-rgw runs are a ``make bench``
section (fuzz). The backend allows the fuzz's pool names as existing buckets, so
DriverGetExistingBucket reaches storage too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cosi_driver.core import ids
from cosi_driver.core.validation import MAX_STRING_BYTES
from cosi_driver.testing.fuzz import REGRESSION_ACCOUNT_NAMES, REGRESSION_NAMES, fuzz
from tests.support import start_driver

MASTER_KEY = "fuzz-master-key-9a8b7c6d5e4f3a2b1c0d-ZYXWVUTSRQ"
CALLS = int(os.environ.get("COSI_FUZZ_CALLS", "10000"))
SEED = int(os.environ.get("COSI_FUZZ_SEED", "20"))


async def test_a_seeded_fuzz_of_every_rpc_gets_only_deliberate_answers(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = workdir / "data"
    config = workdir / "driver.yaml"
    config.write_text(
        f'backends:\n  filesystem:\n    type: filesystem\n    default: true\n    existingBuckets: ["fz*"]\n'
        f"    config:\n      root: {data}\n"
    )
    env = {"COSI_DRIVER_CONFIG": str(config), "COSI_DRIVER_MASTER_KEY": MASTER_KEY, "COSI_DRIVER_LOG_LEVEL": "info"}
    driver = start_driver(env, workdir)
    try:
        report = await fuzz(driver.endpoint, calls=CALLS, seed=SEED, secrets=[MASTER_KEY], call_timeout=15.0)
        with capsys.disabled():
            print(f"\nfuzz, filesystem backend, seed {SEED}: {report.summary()}")
        assert report.problems == []
        assert report.cleanup_failures == []
        assert report.calls >= CALLS
        assert not {"UNKNOWN", "INTERNAL"} & set(report.codes)
        # Both APIs, every RPC of each, and the fuzz reached storage, not only validation: every
        # RPC succeeded sometimes.
        assert min(report.by_api["v1alpha1"], report.by_api["v1alpha2"]) > CALLS // 3, report.by_api
        v2_rpcs = {f"v1alpha2 {rpc}" for rpc in ("DriverGetExistingBucket", "DriverGrantBucketAccess")}
        assert v2_rpcs <= set(report.by_rpc) and len(report.by_rpc) == 11, sorted(report.by_rpc)
        assert all(counter["OK"] > 0 for counter in report.by_rpc.values()), report.by_rpc
        assert driver.process.poll() is None, "the driver died during the fuzz"
    finally:
        assert driver.stop() == 0
    assert MASTER_KEY not in driver.log()
    assert list((data / "buckets").iterdir()) == [], "the fuzz left buckets behind"
    assert list((data / ".cosi" / "accounts").iterdir()) == [], "the fuzz left accounts behind"

    # Issue 20's failing inputs: a name whose id fits is created; a longer one is refused, naming
    # the field and the limit. Never INTERNAL.
    for name, (code, message) in report.regressions.items():
        if len(ids.BucketRef("filesystem", name).encode()) <= MAX_STRING_BYTES:
            assert code == "OK", (name, code, message)
        else:
            assert code == "INVALID_ARGUMENT", (name, code, message)
            assert "name" in message and f"{MAX_STRING_BYTES} bytes" in message, message
    assert {code for code, _ in report.regressions.values()} == {"OK", "INVALID_ARGUMENT"}
    assert len(report.regressions) == len(REGRESSION_NAMES)

    # Revoke of an account id whose name no backend issues (NUL, '/', 300 bytes) is OK: nothing of
    # that name exists. v1alpha1 refuses the id that does not fit its 128 bytes.
    for key, code in report.revoke_regressions.items():
        api, account_id = key.split(" ", 1)
        fits = api == "v1alpha2" or len(account_id) <= MAX_STRING_BYTES
        assert code == ("OK" if fits else "INVALID_ARGUMENT"), (key, code)
    assert len(report.revoke_regressions) == 2 * len(REGRESSION_ACCOUNT_NAMES)
