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


#: Secret keys of the v1alpha2 sidecar (one Secret per bucket), by v1alpha1 credential entry.
_V1ALPHA2_KEYS = {
    S3_KEY: {
        "endpoint": "COSI_S3_ENDPOINT",
        "region": "COSI_S3_REGION",
        "accessKeyID": "COSI_S3_ACCESS_KEY_ID",
        "accessSecretKey": "COSI_S3_ACCESS_SECRET_KEY",
    },
    AZURE_KEY: {"accessToken": "COSI_AZURE_ACCESS_TOKEN"},
}
#: Values that are secrets in the v1alpha2 Secret (masked in reports).
V1ALPHA2_SECRET_KEYS = frozenset({"COSI_S3_ACCESS_SECRET_KEY", "COSI_AZURE_ACCESS_TOKEN", "COSI_GCS_ACCESS_SECRET"})


def v1alpha2_secret_data(
    *, bucket_name: str, storage_account: str, credentials: Mapping[str, Mapping[str, str]]
) -> dict[str, str] | None:
    """The data of the Secret the v1alpha2 sidecar would write for the same bucket and credentials.

    Its expiry is ISO 8601 (RFC 3339), not Go's time.String() layout; S3 addressing is path style,
    the one every built-in backend answers. None when the credentials are of neither protocol.
    """
    if S3_KEY in credentials:
        values = credentials[S3_KEY]
        data = {"COSI_PROTOCOL": "S3", "COSI_S3_BUCKET_ID": bucket_name, "COSI_S3_ADDRESSING_STYLE": "path"}
    elif AZURE_KEY in credentials:
        values = credentials[AZURE_KEY]
        expiry = rfc3339(parse_go_time(values.get("expiryTs", "")))
        data = {
            "COSI_PROTOCOL": "Azure",
            "COSI_AZURE_STORAGE_ACCOUNT": storage_account,
            "COSI_AZURE_EXPIRY_TIMESTAMP": expiry or "",
        }
    else:
        return None
    key = S3_KEY if S3_KEY in credentials else AZURE_KEY
    data.update({target: values.get(source, "") for source, target in _V1ALPHA2_KEYS[key].items()})
    return dict(sorted(data.items()))
