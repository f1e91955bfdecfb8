"""What the driver tells its operators: logs (with redaction), tracing, metrics, readiness, probes.

``logging`` and ``health`` are always loaded; ``telemetry`` decides from the environment whether
``tracing``, ``metrics`` and ``operations`` (which import opentelemetry) are loaded at all.

Internal: what operators rely on is the log fields, metric names and span attributes
(docs/observability.md), not these modules.
"""
