"""What a bucket still holds, and emptying it completely.

"Empty" must mean empty on every server: no current objects, no old versions, no delete markers
and no unfinished multipart uploads. Some servers (SeaweedFS) delete a versioned bucket, or one
holding only unfinished uploads, *with its data* when asked to, so a backend checks emptiness
itself before DeleteBucket instead of trusting BucketNotEmpty.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cosi_driver.backends.s3kit.errors import error_code, is_missing, is_unsupported
from cosi_driver.core.errors import FailedPrecondition

_PAGE = 1000  # DeleteObjects takes at most 1000 keys
_ABORT_CONCURRENCY = 16
_MAX_UPLOAD_ROUNDS = 100  # a server that acknowledges aborts without doing them must not loop us forever


async def find_content(s3: Any, bucket: str) -> str | None:
    """Why ``bucket`` is not empty ("it holds objects", ...), or None when it holds nothing.

    A missing bucket holds nothing. The two listings run one after the other: on SeaweedFS (the
    server this is measured on) concurrent requests of one client are served no faster than serial
    ones, and the serial form is simpler.
    """
    try:
        versions = await _first_versions(s3, bucket)
        uploads = await s3.list_multipart_uploads(Bucket=bucket, MaxUploads=1)
    except Exception as error:
        if is_missing(error):
            return None
        raise
    listed = versions.get("Versions") or versions.get("Contents") or []
    if any(item.get("IsLatest", True) for item in listed):
        return "it holds objects"
    if listed:
        return "it holds old object versions"
    if versions.get("DeleteMarkers"):
        return "it holds delete markers of deleted objects"
    if uploads.get("Uploads"):
        return "it holds unfinished multipart uploads"
    return None


async def _first_versions(s3: Any, bucket: str) -> dict[str, Any]:
    try:
        return dict(await s3.list_object_versions(Bucket=bucket, MaxKeys=1))
    except Exception as error:
        if not is_unsupported(error):
            raise
    # A server without versioning support: its objects are all there is.
    return dict(await s3.list_objects_v2(Bucket=bucket, MaxKeys=1))


async def purge(s3: Any, bucket: str) -> None:
    """Delete every object version, delete marker and unfinished upload in ``bucket``.

    Each round lists from the start again, because deleting changes what a continuation token
    points at. A missing bucket is already purged.
    """
    try:
        while await _delete_one_page(s3, bucket):
            pass
        await _abort_uploads(s3, bucket)
    except Exception as error:
        if is_missing(error) and error_code(error) != "NoSuchUpload":
            return
        raise


async def _delete_one_page(s3: Any, bucket: str) -> bool:
    """Delete up to one page of versions and markers; False when there was nothing left."""
    try:
        listing = await s3.list_object_versions(Bucket=bucket, MaxKeys=_PAGE)
        entries = [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
        keys = [{"Key": item["Key"], "VersionId": item["VersionId"]} for item in entries]
    except Exception as error:
        if not is_unsupported(error):
            raise
        listing = await s3.list_objects_v2(Bucket=bucket, MaxKeys=_PAGE)
        keys = [{"Key": item["Key"]} for item in listing.get("Contents", [])]
    if not keys:
        return False
    for start in range(0, len(keys), _PAGE):
        answer = await s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + _PAGE], "Quiet": True})
        failed = [item for item in answer.get("Errors", []) if item.get("Code") not in ("NoSuchKey", "NoSuchVersion")]
        if failed:
            codes = sorted({str(item.get("Code")) for item in failed})
            raise PurgeIncomplete(bucket, f"{len(failed)} object(s) could not be deleted ({', '.join(codes)})")
    return True


async def _abort_uploads(s3: Any, bucket: str) -> None:
    limit = asyncio.Semaphore(_ABORT_CONCURRENCY)

    async def abort(upload: dict[str, Any]) -> None:
        async with limit:
            try:
                await s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            except Exception as error:
                if error_code(error) != "NoSuchUpload":
                    raise

    for _ in range(_MAX_UPLOAD_ROUNDS):
        listing = await s3.list_multipart_uploads(Bucket=bucket)
        uploads = listing.get("Uploads") or []
        if not uploads:
            return
        await asyncio.gather(*(abort(upload) for upload in uploads))
    raise PurgeIncomplete(bucket, "unfinished multipart uploads remain after aborting them")


class PurgeIncomplete(FailedPrecondition):
    """The server reported per-key failures while emptying a bucket; counts and codes only."""

    def __init__(self, bucket: str, detail: str) -> None:
        super().__init__(f"bucket {bucket!r} could not be emptied: {detail}; the deletion will be retried")
