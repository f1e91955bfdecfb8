"""What the v0.2.2 provisioner sidecar expects on the wire, as small pure functions.

Shared by the conformance checks (which judge a driver's answers by these rules) and the sidecar
emulator (which renders what a Kubernetes user would see). Facts from ../shared/cosi/SIDECAR.md and
the sidecar's source (``client/apis/objectstorage/consts``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import grpc

S3_KEY = "s3"
AZURE_KEY = "azure"
S3_SECRETS = ("accessKeyID", "accessSecretKey", "endpoint", "region")
AZURE_SECRETS = ("accessToken", "expiryTs")
SECRET_VALUES = frozenset({"accessSecretKey", "accessToken"})

# consts.DefaultTimeFormat, Go's time.String() layout: "2006-01-02 15:04:05.999999999 -0700 MST".
_GO_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,9}))? "
    r"(?P<sign>[+-])(?P<hh>\d{2})(?P<mm>\d{2}) (?P<zone>[A-Za-z]{3,5}|[+-]\d{2}(?:\d{2})?)"
)


def parse_go_time(text: str) -> datetime | None:
    """Parse an ``expiryTs`` as the sidecar does; None where Go's time.Parse would fail."""
    match = _GO_TIME.fullmatch(text)
    if match is None:
        return None
    try:
        base = datetime.strptime(f"{match['date']} {match['time']}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    offset = timedelta(hours=int(match["hh"]), minutes=int(match["mm"]))
    zone = timezone(offset if match["sign"] == "+" else -offset)
    micros = int((match["frac"] or "0").ljust(9, "0")[:6])
    return base.replace(tzinfo=zone, microsecond=micros)


def rfc3339(moment: datetime | None) -> str | None:
    """How metav1.Time marshals: RFC 3339 in UTC to the second, or null for the zero time."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# grpc-go's codes.Code.String(): the names the sidecar's Event messages carry.
_GO_CODE_NAMES = {
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


def go_status_error(code: grpc.StatusCode, message: str) -> str:
    """grpc-go's status error text, as it appears inside the sidecar's Event messages."""
    return f"rpc error: code = {_GO_CODE_NAMES.get(code, code.name)} desc = {message}"


def credential_problems(credentials: dict[str, dict[str, str]]) -> list[str]:
    """Why the sidecar could not turn a Grant's credentials into a usable Secret (empty: it can)."""
    if len(credentials) != 1:
        return [f"credentials must hold exactly one entry, not {len(credentials)} ({', '.join(sorted(credentials))})"]
    ((key, secrets),) = credentials.items()
    if key == S3_KEY:
        problems = [f"s3 credentials lack {name!r}" for name in S3_SECRETS if name not in secrets]
        problems += [
            f"s3 credentials have an empty {name!r}"
            for name in ("accessKeyID", "accessSecretKey", "endpoint")
            if name in secrets and not secrets[name]
        ]
        endpoint = secrets.get("endpoint", "")
        if endpoint and "://" not in endpoint:
            problems.append(f"s3 endpoint {endpoint!r} is not a URL with a scheme (e.g. https://s3.example.com)")
        return problems
    if key == AZURE_KEY:
        problems = [f"azure credentials lack {name!r}" for name in AZURE_SECRETS if name not in secrets]
        if "accessToken" in secrets and not secrets["accessToken"]:
            problems.append("azure credentials have an empty 'accessToken'")
        expiry = secrets.get("expiryTs", "")
        if expiry and parse_go_time(expiry) is None:
            problems.append(
                f"azure expiryTs {expiry!r} is not in Go's time.String() layout "
                "'2006-01-02 15:04:05.999999999 -0700 MST'; the sidecar would write a null expiry"
            )
        return problems
    return [f"the one credentials entry must be keyed 's3' or 'azure', not {key!r}; the sidecar would write no secret"]
