"""What upstream's v1alpha2 sidecar checks in a driver's answers, as small pure functions.

Shared by the conformance checks (``v2.*``) and the v1alpha2 sidecar emulator, so both judge an
answer by the same rules (../shared/cosi/SIDECAR.md, v1alpha2 section).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb

#: Codes that end the v1alpha2 sidecar's reconciling of an object; everything else is retried.
TERMINAL = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNIMPLEMENTED})
#: The values it writes to ``COSI_S3_ADDRESSING_STYLE``; UNKNOWN is refused.
ADDRESSING_STYLES = {pb.S3AddressingStyle.PATH: "path", pb.S3AddressingStyle.VIRTUAL: "virtual"}


def protocol_names(protocols: Sequence[Any]) -> list[str]:
    return [pb.ObjectProtocol.Type.Name(item.type) for item in protocols]


def supported_protocols_problem(names: Sequence[str]) -> str | None:
    """Why the sidecar exits at start-up on this ``supported_protocols``, or None."""
    if not names or "UNKNOWN" in names or len(set(names)) != len(names):
        return f"supported_protocols is {list(names)}; it must be non-empty, without UNKNOWN and without repeats"
    return None


def s3_info_problems(where: str, info: Any) -> list[str]:
    """What the sidecar refuses in a bucket info's S3 slot."""
    if not info.HasField("s3"):
        return [f"{where} has no s3 slot"]
    s3 = info.s3
    problems = [f"{where}.s3.{name} is empty" for name in ("bucket_id", "endpoint", "region") if not getattr(s3, name)]
    if s3.addressing_style.style not in ADDRESSING_STYLES:
        problems.append(f"{where}.s3.addressing_style is UNKNOWN (PATH or VIRTUAL needed)")
    return problems


def azure_info_problems(where: str, info: Any) -> list[str]:
    """What a bucket info's Azure slot lacks for the Secret (``COSI_AZURE_STORAGE_ACCOUNT``).

    SIDECAR.md records the sidecar's checks for S3 only; for Azure we ask for what its Secret needs.
    """
    if not info.HasField("azure"):
        return [f"{where} has no azure slot"]
    return [] if info.azure.storage_account else [f"{where}.azure.storage_account is empty"]


def info_problems(where: str, info: Any, protocol: str = "S3") -> list[str]:
    """A bucket info judged for ``protocol`` (a wire enum name); GCS is not judged here."""
    judges = {"S3": s3_info_problems, "AZURE": azure_info_problems}
    return judges[protocol](where, info) if protocol in judges else []


def grant_problems(response: Any, bucket_ids: Sequence[str], protocol: str = "S3") -> list[str]:
    """The sidecar's validation of a KEY grant over ``protocol``: empty when it accepts the answer."""
    problems = [] if response.account_id else ["account_id is empty"]
    answered = [item.bucket_id for item in response.buckets]
    if sorted(answered) != sorted(bucket_ids):
        problems.append(f"the answer lists buckets {answered}, the request {list(bucket_ids)}")
    for item in response.buckets:
        problems += info_problems(f"buckets[{item.bucket_id}].bucket_info", item.bucket_info, protocol)
    credentials = response.credentials
    if protocol == "AZURE":
        if not credentials.HasField("azure"):
            problems.append("credentials has no azure slot")
        elif not credentials.azure.access_token:
            problems.append("credentials.azure.access_token is empty (KEY needs it)")
    elif not credentials.HasField("s3"):
        problems.append("credentials has no s3 slot")
    elif not (credentials.s3.access_key_id and credentials.s3.access_secret_key):
        problems.append("credentials.s3 lacks the access key id or the secret (KEY needs both)")
    return problems


#: ``COSI_PROTOCOL`` as the v1alpha2 CRDs spell it, by wire enum name.
PROTOCOL_VALUES = {"S3": "S3", "AZURE": "Azure", "GCS": "GCS"}
#: Keys of the flat Secret whose values are secrets (masked in reports).
SECRET_KEYS = frozenset({"COSI_S3_ACCESS_SECRET_KEY", "COSI_AZURE_ACCESS_TOKEN", "COSI_GCS_ACCESS_SECRET"})


def flat_secret(protocol: str, info: Any, credentials: Any) -> dict[str, str] | None:
    """The data of the Secret the sidecar writes for one bucket of a grant, keys sorted.

    ``protocol`` is the wire enum name, ``info`` the bucket's ``ObjectProtocolAndBucketInfo`` and
    ``credentials`` the grant's ``CredentialInfo``; the values are copied as answered (the Azure
    expiry included). None for a protocol without S3 or Azure keys.
    """
    if protocol == "S3":
        s3, keys = info.s3, credentials.s3
        data = {
            "COSI_S3_BUCKET_ID": s3.bucket_id,
            "COSI_S3_ENDPOINT": s3.endpoint,
            "COSI_S3_REGION": s3.region,
            "COSI_S3_ADDRESSING_STYLE": ADDRESSING_STYLES.get(s3.addressing_style.style, ""),
            "COSI_S3_ACCESS_KEY_ID": keys.access_key_id,
            "COSI_S3_ACCESS_SECRET_KEY": keys.access_secret_key,
        }
    elif protocol == "AZURE":
        data = {
            "COSI_AZURE_STORAGE_ACCOUNT": info.azure.storage_account,
            "COSI_AZURE_ACCESS_TOKEN": credentials.azure.access_token,
            "COSI_AZURE_EXPIRY_TIMESTAMP": credentials.azure.expiry_timestamp,
        }
    else:
        return None
    return dict(sorted({"COSI_PROTOCOL": PROTOCOL_VALUES[protocol], **data}.items()))
