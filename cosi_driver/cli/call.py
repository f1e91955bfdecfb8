"""``cosi-driver call``: a shell client for any COSI endpoint, v1alpha1 (default) or v1alpha2 (``--api``).

Answers are JSON on stdout. Secret values are masked unless ``--show-secrets`` is given. On an
error the gRPC code and message go to stderr and the exit status is 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from cosi_driver.config.settings import DEFAULT_ENDPOINT
from cosi_driver.core.secret import MASK

# v1alpha1 secret names, then v1alpha2's (proto field names).
SECRET_FIELDS = frozenset({"accessSecretKey", "accessToken", "access_secret_key", "access_token", "access_secret"})
API_CHOICES = ("v1alpha1", "v1alpha2")
V1ALPHA1_AUTH = ("Key", "IAM")
V1ALPHA2_AUTH = ("KEY", "SERVICE_ACCOUNT")


class UsageError(Exception):
    """Arguments that fit the parser but not the chosen API version (exit status 2)."""


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def add_key_values(
    parser: Any, flag: str, help: str | None = None, *, metavar: str = "K=V", optional: bool = False
) -> None:
    """A repeatable ``flag K=V`` option collecting (key, value) pairs: absent is [] or, if ``optional``, None.

    ``optional`` is for a class the run may lack (a second BucketClass), where "not given" differs
    from "given with no parameters".
    """
    parser.add_argument(
        flag, type=key_value, action="append", default=None if optional else [], metavar=metavar, help=help
    )


def _connection_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # Declared on `call` and on every RPC, so they may come before or after the RPC name;
    # SUPPRESS keeps a later parser from overwriting a value given to an earlier one.
    parser.add_argument(
        "--endpoint",
        default=argparse.SUPPRESS,
        help=f"driver endpoint, e.g. {DEFAULT_ENDPOINT} (default: $COSI_ENDPOINT or that path)",
    )
    parser.add_argument(
        "--api", choices=API_CHOICES, default=argparse.SUPPRESS, help="COSI API version to call (default v1alpha1)"
    )
    parser.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds to wait (default 60)")
    parser.add_argument(
        "--show-secrets", action="store_true", default=argparse.SUPPRESS, help="print secret values unmasked"
    )
    return parser


def register(parser: argparse.ArgumentParser) -> None:
    _connection_options(parser)
    calls = parser.add_subparsers(dest="rpc", metavar="RPC", required=True)

    def add(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return _connection_options(calls.add_parser(name, **kwargs))

    add("info", help="DriverGetInfo", description="Print the driver's name (and, v1alpha2, its protocols).")

    create = add("create-bucket", help="DriverCreateBucket", description="Create a bucket.")
    create.add_argument("name")
    add_key_values(create, "--param", metavar="KEY=VALUE")
    create.add_argument("--protocol", action="append", default=[], metavar="S3", help="v1alpha2: a required protocol")

    existing = add(
        "get-existing-bucket",
        help="DriverGetExistingBucket (v1alpha2)",
        description="Take over a bucket that already exists in storage (v1alpha2 only).",
    )
    existing.add_argument("existing_bucket_id")
    add_key_values(existing, "--param", metavar="KEY=VALUE")
    existing.add_argument("--protocol", action="append", default=[], metavar="S3", help="a required protocol")

    delete = add("delete-bucket", help="DriverDeleteBucket", description="Delete a bucket.")
    delete.add_argument("bucket_id")
    add_key_values(
        delete,
        "--param",
        "the BucketClass parameters (v1alpha1 delete_context, v1alpha2 parameters)",
        metavar="KEY=VALUE",
    )

    grant = add(
        "grant-access",
        help="DriverGrantBucketAccess",
        description="Grant access. v1alpha1: BUCKET_ID NAME. v1alpha2: NAME --bucket ID=MODE (repeat).",
    )
    grant.add_argument("names", nargs="+", metavar="[BUCKET_ID] NAME")
    add_key_values(grant, "--param", metavar="KEY=VALUE")
    grant.add_argument("--auth-type", choices=V1ALPHA1_AUTH + V1ALPHA2_AUTH, default=None)
    add_key_values(
        grant, "--bucket", "v1alpha2: a bucket and its mode (READ_WRITE, READ_ONLY, WRITE_ONLY)", metavar="ID=MODE"
    )
    grant.add_argument("--protocol", default="S3", help="v1alpha2: the credential's protocol (default S3)")
    grant.add_argument("--service-account", default="", help="v1alpha2: with --auth-type SERVICE_ACCOUNT")

    revoke = add(
        "revoke-access",
        help="DriverRevokeBucketAccess",
        description="Revoke access. v1alpha1: BUCKET_ID ACCOUNT_ID. v1alpha2: ACCOUNT_ID --bucket ID (repeat).",
    )
    revoke.add_argument("ids", nargs="+", metavar="[BUCKET_ID] ACCOUNT_ID")
    revoke.add_argument("--bucket", action="append", default=[], metavar="ID", help="v1alpha2: a bucket of the grant")
    revoke.add_argument("--protocol", default="S3", help="v1alpha2: the grant's protocol (default S3)")
    revoke.add_argument("--auth-type", choices=V1ALPHA2_AUTH, default="KEY", help="v1alpha2: the grant's type")
    add_key_values(revoke, "--param", metavar="KEY=VALUE")


def _mask(document: Any, show: bool) -> Any:
    if show:
        return document
    if isinstance(document, dict):
        return {k: (MASK if k in SECRET_FIELDS and v else _mask(v, show)) for k, v in document.items()}
    if isinstance(document, list):
        return [_mask(item, show) for item in document]
    return document


def _exactly(values: list[str], count: int, what: str) -> list[str]:
    if len(values) != count:
        raise UsageError(f"expected {what}, got {len(values)} value(s)")
    return values


def _v1alpha1_request(args: argparse.Namespace, channel: Any) -> tuple[Any, Any]:
    from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
    from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

    identity, provisioner = pb_grpc.IdentityStub(channel), pb_grpc.ProvisionerStub(channel)
    params = dict(getattr(args, "param", []))
    request: Any
    if args.rpc == "info":
        return identity.DriverGetInfo, pb.DriverGetInfoRequest()
    if args.rpc == "create-bucket":
        if args.protocol:
            raise UsageError("--protocol is v1alpha2 only (v1alpha1 Create takes none)")
        return provisioner.DriverCreateBucket, pb.DriverCreateBucketRequest(name=args.name, parameters=params)
    if args.rpc == "get-existing-bucket":
        raise UsageError("get-existing-bucket is a v1alpha2 call: add --api v1alpha2")
    if args.rpc == "delete-bucket":
        request = pb.DriverDeleteBucketRequest(bucket_id=args.bucket_id, delete_context=params)
        return provisioner.DriverDeleteBucket, request
    if args.rpc == "grant-access":
        bucket_id, name = _exactly(args.names, 2, "BUCKET_ID NAME")
        auth = args.auth_type or "Key"
        if auth not in V1ALPHA1_AUTH or args.bucket:
            raise UsageError("v1alpha1 grant-access takes BUCKET_ID NAME and --auth-type Key or IAM")
        request = pb.DriverGrantBucketAccessRequest(
            bucket_id=bucket_id, name=name, authentication_type=auth, parameters=params
        )
        return provisioner.DriverGrantBucketAccess, request
    bucket_id, account_id = _exactly(args.ids, 2, "BUCKET_ID ACCOUNT_ID")
    request = pb.DriverRevokeBucketAccessRequest(bucket_id=bucket_id, account_id=account_id)
    return provisioner.DriverRevokeBucketAccess, request


def _v1alpha2_request(args: argparse.Namespace, channel: Any) -> tuple[Any, Any]:
    from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb
    from cosi_driver.spec.v1alpha2 import cosi_pb2_grpc as pb_grpc
    from cosi_driver.testing.client import grant_request, protocol_list, revoke_request

    identity, provisioner = pb_grpc.IdentityStub(channel), pb_grpc.ProvisionerStub(channel)
    params = dict(getattr(args, "param", []))
    given = getattr(args, "protocol", [])  # a list on Create/GetExisting, one name on Grant/Revoke
    known = [name for name in pb.ObjectProtocol.Type.DESCRIPTOR.values_by_name if name != "UNKNOWN"]
    for name in given if isinstance(given, list) else [given]:
        if name not in known:
            raise UsageError(f"unknown protocol {name!r}; choose from {', '.join(known)}")
    request: Any
    if args.rpc == "info":
        return identity.DriverGetInfo, pb.DriverGetInfoRequest()
    if args.rpc == "create-bucket":
        request = pb.DriverCreateBucketRequest(
            name=args.name, protocols=protocol_list(args.protocol), parameters=params
        )
        return provisioner.DriverCreateBucket, request
    if args.rpc == "get-existing-bucket":
        request = pb.DriverGetExistingBucketRequest(
            existing_bucket_id=args.existing_bucket_id, protocols=protocol_list(args.protocol), parameters=params
        )
        return provisioner.DriverGetExistingBucket, request
    if args.rpc == "delete-bucket":
        return provisioner.DriverDeleteBucket, pb.DriverDeleteBucketRequest(bucket_id=args.bucket_id, parameters=params)
    if args.rpc == "grant-access":
        (name,) = _exactly(args.names, 1, "NAME (the buckets go in --bucket ID=MODE)")
        auth = args.auth_type or "KEY"
        if auth not in V1ALPHA2_AUTH:
            raise UsageError(f"v1alpha2 --auth-type is {' or '.join(V1ALPHA2_AUTH)}")
        if not args.bucket:
            raise UsageError("v1alpha2 grant-access needs at least one --bucket ID=MODE")
        modes = [mode for mode in pb.AccessMode.Mode.DESCRIPTOR.values_by_name if mode != "UNKNOWN"]
        bad = [mode for _, mode in args.bucket if mode not in modes]
        if bad:
            raise UsageError(f"unknown access mode {bad[0]!r}; choose from {', '.join(modes)}")
        request = grant_request(
            name, list(args.bucket), args.protocol, auth, service_account=args.service_account, params=params
        )
        return provisioner.DriverGrantBucketAccess, request
    (account_id,) = _exactly(args.ids, 1, "ACCOUNT_ID (the buckets go in --bucket ID)")
    return provisioner.DriverRevokeBucketAccess, revoke_request(
        account_id, list(args.bucket), args.protocol, args.auth_type, params
    )


def run(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf import json_format

    endpoint = getattr(args, "endpoint", os.environ.get("COSI_ENDPOINT", DEFAULT_ENDPOINT))
    timeout = getattr(args, "timeout", 60.0)
    show_secrets = getattr(args, "show_secrets", False)
    api = getattr(args, "api", "v1alpha1")
    with grpc.insecure_channel(endpoint) as channel:
        try:
            call, request = (_v1alpha2_request if api == "v1alpha2" else _v1alpha1_request)(args, channel)
        except UsageError as error:
            print(f"cosi-driver call: {error}", file=sys.stderr)
            return 2
        try:
            response = call(request, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as error:
            print(f"{error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    document = json_format.MessageToDict(response, preserving_proto_field_name=True)
    print(json.dumps(_mask(document, show_secrets), indent=2, sort_keys=True))
    return 0
