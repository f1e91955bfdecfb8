"""Every check module, imported in the order the checks run (later checks use earlier results)."""

import importlib

ORDER = (
    "identity",
    "buckets",
    "access",
    "concurrency",
    "robustness",
    "s3",
    "azure",
    "v1alpha2",
    "v1alpha2_s3",
    "v1alpha2_azure",
)

for _module in ORDER:
    importlib.import_module(f"cosi_driver.testing.conformance.{_module}")
