"""No secret reaches a log line, a span or a metric label, whatever the RPCs and their failures do.

The suite's RPCs run with tracing, metrics and debug logging all on; then every byte of telemetry
(log lines of structlog and of the standard library, every span as JSON, every metric point, the
Prometheus text) is scanned for the secrets the test created: the granted secret keys, the master
key and a backend admin key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import grpc

from cosi_driver.app import register_secrets as _register_secrets
from cosi_driver.core.options import SecretRef
from cosi_driver.core.secret import Secret
from cosi_driver.observability.tracing import add_trace_ids
from cosi_driver.testing.client import expect_error, s3_secrets
from tests.conftest import ServeFactory, filesystem_route, make_driver
from tests.fakes import Instrumented, raising
from tests.support import eventually
from tests.telemetry_kit import captured_logs, events, instrumented

MASTER_KEY = "mk-7d1c0a9e4b2f48e6a3c5d7e9f1b2c4d6"
ADMIN_KEY = "adm-Q2hhbmdlTWVJbW1lZGlhdGVseQ0123"


@dataclass(frozen=True)
class AdminConfig:
    """A backend config holding an admin credential, as the S3 and Ceph backends' do."""

    admin_secret_access_key: SecretRef


async def test_no_secret_reaches_logs_spans_or_metrics(serve: ServeFactory, workdir: Path) -> None:
    route = filesystem_route(workdir, wrap=Instrumented)
    spy = route.backend
    assert isinstance(spy, Instrumented)
    driver, kit = instrumented(lambda instrument: make_driver(workdir, [route], instrument=instrument))
    config = SimpleNamespace(
        master_key=SecretRef(inline=Secret(MASTER_KEY)),
        backends={"filesystem": SimpleNamespace(config=AdminConfig(SecretRef(inline=Secret(ADMIN_KEY))))},
    )
    _register_secrets(config)  # what `cosi-driver serve` does with the loaded configuration
    client = await serve(driver, kit.options())
    granted: list[str] = []
    with captured_logs(add_trace_ids, level="debug") as buffer:
        bucket_id = (await client.create("bucket-a", deletionPolicy="purge")).bucket_id
        for name in ("ba-1", "ba-2", "ba-1"):  # the third is a retry
            response = await client.grant(bucket_id, name, accessMode="read")
            granted.append(s3_secrets(response)["accessSecretKey"])
        await client.revoke(bucket_id, response.account_id)
        # A storage SDK failing with a message that echoes the request, admin key and all.
        echo = f"request failed: AdminKey={ADMIN_KEY} body={{'SecretAccessKey': '{granted[1]}'}} auth {ADMIN_KEY}"
        spy.before["grant_access"] = raising(RuntimeError(echo))
        message = await expect_error(client.grant(bucket_id, "ba-3"), grpc.StatusCode.INTERNAL)
        spy.before["find_bucket"] = raising(ConnectionResetError(104, f"reset talking with key {ADMIN_KEY}"))
        await expect_error(client.delete(bucket_id), grpc.StatusCode.UNAVAILABLE)
        # A library logging through the standard library, as botocore does at debug level.
        logging.getLogger("botocore.endpoint").warning("Sending http request: secret_key=%s", granted[0])
        await eventually(lambda: any("correlation_id" in event for event in events(buffer)), what="the crash log")
        await eventually(lambda: len(kit.server_spans("DriverDeleteBucket")) == 1, what="the last span")
    crash = next(event for event in events(buffer) if "correlation_id" in event)
    assert "RuntimeError" in crash["exception"] and "***" in crash["exception"]  # the traceback is there, masked
    telemetry = {
        "log": buffer.getvalue(),
        "spans": "\n".join(span.to_json() for span in kit.finished()),
        "metric points": kit.all_metric_text(),
        "prometheus": kit.telemetry.exposition()[0].decode() if kit.telemetry.exposition else "",
        "status message": message,
    }
    assert "DriverGrantBucketAccess" in telemetry["spans"] and "rpc_method" in telemetry["prometheus"]
    secrets = {"master key": MASTER_KEY, "admin key": ADMIN_KEY}
    secrets.update({f"granted secret {n}": value for n, value in enumerate(granted)})
    for where, text in telemetry.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} leaked into the {where}"
