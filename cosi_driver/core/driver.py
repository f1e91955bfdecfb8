"""The COSI semantics, once, for every backend.

The spec adapters call :class:`Driver` with plain Python values; the driver validates them,
routes to a backend, decides ownership, de-duplicates concurrent identical calls, serialises
calls on one resource, bounds every backend call with a timeout, and answers with core types or
raises core errors. It knows nothing about gRPC or about any storage system.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from cosi_driver.core import ids, params, validation
from cosi_driver.core.backend import (
    Backend,
    BackendType,
    CreateBucket,
    DeleteBucket,
    FoundBucket,
    GrantAccess,
    RevokeAccess,
)
from cosi_driver.core.concurrency import KeyedLocks, SingleFlight
from cosi_driver.core.errors import (
    AlreadyExists,
    CosiError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    Unavailable,
)
from cosi_driver.core.instrument import BackendOperation, OperationInstrument
from cosi_driver.core.ownership import Claim, Intent, Ledger
from cosi_driver.core.params import BACKEND_PARAMETER, DeletionPolicy
from cosi_driver.core.stores import StateStore
from cosi_driver.core.types import Access, AuthenticationType, Bucket, HealthReport

T = TypeVar("T")
log = structlog.get_logger("cosi_driver.core")

# The defaults of COSI_DRIVER_OPERATION_TIMEOUT and COSI_DRIVER_HEALTH_TIMEOUT (config.settings uses these).
DEFAULT_BACKEND_TIMEOUT = 30.0
DEFAULT_HEALTH_TIMEOUT = 2.0


@dataclass(frozen=True)
class Route:
    """A configured backend: its name (as used in ids and the ``backend`` parameter) and type."""

    name: str
    type: BackendType[Any, Any, Any]
    backend: Backend[Any, Any]


class Driver:
    def __init__(
        self,
        *,
        name: str,
        routes: Mapping[str, Route],
        default: str,
        store: StateStore,
        timeout: float = DEFAULT_BACKEND_TIMEOUT,
        health_timeout: float = DEFAULT_HEALTH_TIMEOUT,
        instrument: OperationInstrument | None = None,
    ) -> None:
        if default not in routes:
            raise ValueError(f"default backend {default!r} is not among the configured ones: {sorted(routes)}")
        self.name = name
        self.routes = dict(routes)
        self.default = default
        self.timeout = timeout
        self.health_timeout = health_timeout
        self.instrument = instrument  # telemetry around each backend call (spans, histograms)
        self._ledger = Ledger(store)
        self._flights = SingleFlight()
        self._locks = KeyedLocks()

    # -- Identity -----------------------------------------------------------------------------

    def get_info(self) -> str:
        return self.name

    # -- Provisioner --------------------------------------------------------------------------

    async def create_bucket(self, name: str, parameters: Mapping[str, str]) -> Bucket:
        validation.require_string("name", name)
        raw = validation.check_map("parameters", parameters)
        route = self._route_for_parameters(raw)
        parsed = params.parse_params(route.type.bucket_params, raw, field_name="parameters", backend=route.name)
        ref = ids.BucketRef(route.name, name)
        bucket_id = ids.check_fits("name", ref.encode())
        intent = Intent(params.fingerprint(route.name, parsed), params.to_wire(parsed))
        key = ("create", route.name, name, intent.fingerprint)
        info = await self._flights.do(key, lambda: self._create(route, name, parsed, intent))
        return Bucket(bucket_id=bucket_id, info=info)

    async def _create(self, route: Route, name: str, parsed: params.BucketParams, intent: Intent) -> Any:
        async with self._locks.hold(("bucket", route.name, name)):
            found = await self._call(
                route, f"look up bucket {name!r}", route.backend.find_bucket(name), op="find_bucket", bucket=name
            )
            recorded = await self._ledger.get(route.name, name)
            if found is not None:
                fingerprint = self._owned_fingerprint(found, recorded)
                if fingerprint is None:
                    raise AlreadyExists(
                        f"bucket {name!r} already exists in backend {route.name!r} and was not created by "
                        f"driver {self.name!r}; it is left untouched. Choose another name or remove it"
                    )
                if fingerprint != intent.fingerprint:
                    raise AlreadyExists(
                        f"bucket {name!r} already exists with different parameters; a bucket's parameters "
                        "cannot change. Create a new claim with the new BucketClass instead"
                    )
            if recorded != intent:
                await self._ledger.record(route.name, name, intent)
            mark = Claim(self.name, intent.fingerprint).encode()
            request = CreateBucket(name=name, params=parsed, mark=mark)
            try:
                info = await self._call(
                    route,
                    f"create bucket {name!r}",
                    route.backend.create_bucket(request),
                    op="create_bucket",
                    bucket=name,
                )
            except (InvalidArgument, OutOfRange, AlreadyExists, PermissionDenied):
                # The storage refused outright, so nothing of ours exists under this name. A stale
                # intent would otherwise claim a bucket someone else creates under it later.
                if found is None:
                    await self._ledger.forget(route.name, name)
                raise
            log.debug("bucket ready", backend=route.name, bucket=name, existed=found is not None)
            return info

    def _owned_fingerprint(self, found: FoundBucket, recorded: Intent | None) -> str | None:
        """The fingerprint a found bucket was created with, if it is ours; None if foreign."""
        claim = Claim.decode(found.mark)
        if claim is not None and claim.driver == self.name:
            return claim.fingerprint
        if recorded is not None:
            # Our intent record but no mark: an earlier attempt created the bucket and stopped
            # before marking it. It is ours; the retried create will finish the marking.
            return recorded.fingerprint
        return None

    async def delete_bucket(self, bucket_id: str, delete_context: Mapping[str, str]) -> None:
        validation.require_string("bucket_id", bucket_id)
        raw = validation.check_map("delete_context", delete_context)
        ref = ids.read_bucket_id(bucket_id)
        if ref is None:
            _ignore_foreign("DriverDeleteBucket", bucket_id=bucket_id)
            return
        route = self._route_for_bucket(ref)
        await self._flights.do(
            ("delete", bucket_id, tuple(sorted(raw.items()))), lambda: self._delete(route, ref.bucket, raw)
        )

    async def _delete(self, route: Route, name: str, raw: Mapping[str, str]) -> None:
        async with self._locks.hold(("bucket", route.name, name)):
            found = await self._call(
                route, f"look up bucket {name!r}", route.backend.find_bucket(name), op="find_bucket", bucket=name
            )
            recorded = await self._ledger.get(route.name, name)
            if found is None:
                if recorded is not None:
                    await self._ledger.forget(route.name, name)
                return
            if self._owned_fingerprint(found, recorded) is None:
                raise FailedPrecondition(
                    f"bucket {name!r} in backend {route.name!r} was not created by driver {self.name!r}; "
                    "refusing to delete it"
                )
            # The sidecar sends the BucketClass parameters as delete_context; a bare call (CLI)
            # falls back to what Create recorded.
            source = raw if raw else (recorded.params if recorded else {})
            parsed = params.parse_params(
                route.type.bucket_params, source, field_name="delete_context", backend=route.name
            )
            policy = parsed.deletion_policy
            if policy is DeletionPolicy.RETAIN:
                log.debug("bucket retained", backend=route.name, bucket=name, reason="deletionPolicy=retain")
                return
            request = DeleteBucket(name=name, purge=policy is DeletionPolicy.PURGE)
            await self._call(
                route, f"delete bucket {name!r}", route.backend.delete_bucket(request), op="delete_bucket", bucket=name
            )
            await self._ledger.forget(route.name, name)
            log.debug("bucket deleted", backend=route.name, bucket=name, purge=request.purge)

    async def grant_access(
        self,
        bucket_id: str,
        name: str,
        authentication_type: AuthenticationType | None,
        parameters: Mapping[str, str],
    ) -> Access:
        validation.require_string("bucket_id", bucket_id)
        validation.require_string("name", name)
        raw = validation.check_map("parameters", parameters)
        if authentication_type is None:
            raise InvalidArgument("authentication_type is required: use Key (or IAM where the backend supports it)")
        ref = ids.read_bucket_id(bucket_id)
        if ref is None:
            raise NotFound(
                f"bucket_id {bucket_id!r} is not a bucket id issued by this driver, so no such bucket exists "
                f"(its ids look like {ids.VERSION}/<backend>/<bucket>)"
            )
        route = self._route_for_bucket(ref)
        if authentication_type is AuthenticationType.IAM and not route.type.supports_iam:
            raise InvalidArgument(
                f"authentication_type IAM is not supported by backend {route.name!r} "
                f"(type {route.type.type_name}); use authenticationType: Key in the BucketAccessClass"
            )
        if BACKEND_PARAMETER in raw:
            raise InvalidArgument(
                f"parameters: {BACKEND_PARAMETER!r} is a BucketClass parameter; a BucketAccess always "
                "uses its bucket's backend"
            )
        parsed = params.parse_params(route.type.access_params, raw, field_name="parameters", backend=route.name)
        request = GrantAccess(bucket=ref.bucket, name=name, authentication_type=authentication_type, params=parsed)
        key = ("grant", bucket_id, name, authentication_type, params.fingerprint(route.name, parsed))
        return await self._flights.do(key, lambda: self._grant(route, request))

    async def _grant(self, route: Route, request: GrantAccess[Any]) -> Access:
        async with self._locks.hold(("access", route.name, request.bucket, request.name)):
            bucket = request.bucket
            found = await self._call(
                route, f"look up bucket {bucket!r}", route.backend.find_bucket(bucket), op="find_bucket", bucket=bucket
            )
            if found is None:
                raise NotFound(f"bucket {bucket!r} does not exist in backend {route.name!r}")
            if self._owned_fingerprint(found, await self._ledger.get(route.name, bucket)) is None:
                raise FailedPrecondition(
                    f"bucket {bucket!r} in backend {route.name!r} was not created by driver {self.name!r}; "
                    "refusing to grant access to it"
                )
            granted = await self._call(
                route,
                f"grant {request.name!r} access to bucket {bucket!r}",
                route.backend.grant_access(request),
                op="grant_access",
                bucket=bucket,
                account=request.name,
            )
            account = ids.AccountRef(route.name, granted.account, granted.key_version)
            account_id = ids.check_fits("name", account.encode())
            log.debug("access granted", backend=route.name, bucket=bucket, account_id=account_id)
            return Access(account_id=account_id, credentials=granted.credentials)

    async def revoke_access(self, bucket_id: str, account_id: str) -> None:
        validation.require_string("bucket_id", bucket_id)
        validation.require_string("account_id", account_id)
        ref, account = ids.read_bucket_id(bucket_id), ids.read_account_id(account_id)
        if ref is None or account is None:
            _ignore_foreign("DriverRevokeBucketAccess", bucket_id=bucket_id, account_id=account_id)
            return
        route = self._route_for_bucket(ref)
        if account.backend != route.name:
            raise InvalidArgument(
                f"account_id {account_id!r} belongs to backend {account.backend!r} but bucket_id "
                f"{bucket_id!r} to backend {route.name!r}"
            )
        request = RevokeAccess(bucket=ref.bucket, account=account.account)
        await self._flights.do(("revoke", bucket_id, account_id), lambda: self._revoke(route, request))

    async def _revoke(self, route: Route, request: RevokeAccess) -> None:
        async with self._locks.hold(("account", route.name, request.account)):
            await self._call(
                route,
                f"revoke account {request.account!r} on bucket {request.bucket!r}",
                route.backend.revoke_access(request),
                op="revoke_access",
                bucket=request.bucket,
                account=request.account,
            )
            log.debug("access revoked", backend=route.name, bucket=request.bucket, account=request.account)

    # -- Health -------------------------------------------------------------------------------

    async def check_health(self) -> list[HealthReport]:
        async def probe(route: Route) -> HealthReport:
            try:
                await asyncio.wait_for(route.backend.check_health(), self.health_timeout)
            except TimeoutError:
                return HealthReport(route.name, False, f"no answer within {self.health_timeout:g}s")
            except CosiError as error:
                return HealthReport(route.name, False, error.message)
            except Exception as error:
                return HealthReport(route.name, False, f"health check failed: {type(error).__name__}")
            return HealthReport(route.name, True)

        return list(await asyncio.gather(*(probe(route) for route in self.routes.values())))

    async def close(self) -> None:
        for route in self.routes.values():
            try:
                await route.backend.close()
            except Exception:
                log.exception("backend close failed", backend=route.name)

    # -- Routing and calling ------------------------------------------------------------------

    def _route_for_parameters(self, raw: Mapping[str, str]) -> Route:
        name = raw.get(BACKEND_PARAMETER)
        if name is None:
            return self.routes[self.default]
        route = self.routes.get(name)
        if route is None:
            raise InvalidArgument(
                f"parameters: {BACKEND_PARAMETER!r} names {name!r}, which is not a configured backend; "
                f"configured backends: {', '.join(sorted(self.routes))}"
            )
        return route

    def _route_for_bucket(self, ref: ids.BucketRef) -> Route:
        route = self.routes.get(ref.backend)
        if route is None:
            raise NotFound(
                f"bucket_id {ref.encode()!r} names backend {ref.backend!r}, which is not configured in this "
                f"driver (configured: {', '.join(sorted(self.routes))})"
            )
        return route

    async def _call(
        self, route: Route, doing: str, call: Awaitable[T], *, op: str, bucket: str, account: str | None = None
    ) -> T:
        """Run one backend call under the driver's own time limit; the sidecar sets none."""
        if self.instrument is None:
            return await self._bounded(route, doing, call)
        with self.instrument(BackendOperation(route.name, route.type.type_name, op, bucket, account)):
            return await self._bounded(route, doing, call)

    async def _bounded(self, route: Route, doing: str, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"backend {route.name!r} did not answer within {self.timeout:g}s while trying to {doing}"
            ) from None
        except CosiError:
            raise
        except (ConnectionError, socket.gaierror) as error:
            raise Unavailable(
                f"backend {route.name!r} is unreachable while trying to {doing} ({type(error).__name__})"
            ) from None


def _ignore_foreign(rpc: str, **given: str) -> None:
    """Log an id this driver never issued; nothing of ours can exist under it, so the call is done.

    Ids are names, not secrets; they are logged shortened so a 128-byte id does not flood the log.
    """
    log.info(
        "ignoring an id this driver never issued",
        rpc=rpc,
        **{field: value[:64] for field, value in given.items()},
    )
