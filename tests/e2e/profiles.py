"""Backend profiles: what the end-to-end scenarios need to know about one storage backend.

Every scenario runs once per profile in :data:`PROFILES` (the ``cosi_stack`` fixture is
parametrized over it). A profile says how to configure ``cosi-driver serve`` for the backend and
how to look into the storage behind it: which buckets and accounts exist, whether a set of
credentials works with the access mode it was granted, and how to take the storage away for a
moment. The scenarios never look at storage any other way.

Adding a backend (SeaweedFS, Ceph RGW) is one subclass and one entry in :data:`PROFILES`:

    class SeaweedFSProfile(BackendProfile):
        name = "seaweedfs"
        outage_how = "SeaweedFS stopped, then started again on the same ports and data"

        def __init__(self, workdir, server): ...          # server: the seaweedfs session fixture
        def driver_env(self): return {"COSI_DRIVER_CONFIG": ...}   # a backends file naming the server
        def buckets(self): ...                           # ListBuckets with the admin credentials
        def accounts(self, buckets): ...                 # the IAM users/keys with a policy on them
        def check_granted(self, grant): ...              # put + get with grant.credentials at their
                                                         # endpoint; for mode "read", put is denied
        def check_revoked(self, grant): ...              # the keys are refused
        def outage(self): ...                            # stop the server, yield, start it again

    PROFILES["seaweedfs"] = lambda workdir, need: SeaweedFSProfile(workdir, need("seaweedfs"))

``need(fixture_name)`` returns a session fixture's value (``request.getfixturevalue`` under pytest),
so a profile's server is started only when its scenarios run, and a missing server skips (locally)
or fails (CI) through that fixture's own ``unavailable()`` call.
"""

from __future__ import annotations

import abc
import contextlib
import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.waits import Credentials


@dataclass(frozen=True)
class Grant:
    """A granted BucketAccess, as the scenarios know it."""

    bucket: str  # the bucket's name in storage (from Bucket.status.bucketID)
    account: str  # the account's name in storage (from BucketAccess.status.accountID)
    mode: str  # the BucketAccessClass's accessMode: read, write or readwrite
    credentials: Credentials  # what the consumer reads from the Secret


class BackendProfile(abc.ABC):
    #: The pytest id, and the first label of the driver's name (a lowercase DNS label).
    name: str
    #: How :meth:`outage` takes the storage away, for the report.
    outage_how: str

    @abc.abstractmethod
    def driver_env(self) -> dict[str, str]:
        """Environment for ``cosi-driver serve``: the backend's type and settings (or a config file)."""

    def bucket_class_parameters(self) -> dict[str, str]:
        """Parameters every BucketClass of the scenarios carries for this backend (merged over the example's)."""
        return {}

    @abc.abstractmethod
    def buckets(self) -> set[str]:
        """Names of all buckets in storage."""

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in self.buckets()

    @abc.abstractmethod
    def accounts(self, buckets: Collection[str]) -> set[str]:
        """Names of the accounts in storage that hold access to any of ``buckets``."""

    @abc.abstractmethod
    def check_granted(self, grant: Grant) -> None:
        """Assert that the credentials work in the bucket exactly as ``grant.mode`` allows."""

    @abc.abstractmethod
    def check_revoked(self, grant: Grant) -> None:
        """Assert that the credentials no longer work and the account is gone."""

    @abc.abstractmethod
    def outage(self) -> contextlib.AbstractContextManager[None]:
        """The storage is unreachable inside the block and back, with its data, after it."""

    def close(self) -> None:  # noqa: B027 - optional hook: most profiles hold nothing
        """Release what the profile holds (clients); servers belong to their own fixtures."""


class FilesystemProfile(BackendProfile):
    """The filesystem backend: buckets are directories, accounts are JSON records beside them.

    It serves no S3, so credentials are checked against the account records (keys, bucket, mode)
    rather than by using them. The outage renames the root away and back: that is what an
    unmounted volume looks like to the driver. (Making the root unwritable with chmod would not
    do: the tests run as root, which permission bits do not stop.)
    """

    name = "filesystem"
    outage_how = "root directory renamed away (volume unmounted), then back"

    def __init__(self, root: Path) -> None:
        self.root = root

    def driver_env(self) -> dict[str, str]:
        return {"COSI_DRIVER_BACKEND": "filesystem", "COSI_DRIVER_BACKEND_ROOT": str(self.root)}

    def buckets(self) -> set[str]:
        return {path.name for path in (self.root / "buckets").iterdir() if path.is_dir()}

    def _account_records(self) -> dict[str, dict[str, Any]]:
        directory = self.root / ".cosi" / "accounts"
        return {path.stem: json.loads(path.read_text()) for path in directory.glob("*.json")}

    def accounts(self, buckets: Collection[str]) -> set[str]:
        return {name for name, record in self._account_records().items() if record["bucket"] in buckets}

    def check_granted(self, grant: Grant) -> None:
        record = self._account_records().get(grant.account)
        assert record is not None, f"account {grant.account} is not in storage"
        assert record["bucket"] == grant.bucket
        assert (self.root / "buckets" / grant.bucket).is_dir()
        assert (record["access_key_id"], record["secret_access_key"]) == (
            grant.credentials.access_key_id,
            grant.credentials.secret_access_key,
        ), "the Secret's keys are not the account's keys"
        assert record["mode"] == grant.mode
        assert grant.credentials.endpoint == (self.root / "buckets").as_uri()

    def check_revoked(self, grant: Grant) -> None:
        assert grant.account not in self._account_records(), f"account {grant.account} is still in storage"

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        away = self.root.with_name(self.root.name + ".unmounted")
        self.root.rename(away)
        try:
            yield
        finally:
            away.rename(self.root)


ProfileFactory = Callable[[Path, Callable[[str], Any]], BackendProfile]

#: Every backend the end-to-end scenarios run against: name -> factory(workdir, need).
PROFILES: dict[str, ProfileFactory] = {
    "filesystem": lambda workdir, need: FilesystemProfile(workdir / "filesystem"),
}
