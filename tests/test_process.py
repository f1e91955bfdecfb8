"""The real ``cosi-driver serve`` process: restarts, signals, and what it writes to its log."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from cosi_driver.testing.client import s3_secrets
from tests.support import Client, DriverProcess, start_driver, wait_until

MASTER_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978"


def example_config(workdir: Path, **extra: str) -> Path:
    pytest.importorskip("cosi_example_backend", reason="make test installs tests/plugins/cosi-example-backend")
    lines = [f"      path: {workdir / 'example.json'}"] + [f"      {k}: {v}" for k, v in extra.items()]
    config = workdir / "driver.yaml"
    config.write_text("backends:\n  kv:\n    type: example-kv\n    config:\n" + "\n".join(lines) + "\n")
    return config


async def lifecycle(endpoint: str) -> dict[str, str]:
    client = Client(endpoint)
    try:
        bucket_id = (await client.create("bucket-a")).bucket_id
        granted = await client.grant(bucket_id, "ba-1", accessMode="read")
        return {"bucket_id": bucket_id, "account_id": granted.account_id, **s3_secrets(granted)}
    finally:
        await client.close()


async def test_a_restart_keeps_every_id_and_secret(workdir: Path) -> None:
    env = {"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}
    driver = start_driver(env, workdir)
    before = await lifecycle(driver.endpoint)
    assert driver.stop() == 0
    assert not driver.socket_path.exists()
    driver = start_driver(env, workdir)
    try:
        assert await lifecycle(driver.endpoint) == before
    finally:
        driver.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_lets_the_in_flight_call_finish_then_exits_0(workdir: Path, signum: int) -> None:
    pause = workdir / "pause"
    pause.touch()
    env = {
        "COSI_DRIVER_CONFIG": str(example_config(workdir, pause_file=str(pause))),
        "COSI_DRIVER_MASTER_KEY": MASTER_KEY,
    }
    driver = start_driver(env, workdir)
    client = Client(driver.endpoint)
    call = asyncio.ensure_future(client.create("bucket-a"))
    await asyncio.to_thread(wait_until, pause.with_suffix(".waiting").exists, 20, "the call to reach the backend")
    driver.process.send_signal(signum)
    await asyncio.to_thread(wait_until, lambda: "shutting down" in driver.log(), 20, "the driver to begin shutdown")
    pause.unlink()
    response = await call
    await client.close()
    assert response.bucket_id == "v2.kv.b.bucket-a"
    assert await asyncio.to_thread(driver.process.wait, 30) == 0
    assert not driver.socket_path.exists()


async def test_the_log_never_contains_a_secret(workdir: Path) -> None:
    env = {
        "COSI_DRIVER_CONFIG": str(example_config(workdir)),
        "COSI_DRIVER_MASTER_KEY": MASTER_KEY,
        "COSI_DRIVER_LOG_LEVEL": "debug",
    }
    driver = start_driver(env, workdir)
    try:
        seen = await lifecycle(driver.endpoint)
        client = Client(driver.endpoint)
        await client.grant(seen["bucket_id"], "ba-1")  # a retry
        await client.revoke(seen["bucket_id"], seen["account_id"])
        await client.close()
    finally:
        assert driver.stop() == 0
    log = driver.log()
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(event.get("rpc") == "DriverGrantBucketAccess" for event in events), log
    assert "development-only backend" not in log  # example-kv is not labelled development-only
    for secret in (seen["accessSecretKey"], MASTER_KEY):
        assert secret not in log


def test_banner_names_endpoint_mode_and_backends_but_no_secret(workdir: Path) -> None:
    driver: DriverProcess = start_driver({"COSI_DRIVER_BACKEND_ROOT": str(workdir / "data")}, workdir)
    driver.stop()
    banner = next(json.loads(line) for line in driver.log().splitlines() if '"serving"' in line)
    assert banner["endpoint"] == driver.endpoint
    assert banner["socket_mode"] == "0660"
    assert banner["backends"] == {"filesystem": "filesystem"}
    warning = next(json.loads(line) for line in driver.log().splitlines() if "development-only backend" in line)
    assert warning["level"] == "warning"
    assert (warning["backend"], warning["backend_type"]) == ("filesystem", "filesystem")
    assert banner["version"]
