"""What one emulated sidecar run is told: the classes, the objects, and the knobs tests turn.

The defaults are the v0.2.2 sidecar's own numbers (``../shared/k8s/README.md``, measured against a
scripted driver and read from its source): backoff from 100 ms doubling to 30 s per object, 40
workers, no call deadline. Tests lower ``max_backoff`` and ``reconnect_backoff`` to go fast;
``max_attempts`` and ``call_timeout`` exist only because an emulation has to end, where the real
sidecar would go on for ever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FIRST_BACKOFF = 0.1
SIDECAR_MAX_BACKOFF = 30.0
SIDECAR_WORKERS = 40


def backoff(failures: int, cap: float) -> float:
    """The wait before an object's next attempt after ``failures`` failures (both sidecars' work queue)."""
    return float(min(FIRST_BACKOFF * 2 ** (failures - 1), cap))


@dataclass(frozen=True)
class EmulatorOptions:
    endpoint: str
    bucket_params: Mapping[str, str] = field(default_factory=dict)  # BucketClass.parameters
    access_params: Mapping[str, str] = field(default_factory=dict)  # BucketAccessClass.parameters
    deletion_policy: str = "Delete"  # BucketClass.deletionPolicy: Delete | Retain
    authentication_type: str = "Key"  # BucketAccessClass.authenticationType
    protocol: str = "S3"  # BucketAccess.spec.protocol
    driver_name: str | None = None  # the classes' driverName; None: whatever the driver says
    namespace: str = "cosi-emulated"
    claim: str = "emulated-claim"
    access: str = "emulated-access"
    secret_name: str = "emulated-creds"  # noqa: S105 - BucketAccess.spec.credentialsSecretName
    duplicate_creates: int = 1  # Creates re-run after success (status write conflicts)
    duplicate_grants: int = 1
    delete_order: str = "claim-first"  # claim-first | access-first
    max_backoff: float = SIDECAR_MAX_BACKOFF
    max_attempts: int = 12
    # The sidecar sets no deadline: a hung call would hold its worker for good. The emulation
    # bounds every call anyway so that it ends; a call cut off this way is recorded as the
    # DEADLINE_EXCEEDED the client saw, which the real sidecar would never see.
    call_timeout: float = 120.0
    claims: int = 1  # a burst: this many BucketClaims, each with one BucketAccess, applied at once
    workers: int = SIDECAR_WORKERS  # driver calls in flight at most, shared by every object
    # gRPC's reconnect backoff after the driver went away (None: the library default, as the
    # sidecar has it: 1 s growing to 120 s). A number fixes it, for tests that restart drivers.
    reconnect_backoff: float | None = None


@dataclass(frozen=True)
class V1Alpha2Options(EmulatorOptions):
    """The v1alpha2 run: one claim per mode, all of them in one BucketAccess.

    ``protocol`` is the claims' protocol as the CRDs spell it (``S3``, ``Azure``); empty takes S3
    when the driver lists it, else the first protocol it lists.
    """

    modes: tuple[str, ...] = ("READ_WRITE",)
    protocol: str = ""
    authentication_type: str = "KEY"
