"""User, inline-policy and access-key mechanics of an AWS-style IAM API.

Written against what servers really do, not what the API reference promises:

* SeaweedFS's DeleteUser succeeds while keys and inline policies remain and *leaves the inline
  policies behind*: a later user of the same name inherits them. :func:`delete_user` therefore
  removes inline policies, attached policies and every access key first, and deletes the known
  policy names again when the user is already gone.
* SeaweedFS answers DeleteAccessKey and DeleteUserPolicy of missing things with 200 and
  ListAccessKeys of a missing user with an empty list, so a 200 is never taken as proof that
  something existed; existence is decided by GetUser.
* A user may create extra keys for itself, so revoking means deleting the user, not one key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from cosi_driver.backends.s3kit.errors import error_code, is_missing, is_unsupported
from cosi_driver.core.credentials import KeyPair
from cosi_driver.core.errors import FailedPrecondition
from cosi_driver.core.secret import Secret


async def get_user(iam: Any, name: str) -> dict[str, Any] | None:
    """The user (with its Path and, where the server keeps them, its Tags), or None."""
    try:
        answer = await iam.get_user(UserName=name)
    except Exception as error:
        if is_missing(error):
            return None
        raise
    return dict(answer.get("User", {}))


async def create_user(iam: Any, name: str, *, path: str = "/", tags: dict[str, str] | None = None) -> bool:
    """Create the user; False when it already existed (the caller decides whether that is fine)."""
    arguments: dict[str, Any] = {"UserName": name, "Path": path}
    if tags:
        arguments["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
    try:
        await iam.create_user(**arguments)
    except Exception as error:
        if error_code(error) == "EntityAlreadyExists":
            return False
        raise
    return True


def tags_of(user: dict[str, Any]) -> dict[str, str]:
    return {str(tag.get("Key")): str(tag.get("Value")) for tag in user.get("Tags", []) or []}


async def _all(iam: Any, operation: str, result_key: str, **arguments: Any) -> list[Any]:
    items: list[Any] = []
    marker: str | None = None
    while True:
        page = await getattr(iam, operation)(**arguments, **({"Marker": marker} if marker else {}))
        items.extend(page.get(result_key, []) or [])
        marker = page.get("Marker")
        if not page.get("IsTruncated") or not marker:
            return items


async def inline_policy_names(iam: Any, user: str) -> list[str]:
    return [str(name) for name in await _all(iam, "list_user_policies", "PolicyNames", UserName=user)]


async def put_inline_policy(iam: Any, user: str, name: str, document: str) -> None:
    await iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=document)


async def delete_inline_policies(iam: Any, user: str, names: Iterable[str]) -> None:
    async def delete(name: str) -> None:
        try:
            await iam.delete_user_policy(UserName=user, PolicyName=name)
        except Exception as error:
            if not is_missing(error):
                raise

    await asyncio.gather(*(delete(name) for name in set(names)))


async def access_key_ids(iam: Any, user: str) -> list[str]:
    """Ids of the user's access keys (an empty list for a missing user, as SeaweedFS answers)."""
    try:
        keys = await _all(iam, "list_access_keys", "AccessKeyMetadata", UserName=user)
    except Exception as error:
        if is_missing(error):
            return []
        raise
    return [str(key["AccessKeyId"]) for key in keys]


async def delete_access_keys(iam: Any, user: str, key_ids: Iterable[str]) -> None:
    async def delete(key_id: str) -> None:
        try:
            await iam.delete_access_key(UserName=user, AccessKeyId=key_id)
        except Exception as error:
            if not is_missing(error):
                raise

    await asyncio.gather(*(delete(key_id) for key_id in set(key_ids)))


async def create_access_key(iam: Any, user: str) -> KeyPair:
    answer = (await iam.create_access_key(UserName=user))["AccessKey"]
    return KeyPair(str(answer["AccessKeyId"]), Secret(str(answer["SecretAccessKey"])))


async def _detach_managed_policies(iam: Any, user: str) -> None:
    try:
        attached = await _all(iam, "list_attached_user_policies", "AttachedPolicies", UserName=user)
    except Exception as error:
        if is_unsupported(error) or is_missing(error):
            return
        raise
    await asyncio.gather(*(iam.detach_user_policy(UserName=user, PolicyArn=policy["PolicyArn"]) for policy in attached))


async def delete_user(
    iam: Any,
    user: str,
    *,
    known_policies: Iterable[str] = (),
    verify: Callable[[dict[str, Any]], None] | None = None,
) -> bool:
    """Remove the user with its policies and every key; False when it was already gone.

    ``known_policies`` are inline policy names the caller may have written; they are deleted even
    when the user is gone, because SeaweedFS keeps them for the next user of that name.
    ``verify`` sees the user before anything is touched and raises to refuse (not our user).
    Calls run one after the other: SeaweedFS serialises IAM requests, and measured on it, parallel
    lookups next to a mutation were slower than the same calls in sequence.
    """
    record = await get_user(iam, user)
    if record is None:
        await _delete_orphaned_policies(iam, user, known_policies)
        return False
    if verify is not None:
        verify(record)
    await delete_inline_policies(iam, user, [*await inline_policy_names(iam, user), *known_policies])
    await delete_access_keys(iam, user, await access_key_ids(iam, user))
    for attempt in range(2):
        try:
            await iam.delete_user(UserName=user)
        except Exception as error:
            if is_missing(error):
                return False
            if error_code(error) != "DeleteConflict":
                raise
            if attempt == 1:
                raise FailedPrecondition(
                    f"IAM user {user!r} still has attachments the driver did not make (login profile, group, "
                    "MFA device or certificate); remove them and the revoke will complete"
                ) from None
            # AWS refuses while anything is attached: managed policies someone attached, or a key
            # the user minted for itself after the listing. Clear those and try once more.
            await _detach_managed_policies(iam, user)
            await delete_access_keys(iam, user, await access_key_ids(iam, user))
        else:
            return True
    return True  # pragma: no cover - the loop always returns or raises


async def _delete_orphaned_policies(iam: Any, user: str, names: Iterable[str]) -> None:
    for name in set(names):
        try:
            await iam.delete_user_policy(UserName=user, PolicyName=name)
        except Exception as error:
            if not is_missing(error):
                raise
