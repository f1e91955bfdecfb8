"""RGW users for BucketAccesses, made idempotent by the driver because Admin Ops is not.

Measured on Pacific: ``PUT /admin/user`` for an existing uid is 409 UserAlreadyExists even with
identical parameters; an access key another user holds is 409 KeyExists; ``PUT /admin/user?key``
with an existing access key silently replaces its secret; deleting a missing key is 403
InvalidAccessKeyId; deleting a missing user is 404 NoSuchUser. So a Grant tries the create and,
when the user exists, reads it and brings it to exactly the wanted state; a Revoke deletes only
users whose display name carries this driver's mark.

``max-buckets`` is -1, not 0: in RGW 0 means *unlimited* and only a negative value forbids
creating buckets (measured). A grantee must never own a bucket, so revoking it can never fail
on, or delete, data of its own.
"""

from __future__ import annotations

from typing import Any

from cosi_driver.backends.accounts import access_digest
from cosi_driver.backends.ceph.admin import AdminError, AdminOps
from cosi_driver.core.credentials import KeyPair
from cosi_driver.core.errors import FailedPrecondition, Unavailable

UID_PREFIX = "cosi-"
NO_BUCKETS = -1


def account_uid(scope: str, access_name: str) -> str:
    """The RGW uid of a BucketAccess: stable, short, and free of characters RGW treats specially.

    ``scope`` is the bucket of a one-bucket (v1alpha1) account, "" for a v1alpha2 account, which
    belongs to its name alone; the digests cannot meet, since no bucket name is empty.
    """
    return UID_PREFIX + access_digest(scope, access_name, 24)


class Users:
    def __init__(self, admin: AdminOps, driver_name: str) -> None:
        self._admin = admin
        self._mark = f"cosi-driver {driver_name}:"

    def display_name(self, buckets: list[str], access_name: str) -> str:
        """Shown by ``radosgw-admin user info``; it also marks the user as this driver's."""
        if len(buckets) == 1:
            return f"{self._mark} {access_name} on bucket {buckets[0]}"
        return f"{self._mark} {access_name} on buckets {', '.join(sorted(buckets))}"

    def is_ours(self, user: dict[str, Any]) -> bool:
        return str(user.get("display_name", "")).startswith(self._mark)

    async def get(self, uid: str) -> dict[str, Any] | None:
        try:
            user = await self._admin.call("GET", "user", {"uid": uid})
        except AdminError as error:
            if error.rgw_code == "NoSuchUser":
                return None
            raise
        return user if isinstance(user, dict) else None

    async def ensure(self, uid: str, display_name: str, keys: KeyPair) -> None:
        """Create the user with exactly ``keys``, or bring an existing one of ours to that state."""
        try:
            await self._admin.call(
                "PUT",
                "user",
                {
                    "uid": uid,
                    "display-name": display_name,
                    "access-key": keys.access_key_id,
                    "secret-key": keys.secret_access_key.reveal(),
                    "key-type": "s3",
                    "generate-key": False,
                    "max-buckets": NO_BUCKETS,
                },
            )
            return
        except AdminError as error:
            if error.rgw_code == "KeyExists":
                raise FailedPrecondition(
                    f"the access key the driver derives for RGW user {uid!r} already belongs to another RGW "
                    "user; remove that key (radosgw-admin key rm) and the grant will be retried"
                ) from None
            if error.rgw_code != "UserAlreadyExists":
                raise
        await self._reconcile(uid, keys)

    async def _reconcile(self, uid: str, keys: KeyPair) -> None:
        user = await self.get(uid)
        if user is None:  # deleted between our create and our read (a Revoke on another pod): retry afresh
            raise Unavailable(f"RGW user {uid!r} was deleted while being granted; retry")
        if not self.is_ours(user):
            raise FailedPrecondition(
                f"RGW user {uid!r} exists but was not created by this driver; refusing to hand out keys for it"
            )
        held = {
            str(key.get("access_key")): str(key.get("secret_key"))
            for key in user.get("keys", [])
            if isinstance(key, dict)
        }
        if held.get(keys.access_key_id) != keys.secret_access_key.reveal():
            # Adding an existing access key with another secret replaces that secret (Pacific).
            await self._admin.call(
                "PUT",
                "user",
                {
                    "key": "",
                    "uid": uid,
                    "access-key": keys.access_key_id,
                    "secret-key": keys.secret_access_key.reveal(),
                    "key-type": "s3",
                },
            )
        for stray in sorted(set(held) - {keys.access_key_id}):
            # Keys the driver did not hand out (added by hand, or generated by RGW) would outlive
            # the Revoke's promise; only the derived key may exist.
            await self.remove_key(uid, stray)
        if user.get("max_buckets") != NO_BUCKETS or user.get("suspended"):
            await self._admin.call("POST", "user", {"uid": uid, "max-buckets": NO_BUCKETS, "suspended": False})

    async def remove_key(self, uid: str, access_key_id: str) -> None:
        try:
            await self._admin.call("DELETE", "user", {"key": "", "uid": uid, "access-key": access_key_id})
        except AdminError as error:
            if error.rgw_code != "InvalidAccessKeyId":  # Pacific's answer for a key that is already gone
                raise

    async def delete(self, uid: str) -> bool:
        """Delete one of our users with its keys, never its data. False when it was already gone."""
        user = await self.get(uid)
        if user is None:
            return False
        if not self.is_ours(user):
            raise FailedPrecondition(f"RGW user {uid!r} was not created by this driver; refusing to delete it")
        try:
            # purge-data stays off: the user owns no buckets (max-buckets -1), and the objects it
            # uploaded into the granted bucket belong to the bucket's users, not to this account.
            await self._admin.call("DELETE", "user", {"uid": uid, "purge-data": False})
        except AdminError as error:
            if error.rgw_code == "NoSuchUser":
                return False
            if error.rgw_code == "BucketAlreadyExists":
                raise FailedPrecondition(
                    f"RGW user {uid!r} owns buckets (created outside the driver); move or remove them first"
                ) from None
            raise
        return True
