"""What an emulated sidecar run leaves behind: the calls, the Events, the objects, the verdict.

Rendered as text for people (``cosi-driver emulate``) and as JSON for tests and CI. Secret values
are masked unless asked for.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from cosi_driver.core.secret import MASK
from cosi_driver.testing.sidecar_formats_v1alpha2 import SECRET_KEYS as V1ALPHA2_SECRET_KEYS

SECRET_JSON_FIELDS = ("accessSecretKey", "acessToken")


@dataclass(frozen=True)
class Call:
    at: float  # seconds since the emulation started
    rpc: str
    subject: str  # the Kubernetes object on whose behalf the call was made
    attempt: int
    code: str  # gRPC code name, OK included
    message: str
    note: str = ""  # e.g. "duplicate (status write conflicted)"


@dataclass
class Event:
    """A Kubernetes Event as ``kubectl get events`` shows it; identical ones are counted."""

    type: str
    reason: str
    kind: str
    name: str
    namespace: str
    message: str
    count: int = 1


@dataclass(frozen=True)
class Problem:
    kind: str  # crashed | wedged | stuck | leaked | stale-secret | ignored
    text: str


@dataclass
class Record:
    endpoint: str
    driver_name: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    sidecar_log: list[str] = field(default_factory=list)
    provisioned: dict[str, Any] = field(default_factory=dict)  # the objects once everything was ready
    after_delete: dict[str, Any] = field(default_factory=dict)
    secret: str | None = None  # the Secret's BucketInfo JSON, exactly as the sidecar wrote it
    secret_v1alpha2: dict[str, str] | None = None  # what the v1alpha2 sidecar would write for the same answer
    problems: list[Problem] = field(default_factory=list)
    sidecar: str = "v0.2.2"  # which sidecar generation was emulated
    flat_secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # v1alpha2: Secret name -> data

    def event(self, reason: str, kind: str, name: str, namespace: str, message: str) -> None:
        for seen in self.events:
            if (seen.reason, seen.kind, seen.name, seen.namespace, seen.message) == (
                reason,
                kind,
                name,
                namespace,
                message,
            ):
                seen.count += 1
                return
        self.events.append(Event("Warning", reason, kind, name, namespace, message))

    @property
    def crashed(self) -> bool:
        return any(problem.kind == "crashed" for problem in self.problems)

    @property
    def wedged(self) -> bool:
        return any(problem.kind == "wedged" for problem in self.problems)

    @property
    def ok(self) -> bool:
        return not self.problems

    def masked_secret(self, show_secrets: bool) -> Any:
        if self.secret is None:
            return None
        document = json.loads(self.secret)
        if not show_secrets:
            for block in ("secretS3", "secretAzure"):
                values = document["spec"].get(block) or {}
                for key in SECRET_JSON_FIELDS:
                    if values.get(key):
                        values[key] = MASK
        return document

    def masked_flat_secrets(self, show_secrets: bool) -> dict[str, dict[str, str]]:
        return {name: _masked_flat(data, show_secrets) for name, data in self.flat_secrets.items()}

    def masked_secret_v1alpha2(self, show_secrets: bool) -> dict[str, str] | None:
        return None if self.secret_v1alpha2 is None else _masked_flat(self.secret_v1alpha2, show_secrets)

    def to_json(self, show_secrets: bool = False) -> dict[str, Any]:
        return {
            **verdict_json(self),
            "names": self.names,
            "calls": [asdict(call) for call in self.calls],
            "events": [asdict(event) for event in self.events],
            "sidecar_log": self.sidecar_log,
            "provisioned": self.provisioned,
            "after_delete": self.after_delete,
            "secret_bucket_info": self.masked_secret(show_secrets),
            "sidecar": self.sidecar,
            "secrets": self.masked_flat_secrets(show_secrets),
            "secret_v1alpha2": self.masked_secret_v1alpha2(show_secrets),
        }

    def to_text(self, show_secrets: bool = False) -> str:
        out = [f"Sidecar {self.sidecar} emulation against {self.endpoint}"]
        out += [f"  {kind}: {name}" for kind, name in self.names.items()]
        out.append("\nCalls the sidecar made:")
        for call in self.calls:
            note = f" ({call.note})" if call.note else ""
            detail = f"  {call.message}" if call.message else ""
            at = f"+{call.at:.3f}s"
            out.append(f"  {at:>9}  {call.rpc:<25} {call.subject} #{call.attempt}{note}  {call.code}{detail}")
        out.append("\nEvents (kubectl get events):")
        if not self.events:
            out.append("  (none)")
        for event in self.events:
            where = f"{event.namespace}/" if event.namespace else ""
            out.append(
                f"  {event.type}  {event.reason}  {event.kind} {where}{event.name}  x{event.count}  {event.message}"
            )
        if self.sidecar_log:
            out.append("\nSidecar log (errors without an Event):")
            out += [f"  {line}" for line in self.sidecar_log]
        if self.provisioned:
            out.append("\nWhat the user saw once provisioned:")
            out += [f"  {key}: {json.dumps(value, sort_keys=True)}" for key, value in self.provisioned.items()]
        secret = self.masked_secret(show_secrets)
        if secret is not None:
            out.append("  Secret key BucketInfo: " + json.dumps(secret, separators=(",", ":")))
        for name, data in self.masked_flat_secrets(show_secrets).items():
            out.append(f"  Secret {name}:")
            out += [f"    {key}={value}" for key, value in sorted(data.items())]
        flat = self.masked_secret_v1alpha2(show_secrets)
        if flat is not None:
            out.append("  The v1alpha2 sidecar would write instead (one Secret per bucket):")
            out += [f"    {key}: {value}" for key, value in flat.items()]
        if self.after_delete:
            out.append("\nAfter deletion:")
            out += [f"  {key}: {value}" for key, value in self.after_delete.items()]
        out.append("")
        if self.ok:
            out.append("Verdict: OK - a clean BucketClaim/BucketAccess lifecycle")
        for problem in self.problems:
            out.append(f"Verdict: {problem.kind.upper()} - {problem.text}")
        return "\n".join(out)


def _masked_flat(data: dict[str, str], show_secrets: bool) -> dict[str, str]:
    """A v1alpha2 Secret's data with its secret values masked (unless asked to show them)."""
    if show_secrets:
        return data
    return {key: MASK if key in V1ALPHA2_SECRET_KEYS and value else value for key, value in data.items()}


def verdict_json(report: Any) -> dict[str, Any]:
    """The head of a JSON report, the same for one claim and for a burst: where, who, and the verdict."""
    return {
        "endpoint": report.endpoint,
        "driver_name": report.driver_name,
        "ok": report.ok,
        "crashed": report.crashed,
        "wedged": report.wedged,
        "problems": [asdict(problem) for problem in report.problems],
    }
