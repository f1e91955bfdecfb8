"""Crash-safe small-file writes for everything the driver keeps on disk.

A write goes to a temporary file created 0600 in the same directory, is fsynced, renamed over
the target and the directory is fsynced, so after a crash a reader sees either the old or the
new content, never a torn file, and never a window in which a secret is world-readable.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NAME_MAX = 255  # bytes in one file name on ext4, xfs, btrfs and tmpfs
_TMP_STEM_BYTES = 64  # what a temporary name keeps of its target's name


def _tmp_prefix(name: str) -> str:
    """The temporary file's prefix: the target's name cut to fit, so a long target still gets one."""
    stem = name.encode("utf-8", "surrogateescape")[:_TMP_STEM_BYTES].decode("utf-8", "ignore")
    return f".{stem}."


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _staged(path: Path, data: bytes, mode: int) -> Iterator[str]:
    """``data`` written and fsynced to a private temporary file beside ``path``; yields its name.

    The caller moves it into place (rename or link); whatever is left is removed afterwards.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=_tmp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        yield tmp_name
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    with _staged(path, data, mode) as tmp_name:
        os.replace(tmp_name, path)
    fsync_dir(path.parent)


def atomic_write_json(path: Path, document: Any, mode: int = 0o600) -> None:
    atomic_write_bytes(path, _json_bytes(document), mode)


def create_bytes(path: Path, data: bytes, mode: int = 0o600) -> bool:
    """Write ``data`` to ``path`` only if no file has that name; False when one had (first writer wins).

    The content is written and fsynced under a temporary name and then hard-linked into place: a
    link never replaces an existing file, so two processes creating one path at once cannot both
    win, and a reader never sees a partial file.
    """
    with _staged(path, data, mode) as tmp_name:
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False
    fsync_dir(path.parent)
    return True


def create_json(path: Path, document: Any, mode: int = 0o600) -> bool:
    """:func:`create_bytes` for a JSON document."""
    return create_bytes(path, _json_bytes(document), mode)


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, indent=1).encode()


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None


def remove_file(path: Path) -> bool:
    """Remove ``path`` durably; False when it was already gone."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
