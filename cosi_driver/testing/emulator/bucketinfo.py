"""The Secret the v0.2.2 sidecar writes for a granted BucketAccess: one key, ``BucketInfo``.

Its value is Go's ``json.Marshal`` of the sidecar's ``BucketInfo`` type: compact, fields in struct
order, HTML characters escaped, ``creationTimestamp: null`` from an empty ObjectMeta, and the
upstream JSON tags as they are (``acessToken`` [sic], ``expiryTimeStamp``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cosi_driver.testing.sidecar_formats import AZURE_KEY, S3_KEY, parse_go_time, rfc3339


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
