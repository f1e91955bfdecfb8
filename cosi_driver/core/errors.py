"""The one error model of the driver.

Everything below the transport raises these exceptions; exactly one place
(``cosi_driver.transport.status``) turns them into gRPC status codes. Each class names the gRPC
code it stands for by string so that the core never imports grpc.

Messages are shown to Kubernetes users as Events: they must be short, human-readable and never
contain a secret. Build them from names and ids only, never from a storage system's raw error
text unless it was checked to be safe.
"""

from __future__ import annotations

from typing import ClassVar


class CosiError(Exception):
    """A failure the driver can explain to its caller."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(CosiError):
    """The request (a field or a parameter) is wrong; the caller must fix it before retrying."""

    code = "INVALID_ARGUMENT"


class NotFound(CosiError):
    code = "NOT_FOUND"


class AlreadyExists(CosiError):
    """Same name, incompatible parameters, or a bucket this driver did not make.

    The v0.2.2 sidecar retries ALREADY_EXISTS from Create forever and crashes on it from Grant,
    so only a true conflict may raise it.
    """

    code = "ALREADY_EXISTS"


class FailedPrecondition(CosiError):
    """The system is not in a state that allows the call, e.g. deleting a non-empty bucket."""

    code = "FAILED_PRECONDITION"


class PermissionDenied(CosiError):
    code = "PERMISSION_DENIED"


class OutOfRange(CosiError):
    """A well-formed value the storage system cannot provide (e.g. a quota above its limit)."""

    code = "OUT_OF_RANGE"


class ResourceExhausted(CosiError):
    code = "RESOURCE_EXHAUSTED"


class Unimplemented(CosiError):
    code = "UNIMPLEMENTED"


class Unavailable(CosiError):
    """The storage system could not be reached; the caller should retry."""

    code = "UNAVAILABLE"


class DeadlineExceeded(CosiError):
    """The storage system did not answer within the driver's own time limit."""

    code = "DEADLINE_EXCEEDED"


class Internal(CosiError):
    """An unexpected failure. The message carries a correlation id that is also in the log."""

    code = "INTERNAL"

    def __init__(self, message: str, correlation_id: str) -> None:
        super().__init__(f"{message} (correlation id {correlation_id})")
        self.correlation_id = correlation_id


class BucketNotEmpty(FailedPrecondition):
    """Raised by backends when asked to delete a bucket that still holds data."""

    def __init__(self, bucket: str, detail: str = "it still holds objects") -> None:
        super().__init__(
            f"bucket {bucket!r} is not empty ({detail}); empty it first, or set the BucketClass "
            "parameter deletionPolicy=purge to let the driver delete its contents"
        )
