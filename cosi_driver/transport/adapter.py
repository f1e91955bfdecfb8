"""The one thing the transport knows about a COSI API version: an :class:`ApiAdapter`.

Each spec version (``cosi_driver.spec.v1alpha1``, later ``v1alpha2``) turns its own protobuf into
core calls and hands the server an adapter object; whoever builds the server (the CLI, the tests,
the acceptance harness) passes the list of adapters to serve. The transport registers them, tells
the health service and reflection their service names, and never imports a spec version itself,
so a new version needs no transport change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import grpc

from cosi_driver.core.driver import Driver


class ApiAdapter(Protocol):
    """One COSI API version, ready to be registered on a grpc.aio server."""

    @property
    def name(self) -> str:
        """The version, e.g. ``v1alpha1``: for messages."""
        ...

    @property
    def services(self) -> tuple[str, ...]:
        """Full gRPC names of every service it registers, e.g. ``cosi.v1alpha1.Identity``."""
        ...

    @property
    def ready_services(self) -> tuple[str, ...]:
        """Those of :attr:`services` whose gRPC health status follows readiness; the rest follow liveness."""
        ...

    def add_to_server(self, server: grpc.aio.Server, driver: Driver) -> None:
        """Register this version's servicers, which call ``driver``, on ``server``."""
        ...


def check_adapters(adapters: Sequence[ApiAdapter]) -> tuple[ApiAdapter, ...]:
    """At least one adapter, and no gRPC service registered twice (grpc would let the last one win silently)."""
    if not adapters:
        raise ValueError(
            "a COSI server needs at least one API adapter, e.g. [cosi_driver.spec.v1alpha1.servicer.ADAPTER]"
        )
    owner: dict[str, str] = {}
    for adapter in adapters:
        for service in adapter.services:
            if service in owner:
                raise ValueError(f"service {service} is registered by both {owner[service]} and {adapter.name}")
            owner[service] = adapter.name
        stray = set(adapter.ready_services) - set(adapter.services)
        if stray:
            raise ValueError(f"{adapter.name} names ready services it does not register: {', '.join(sorted(stray))}")
    return tuple(adapters)
