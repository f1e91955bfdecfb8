"""The COSI semantics once for every backend: types, errors, validation, routing, idempotency."""
