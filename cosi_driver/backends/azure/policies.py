"""Grants as stored access policies: ids, permissions, the per-container limit, tombstones.

A grant is one stored access policy on the container (permission and expiry live in the policy,
not in the token) and a service SAS that names the policy. Deleting the policy revokes every
token bound to it; re-creating a policy with the same id would revive them. The id is therefore
derived from the access (so a retried Grant computes it again and signs the same token, with
nothing stored) plus a generation number that grows each time an access of that name is revoked:
a revoke writes a tombstone ``azure-policy/<backend>/<digest>`` with the generation it removed,
before it removes the policy, and the next grant of that name uses the generation after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cosi_driver.backends.accounts import access_digest
from cosi_driver.sdk import AccessMode, InvalidArgument, StateStore

#: Azure keeps at most five stored access policies per container (Azurite stores more: we enforce it).
MAX_POLICIES = 5
#: Azure's limit on a policy id.
MAX_ID_LENGTH = 64
_PREFIX = "cosi-"
_DIGEST = 32
_ID = re.compile(rf"{_PREFIX}(?P<digest>[0-9a-f]{{{_DIGEST}}})-(?P<generation>0|[1-9][0-9]{{0,8}})")

#: Permission letters per access mode, in the order Azure lists them.
PERMISSIONS: dict[AccessMode, str] = {
    AccessMode.READ_ONLY: "rl",
    AccessMode.READ_WRITE: "racwdl",
    AccessMode.WRITE_ONLY: "acw",
}


@dataclass(frozen=True)
class PolicyId:
    digest: str
    generation: int

    def __str__(self) -> str:
        return f"{_PREFIX}{self.digest}-{self.generation}"


def access_key(scope: str, name: str) -> str:
    """The digest every policy id of one access (bucket scope + access name) starts with."""
    return access_digest(scope, name, _DIGEST)


def parse_policy_id(account: str) -> PolicyId:
    """The parts of a policy id this backend made; INVALID_ARGUMENT for anything else."""
    match = _ID.fullmatch(account)
    if match is None:
        raise InvalidArgument(
            f"account {account!r} is not a stored access policy id this driver makes; leaving it alone"
        )
    return PolicyId(match["digest"], int(match["generation"]))


class Tombstones:
    """The highest revoked generation of each access, in the driver's state store."""

    def __init__(self, store: StateStore, backend: str) -> None:
        self._store = store
        self._backend = backend

    def _key(self, digest: str) -> str:
        return f"azure-policy/{self._backend}/{digest}"

    async def next_id(self, digest: str) -> PolicyId:
        """The id a grant of this access uses now: one past the last revoked generation."""
        record = await self._store.get(self._key(digest))
        revoked = record.get("revoked") if record else None
        return PolicyId(digest, revoked + 1 if isinstance(revoked, int) else 0)

    async def bury(self, policy: PolicyId) -> None:
        """Record that ``policy`` is being revoked, so its id is never issued again."""
        record = await self._store.get(self._key(policy.digest))
        revoked = record.get("revoked") if record else None
        if not isinstance(revoked, int) or revoked < policy.generation:
            await self._store.put(self._key(policy.digest), {"revoked": policy.generation})
