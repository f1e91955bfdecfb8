"""structlog set-up: JSON lines by default, a console renderer on a TTY, and redaction.

Every event passes :func:`redact` before it is rendered: values of type
:class:`~cosi_driver.core.secret.Secret`, and values under keys that look like secrets
(``secret``, ``password``, ``token``, ``accessSecretKey``...), are replaced by ``***`` at any
depth. Known secret values registered with :func:`register_secret` (backend admin keys read from
configuration) are also scrubbed out of free text, such as an exception message from a storage
SDK that echoes a request; so is the value in any ``secret_key=...`` / ``"password": "..."`` pair
written into free text, because such text (a rendered traceback, a library's log line) is where
an unknown secret would surface. Redaction runs after tracebacks are rendered, and on the
standard library's log records too.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, TextIO

import structlog

from cosi_driver.core.secret import MASK, Secret

_SENSITIVE_WORDS = (
    r"secret|password|passwd|token|credential|private[_-]?key|master[_-]?key|api[_-]?key|authorization"
    r"|signature|sas"
)
_SECRET_KEY = re.compile(f"({_SENSITIVE_WORDS})", re.IGNORECASE)
# key=value, key: value, "key": "value", 'key'='value' in free text, where the key looks secret.
_SECRET_PAIR = re.compile(
    rf"""((?:{_SENSITIVE_WORDS})[\w.-]*["']?\s*[:=]\s*(?:b?["'])?)([^\s"',;&)}}\]]+)""",
    re.IGNORECASE,
)
_known_secrets: set[str] = set()
_known_lock = threading.Lock()
_MIN_SCRUB_LENGTH = 8  # shorter values would mask ordinary words


def register_secret(value: Secret | str) -> None:
    """Scrub this exact value from every future log line, wherever it appears."""
    text = value.reveal() if isinstance(value, Secret) else value
    if len(text) >= _MIN_SCRUB_LENGTH:
        with _known_lock:
            _known_secrets.add(text)


def _scrub_text(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if _SECRET_KEY.search(text):
        text = _SECRET_PAIR.sub(lambda match: match.group(1) + MASK, text)
    return text


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether a field name looks like it holds a secret. Field names repeat from event to event
    (every RPC logs the same ones), so the answer is remembered: this runs on every log line."""
    return bool(key) and _SECRET_KEY.search(key) is not None


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, Secret):
        return MASK
    if _secret_key(key) and not isinstance(value, (bool, int, float, type(None))):
        return MASK
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value("", item) for item in value]
    if isinstance(value, str):
        return _scrub_text(value)
    return value


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every field, at any depth."""
    for key in list(event):
        event[key] = _redact_value(key, event[key])
    return event


def configure(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None, extra_processors: Sequence[Any] = ()
) -> None:
    """Configure structlog (and route stdlib logging through it) once, at start-up.

    ``extra_processors`` run before redaction; tracing adds the trace and span ids with one.
    """
    out = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if fmt == "console"
        else structlog.processors.JSONRenderer(sort_keys=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *extra_processors,
        structlog.processors.format_exc_info,
        redact,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries (grpc, botocore, kubernetes) log through the standard library; render those
    # lines the same way, through the same redaction.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.getLevelNamesMapping()[level.upper()], logging.INFO))
