"""The one place where core errors become gRPC status codes.

Everything the core raises is a :class:`~cosi_driver.core.errors.CosiError` that names its code;
anything else is unexpected and becomes INTERNAL with a correlation id (the traceback goes to the
log under the same id, never to the caller). A caller therefore never sees UNKNOWN, a Python
traceback or a secret.
"""

from __future__ import annotations

import uuid

import grpc

from cosi_driver.core.errors import CosiError, Internal

_CODES = {code.name: code for code in grpc.StatusCode}


def new_correlation_id() -> str:
    return uuid.uuid4().hex[:16]


def to_status(error: BaseException, correlation_id: str | None = None) -> tuple[grpc.StatusCode, str]:
    """The gRPC code and message for ``error``; unexpected errors become INTERNAL."""
    if isinstance(error, CosiError):
        code = _CODES.get(error.code, grpc.StatusCode.INTERNAL)
        if code in (grpc.StatusCode.OK, grpc.StatusCode.UNKNOWN):
            code = grpc.StatusCode.INTERNAL
        return code, error.message
    internal = Internal(
        "the driver hit an unexpected error; see its log for details", correlation_id or new_correlation_id()
    )
    return grpc.StatusCode.INTERNAL, internal.message
