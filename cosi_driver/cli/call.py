"""``cosi-driver call``: a shell client for any COSI v1alpha1 endpoint.

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

SECRET_FIELDS = frozenset({"accessSecretKey", "accessToken"})


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _connection_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # Declared on `call` and on every RPC, so they may come before or after the RPC name;
    # SUPPRESS keeps a later parser from overwriting a value given to an earlier one.
    parser.add_argument(
        "--endpoint",
        default=argparse.SUPPRESS,
        help=f"driver endpoint, e.g. {DEFAULT_ENDPOINT} (default: $COSI_ENDPOINT or that path)",
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

    add("info", help="DriverGetInfo", description="Print the driver's name.")

    create = add("create-bucket", help="DriverCreateBucket", description="Create a bucket.")
    create.add_argument("name")
    create.add_argument("--param", type=key_value, action="append", default=[], metavar="KEY=VALUE")

    delete = add("delete-bucket", help="DriverDeleteBucket", description="Delete a bucket.")
    delete.add_argument("bucket_id")
    delete.add_argument(
        "--param",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="delete_context entries (the BucketClass parameters)",
    )

    grant = add("grant-access", help="DriverGrantBucketAccess", description="Grant access to a bucket.")
    grant.add_argument("bucket_id")
    grant.add_argument("name")
    grant.add_argument("--param", type=key_value, action="append", default=[], metavar="KEY=VALUE")
    grant.add_argument("--auth-type", choices=["Key", "IAM"], default="Key")

    revoke = add("revoke-access", help="DriverRevokeBucketAccess", description="Revoke access.")
    revoke.add_argument("bucket_id")
    revoke.add_argument("account_id")


def _mask(document: Any, show: bool) -> Any:
    if show:
        return document
    if isinstance(document, dict):
        return {k: (MASK if k in SECRET_FIELDS and v else _mask(v, show)) for k, v in document.items()}
    if isinstance(document, list):
        return [_mask(item, show) for item in document]
    return document


def run(args: argparse.Namespace) -> int:
    import grpc
    from google.protobuf import json_format

    from cosi_driver.spec.v1alpha1 import cosi_pb2 as pb
    from cosi_driver.spec.v1alpha1 import cosi_pb2_grpc as pb_grpc

    endpoint = getattr(args, "endpoint", os.environ.get("COSI_ENDPOINT", DEFAULT_ENDPOINT))
    timeout = getattr(args, "timeout", 60.0)
    show_secrets = getattr(args, "show_secrets", False)
    with grpc.insecure_channel(endpoint) as channel:
        identity = pb_grpc.IdentityStub(channel)
        provisioner = pb_grpc.ProvisionerStub(channel)
        params = dict(getattr(args, "param", []))
        call: Any
        request: Any
        if args.rpc == "info":
            call, request = identity.DriverGetInfo, pb.DriverGetInfoRequest()
        elif args.rpc == "create-bucket":
            call, request = (
                provisioner.DriverCreateBucket,
                pb.DriverCreateBucketRequest(name=args.name, parameters=params),
            )
        elif args.rpc == "delete-bucket":
            call = provisioner.DriverDeleteBucket
            request = pb.DriverDeleteBucketRequest(bucket_id=args.bucket_id, delete_context=params)
        elif args.rpc == "grant-access":
            call = provisioner.DriverGrantBucketAccess
            request = pb.DriverGrantBucketAccessRequest(
                bucket_id=args.bucket_id,
                name=args.name,
                authentication_type=args.auth_type,
                parameters=params,
            )
        else:
            call = provisioner.DriverRevokeBucketAccess
            request = pb.DriverRevokeBucketAccessRequest(bucket_id=args.bucket_id, account_id=args.account_id)
        try:
            response = call(request, timeout=timeout, wait_for_ready=False)
        except grpc.RpcError as error:
            print(f"{error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    document = json_format.MessageToDict(response, preserving_proto_field_name=True)
    print(json.dumps(_mask(document, show_secrets), indent=2, sort_keys=True))
    return 0
