"""azure-core exceptions become core errors at the backend's edge.

Messages carry the operation, Azure's error code and the HTTP status, never the service's own
text (it can echo request details). ``error_code`` is often a ``StorageErrorCode`` member, whose
``str()`` is the enum's name rather than the code, so the code is read through :func:`code_of`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from cosi_driver.sdk import (
    AlreadyExists,
    CosiError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)

#: Azure answers these while a container of that name is still being deleted (for 30 s or more).
BEING_DELETED = "ContainerBeingDeleted"
_BAD_NAME = frozenset({"InvalidResourceName", "OutOfRangeInput"})
_AUTH = frozenset({"AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo"})


def code_of(error: BaseException) -> str:
    """Azure's error code of an HttpResponseError (``x-ms-error-code``), or "" for anything else."""
    code = getattr(error, "error_code", None)
    if code is not None:
        return str(getattr(code, "value", code))
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    return str(headers.get("x-ms-error-code", "") or "")


def status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


def is_missing(error: BaseException) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(error, ResourceNotFoundError) or status_of(error) == 404


def translate(error: BaseException, doing: str) -> CosiError | None:  # noqa: PLR0911 (a decision table)
    """The core error for an azure-core exception, or None when ``error`` is not one of its."""
    from azure.core import exceptions as az

    kind = type(error).__name__
    if isinstance(error, (az.ServiceRequestError, az.ServiceResponseError)):
        return Unavailable(f"Azure Blob Storage is unreachable while trying to {doing} ({kind})")
    if not isinstance(error, az.HttpResponseError):
        return None
    code, status = code_of(error), status_of(error)
    detail = f"{code or 'no code'}, HTTP {status}"
    if code in _AUTH or isinstance(error, az.ClientAuthenticationError):
        return PermissionDenied(
            f"Azure refused the driver's account credentials while trying to {doing} ({detail}); "
            "check account_name and account_key (or connection_string)"
        )
    if status == 403:
        return PermissionDenied(f"Azure denied the driver permission to {doing} ({detail})")
    if code in _BAD_NAME:
        return InvalidArgument(f"Azure rejected the container name while trying to {doing} ({detail})")
    if code == "InvalidHeaderValue":
        return FailedPrecondition(
            f"Azure refused a request header while trying to {doing} ({detail}); if the service does not know "
            "the API version, set api_version to one it supports"
        )
    if code == BEING_DELETED:
        return Unavailable(f"a container of that name is still being deleted; cannot {doing} yet ({detail})")
    if is_missing(error):
        return NotFound(f"Azure found nothing to {doing} ({detail})")
    if status == 409:
        return AlreadyExists(f"Azure reports a conflict while trying to {doing} ({detail})")
    if status is None or status >= 500 or status in (408, 429):
        return Unavailable(f"Azure Blob Storage failed while trying to {doing} ({detail}); the call will be retried")
    return FailedPrecondition(f"Azure refused to {doing} ({detail})")


@contextlib.contextmanager
def edge(doing: str) -> Iterator[None]:
    """Translate azure-core exceptions raised in the block; core errors and bugs pass through."""
    try:
        yield
    except CosiError:
        raise
    except Exception as error:
        translated = translate(error, doing)
        if translated is None:
            raise
        raise translated from None
