"""What each configuration section becomes: the state store, and one route per configured backend.

These are constructors only. The order of construction and who closes what is decided in one
place, the composition root :mod:`cosi_driver.app`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cosi_driver.config.backends import BackendEntry, StateConfig
from cosi_driver.core.backend import BackendContext
from cosi_driver.core.concurrency import KeyedLocks
from cosi_driver.core.credentials import CredentialKit
from cosi_driver.core.driver import Route
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


def build_route(
    entry: BackendEntry, store: StateStore, kit: CredentialKit, locks: KeyedLocks, driver_name: str
) -> Route:
    """Build one configured backend; a start-up failure names the backend."""
    context = BackendContext(name=entry.name, credentials=kit, store=store, locks=locks, driver_name=driver_name)
    try:
        backend: Any = entry.type.make(entry.config, context)
    except OSError as error:
        raise ConfigProblem(
            f"backend {entry.name!r}", f"could not start: {error.strerror or error}", "check its settings and paths"
        ) from None
    return Route(name=entry.name, type=entry.type, backend=backend, existing=entry.existing)


async def close_routes(routes: Mapping[str, Route]) -> None:
    """Close backends that were built but never handed to a driver (start-up failed in between)."""
    for route in routes.values():
        await route.backend.close()
