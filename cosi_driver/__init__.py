"""cosi-driver: a Kubernetes COSI driver and a framework for writing COSI drivers.

The package is layered and imports only point downward::

    cli -> config -> transport -> spec.v1alpha1 -> core <- backends

``core`` holds the COSI semantics (validation, routing, idempotency, the error model) once for
every backend; ``backends`` only know their storage system.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("cosi-driver")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
