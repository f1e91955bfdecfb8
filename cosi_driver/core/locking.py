"""Which lock key (and single-flight key) each resource gets: one function per resource.

Every operation that touches a resource derives its key here, so two operations on one resource
cannot end up under two different keys (as Grant and Revoke of one access once did).

* A bucket is keyed by (backend, bucket name). Create and Delete hold it exclusively; Grant and
  Revoke hold the key of every bucket they touch shared, so a grant never interleaves with the
  Delete of its bucket, while grants on one bucket still run side by side.
* An account is keyed by (backend, the backend's account name): that name is all a Revoke
  knows. A Grant knows the access name and scope instead; a backend that derives its account
  name from those (:class:`~cosi_driver.core.backend.NamesAccounts`) lets the Grant compute the
  same key before the storage call. For a backend that does not, a name-scoped (v1alpha2)
  account is keyed by its access name, which Revoke reads from the grant record. A one-bucket
  (v1alpha1) account of such a backend has no key both sides can compute: its Grants are
  serialised among themselves and its Revokes among themselves, and only the storage's own
  idempotence orders a Grant against a Revoke.

The keys lock within one process; between processes the state store's compare-and-swap decides.
"""

from __future__ import annotations

from collections.abc import Hashable

from cosi_driver.core.backend import NamesAccounts

Key = tuple[str, ...]


def bucket_key(backend: str, bucket: str) -> Key:
    return ("bucket", backend, bucket)


def account_key(backend: str, account: str) -> Key:
    return ("account", backend, account)


def _access_key(backend: str, scope: str, access_name: str) -> Key:
    """An access of a backend that does not name its accounts up front."""
    return ("access", backend, scope, access_name)


def grant_key(backend: str, storage: object, scope: str, access_name: str) -> Key:
    """The account key of a Grant, computed before the backend makes (or finds) the account."""
    if isinstance(storage, NamesAccounts):
        return account_key(backend, storage.account_name(scope, access_name))
    return _access_key(backend, scope, access_name)


def revoke_key(backend: str, storage: object, account: str, recorded_name: str | None) -> Key:
    """The account key of a Revoke of ``account``; ``recorded_name``: the name its v1alpha2 grant record holds."""
    if isinstance(storage, NamesAccounts):
        return account_key(backend, account)
    if recorded_name is not None:
        return _access_key(backend, "", recorded_name)
    return account_key(backend, account)


def flight_key(operation: str, resource: Key, *terms: Hashable) -> tuple[Hashable, ...]:
    """The single-flight key of ``operation`` on ``resource``: identical calls share one run."""
    return (operation, *resource, *terms)
