"""Which buckets the driver may take as *existing* (brownfield) buckets: the operator's allow-list.

The driver never adopts what it did not make, with one exception an operator opts into per
backend: bucket names matching a glob pattern of the backend's ``existingBuckets`` setting may be
taken with DriverGetExistingBucket (v1alpha2) or named verbatim as a v1alpha1 static Bucket's
``bucket_id``, and then be granted. Such a bucket carries no mark of ours and is never deleted or
purged. The setting lives beside a backend's ``type`` and ``config`` (environment:
``COSI_DRIVER_BACKEND_EXISTING_BUCKETS``, comma-separated), so every backend has it without
declaring it; it is off (empty) by default.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from cosi_driver.core.values import ValueProblem

#: The setting's name, in YAML (``backends.<name>.existingBuckets``) and in messages.
SETTING = "existingBuckets"
ENVIRONMENT = "COSI_DRIVER_BACKEND_EXISTING_BUCKETS"


@dataclass(frozen=True)
class ExistingBuckets:
    """Glob patterns (``fnmatch``, case-sensitive) of the bucket names an operator allows."""

    patterns: tuple[str, ...] = ()

    def allows(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.patterns)

    def describe(self) -> str:
        return ", ".join(self.patterns) if self.patterns else "none (the default)"

    @staticmethod
    def parse(values: Iterable[object]) -> ExistingBuckets:
        patterns = []
        for value in values:
            if not isinstance(value, str) or not value.strip():
                raise ValueProblem(f"must be a list of non-empty bucket name patterns, not {value!r}")
            patterns.append(value.strip())
        return ExistingBuckets(tuple(patterns))

    @staticmethod
    def from_text(text: str) -> ExistingBuckets:
        """The environment's form: patterns separated by commas."""
        return ExistingBuckets.parse(part for part in text.split(",") if part.strip())


NONE = ExistingBuckets()
