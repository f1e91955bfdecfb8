"""The credential stability kit.

The sidecar writes a Grant's credentials into a Secret once and never rewrites it, so a retried
Grant must return the credentials it returned before. Two ways, one per kind of storage system:

* Storage that lets the caller choose keys (Ceph RGW, the filesystem backend): derive them
  deterministically from a driver master key with HKDF over (key version, backend, bucket,
  account). A retry derives the same keys with no state at all; the key version is recorded in
  the account id so a master-key rotation never silently changes old accounts.
* Storage that generates keys and shows the secret once (IAM ``CreateAccessKey``): keep the
  secret in the driver's state store and return it on a retry. Two driver pods may mint keys
  for the same account at once; the first to store its keys wins and both return those, so the
  loser must delete the key it minted (:class:`Remembered` tells it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Protocol

from cosi_driver.core.secret import Secret
from cosi_driver.core.stores import StateStore
from cosi_driver.core.stores.base import update

MIN_MASTER_KEY_BYTES = 32
MIN_DISTINCT_CHARACTERS = 10


class SecretSource(Protocol):
    """Somewhere a secret can be read from, again, when it rotates (env var, file, inline)."""

    def get(self) -> Secret: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class KeyPair:
    access_key_id: str
    secret_access_key: Secret


@dataclass(frozen=True)
class Remembered:
    """The keys stored for an account after ``remember``, and whether they are the ones offered.

    ``kept`` False: another Grant stored its keys first. Return ``keys`` (theirs) and delete the
    key just minted, which nobody will ever be given.
    """

    keys: KeyPair
    kept: bool


def master_key_problem(key: Secret) -> str | None:
    """Why ``key`` is too weak to derive credentials from, or None when it is fine."""
    value = key.reveal()
    if len(value.encode()) < MIN_MASTER_KEY_BYTES:
        return f"it is shorter than {MIN_MASTER_KEY_BYTES} bytes"
    if len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return f"it uses fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    return None


def _hkdf(key: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) with a fixed salt; the standard library has HMAC but no HKDF."""
    prk = hmac.new(b"cosi-driver/credential-derivation", key, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


class CredentialKit:
    """Handed to every backend at construction; each backend uses the half that fits its storage."""

    def __init__(self, store: StateStore, master_key: SecretSource | None = None, key_version: int = 1) -> None:
        self._store = store
        self._master_key = master_key
        self.key_version = key_version

    @property
    def can_derive(self) -> bool:
        return self._master_key is not None

    def derive(self, *, backend: str, bucket: str, account: str, key_version: int | None = None) -> KeyPair:
        """Keys for (backend, bucket, account), identical on every call with the same master key."""
        if self._master_key is None:
            raise RuntimeError(
                "credential derivation needs a master key; the configuration check should have caught this"
            )
        version = self.key_version if key_version is None else key_version
        info = "\x00".join((str(version), backend, bucket, account)).encode()
        material = _hkdf(self._master_key.get().reveal().encode(), info, 35)
        # 20 upper-case characters and 40 hex characters: the shapes of AWS keys, which every
        # S3-speaking system accepts.
        access_key_id = "CK" + base64.b32encode(material[:15]).decode()[:18]
        return KeyPair(access_key_id, Secret(material[15:35].hex()))

    @staticmethod
    def _key(backend: str, account: str) -> str:
        return f"credentials/{backend}/{account}"

    @staticmethod
    def _pair(document: dict[str, Any]) -> KeyPair:
        return KeyPair(document["access_key_id"], Secret(document["secret_access_key"]))

    async def recall(self, backend: str, account: str) -> KeyPair | None:
        """The keys stored for an account by an earlier Grant, if any."""
        document = await self._store.get(self._key(backend, account))
        return self._pair(document) if document else None

    async def remember(
        self, backend: str, account: str, keys: KeyPair, *, replacing: KeyPair | None = None
    ) -> Remembered:
        """Store freshly minted ``keys`` unless another Grant stored its own first.

        With ``replacing`` (stored keys the caller found dead), those are overwritten, but only
        while they are still what is stored: a concurrent Grant's fresh keys are never replaced.
        """
        ours = {"access_key_id": keys.access_key_id, "secret_access_key": keys.secret_access_key.reveal()}

        def decide(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                return ours
            if replacing is not None and current.get("access_key_id") == replacing.access_key_id:
                return ours
            return None  # someone else's keys are stored: they stand

        stored = await update(self._store, self._key(backend, account), decide)
        if stored is None:  # decide never leaves an absent key absent
            raise RuntimeError("the state store lost a credential record while it was written")
        kept = stored.get("access_key_id") == keys.access_key_id
        return Remembered(keys if kept else self._pair(stored), kept)

    async def forget(self, backend: str, account: str) -> None:
        await self._store.delete(self._key(backend, account))
