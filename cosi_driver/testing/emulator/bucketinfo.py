"""The Secret the v0.2.2 sidecar writes for a granted BucketAccess: one key, ``BucketInfo``;
and, for comparison, the flat keys the v1alpha2 sidecar would write for the same answer.

Its value is Go's ``json.Marshal`` of the sidecar's ``BucketInfo`` type: compact, fields in struct
order, HTML characters escaped, ``creationTimestamp: null`` from an empty ObjectMeta, and the
upstream JSON tags as they are (``acessToken`` [sic], ``expiryTimeStamp``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cosi_driver.spec.v1alpha2 import cosi_pb2 as pb
from cosi_driver.testing.sidecar_formats import AZURE_KEY, S3_KEY, parse_go_time, rfc3339
from cosi_driver.testing.sidecar_formats_v1alpha2 import flat_secret


def bucket_info_json(
    *,
    access_uid: str,
    bucket_name: str,
    authentication_type: str,
    protocol: str,
    credentials: Mapping[str, Mapping[str, str]],
) -> str:
    secret_s3: dict[str, str] | None = None
    secret_azure: dict[str, Any] | None = None
    if S3_KEY in credentials:
        values = credentials[S3_KEY]
        secret_s3 = {
            "endpoint": values.get("endpoint", ""),
            "region": values.get("region", ""),
            "accessKeyID": values.get("accessKeyID", ""),
            "accessSecretKey": values.get("accessSecretKey", ""),
        }
    elif AZURE_KEY in credentials:
        values = credentials[AZURE_KEY]
        secret_azure = {
            "acessToken": values.get("accessToken", ""),
            "expiryTimeStamp": rfc3339(parse_go_time(values.get("expiryTs", ""))),
        }
    document = {
        "metadata": {"name": f"bc-{access_uid}", "creationTimestamp": None},
        "spec": {
            "bucketName": bucket_name,
            "authenticationType": authentication_type,
            "secretS3": secret_s3,
            "secretAzure": secret_azure,
            "protocols": [protocol],
        },
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def v1alpha2_secret_data(
    *, bucket_name: str, storage_account: str, credentials: Mapping[str, Mapping[str, str]]
) -> dict[str, str] | None:
    """The data of the Secret the v1alpha2 sidecar would write for the same bucket and credentials.

    The v1alpha1 answer is restated as the v1alpha2 answer a driver would give for it (path-style
    S3, the one every built-in backend answers; the Azure expiry in RFC 3339, not Go's time.String()
    layout) and handed to the one builder of that Secret. None for credentials of neither protocol.
    """
    if S3_KEY in credentials:
        values = credentials[S3_KEY]
        info = pb.ObjectProtocolAndBucketInfo(
            s3=pb.S3BucketInfo(
                bucket_id=bucket_name,
                endpoint=values.get("endpoint", ""),
                region=values.get("region", ""),
                addressing_style=pb.S3AddressingStyle(style=pb.S3AddressingStyle.PATH),
            )
        )
        keys = pb.S3CredentialInfo(
            access_key_id=values.get("accessKeyID", ""), access_secret_key=values.get("accessSecretKey", "")
        )
        return flat_secret("S3", info, pb.CredentialInfo(s3=keys))
    if AZURE_KEY in credentials:
        values = credentials[AZURE_KEY]
        token = pb.AzureCredentialInfo(
            access_token=values.get("accessToken", ""),
            expiry_timestamp=rfc3339(parse_go_time(values.get("expiryTs", ""))) or "",
        )
        info = pb.ObjectProtocolAndBucketInfo(azure=pb.AzureBucketInfo(storage_account=storage_account))
        return flat_secret("AZURE", info, pb.CredentialInfo(azure=token))
    return None
