"""cosi-driver: a Kubernetes COSI driver and a framework for writing COSI drivers.

The package is layered and imports only point downward::

    cli -> testing | scaffold -> app -> config -> observability -> transport -> spec -> sdk -> core
    backends -> sdk, core

(the import-linter contracts in pyproject.toml enforce it in ``make lint``).

``core`` holds the COSI semantics (validation, routing, idempotency, the error model) once for
every backend; ``backends`` only know their storage system.

What is public: the ``cosi-driver`` command, :mod:`cosi_driver.sdk` for backend authors, and the
test kits named in :mod:`cosi_driver.testing`. Every sub-package's docstring opens a paragraph
with ``Public:`` or ``Internal:`` to say which it is; public modules list their names in
``__all__``. Everything else may change in any release (docs/architecture.md, "Public surface").
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("cosi-driver")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
