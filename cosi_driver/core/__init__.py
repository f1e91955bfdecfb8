"""The COSI semantics once for every backend: types, errors, validation, routing, idempotency.

Internal: no compatibility promise; backend authors import :mod:`cosi_driver.sdk` instead.
"""
