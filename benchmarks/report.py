"""How benchmark figures are printed: one aligned line each, and kept for a closing summary."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    figures: list[tuple[str, str]] = field(default_factory=list)

    def figure(self, label: str, value: str, note: str = "") -> None:
        self.figures.append((label, value))
        print(f"  {label:<58} {value:>16}  {note}".rstrip(), flush=True)

    def skip(self, label: str, reason: str) -> None:
        print(f"  {label:<58} {'skipped':>16}  {reason}", flush=True)
