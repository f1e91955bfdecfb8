"""Wire adapters, one sub-package per COSI API version, over the same core."""
