"""The driver process's settings: environment variables, overridden by ``serve`` flags.

The :class:`Settings` dataclass declares every variable on its field (flag, kind, default and
meaning), with the same declaration mechanism as backend settings and class parameters
(:mod:`cosi_driver.core.declare`); it drives parsing, the ``--help`` text and the settings table in
docs/configuration.md, so they cannot drift apart. Every problem is reported at start-up naming the
variable and the fix.

``COSI_ENDPOINT`` is the spec's; ``X_COSI_ENDPOINT_*`` are gocosi's names for the socket's mode
and owner. The spec reserves the bare ``COSI_`` prefix for itself; our own settings use the
``COSI_DRIVER_`` namespace beneath it.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cosi_driver.core.declare import Declared, FieldProblem, build, declare, declared
from cosi_driver.core.driver import DEFAULT_BACKEND_TIMEOUT, DEFAULT_HEALTH_TIMEOUT
from cosi_driver.core.kinds import BOOLEAN, PATH, Kind, integer, one_of, seconds
from cosi_driver.core.secret import Secret
from cosi_driver.core.values import ConfigProblem, ValueProblem, parse_driver_name, parse_octal_mode

DEFAULT_ENDPOINT = "unix:///var/lib/cosi/cosi.sock"
DEFAULT_DRIVER_NAME = "cosi-driver.objectstorage.local"

#: The COSI API versions ``serve`` can offer on its socket, in the order they are registered.
API_VERSIONS = ("v1alpha1", "v1alpha2")


def _parse_endpoint(text: str) -> Path:
    if text.startswith("unix://"):
        path = text[len("unix://") :]
        if not path.startswith("/"):
            raise ValueProblem(f"must be unix:///absolute/path.sock (three slashes), not {text!r}")
    elif text.startswith("unix:"):
        path = text[len("unix:") :]
    else:
        raise ValueProblem(f"must be a UNIX socket endpoint such as {DEFAULT_ENDPOINT}, not {text!r}")
    if not path.endswith(".sock"):
        raise ValueProblem(f"must end with .sock, as the COSI spec requires, not {text!r}")
    return Path(os.path.abspath(path))


def _parse_user(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise ValueProblem(f"names no user on this system: {text!r}; use a user name or a numeric uid") from None


def _parse_group(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ValueProblem(f"names no group on this system: {text!r}; use a group name or a numeric gid") from None


def _parse_http_addr(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueProblem(f"must be host:port such as 127.0.0.1:8080 or :8080 (every interface), not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if any(c.isspace() or c in "/[]" for c in host):
        raise ValueProblem(f"has an invalid host part {host!r}")
    return host, int(port)


def _parse_apis(text: str) -> tuple[str, ...]:
    """A comma-separated subset of :data:`API_VERSIONS`; one sidecar generation per cluster needs one."""
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in API_VERSIONS]
    if unknown or not chosen:
        named = f"unknown API {', '.join(repr(u) for u in unknown)}" if unknown else "names no API"
        raise ValueProblem(f"{named}; choose from {', '.join(API_VERSIONS)} (comma-separated), not {text!r}")
    return tuple(version for version in API_VERSIONS if version in chosen)


ENDPOINT: Kind[Path] = Kind("unix:///path/to/socket.sock", _parse_endpoint, render=lambda path: f"unix://{path}")
MODE: Kind[int] = Kind("an octal mode such as 0660", parse_octal_mode, render=lambda mode: f"{mode:04o}")
USER: Kind[int] = Kind("a user name or numeric uid", _parse_user)
GROUP: Kind[int] = Kind("a group name or numeric gid", _parse_group)
DRIVER_NAME: Kind[str] = Kind("a DNS-style name such as objectstorage.example.com", parse_driver_name)
HTTP_ADDR: Kind[tuple[str, int]] = Kind("host:port, e.g. :8080 or 127.0.0.1:8080", _parse_http_addr)
APIS: Kind[tuple[str, ...]] = Kind(
    "a comma-separated list of " + " and ".join(API_VERSIONS), _parse_apis, render=",".join
)


@dataclass(frozen=True)
class Settings:
    """Every process setting, declared once: its variable, flag, kind, default and meaning.

    The declarations drive :func:`load_settings`, the ``serve`` flags and ``--help``, and the
    settings table in docs/configuration.md. The documented default is the default rendered by
    its kind (``0660``, ``30``), so the table shows what an operator would write.
    """

    # fmt: off
    endpoint: Path = declare(ENDPOINT, env="COSI_ENDPOINT", flag="--endpoint",
        default=ENDPOINT.from_text(DEFAULT_ENDPOINT),
        doc="UNIX socket the driver listens on; the provisioner sidecar connects to it.")
    socket_mode: int = declare(MODE, env="X_COSI_ENDPOINT_PERMS", flag="--socket-perms", default=0o660,
        doc="Mode of the socket file, set from the instant it exists.")
    socket_uid: int | None = declare(USER, env="X_COSI_ENDPOINT_USER", flag="--socket-user", default=None,
        doc="Owner of the socket (name or uid); default: the driver's own user.")
    socket_gid: int | None = declare(GROUP, env="X_COSI_ENDPOINT_GROUP", flag="--socket-group", default=None,
        doc="Group of the socket (name or gid); give the sidecar's group here with mode 0660.")
    apis: tuple[str, ...] = declare(APIS, env="COSI_DRIVER_APIS", flag="--apis", default=API_VERSIONS,
        doc="COSI API versions served on the one socket: v1alpha1 (the v0.2.2 sidecar), v1alpha2 (the "
        "v1alpha2 sidecar), or both.")
    driver_name: str = declare(DRIVER_NAME, env="COSI_DRIVER_NAME", flag="--name", default=DEFAULT_DRIVER_NAME,
        doc="Name returned by DriverGetInfo; BucketClasses select the driver by it. Checked by the "
        "stricter v1alpha2 rule (at most 63 characters, lowercase DNS labels starting with a letter).")
    config_file: Path | None = declare(PATH, env="COSI_DRIVER_CONFIG", flag="--config", default=None,
        doc="YAML file declaring one or more backends (see Configuration file). Mutually exclusive "
        "with COSI_DRIVER_BACKEND.")
    backend_type: str | None = declare(Kind("a backend type", str), env="COSI_DRIVER_BACKEND", flag="--backend",
        default=None,
        doc="Type of the single backend when no config file is given; one of the two is required (serve "
        "refuses to start without a backend). Its settings come from COSI_DRIVER_BACKEND_<SETTING> variables.")
    state_dir: Path = declare(PATH, env="COSI_DRIVER_STATE_DIR", flag="--state-dir",
        default=Path("/var/lib/cosi-driver/state"),
        doc="Directory of the driver's file state store (ownership records, stored credentials).")
    master_key_file: Path | None = declare(PATH, env="COSI_DRIVER_MASTER_KEY_FILE", flag="--master-key-file",
        default=None,
        doc="File holding the master key from which backends that choose their own keys derive "
        "credentials (at least 32 bytes). Required only by such backends.")
    master_key: Secret | None = declare(Kind("a secret of at least 32 bytes", Secret), env="COSI_DRIVER_MASTER_KEY",
        default=None, doc="The master key itself, for local runs; prefer COSI_DRIVER_MASTER_KEY_FILE.")
    master_key_version: int = declare(integer(1), env="COSI_DRIVER_MASTER_KEY_VERSION", flag="--master-key-version",
        default=1, doc="Version of the master key, recorded in account ids; raise it when the key is rotated.")
    operation_timeout: float = declare(seconds(0.1), env="COSI_DRIVER_OPERATION_TIMEOUT", flag="--operation-timeout",
        default=DEFAULT_BACKEND_TIMEOUT,
        doc="Seconds any single backend operation may take before the call fails with DEADLINE_EXCEEDED "
        "(the sidecar sets no deadline of its own).")
    shutdown_grace: float = declare(seconds(0.0), env="COSI_DRIVER_SHUTDOWN_GRACE", flag="--shutdown-grace",
        default=10.0, doc="Seconds in-flight calls may take to finish after SIGTERM/SIGINT.")
    http_addr: tuple[str, int] | None = declare(HTTP_ADDR, env="COSI_DRIVER_HTTP_ADDR", flag="--http-addr",
        default=None,
        doc="host:port of the HTTP endpoint serving /livez, /readyz and /metrics (Prometheus); :PORT listens on "
        "every interface, as kubelet probes need. Unset: no HTTP server.")
    health_timeout: float = declare(seconds(0.1), env="COSI_DRIVER_HEALTH_TIMEOUT", flag="--health-timeout",
        default=DEFAULT_HEALTH_TIMEOUT,
        doc="Seconds each backend has to answer a readiness check before it counts as not ready.")
    grpc_reflection: bool = declare(BOOLEAN, env="COSI_DRIVER_GRPC_REFLECTION", flag="--grpc-reflection",
        default=False,
        doc="Serve gRPC server reflection on the COSI socket (for grpcurl). Needs the reflection extra.")
    log_level: str = declare(one_of("debug", "info", "warning", "error"), env="COSI_DRIVER_LOG_LEVEL",
        flag="--log-level", default="info", doc="Log level.")
    log_format: str = declare(one_of("auto", "json", "console"), env="COSI_DRIVER_LOG_FORMAT", flag="--log-format",
        default="auto", doc="json, console, or auto (console on a terminal, JSON otherwise).")
    # fmt: on


#: The declarations of :class:`Settings`, in order (the ``serve`` flags, ``--help`` and the docs table).
SETTINGS: tuple[Declared, ...] = declared(Settings)


def _env(field: Declared) -> str:
    return field.env


def load_settings(environ: Mapping[str, str], overrides: Mapping[str, str] | None = None) -> Settings:
    """Parse every setting; ``overrides`` maps variable names to flag values given on the command line.

    An empty variable counts as unset, so its default applies.
    """
    merged = {**environ, **(overrides or {})}
    given = {field.env: merged[field.env] for field in SETTINGS if merged.get(field.env)}
    try:
        return build(Settings, given, key=_env, from_env=True)
    except FieldProblem as problem:
        field = problem.field
        assert field is not None  # only known variables are given, and every setting has a default
        source = field.flag if overrides and field.env in overrides else field.env
        also = f" (or {field.flag})" if field.flag else ""
        raise ConfigProblem(source, problem.problem, f"set {field.env}{also} to {field.kind.form}") from None
