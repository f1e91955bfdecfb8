"""Where the driver keeps the little state it needs: ownership records and stored credentials.

Most of what the driver knows lives in the storage system itself. Two things cannot: the intent
to create a bucket (recorded *before* the storage call, so that a crash between the call and
the bucket's ownership mark never turns our own bucket into a "foreign" one), and secrets that a
storage system generates but will not show again (IAM secret keys), which a retried Grant must
return unchanged because the sidecar never rewrites a Secret.

A store maps short keys (``bucket/<backend>/<name>``) to small JSON documents. The file store is
the default; ``cosi_driver.core.stores.kubernetes`` keeps documents in Kubernetes Secrets.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class StateStore(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, document: dict[str, Any]) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def keys(self, prefix: str = "") -> list[str]: ...
