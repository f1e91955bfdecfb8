"""Reusable test suites: the backend acceptance suite and the driver conformance checks."""
