"""The UNIX socket's life: its path checks, its permissions from the first instant, its removal.

grpcio creates the socket file inside ``add_insecure_port`` with the process umask and never
chmods it, and it silently unlinks whatever is at the path, a live server's socket included.
So before binding we refuse a live socket and any non-socket file, and remove a stale socket;
while binding we hold a umask that makes the kernel create the file with at most the configured
mode, so there is no chmod-after-bind window. When the socket must belong to another user or
group, it is created owner-only, chowned, then widened to the configured mode: at no instant can
anyone outside the configured owner and group connect.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class SocketError(RuntimeError):
    """The endpoint cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class SocketSpec:
    path: Path
    mode: int = 0o660
    uid: int | None = None
    gid: int | None = None

    @property
    def address(self) -> str:
        return f"unix://{self.path}"

    @property
    def needs_chown(self) -> bool:
        return (self.uid is not None and self.uid != os.geteuid()) or (
            self.gid is not None and self.gid != os.getegid()
        )


_umask_lock = threading.Lock()


@contextlib.contextmanager
def creation_mode(mode: int) -> Iterator[None]:
    """Hold a umask so that files created meanwhile get at most ``mode``.

    The umask is per process; the lock keeps two of our own binds from interleaving, and the
    server binds before it serves anything, so no other file creation of ours runs concurrently.
    """
    with _umask_lock:
        previous = os.umask(0o777 & ~mode)
        try:
            yield
        finally:
            os.umask(previous)


def is_live(path: Path, timeout: float = 1.0) -> bool:
    """True when something accepts connections on the socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as error:
        if error.errno in (errno.ECONNREFUSED, errno.ENOENT):
            return False
        raise SocketError(f"cannot probe the existing socket {path}: {error.strerror}") from None
    finally:
        probe.close()
    return True


def prepare_path(path: Path) -> None:
    """Make ``path`` ready for a new socket: parent present, nothing live or foreign in the way."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SocketError(
            f"cannot create the socket directory {path.parent}: {error.strerror}. "
            "Fix: create it, or point COSI_ENDPOINT at a writable directory"
        ) from None
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SocketError(
            f"{path} exists and is not a socket; refusing to replace it. "
            "Fix: remove it, or point COSI_ENDPOINT elsewhere"
        )
    if is_live(path):
        raise SocketError(
            f"another server is already listening on {path}; refusing to take over its socket. "
            "Fix: stop the other driver, or point COSI_ENDPOINT elsewhere"
        )
    path.unlink(missing_ok=True)  # stale: left behind by a process that died


def finish_ownership(spec: SocketSpec) -> None:
    """Give the socket its configured owner and group, then its configured mode."""
    if spec.needs_chown:
        os.chown(spec.path, -1 if spec.uid is None else spec.uid, -1 if spec.gid is None else spec.gid)
    os.chmod(spec.path, spec.mode)


def bind_mode(spec: SocketSpec) -> int:
    """The mode the socket is created with: owner-only while its ownership is still to change."""
    return spec.mode & 0o700 if spec.needs_chown else spec.mode


def remove_if_ours(path: Path, inode: int | None) -> None:
    """Remove the socket at ``path`` unless it has been replaced by someone else's."""
    if inode is None:
        return
    with contextlib.suppress(FileNotFoundError):
        if path.lstat().st_ino == inode:
            path.unlink()
