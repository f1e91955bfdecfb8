"""botocore exceptions become core errors at the backend's edge.

Messages are built from the operation, the error code and the HTTP status only. A server's own
error text is never copied: it can echo request details, and it is not written for Kubernetes
users. Error codes differ between servers (SeaweedFS answers IAM calls from non-admins with an
S3-style XML 403 that botocore reports as code ``Unknown``), so the HTTP status is the fallback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from cosi_driver.core.errors import (
    AlreadyExists,
    CosiError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
)

#: Codes meaning "the thing asked about does not exist", across S3 and IAM.
MISSING_CODES = frozenset({"404", "NoSuchBucket", "NoSuchEntity", "NoSuchKey", "NotFound", "NoSuchUpload"})
_CREDENTIALS_REFUSED = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidClientTokenId", "AuthFailure", "InvalidToken"}
)
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "Forbidden", "403"})
_BUSY = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceFailure",
    }
)
_EXHAUSTED = frozenset({"TooManyBuckets", "LimitExceeded", "QuotaExceeded"})
#: Codes of a server that does not implement an operation at all (HTTP 501 without them means the same).
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "XNotImplemented"})
#: Codes that, where a backend has a fallback, also mean "this optional operation is not offered
#: here": S3 servers without versioning or bucket tagging answer MethodNotAllowed, IAM servers
#: without an action InvalidAction. At the edge they stay FAILED_PRECONDITION (retried), because
#: both also have ordinary meanings (a method on a delete marker, a misspelt action).
_NOT_OFFERED = frozenset({"MethodNotAllowed", "InvalidAction"})


def error_code(error: BaseException) -> str:
    """The S3/IAM error code of a botocore ClientError, or "" for anything else."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", "") or "")


def http_status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if isinstance(status, int) else None


def is_not_implemented(error: BaseException) -> bool:
    """True when the server says it does not implement the operation (NotImplemented, or HTTP 501)."""
    return error_code(error) in _NOT_IMPLEMENTED or http_status(error) == 501


def is_unsupported(error: BaseException) -> bool:
    """True when the server does not offer an optional operation, so the caller takes its fallback.

    The one test every fallback in s3kit uses (versions listing, bucket tags, attached policies),
    so a server's way of saying "not here" is learnt once for all of them.
    """
    return is_not_implemented(error) or error_code(error) in _NOT_OFFERED


def is_missing(error: BaseException) -> bool:
    """True when a ClientError says the bucket, object, user or key does not exist."""
    return error_code(error) in MISSING_CODES or (error_code(error) in ("", "Unknown") and http_status(error) == 404)


def translate(error: BaseException, doing: str, storage: str = "the storage") -> CosiError | None:  # noqa: PLR0911
    """The core error for a botocore exception, or None if ``error`` is not one of botocore's."""
    from botocore import exceptions as bc

    kind = type(error).__name__
    if isinstance(error, bc.ClientError):
        return _client_error(error, doing, storage)
    if isinstance(error, bc.SSLError):
        return Unavailable(
            f"{storage} failed TLS verification while trying to {doing}; set ca_bundle to the CA that signed "
            "its certificate (or verify_tls: false for a throwaway set-up)"
        )
    if isinstance(error, bc.ReadTimeoutError):
        return Unavailable(f"{storage} did not answer in time while trying to {doing} (read timeout)")
    if isinstance(error, (bc.EndpointConnectionError, bc.ConnectTimeoutError, bc.ConnectionClosedError)):
        return Unavailable(f"{storage} is unreachable while trying to {doing} ({kind})")
    if isinstance(error, bc.HTTPClientError):
        return Unavailable(f"{storage} failed while trying to {doing} ({kind})")
    if isinstance(error, (bc.NoCredentialsError, bc.PartialCredentialsError)):
        return PermissionDenied(f"no admin credentials to {doing}; set access_key_id and secret_access_key")
    if isinstance(error, bc.ParamValidationError):
        return InvalidArgument(f"a value is not acceptable to the S3 API while trying to {doing}")
    return None


def _client_error(error: BaseException, doing: str, storage: str) -> CosiError:  # noqa: PLR0911 (a decision table)
    code = error_code(error)
    status = http_status(error)
    detail = f"{code or 'no code'}, HTTP {status}" if status else code or "no code"
    if code in _CREDENTIALS_REFUSED:
        return PermissionDenied(
            f"{storage} refused the driver's admin credentials while trying to {doing} ({detail}); "
            "check access_key_id and secret_access_key"
        )
    if code in _DENIED or (code in ("", "Unknown") and status == 403):
        return PermissionDenied(
            f"{storage} denied the driver's admin credentials permission to {doing} ({detail}); "
            "give them S3 and IAM administration rights"
        )
    if code == "InvalidBucketName":
        return InvalidArgument(f"{storage} rejected the bucket name while trying to {doing} ({detail})")
    if code in ("NoSuchBucket",):
        return NotFound(f"the bucket does not exist while trying to {doing} ({detail})")
    if is_missing(error):
        return NotFound(f"{storage} found nothing to {doing} ({detail})")
    if code == "BucketAlreadyExists":
        return AlreadyExists(f"the bucket name is taken by another owner of {storage} ({detail})")
    if code in _EXHAUSTED:
        return ResourceExhausted(f"{storage} refused to {doing}: a limit is reached ({detail})")
    if is_not_implemented(error):
        return Unimplemented(f"{storage} does not implement what is needed to {doing} ({detail})")
    if code in _BUSY or (status is not None and status >= 500):
        return Unavailable(f"{storage} failed while trying to {doing} ({detail}); the call will be retried")
    return FailedPrecondition(f"{storage} refused to {doing} ({detail})")


@contextlib.contextmanager
def edge(doing: str, storage: str = "the storage") -> Iterator[None]:
    """Translate botocore exceptions raised in the block; core errors and bugs pass through."""
    try:
        yield
    except CosiError:
        raise
    except Exception as error:
        translated = translate(error, doing, storage)
        if translated is None:
            raise
        raise translated from None


@contextlib.contextmanager
def deleted_meanwhile(name: str) -> Iterator[None]:
    """Around the steps after CreateBucket: a bucket gone by then was deleted by a Delete running
    at the same time (on another driver pod during a leader handover, say). That is no NOT_FOUND
    for the Create: UNAVAILABLE makes the sidecar retry, and the retry creates the bucket anew."""
    try:
        yield
    except Exception as error:
        if error_code(error) != "NoSuchBucket":
            raise
        raise Unavailable(f"bucket {name!r} was deleted while it was being created; retry") from None
