"""What each name-scoped (v1alpha2) grant gave, so a retry is told apart from a conflict.

A v1alpha2 account belongs to its account name alone and may reach several buckets. The sidecar
retries a Grant with the same name and the same buckets and modes and must get the same account
and keys; the same name with other buckets, modes, authentication or parameters is a conflict
(ALREADY_EXISTS, terminal for that sidecar) whose message says exactly what differs. The record is
written after the backend granted, and found again from the account on Revoke (a second, small
record), which removes both.
"""

from __future__ import annotations

from dataclasses import dataclass

from cosi_driver.core.stores import StateStore
from cosi_driver.core.types import AccessMode


@dataclass(frozen=True)
class GrantRecord:
    account: str  # the backend's account name
    buckets: dict[str, AccessMode]  # real bucket name -> mode
    authentication_type: str
    fingerprint: str  # of the parsed access parameters

    def differences(self, other: GrantRecord) -> list[str]:
        """What ``other`` (a new request) asks for that this record did not give, in words."""
        found = []
        for bucket in sorted(self.buckets.keys() - other.buckets.keys()):
            found.append(f"bucket {bucket!r} ({self.buckets[bucket].name}) is no longer requested")
        for bucket in sorted(other.buckets.keys() - self.buckets.keys()):
            found.append(f"bucket {bucket!r} ({other.buckets[bucket].name}) is newly requested")
        for bucket in sorted(self.buckets.keys() & other.buckets.keys()):
            if self.buckets[bucket] is not other.buckets[bucket]:
                found.append(
                    f"bucket {bucket!r} was granted {self.buckets[bucket].name}, now {other.buckets[bucket].name} "
                    "is requested"
                )
        if self.authentication_type != other.authentication_type:
            found.append(
                f"authentication type was {self.authentication_type}, now {other.authentication_type} is requested"
            )
        if self.fingerprint != other.fingerprint:
            found.append("the BucketAccessClass parameters differ")
        return found


class GrantBook:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    @staticmethod
    def _by_name(backend: str, name: str) -> str:
        return f"grant/{backend}/{name}"

    @staticmethod
    def _by_account(backend: str, account: str) -> str:
        return f"grant-account/{backend}/{account}"

    async def get(self, backend: str, name: str) -> GrantRecord | None:
        document = await self._store.get(self._by_name(backend, name))
        if not document:
            return None
        return GrantRecord(
            account=str(document["account"]),
            buckets={bucket: AccessMode(mode) for bucket, mode in dict(document["buckets"]).items()},
            authentication_type=str(document["authentication_type"]),
            fingerprint=str(document["fingerprint"]),
        )

    async def record(self, backend: str, name: str, record: GrantRecord) -> None:
        await self._store.put(self._by_account(backend, record.account), {"name": name})
        await self._store.put(
            self._by_name(backend, name),
            {
                "account": record.account,
                "buckets": {bucket: mode.value for bucket, mode in record.buckets.items()},
                "authentication_type": record.authentication_type,
                "fingerprint": record.fingerprint,
            },
        )

    async def find_by_account(self, backend: str, account: str) -> tuple[str, GrantRecord] | None:
        document = await self._store.get(self._by_account(backend, account))
        if not document:
            return None
        name = str(document["name"])
        record = await self.get(backend, name)
        return None if record is None else (name, record)

    async def forget(self, backend: str, account: str) -> None:
        document = await self._store.get(self._by_account(backend, account))
        if document:
            await self._store.delete(self._by_name(backend, str(document["name"])))
        await self._store.delete(self._by_account(backend, account))
