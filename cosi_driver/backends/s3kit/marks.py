"""The core's ownership mark, kept with the bucket as a bucket tag.

The core decides ownership from two things: this mark and its own intent record. Where the server
can tag buckets (AWS, SeaweedFS, Ceph RGW all can) the mark travels with the bucket, so another
driver instance with a fresh state store still recognises its buckets. Where tagging is not
implemented, :func:`write_mark` reports False and the intent record alone is the mark.
"""

from __future__ import annotations

from typing import Any

from cosi_driver.backends.s3kit.errors import error_code, http_status, is_missing, is_unsupported
from cosi_driver.core.backend import FoundBucket

#: Tag key of the mark. Tag keys allow letters, digits, spaces and ``+ - = . _ : / @``.
MARK_TAG = "cosi-driver.objectstorage.k8s.io/owner"
_NO_TAGS = frozenset({"NoSuchTagSet", "NoSuchTagSetError", "NoSuchTagging"})


async def read_mark(s3: Any, bucket: str) -> FoundBucket | None:
    """The bucket with the mark it carries, or None when it does not exist. One round trip.

    A bucket whose tags the admin may not read (another account's bucket on AWS) exists without
    our mark, which makes it foreign unless the core holds an intent record for it.
    """
    try:
        answer = await s3.get_bucket_tagging(Bucket=bucket)
    except Exception as error:
        code = error_code(error)
        if code == "NoSuchBucket":
            return None
        if code in _NO_TAGS:
            return FoundBucket(mark=None)
        if code == "AccessDenied" or is_unsupported(error):
            return await _exists(s3, bucket)
        raise
    for tag in answer.get("TagSet", []):
        if tag.get("Key") == MARK_TAG:
            return FoundBucket(mark=str(tag.get("Value")))
    return FoundBucket(mark=None)


async def _exists(s3: Any, bucket: str) -> FoundBucket | None:
    try:
        await s3.head_bucket(Bucket=bucket)
    except Exception as error:
        if is_missing(error):
            return None
        if http_status(error) == 403:
            return FoundBucket(mark=None)
        raise
    return FoundBucket(mark=None)


async def write_mark(s3: Any, bucket: str, mark: str, *, fresh: bool = False) -> bool:
    """Tag ``bucket`` with ``mark``, keeping its other tags; False if the server cannot tag buckets.

    ``fresh``: the bucket was created just now and has no tags to keep (saves a round trip).
    """
    try:
        current: list[dict[str, str]] = []
        if not fresh:
            try:
                current = (await s3.get_bucket_tagging(Bucket=bucket)).get("TagSet", [])
            except Exception as error:
                if error_code(error) not in _NO_TAGS:
                    raise
        tags = [tag for tag in current if tag.get("Key") != MARK_TAG]
        tags.append({"Key": MARK_TAG, "Value": mark})
        await s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})
    except Exception as error:
        if is_unsupported(error):
            return False
        raise
    return True
