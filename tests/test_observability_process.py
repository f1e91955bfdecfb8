"""The real ``cosi-driver serve`` process with every observability feature on.

Spans go to the console exporter, i.e. into the same captured output as the log, so one scan of
that output and of ``/metrics`` covers everything the process emits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cosi_driver.testing.client import expect_error, s3_secrets
from tests.support import Client, free_port_block, run_cli, start_driver, wait_until

MASTER_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978"


def http(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def two_backends(workdir: Path) -> Path:
    pytest.importorskip("cosi_example_backend", reason="make test installs tests/plugins/cosi-example-backend")
    config = workdir / "driver.yaml"
    config.write_text(
        "backends:\n"
        "  fs:\n"
        "    type: filesystem\n"
        "    default: true\n"
        f"    config: {{root: {workdir / 'fs'}}}\n"
        "  kv:\n"
        "    type: example-kv\n"
        f"    config: {{path: {workdir / 'kv.json'}}}\n"
    )
    return config


async def test_the_process_traces_counts_probes_and_never_leaks_a_secret(workdir: Path) -> None:
    port = free_port_block()
    env = {
        "COSI_DRIVER_CONFIG": str(two_backends(workdir)),
        "COSI_DRIVER_MASTER_KEY": MASTER_KEY,
        "COSI_DRIVER_HTTP_ADDR": f"127.0.0.1:{port}",
        "COSI_DRIVER_LOG_LEVEL": "debug",
        "COSI_DRIVER_HEALTH_TIMEOUT": "1",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "cosi-driver-under-test",
    }
    driver = start_driver(env, workdir)
    secrets: list[str] = []
    try:
        pid = driver.process.pid
        assert http(port, "/livez") == (200, "ok\n")
        client = Client(driver.endpoint)
        for backend in ("fs", "kv"):
            bucket_id = (await client.create(f"bucket-{backend}", backend=backend)).bucket_id
            granted = await client.grant(bucket_id, "ba-1")
            secrets.append(s3_secrets(granted)["accessSecretKey"])
            await client.grant(bucket_id, "ba-1")  # a retry
        await client.revoke(bucket_id, granted.account_id)
        await expect_error(client.grant("v1/kv/missing", "ba-1"), grpc.StatusCode.NOT_FOUND)
        health = health_pb2_grpc.HealthStub(client.channel)

        async def provisioner() -> int:
            request = health_pb2.HealthCheckRequest(service="cosi.v1alpha1.Provisioner")
            return int((await health.Check(request)).status)

        status, body = http(port, "/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
        assert await provisioner() == health_pb2.HealthCheckResponse.SERVING

        # The filesystem backend's storage goes away: not ready, and back once it returns.
        (workdir / "fs").rename(workdir / "fs-away")
        wait_until(lambda: http(port, "/readyz")[0] == 503, 15, "/readyz to report the missing storage")
        report = json.loads(http(port, "/readyz")[1])
        assert report["backends"]["fs"]["ready"] is False and report["backends"]["kv"] == {"ready": True}
        assert http(port, "/livez")[0] == 200
        assert await provisioner() == health_pb2.HealthCheckResponse.NOT_SERVING
        (workdir / "fs-away").rename(workdir / "fs")
        wait_until(lambda: http(port, "/readyz")[0] == 200, 15, "/readyz to recover")
        assert await provisioner() == health_pb2.HealthCheckResponse.SERVING
        assert driver.process.pid == pid and driver.process.poll() is None  # no restart

        status, metrics = http(port, "/metrics")
        assert status == 200
        assert 'cosi_driver_rpc_requests_total{rpc_method="cosi.v1alpha1.Provisioner/DriverCreateBucket"' in metrics
        assert 'cosi_driver_backend_ready{cosi_backend_name="fs"} 1.0' in metrics
        assert 'service_name="cosi-driver-under-test"' in metrics
        await client.close()
    finally:
        assert driver.stop() == 0
    output = driver.log()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{") and line.endswith("}")]
    banner = next(line for line in lines if line.get("event") == "serving")
    assert banner["http_addr"] == f"127.0.0.1:{port}" and banner["tracing"] == "console"
    assert banner["metrics"] == "prometheus" and banner["grpc_reflection"] is False
    rpc_events = [line for line in lines if line.get("event") == "rpc" and line["rpc"].startswith("Driver")]
    assert rpc_events and all(len(event["trace_id"]) == 32 for event in rpc_events)
    assert '"name": "backend.grant_access"' in output  # spans were exported by the real process
    for secret in [*secrets, MASTER_KEY]:
        assert secret not in output and secret not in metrics


def serve_once(workdir: Path, **env: str) -> Any:
    """``cosi-driver serve`` expected to refuse to start, with the filesystem backend under ``workdir``."""
    base = {
        "COSI_ENDPOINT": f"unix://{workdir}/cosi.sock",
        "COSI_DRIVER_STATE_DIR": str(workdir / "state"),
        "COSI_DRIVER_BACKEND": "filesystem",
        "COSI_DRIVER_BACKEND_ROOT": str(workdir / "data"),
    }
    return run_cli("serve", env={**base, **env})


def test_an_unknown_trace_exporter_is_a_configuration_error(workdir: Path) -> None:
    result = serve_once(workdir, OTEL_TRACES_EXPORTER="zipkn")
    assert result.returncode == 2
    assert "OTEL_TRACES_EXPORTER" in result.stderr and "'zipkn'" in result.stderr
    assert not (workdir / "cosi.sock").exists()


def test_an_http_address_in_use_is_refused_before_the_socket_exists(workdir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve_once(workdir, COSI_DRIVER_HTTP_ADDR=f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"COSI_DRIVER_HTTP_ADDR 127.0.0.1:{port}" in result.stderr and "Fix:" in result.stderr
    assert not (workdir / "cosi.sock").exists()


def test_sigterm_turns_readiness_off_before_the_grace_period(workdir: Path) -> None:
    pytest.importorskip("cosi_example_backend", reason="make test installs tests/plugins/cosi-example-backend")
    pause = workdir / "pause"
    pause.touch()
    config = workdir / "driver.yaml"
    config.write_text(
        f"backends:\n  kv:\n    type: example-kv\n    config: {{path: {workdir / 'kv.json'}, pause_file: {pause}}}\n"
    )
    port = free_port_block()
    env = {
        "COSI_DRIVER_CONFIG": str(config),
        "COSI_DRIVER_MASTER_KEY": MASTER_KEY,
        "COSI_DRIVER_HTTP_ADDR": f"127.0.0.1:{port}",
    }
    driver = start_driver(env, workdir)
    try:
        assert http(port, "/readyz")[0] == 200
        call = _create_in_background(driver.endpoint)
        wait_until(pause.with_suffix(".waiting").exists, 20, "the call to reach the backend")
        driver.process.send_signal(signal.SIGTERM)
        wait_until(lambda: "shutting down" in driver.log(), 20, "the driver to begin shutdown")
        status, body = http(port, "/readyz")  # during the grace period: still alive, not ready
        assert status == 503 and json.loads(body)["status"] == "not serving"
        assert http(port, "/livez")[0] == 200
        pause.unlink()
        assert call.wait(30) == 0  # the in-flight call finished within the grace period
        assert driver.process.wait(30) == 0
    finally:
        driver.stop()


def _create_in_background(endpoint: str) -> Any:
    """A CreateBucket in a child process, so this test's thread can probe while it is in flight."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "cosi_driver", "call", "--endpoint", endpoint, "create-bucket", "bucket-a"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
