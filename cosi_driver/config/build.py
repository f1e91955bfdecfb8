"""Assemble a ready :class:`~cosi_driver.core.driver.Driver` from validated configuration."""

from __future__ import annotations

from typing import Any

from cosi_driver.config.backends import DriverConfig, StateConfig
from cosi_driver.config.settings import Settings
from cosi_driver.core.backend import BackendContext
from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.driver import DEFAULT_BACKEND_TIMEOUT, Driver, Route
from cosi_driver.core.options import ConfigProblem, parse_options
from cosi_driver.core.stores import FileStateStore, StateStore
from cosi_driver.core.stores.file import FileStoreConfig


def build_store(state: StateConfig) -> StateStore:
    where = "state.config"
    if state.type == "file":
        file_config = parse_options(FileStoreConfig, state.settings, where)
        try:
            return FileStateStore(file_config.directory)
        except OSError as error:
            raise ConfigProblem(
                "COSI_DRIVER_STATE_DIR",
                f"cannot create {file_config.directory}: {error.strerror}",
                "point it at a writable directory (a volume, so state survives restarts)",
            ) from None
    if state.type == "kubernetes":
        from cosi_driver.core.stores.kubernetes import KubernetesSecretStore, KubernetesStoreConfig

        return KubernetesSecretStore.from_config(parse_options(KubernetesStoreConfig, state.settings, where))
    raise ConfigProblem("state.type", f"unknown state store {state.type!r}", "use file or kubernetes")


def build_driver(settings: Settings, config: DriverConfig) -> Driver:
    """The driver ``serve`` runs: every setting that shapes the driver itself applied here."""
    driver = assemble(config, driver_name=settings.driver_name, operation_timeout=settings.operation_timeout)
    driver.health_timeout = settings.health_timeout
    return driver


def assemble(config: DriverConfig, *, driver_name: str, operation_timeout: float = DEFAULT_BACKEND_TIMEOUT) -> Driver:
    """Build the state store, the credential kit, every backend, and the driver over them."""
    store = build_store(config.state)
    kit = CredentialKit(store, config.master_key, config.master_key_version)
    locks = KeyedLocks()
    routes: dict[str, Route] = {}
    for name, entry in config.backends.items():
        context = BackendContext(name=name, credentials=kit, store=store, locks=locks, driver_name=driver_name)
        try:
            backend: Any = entry.type.make(entry.config, context)
        except OSError as error:
            raise ConfigProblem(
                f"backend {name!r}", f"could not start: {error.strerror or error}", "check its settings and paths"
            ) from None
        routes[name] = Route(name=name, type=entry.type, backend=backend, existing=entry.existing)
    return Driver(name=driver_name, routes=routes, default=config.default, store=store, timeout=operation_timeout)
