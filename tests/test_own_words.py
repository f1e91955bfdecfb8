"""Everything tracked in this repository is our own text: no passages from the upstream COSI texts, no binaries.

Upstream prose is the comments of both upstream protos and the prose of both spec.md files (outside
code fences, plus the ``//`` comments inside them). Declarations are not prose: our protos must
repeat upstream's names and numbers to keep the wire identical. Text is compared as lowercase words
with punctuation and whitespace dropped, so re-wrapping or re-punctuating a copied sentence does
not hide it. Generated stubs are skipped: protoc copies our own proto comments into them.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import unavailable
from tests.support import PROJECT_ROOT, SHARED

RUN = 12  # consecutive words that make a copied passage
UPSTREAM = SHARED / "cosi"
UPSTREAM_TEXTS = ("proto/cosi.v1alpha1.proto", "proto/cosi.v1alpha2.proto", "spec.v1alpha1.md", "spec.v1alpha2.md")
GENERATED = re.compile(r"cosi_driver/spec/v1alpha\d+/cosi_pb2(_grpc)?\.pyi?$")
BINARY_MAGIC = {b"\x7fELF": "ELF", b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"\xfd7zXZ\x00": "xz"}


def words(text: str) -> list[str]:
    """Lowercase words; bracketed character classes such as ``[a-z0-9A-Z]`` count as punctuation."""
    return re.findall(r"[a-z0-9]+", re.sub(r"\[[^\]\s]*\]", " ", text).lower())


def prose(path: Path) -> str:
    """The prose of an upstream text: comments of a proto; a markdown file minus its code (but its code comments)."""
    kept: list[str] = []
    in_code = path.suffix == ".proto"
    for line in path.read_text().splitlines():
        if path.suffix == ".md" and line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            kept.append(line.partition("//")[2])
        else:
            kept.append(line)
    return "\n".join(kept)


def runs(sequence: list[str]) -> Iterator[tuple[int, tuple[str, ...]]]:
    for start in range(len(sequence) - RUN + 1):
        yield start, tuple(sequence[start : start + RUN])


@pytest.fixture(scope="module")
def upstream_runs() -> set[tuple[str, ...]]:
    missing = [name for name in UPSTREAM_TEXTS if not (UPSTREAM / name).exists()]
    if missing:
        unavailable(f"upstream texts not found under {UPSTREAM}: {missing} (set COSI_SHARED_DIR to the shared kit)")
    return {run for name in UPSTREAM_TEXTS for _, run in runs(words(prose(UPSTREAM / name)))}


def tracked() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True).stdout
    return [PROJECT_ROOT / name for name in listed.decode().split("\0") if name]


def copied_passages(text: str, upstream_runs: set[tuple[str, ...]]) -> list[str]:
    """Each maximal stretch of ``text`` whose every RUN-word window occurs in upstream prose."""
    sequence = words(text)
    passages: list[str] = []
    end = -1  # one past the last word of the passage being grown
    first = 0
    for start, run in runs(sequence):
        if run not in upstream_runs:
            continue
        if start > end:
            if end >= 0:
                passages.append(" ".join(sequence[first:end]))
            first = start
        end = start + RUN
    if end >= 0:
        passages.append(" ".join(sequence[first:end]))
    return passages


def test_the_check_finds_a_reworded_copy(upstream_runs: set[tuple[str, ...]]) -> None:
    """Re-wrapped, re-cased and re-punctuated, an upstream comment is still found; a short quote is not."""
    line = next(p for p in prose(UPSTREAM / UPSTREAM_TEXTS[1]).splitlines() if len(words(p)) >= RUN)
    disguised = "# " + "\n#   ".join(w.upper() + ";" for w in words(line))
    assert copied_passages(f"ours.\n{disguised}\nours again.", upstream_runs) == [" ".join(words(line))]
    assert copied_passages(" ".join(words(line)[: RUN - 1]), upstream_runs) == []


def test_no_tracked_file_repeats_upstream_prose(upstream_runs: set[tuple[str, ...]]) -> None:
    found: list[str] = []
    for path in tracked():
        name = str(path.relative_to(PROJECT_ROOT))
        if GENERATED.search(name) or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # not text; the binary check below names it if it is an archive or executable
        found += [f"{name}: {passage!r}" for passage in copied_passages(text, upstream_runs)]
    assert found == [], "passages copied from the upstream COSI texts:\n" + "\n".join(found)


def test_no_tracked_file_is_a_binary_or_archive() -> None:
    found = []
    for path in tracked():
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            head = handle.read(8)
        found += [
            f"{path.relative_to(PROJECT_ROOT)} ({kind})"
            for magic, kind in BINARY_MAGIC.items()
            if head.startswith(magic)
        ]
    assert found == []
