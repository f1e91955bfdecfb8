"""Logging (with redaction), and later tracing, metrics and health."""
