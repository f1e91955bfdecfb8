"""Assemble a ready :class:`~cosi_driver.core.driver.Driver` from validated configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosi_driver.config.backends import DriverConfig, StateConfig
from cosi_driver.config.settings import Settings
from cosi_driver.core.backend import BackendContext
from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.driver import Driver, Route
from cosi_driver.core.options import ConfigProblem
from cosi_driver.core.store import FileStateStore, StateStore


def build_store(state: StateConfig) -> StateStore:
    if state.type == "file":
        directory = state.settings.get("directory")
        unknown = set(state.settings) - {"directory"}
        if unknown or not directory:
            raise ConfigProblem(
                "state.config", "the file store takes exactly one setting, directory", "set directory: /path"
            )
        try:
            return FileStateStore(Path(directory))
        except OSError as error:
            raise ConfigProblem(
                "COSI_DRIVER_STATE_DIR",
                f"cannot create {directory}: {error.strerror}",
                "point it at a writable directory (a volume, so state survives restarts)",
            ) from None
    raise ConfigProblem("state.type", f"unknown state store {state.type!r}", "use file or kubernetes")


def build_driver(settings: Settings, config: DriverConfig) -> Driver:
    store = build_store(config.state)
    kit = CredentialKit(store, config.master_key, config.master_key_version)
    locks = KeyedLocks()
    routes: dict[str, Route] = {}
    for name, entry in config.backends.items():
        context = BackendContext(name=name, credentials=kit, store=store, locks=locks, driver_name=settings.driver_name)
        try:
            backend: Any = entry.type.make(entry.config, context)
        except ConfigProblem:
            raise
        except OSError as error:
            raise ConfigProblem(
                f"backend {name!r}", f"could not start: {error.strerror or error}", "check its settings and paths"
            ) from None
        routes[name] = Route(name=name, type=entry.type, backend=backend)
    return Driver(
        name=settings.driver_name,
        routes=routes,
        default=config.default,
        store=store,
        timeout=settings.operation_timeout,
    )
