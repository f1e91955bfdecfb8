"""``cosi-driver conformance``: check any COSI driver endpoint against the spec and the real sidecar.

One line per check (PASS/FAIL/SKIP with a reason), a closing summary, exit status 1 when a check
failed (0 otherwise, 2 for usage errors); ``--json`` prints the report as JSON instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from cosi_driver.cli.call import add_key_values
from cosi_driver.config.settings import DEFAULT_ENDPOINT

_PREFIX = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")


def _prefix(text: str) -> str:
    if not _PREFIX.fullmatch(text):
        raise argparse.ArgumentTypeError("use 1-31 lowercase letters, digits and '-' (it starts bucket names)")
    return text


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Parameters are those of the BucketClass and BucketAccessClasses you would deploy with the driver.\n"
        "Buckets are named <prefix>-<run id>-NNN and removed at the end (best effort).\n"
        "Example:\n"
        f"  cosi-driver conformance --endpoint {DEFAULT_ENDPOINT} \\\n"
        "      --bucket-param deletionPolicy=delete --alt-bucket-param deletionPolicy=retain \\\n"
        "      --access-param accessMode=readwrite --read-access-param accessMode=read \\\n"
        "      --write-access-param accessMode=write --s3-check"
    )
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("COSI_ENDPOINT", DEFAULT_ENDPOINT),
        help="driver endpoint: unix:///path.sock (host:port also works, for test drivers) "
        f"(default: $COSI_ENDPOINT or {DEFAULT_ENDPOINT})",
    )
    parser.add_argument(
        "--api",
        choices=("v1alpha1", "v1alpha2", "both"),
        default="v1alpha1",
        help="which COSI API's rules to check (default v1alpha1); both: one report for a driver serving both",
    )
    params = parser.add_argument_group("the classes under test")
    add_key_values(params, "--bucket-param", "a BucketClass parameter, sent with every Create (repeat)")
    add_key_values(
        params,
        "--alt-bucket-param",
        "a second valid BucketClass that differs, for the ALREADY_EXISTS check",
        optional=True,
    )
    add_key_values(
        params, "--access-param", "a BucketAccessClass parameter for every Grant; it must allow read and write"
    )
    add_key_values(
        params, "--read-access-param", "a read-only BucketAccessClass, for the access-mode checks", optional=True
    )
    add_key_values(
        params, "--write-access-param", "a write-only BucketAccessClass, for the access-mode checks", optional=True
    )
    add_key_values(
        params,
        "--v1alpha2-access-param",
        "a parameter of the v1alpha2 BucketAccessClass (modes come per bucket in v1alpha2 grants)",
    )
    data = parser.add_argument_group("data path")
    data.add_argument(
        "--s3-check",
        action="store_true",
        help="use granted credentials on the returned S3 endpoint (needs cosi-driver[s3])",
    )
    data.add_argument(
        "--azure-check",
        action="store_true",
        help="use granted Azure SAS URLs on the returned container (needs cosi-driver[azure])",
    )
    data.add_argument(
        "--propagation-seconds",
        type=float,
        default=15.0,
        help="how long key and policy changes may take to apply (default 15)",
    )
    run = parser.add_argument_group("the run")
    run.add_argument("--timeout", type=float, default=30.0, help="seconds any one call may take (default 30)")
    run.add_argument("--concurrency", type=int, default=8, help="identical calls sent at once (default 8)")
    run.add_argument("--name-prefix", type=_prefix, default="cosi-conformance", help="start of every bucket name")
    run.add_argument(
        "--focus",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run only checks matching a glob or group, e.g. 'grant.*' or grant (repeat)",
    )
    run.add_argument("--skip", action="append", default=[], metavar="PATTERN", help="leave out matching checks")
    run.add_argument("--list", action="store_true", help="list the checks and exit")
    run.add_argument("--json", action="store_true", help="print the report as JSON instead of lines")


def _line(result: Any) -> str:
    # A pass without a detail shows what was checked, so every line says something.
    text = result.reason or result.summary
    return f"{result.outcome.value}  {result.name:<32}  {text}"


def run(args: argparse.Namespace) -> int:
    import asyncio
    import importlib.util
    import json

    from cosi_driver.testing.conformance import CHECKS, Options, selected
    from cosi_driver.testing.conformance import run as run_suite

    options = Options(
        endpoint=args.endpoint,
        bucket_params=dict(args.bucket_param),
        alt_bucket_params=None if args.alt_bucket_param is None else dict(args.alt_bucket_param),
        access_params=dict(args.access_param),
        read_access_params=None if args.read_access_param is None else dict(args.read_access_param),
        write_access_params=None if args.write_access_param is None else dict(args.write_access_param),
        v1alpha2_access_params=dict(args.v1alpha2_access_param),
        s3_check=args.s3_check,
        azure_check=args.azure_check,
        propagation_seconds=args.propagation_seconds,
        timeout=args.timeout,
        concurrency=max(2, args.concurrency),
        prefix=args.name_prefix,
        focus=tuple(args.focus),
        skip=tuple(args.skip),
        apis=("v1alpha1", "v1alpha2") if args.api == "both" else (args.api,),
    )
    if args.list:
        chosen = {check.name for check in selected(options)}
        for check in CHECKS:
            if check.name in chosen:
                print(f"{check.name:<32}  {check.summary}")
        return 0
    if args.s3_check and importlib.util.find_spec("aioboto3") is None:
        print("cosi-driver conformance: --s3-check needs aioboto3: pip install 'cosi-driver[s3]'", file=sys.stderr)
        return 2
    if args.azure_check and importlib.util.find_spec("azure") is None:
        print(
            "cosi-driver conformance: --azure-check needs azure-storage-blob: pip install 'cosi-driver[azure]'",
            file=sys.stderr,
        )
        return 2

    def show(result: Any) -> None:
        if not args.json:
            print(_line(result), flush=True)

    report = asyncio.run(run_suite(options, show))
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0 if report.passed else 1
    driver = f" (driver {report.driver_name!r})" if report.driver_name else ""
    print(f"\nconformance: {report.summary_line()} in {report.seconds:.1f}s against {report.endpoint}{driver}")
    cleanup = report.cleanup
    left = f"left behind: {'; '.join(cleanup.left_behind)}" if cleanup.left_behind else "nothing left behind"
    print(f"cleanup: {cleanup.deleted} buckets deleted, {cleanup.revoked} accesses revoked; {left}")
    return 0 if report.passed else 1
