"""The COSI semantics, once, for every backend.

The spec adapters call :class:`Driver` with plain Python values; the driver validates them,
routes to a backend, decides ownership, de-duplicates concurrent identical calls, serialises
calls on one resource, bounds every backend call with a timeout, and answers with core types or
raises core errors. It knows nothing about gRPC or about any storage system.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import structlog

from cosi_driver.core import ids, locking, params, validation
from cosi_driver.core.backend import (
    AccessedBucket,
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
from cosi_driver.core.existing import NONE as NO_EXISTING_BUCKETS
from cosi_driver.core.existing import SETTING as EXISTING_SETTING
from cosi_driver.core.existing import ExistingBuckets
from cosi_driver.core.grants import GrantBook, GrantRecord
from cosi_driver.core.instrument import BackendOperation, OperationInstrument
from cosi_driver.core.ownership import Claim, Intent, Ledger
from cosi_driver.core.params import ACCESS_MODE_PARAMETER, BACKEND_PARAMETER, DeletionPolicy
from cosi_driver.core.stores import StateStore
from cosi_driver.core.types import (
    Access,
    AccessMode,
    AuthenticationType,
    Bucket,
    BucketInfo,
    GrantedBucket,
    HealthReport,
    ObjectProtocol,
    S3BucketInfo,
)
from cosi_driver.core.validation import V1ALPHA1, ApiRules

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
    existing: ExistingBuckets = NO_EXISTING_BUCKETS  # the operator's existingBuckets allow-list


#: A grant request's buckets: (bucket_id, mode); None takes the mode from the class parameters.
BucketRequest = tuple[str, AccessMode | None]


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
        self._grants = GrantBook(store)
        self._flights = SingleFlight()
        self._locks = KeyedLocks()
        self._closing = False

    # -- Identity -----------------------------------------------------------------------------

    def get_info(self) -> str:
        return self.name

    def supported_protocols(self) -> tuple[ObjectProtocol, ...]:
        """The union of the protocols the configured backends serve, in declaration order."""
        found: dict[ObjectProtocol, None] = {}
        for route in self.routes.values():
            found.update(dict.fromkeys(route.type.protocols))
        return tuple(found)

    # -- Buckets ------------------------------------------------------------------------------

    async def create_bucket(
        self,
        name: str,
        parameters: Mapping[str, str],
        protocols: Sequence[ObjectProtocol] = (),
        *,
        rules: ApiRules = V1ALPHA1,
    ) -> Bucket:
        validation.require_string("name", name, rules.name_bytes)
        raw = validation.check_map("parameters", parameters)
        route = self._route_for_parameters(raw)
        parsed = params.parse_params(route.type.bucket_params, raw, field_name="parameters", backend=route.name)
        _check_protocols(route, protocols)
        ref = ids.BucketRef(route.name, name)
        bucket_id = ids.check_fits("name", ref.encode(), rules.id_bytes)
        intent = Intent(params.fingerprint(route.name, parsed), params.to_wire(parsed))
        key = locking.flight_key("create", locking.bucket_key(route.name, name), intent.fingerprint)
        info = await self._flight(key, lambda: self._create(route, name, parsed, intent))
        return Bucket(bucket_id=bucket_id, info=_complete(info, name))

    async def _create(self, route: Route, name: str, parsed: params.BucketParams, intent: Intent) -> Any:
        async with self._locks.hold(locking.bucket_key(route.name, name)):
            found = await self._find(route, name)
            recorded = await self._read_intent(route, name)
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
            if recorded is None:
                # First writer wins: another replica may be creating this bucket at the same moment.
                stood = await self._stored(
                    f"record the intent to create bucket {name!r}", self._ledger.claim(route.name, name, intent)
                )
                if stood.fingerprint != intent.fingerprint:
                    raise AlreadyExists(
                        f"bucket {name!r} is being created with different parameters by another request; a "
                        "bucket's parameters cannot change. Create a new claim with the new BucketClass instead"
                    )
            elif recorded != intent:
                await self._stored(
                    f"record the intent to create bucket {name!r}", self._ledger.record(route.name, name, intent)
                )
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
                    await self._forget_intent(route, name)
                raise
            log.debug("bucket ready", backend=route.name, bucket=name, existed=found is not None)
            return info

    async def get_existing_bucket(
        self,
        existing_bucket_id: str,
        parameters: Mapping[str, str],
        protocols: Sequence[ObjectProtocol] = (),
        *,
        rules: ApiRules = V1ALPHA1,
    ) -> Bucket:
        """Take a bucket the driver did not make, if the backend's ``existingBuckets`` allows its name.

        ``existing_bucket_id`` is the bucket's real name in storage (routed by the ``backend``
        parameter, else the default backend) or an id this driver issued. Nothing is written to
        storage and the bucket is never deleted: its id says it is an existing one.
        """
        validation.require_string("existing_bucket_id", existing_bucket_id, rules.id_bytes)
        raw = validation.check_map("parameters", parameters)
        ref = ids.read_bucket_id(existing_bucket_id)
        if ref is not None:
            route, name = self._route_for_bucket(ref), ref.bucket
            if BACKEND_PARAMETER in raw and raw[BACKEND_PARAMETER] != route.name:
                raise InvalidArgument(
                    f"parameters: {BACKEND_PARAMETER!r} names {raw[BACKEND_PARAMETER]!r} but existing_bucket_id "
                    f"{existing_bucket_id!r} belongs to backend {route.name!r}"
                )
        else:
            route, name = self._route_for_parameters(raw), existing_bucket_id
        params.parse_params(route.type.bucket_params, raw, field_name="parameters", backend=route.name)
        _check_protocols(route, protocols)
        self._check_allowed(route, name, "existing_bucket_id")
        bucket_id = ids.check_fits("existing_bucket_id", ids.BucketRef(route.name, name, existing=True).encode(),
                                   rules.id_bytes)  # fmt: skip
        if await self._find(route, name) is None:
            raise NotFound(f"bucket {name!r} does not exist in backend {route.name!r}")
        log.debug("existing bucket taken", backend=route.name, bucket=name)
        return Bucket(bucket_id=bucket_id, info=_complete(route.backend.bucket_info(name), name), existing=True)

    def _check_allowed(self, route: Route, name: str, field: str) -> None:
        if not route.existing.allows(name):
            raise PermissionDenied(
                f"{field}: bucket {name!r} was not created by driver {self.name!r} and its name matches no "
                f"pattern of the {EXISTING_SETTING} setting of backend {route.name!r} "
                f"(allowed: {route.existing.describe()}); an operator must allow it there first"
            )

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

    async def delete_bucket(self, bucket_id: str, parameters: Mapping[str, str], *, rules: ApiRules = V1ALPHA1) -> None:
        validation.require_string("bucket_id", bucket_id, rules.id_bytes)
        raw = validation.check_map(rules.delete_field, parameters)
        ref = ids.read_bucket_id(bucket_id)
        if ref is None:
            _ignore_foreign("DriverDeleteBucket", bucket_id=bucket_id)
            return
        route = self._route_for_bucket(ref)
        if ref.existing:
            log.info("existing bucket left in storage", backend=route.name, bucket=ref.bucket)
            return
        await self._flight(
            locking.flight_key("delete", locking.bucket_key(route.name, ref.bucket), tuple(sorted(raw.items()))),
            lambda: self._delete(route, ref.bucket, raw, rules.delete_field),
        )

    async def _delete(self, route: Route, name: str, raw: Mapping[str, str], field: str) -> None:
        async with self._locks.hold(locking.bucket_key(route.name, name)):
            found = await self._find(route, name)
            recorded = await self._read_intent(route, name)
            if found is None:
                if recorded is not None:
                    await self._forget_intent(route, name)
                return
            if self._owned_fingerprint(found, recorded) is None:
                raise FailedPrecondition(
                    f"bucket {name!r} in backend {route.name!r} was not created by driver {self.name!r}; "
                    "refusing to delete it"
                )
            # The sidecar sends the BucketClass parameters as delete_context; a bare call (CLI)
            # falls back to what Create recorded.
            source = raw if raw else (recorded.params if recorded else {})
            parsed = params.parse_params(route.type.bucket_params, source, field_name=field, backend=route.name)
            policy = parsed.deletion_policy
            if policy is DeletionPolicy.RETAIN:
                log.debug("bucket retained", backend=route.name, bucket=name, reason="deletionPolicy=retain")
                return
            request = DeleteBucket(name=name, purge=policy is DeletionPolicy.PURGE)
            await self._call(
                route, f"delete bucket {name!r}", route.backend.delete_bucket(request), op="delete_bucket", bucket=name
            )
            await self._forget_intent(route, name)
            log.debug("bucket deleted", backend=route.name, bucket=name, purge=request.purge)

    # -- Access -------------------------------------------------------------------------------

    async def grant_access(
        self,
        name: str,
        buckets: Sequence[BucketRequest],
        authentication_type: AuthenticationType | None,
        parameters: Mapping[str, str],
        protocol: ObjectProtocol | None = None,
        *,
        rules: ApiRules = V1ALPHA1,
    ) -> Access:
        """One account for every bucket of ``buckets``, each reachable in its mode.

        A mode of None takes the ``accessMode`` class parameter (v1alpha1); given modes make that
        parameter a mistake. All buckets belong to one backend. Under ``rules.per_bucket_accounts``
        (v1alpha1) there is exactly one bucket and the account belongs to (bucket, name); otherwise
        the account belongs to ``name``, and the same name asking for other buckets, modes,
        authentication or parameters than its first grant is ALREADY_EXISTS.
        """
        validation.require_string(rules.name_field, name, rules.name_bytes)
        raw = validation.check_map("parameters", parameters)
        if not buckets:
            raise InvalidArgument("buckets is required: name at least one bucket to grant access to")
        for index, (bucket_id, _) in enumerate(buckets):
            validation.require_string(rules.bucket_field(index), bucket_id, rules.id_bytes)
        if authentication_type is None:
            raise InvalidArgument("authentication_type is required: use Key (or IAM where the backend supports it)")
        resolved = [
            self._resolve_for_grant(bucket_id, rules.bucket_field(i)) for i, (bucket_id, _) in enumerate(buckets)
        ]
        route = resolved[0][0]
        refs = [ref for _, ref in resolved]
        for index, (other, ref) in enumerate(resolved):
            if other.name != route.name:
                raise InvalidArgument(
                    f"{rules.bucket_field(index)}: bucket {ref.bucket!r} belongs to backend {other.name!r} but "
                    f"{rules.bucket_field(0)} to backend {route.name!r}; the buckets of one grant share one backend"
                )
        seen: dict[str, int] = {}
        for index, ref in enumerate(refs):
            if ref.bucket in seen:
                raise InvalidArgument(
                    f"{rules.bucket_field(index)}: bucket {ref.bucket!r} is named twice "
                    f"(also {rules.bucket_field(seen[ref.bucket])}); name each bucket once"
                )
            seen[ref.bucket] = index
        self._check_authentication(route, authentication_type)
        if protocol is not None and protocol not in route.type.protocols:
            raise InvalidArgument(
                f"protocol: backend {route.name!r} does not serve {protocol.value}; it serves "
                f"{', '.join(p.value for p in route.type.protocols)}"
            )
        if BACKEND_PARAMETER in raw:
            raise InvalidArgument(
                f"parameters: {BACKEND_PARAMETER!r} is a BucketClass parameter; a BucketAccess always "
                "uses its bucket's backend"
            )
        given = [mode for _, mode in buckets if mode is not None]
        if given and ACCESS_MODE_PARAMETER in raw:
            raise InvalidArgument(
                f"parameters: {ACCESS_MODE_PARAMETER!r} is not accepted when the request gives each bucket its own "
                "access mode; remove it from the BucketAccessClass"
            )
        parsed = params.parse_params(route.type.access_params, raw, field_name="parameters", backend=route.name)
        if len(refs) > 1 and not route.type.multi_bucket_grants:
            raise OutOfRange(
                f"backend {route.name!r} (type {route.type.type_name}) cannot give one credential access to "
                f"several buckets; this grant names {len(refs)}. Use one BucketAccess per bucket"
            )
        accessed = tuple(
            AccessedBucket(ref.bucket, mode if mode is not None else parsed.access_mode, ref.existing)
            for ref, (_, mode) in zip(refs, buckets, strict=True)
        )
        request = GrantAccess(
            name=name,
            buckets=accessed,
            authentication_type=authentication_type,
            params=parsed,
            per_bucket=rules.per_bucket_accounts,
        )
        fingerprint = params.fingerprint(route.name, parsed)
        access = locking.grant_key(route.name, route.backend, request.scope, name)
        key = locking.flight_key("grant", access, accessed, authentication_type, fingerprint, request.per_bucket)
        granted = await self._flight(key, lambda: self._grant(route, request, access, fingerprint, rules))
        infos = tuple(
            GrantedBucket(bucket_id, bucket.mode, _complete(route.backend.bucket_info(bucket.bucket), bucket.bucket))
            for (bucket_id, _), bucket in zip(buckets, accessed, strict=True)
        )
        return replace(granted, buckets=infos)

    def _resolve_for_grant(self, bucket_id: str, field: str) -> tuple[Route, ids.BucketRef]:
        resolved = self._resolve(bucket_id, field)
        if resolved is None:
            raise NotFound(
                f"{field} {bucket_id!r} is not a bucket id issued by this driver, so no such bucket exists "
                f"(its ids look like {ids.VERSION}.<backend>.b.<bucket>; a bucket it did not make needs its name "
                f"in a backend's {EXISTING_SETTING} setting)"
            )
        return resolved

    def _resolve(self, bucket_id: str, field: str) -> tuple[Route, ids.BucketRef] | None:
        """The backend and bucket an id names: one of our ids, or a plain name an allow-list admits
        (the v1alpha1 static Bucket case); None when neither."""
        ref = ids.read_bucket_id(bucket_id)
        if ref is not None:
            return self._route_for_bucket(ref), ref
        allowing = [route for route in self.routes.values() if route.existing.allows(bucket_id)]
        if not allowing:
            return None
        if len(allowing) > 1:
            default = [route for route in allowing if route.name == self.default]
            if not default:
                raise InvalidArgument(
                    f"{field}: bucket name {bucket_id!r} is allowed as an existing bucket by several backends "
                    f"({', '.join(route.name for route in allowing)}); narrow their {EXISTING_SETTING} patterns"
                )
            allowing = default
        return allowing[0], ids.BucketRef(allowing[0].name, bucket_id, existing=True)

    def _check_authentication(self, route: Route, authentication_type: AuthenticationType) -> None:
        supported = {
            AuthenticationType.KEY: True,
            AuthenticationType.IAM: route.type.supports_iam,
            AuthenticationType.SERVICE_ACCOUNT: route.type.supports_service_account,
        }
        if not supported[authentication_type]:
            raise InvalidArgument(
                f"authentication_type {authentication_type.name} is not supported by backend {route.name!r} "
                f"(type {route.type.type_name}); use authentication type Key in the BucketAccessClass"
            )

    async def _grant(
        self, route: Route, request: GrantAccess[Any], access: locking.Key, fingerprint: str, rules: ApiRules
    ) -> Access:
        buckets = [locking.bucket_key(route.name, bucket.bucket) for bucket in request.buckets]
        async with self._locks.hold_all(shared=buckets, exclusive=[access]):
            for bucket in request.buckets:
                await self._check_grantable(route, bucket)
            wanted = GrantRecord(
                account="",
                buckets={bucket.bucket: bucket.mode for bucket in request.buckets},
                authentication_type=request.authentication_type.name,
                fingerprint=fingerprint,
            )
            recorded = None
            if not request.per_bucket:
                recorded = await self._stored(
                    f"read the grant record of {request.name!r}", self._grants.get(route.name, request.name)
                )
            if recorded is not None:
                differences = recorded.differences(wanted)
                if differences:
                    raise AlreadyExists(
                        f"{rules.name_field} {request.name!r} was already granted in backend {route.name!r} with "
                        f"other terms: {'; '.join(differences)}. A grant's buckets and modes cannot change; "
                        "make a new BucketAccess instead"
                    )
            names = ", ".join(repr(bucket.bucket) for bucket in request.buckets)
            granted = await self._call(
                route,
                f"grant {request.name!r} access to bucket(s) {names}",
                route.backend.grant_access(request),
                op="grant_access",
                bucket=request.buckets[0].bucket,
                account=request.name,
            )
            account = ids.AccountRef(route.name, granted.account, granted.key_version)
            try:
                account_id = ids.check_fits(rules.name_field, account.encode(), rules.id_bytes)
            except InvalidArgument:
                # The caller gets no id to revoke with, so the account must not outlive this call.
                revoke = RevokeAccess(granted.account, tuple(bucket.bucket for bucket in request.buckets))
                await self._call(
                    route, f"remove account {granted.account!r} again", route.backend.revoke_access(revoke),
                    op="revoke_access", bucket=revoke.bucket, account=granted.account,
                )  # fmt: skip
                raise
            if not request.per_bucket and (recorded is None or recorded.account != granted.account):
                await self._stored(
                    f"record the grant of {request.name!r}",
                    self._grants.record(route.name, request.name, replace(wanted, account=granted.account)),
                )
            log.debug("access granted", backend=route.name, buckets=len(request.buckets), account_id=account_id)
            return Access(account_id=account_id, credentials=granted.credentials)

    async def _check_grantable(self, route: Route, bucket: AccessedBucket) -> None:
        name = bucket.bucket
        if bucket.existing:
            self._check_allowed(route, name, "bucket_id")
        found = await self._find(route, name)
        if found is None:
            raise NotFound(f"bucket {name!r} does not exist in backend {route.name!r}")
        if not bucket.existing and self._owned_fingerprint(found, await self._read_intent(route, name)) is None:
            raise FailedPrecondition(
                f"bucket {name!r} in backend {route.name!r} was not created by driver {self.name!r}; "
                "refusing to grant access to it"
            )

    async def revoke_access(self, account_id: str, bucket_ids: Sequence[str], *, rules: ApiRules = V1ALPHA1) -> None:
        """Remove the account and its access to every bucket it was given; data stays.

        Ids this driver never issued name nothing of ours: OK. v1alpha1 sends exactly one bucket;
        v1alpha2 may send several, and the buckets a name-scoped grant recorded are added.
        """
        validation.require_string("account_id", account_id, rules.id_bytes)
        for index, bucket_id in enumerate(bucket_ids):
            validation.require_string(rules.bucket_field(index), bucket_id, rules.id_bytes)
        account = ids.read_account_id(account_id)
        if account is None:
            _ignore_foreign("DriverRevokeBucketAccess", account_id=account_id, bucket_ids=",".join(bucket_ids))
            return
        resolved = [self._resolve(bucket_id, rules.bucket_field(i)) for i, bucket_id in enumerate(bucket_ids)]
        if rules.per_bucket_accounts and None in resolved:
            _ignore_foreign("DriverRevokeBucketAccess", account_id=account_id, bucket_ids=",".join(bucket_ids))
            return
        route = self.routes.get(account.backend)
        for index, found in enumerate(resolved):
            if found is not None and found[0].name != account.backend:
                raise InvalidArgument(
                    f"account_id {account_id!r} belongs to backend {account.backend!r} but "
                    f"{rules.bucket_field(index)} {bucket_ids[index]!r} to backend {found[0].name!r}"
                )
        if route is None:
            raise NotFound(
                f"account_id {account_id!r} names backend {account.backend!r}, which is not configured in this "
                f"driver (configured: {', '.join(sorted(self.routes))})"
            )
        buckets = [found[1].bucket for found in resolved if found is not None]
        recorded = None
        if not rules.per_bucket_accounts:
            recorded = await self._stored(
                f"read the grant record of account {account.account!r}",
                self._grants.find_by_account(route.name, account.account),
            )
            if recorded is not None:
                buckets += [bucket for bucket in recorded[1].buckets if bucket not in buckets]
        if not buckets:
            raise InvalidArgument(
                "buckets is required: name the buckets the account was granted (none is known for "
                f"account_id {account_id!r})"
            )
        request = RevokeAccess(account=account.account, buckets=tuple(buckets))
        held = locking.revoke_key(route.name, route.backend, account.account, recorded[0] if recorded else None)
        key = locking.flight_key("revoke", held, request.buckets)
        await self._flight(key, lambda: self._revoke(route, request, held))

    async def _revoke(self, route: Route, request: RevokeAccess, held: locking.Key) -> None:
        buckets = [locking.bucket_key(route.name, bucket) for bucket in request.buckets]
        async with self._locks.hold_all(shared=buckets, exclusive=[held]):
            await self._call(
                route,
                f"revoke account {request.account!r} on bucket(s) {', '.join(map(repr, request.buckets))}",
                route.backend.revoke_access(request),
                op="revoke_access",
                bucket=request.bucket,
                account=request.account,
            )
            await self._stored(
                f"forget the grant record of account {request.account!r}",
                self._grants.forget(route.name, request.account),
            )
            log.debug("access revoked", backend=route.name, buckets=len(request.buckets), account=request.account)

    async def _find(self, route: Route, name: str) -> FoundBucket | None:
        return await self._call(
            route, f"look up bucket {name!r}", route.backend.find_bucket(name), op="find_bucket", bucket=name
        )

    async def _read_intent(self, route: Route, name: str) -> Intent | None:
        return await self._stored(f"read the intent record of bucket {name!r}", self._ledger.get(route.name, name))

    async def _forget_intent(self, route: Route, name: str) -> None:
        await self._stored(f"forget the intent record of bucket {name!r}", self._ledger.forget(route.name, name))

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

    @property
    def closing(self) -> bool:
        """True once :meth:`close` began: new operations are refused, running ones drain."""
        return self._closing

    async def close(self, grace: float = 0.0) -> None:
        """Refuse new operations, let running ones finish within ``grace`` seconds, then close the backends.

        An operation whose caller went away keeps running (single-flight); closing a backend
        under it would fail it halfway, so it is awaited, or cancelled once the grace is over.
        """
        self._closing = True
        cancelled = await self._flights.drain(grace)
        if cancelled:
            log.warning("operations cancelled at shutdown", count=cancelled, grace_seconds=grace)
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

    async def _flight(self, key: Hashable, operation: Callable[[], Awaitable[T]]) -> T:
        if self._closing:
            raise Unavailable(f"driver {self.name!r} is shutting down; the call is retried against its successor")
        return await self._flights.do(key, operation)

    async def _call(
        self, route: Route, doing: str, call: Awaitable[T], *, op: str, bucket: str, account: str | None = None
    ) -> T:
        """Run one backend call under the driver's own time limit; the sidecar sets none."""
        if self.instrument is None:
            return await self._bounded(f"backend {route.name!r}", doing, call)
        with self.instrument(BackendOperation(route.name, route.type.type_name, op, bucket, account)):
            return await self._bounded(f"backend {route.name!r}", doing, call)

    async def _stored(self, doing: str, call: Awaitable[T]) -> T:
        """Run one state-store call under the same time limit as a backend call."""
        return await self._bounded("the state store", doing, call)

    async def _bounded(self, who: str, doing: str, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"{who} did not answer within {self.timeout:g}s while trying to {doing}") from None
        except CosiError:
            raise
        except (ConnectionError, socket.gaierror) as error:
            raise Unavailable(f"{who} is unreachable while trying to {doing} ({type(error).__name__})") from None


def _ignore_foreign(rpc: str, **given: str) -> None:
    """Log an id this driver never issued; nothing of ours can exist under it, so the call is done.

    Ids are names, not secrets; they are logged shortened so a 128-byte id does not flood the log.
    """
    log.info(
        "ignoring an id this driver never issued",
        rpc=rpc,
        **{field: value[:64] for field, value in given.items()},
    )


def _check_protocols(route: Route, protocols: Sequence[ObjectProtocol]) -> None:
    for index, protocol in enumerate(protocols):
        if protocol not in route.type.protocols:
            raise InvalidArgument(
                f"protocols[{index}]: backend {route.name!r} does not serve {protocol.value}; it serves "
                f"{', '.join(p.value for p in route.type.protocols)}"
            )


def _complete(info: BucketInfo, name: str) -> BucketInfo:
    """Fill the real bucket name a backend may leave empty; the name is the core's knowledge too."""
    if isinstance(info, S3BucketInfo) and not info.bucket_name:
        return replace(info, bucket_name=name)
    return info
