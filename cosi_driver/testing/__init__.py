"""Reusable test suites: the backend acceptance suite and the driver conformance checks.

Public: acceptance, conformance, probes, client. A backend's own tests import these; each
states its supported names in ``__all__``, with the same promise as :mod:`cosi_driver.sdk`.

Internal: emulator, fuzz, fuzz_v1alpha2, sidecar_formats, sidecar_formats_v1alpha2, azure. The machinery
behind ``cosi-driver emulate`` and the checks; use the commands, not the modules.
"""
