"""``cosi-driver emulate``: replay the v0.2.2 sidecar's calls for one claim and one access, or a burst.

Prints the calls, the Events and statuses a Kubernetes user would see, the Secret the sidecar
would write (secrets masked unless --show-secrets), and a verdict; exit status 1 when the sidecar
would have crashed, wedged or been left with something broken. ``--claims N`` applies N claims,
each with one access, at once, and reports per object what happened to it.
"""

from __future__ import annotations

import argparse
import os

from cosi_driver.cli.call import add_key_values
from cosi_driver.config.settings import DEFAULT_ENDPOINT


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        choices=["v1alpha1", "v1alpha2"],
        default="v1alpha1",
        help="which sidecar to replay: v1alpha1 (v0.2.2, one Secret with BucketInfo JSON) or v1alpha2 "
        "(upstream main: one claim per --mode in one BucketAccess, one Secret per claim with COSI_* keys)",
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=["READ_WRITE", "READ_ONLY", "WRITE_ONLY"],
        default=None,
        help="v1alpha2: a claim of the BucketAccess and its access mode (repeat; default one READ_WRITE)",
    )
    parser.add_argument(
        "--protocol",
        choices=["S3", "Azure"],
        help="v1alpha2: the claims' protocol (default: S3 when the driver lists it, else the first it lists)",
    )
    parser.add_argument(
        "--endpoint",
        default=os.environ.get("COSI_ENDPOINT", DEFAULT_ENDPOINT),
        help=f"driver endpoint (default: $COSI_ENDPOINT or {DEFAULT_ENDPOINT})",
    )
    add_key_values(parser, "--bucket-param", "a BucketClass parameter (repeat)")
    add_key_values(parser, "--access-param", "a BucketAccessClass parameter (repeat)")
    parser.add_argument(
        "--deletion-policy",
        choices=["Delete", "Retain"],
        default="Delete",
        help="the BucketClass's deletionPolicy (default Delete)",
    )
    parser.add_argument("--authentication-type", choices=["Key", "IAM"], default="Key")
    parser.add_argument("--driver-name", help="the classes' driverName; default: whatever the driver answers")
    parser.add_argument(
        "--delete-order",
        choices=["claim-first", "access-first"],
        default="claim-first",
        help="delete the BucketClaim before its BucketAccess (the sharp edge) or after",
    )
    parser.add_argument("--duplicate-creates", type=int, default=1, help="Creates repeated after success (default 1)")
    parser.add_argument("--duplicate-grants", type=int, default=1, help="Grants repeated after success (default 1)")
    parser.add_argument(
        "--max-backoff",
        type=float,
        default=30.0,
        help="cap of the retry backoff in seconds (the sidecar's is 30; lower it for tests)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=12,
        help="failures in a row after which an operation is reported as retried forever",
    )
    parser.add_argument(
        "--claims",
        type=int,
        default=1,
        help="a burst: this many BucketClaims, each with one BucketAccess, applied at once (default 1)",
    )
    parser.add_argument(
        "--workers", type=int, default=40, help="driver calls in flight at most, shared by all objects (default 40)"
    )
    parser.add_argument(
        "--reconnect-backoff",
        type=float,
        help="seconds between reconnection attempts after the driver went away (default: gRPC's, 1 s up to 120 s)",
    )
    parser.add_argument("--show-secrets", action="store_true", help="print the Secret's values unmasked")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from cosi_driver.testing.emulator import BurstRecord, EmulatorOptions, Record, emulate, emulate_burst

    if args.api == "v1alpha2":
        return _run_v1alpha2(args)
    options = EmulatorOptions(
        endpoint=args.endpoint,
        bucket_params=dict(args.bucket_param),
        access_params=dict(args.access_param),
        deletion_policy=args.deletion_policy,
        authentication_type=args.authentication_type,
        driver_name=args.driver_name,
        delete_order=args.delete_order,
        duplicate_creates=max(0, args.duplicate_creates),
        duplicate_grants=max(0, args.duplicate_grants),
        max_backoff=max(0.0, args.max_backoff),
        max_attempts=max(1, args.max_attempts),
        claims=max(1, args.claims),
        workers=max(1, args.workers),
        reconnect_backoff=None if args.reconnect_backoff is None else max(0.001, args.reconnect_backoff),
    )
    record: Record | BurstRecord
    record = asyncio.run(emulate_burst(options)) if options.claims > 1 else asyncio.run(emulate(options))
    if args.json:
        print(json.dumps(record.to_json(args.show_secrets), indent=2))
    else:
        print(record.to_text(args.show_secrets))
    return 0 if record.ok else 1


def _run_v1alpha2(args: argparse.Namespace) -> int:
    """The v1alpha2 sidecar's calls for one claim and one access (several buckets by --mode)."""
    import asyncio
    import json

    from cosi_driver.testing.emulator.options import V1Alpha2Options
    from cosi_driver.testing.emulator.sidecar_v1alpha2 import emulate_v1alpha2

    record = asyncio.run(
        emulate_v1alpha2(
            V1Alpha2Options(
                endpoint=args.endpoint,
                bucket_params=dict(args.bucket_param),
                access_params=dict(args.access_param),
                modes=tuple(args.mode or ["READ_WRITE"]),
                protocol=args.protocol or "",
                driver_name=args.driver_name,
                workers=max(1, args.workers),
                reconnect_backoff=None if args.reconnect_backoff is None else max(0.001, args.reconnect_backoff),
                duplicate_creates=max(0, args.duplicate_creates),
                duplicate_grants=max(0, args.duplicate_grants),
                max_backoff=max(0.0, args.max_backoff),
                max_attempts=max(1, args.max_attempts),
            )
        )
    )
    print(json.dumps(record.to_json(args.show_secrets), indent=2) if args.json else record.to_text(args.show_secrets))
    return 0 if record.ok else 1
