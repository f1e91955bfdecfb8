"""The options that say how to reach S3 endpoints, declared once for every backend that has them.

``s3``, ``ceph-rgw`` and ``seaweedfs`` all take a region, TLS settings, timeouts and a public
endpoint. Each constant here holds the arguments of :func:`~cosi_driver.core.options.option`, so
a backend writes ``region: str = option(**endpoints.REGION)``: the kind, the default and the
documentation (and with them the table in docs/configuration.md and the environment variables) are the same
everywhere, while each backend keeps its own field order. :func:`connection` then turns such a
configuration into the :class:`~.clients.Connection` the client pool uses, the same way for
every backend. (The module's name is plural because config classes have a field ``endpoint``,
which in a class body would hide a module of that name.)

Only declarations and plain values here: loading a backend's configuration must not import an SDK.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, TypedDict

from cosi_driver.backends.s3kit.clients import Connection
from cosi_driver.core.options import BOOLEAN, PATH, STRING, OptionKind, seconds, url


class OptionArguments(TypedDict):
    """Keyword arguments of ``option()`` for one shared setting."""

    kind: OptionKind[Any]
    default: Any
    doc: str


#: The kind of every endpoint URL a backend takes.
ENDPOINT_URL = url("http", "https")

REGION: OptionArguments = {
    "kind": STRING,
    "default": "us-east-1",
    "doc": "Region the driver signs requests with and reports in BucketInfo and credentials.",
}
VERIFY_TLS: OptionArguments = {
    "kind": BOOLEAN,
    "default": True,
    "doc": "Verify the TLS certificates of https endpoints.",
}
CA_BUNDLE: OptionArguments = {
    "kind": PATH,
    "default": None,
    "doc": "PEM file of the CA that signed the endpoints' certificates (default: the system's CAs).",
}
CONNECT_TIMEOUT: OptionArguments = {
    "kind": seconds(0.1),
    "default": 5.0,
    "doc": "Seconds to wait for a TCP (and TLS) connection.",
}
READ_TIMEOUT: OptionArguments = {
    "kind": seconds(0.1),
    "default": 20.0,
    "doc": "Seconds to wait for the answer to one request.",
}


def public_endpoint(default: str) -> OptionArguments:
    """The URL consumers are given; ``default`` says what is used when it is not set."""
    return {
        "kind": ENDPOINT_URL,
        "default": None,
        "doc": "URL written into consumers' credentials, for workloads that reach the storage by "
        f"another name (default: {default}).",
    }


class EndpointSettings(Protocol):
    """A backend configuration declaring the shared options above and an ``endpoint``."""

    @property
    def endpoint(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def verify_tls(self) -> bool: ...
    @property
    def ca_bundle(self) -> Path | None: ...
    @property
    def connect_timeout(self) -> float: ...
    @property
    def read_timeout(self) -> float: ...


def connection(settings: EndpointSettings, *, addressing_style: str = "path") -> Connection:
    """How to reach ``settings.endpoint``, with the backend's region, TLS settings and timeouts."""
    return Connection(
        endpoint=settings.endpoint,
        region=settings.region,
        verify_tls=settings.verify_tls,
        ca_bundle=settings.ca_bundle,
        addressing_style=addressing_style,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )
