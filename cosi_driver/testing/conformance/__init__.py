"""``cosi-driver conformance``: a black-box suite for any COSI v1alpha1 driver endpoint.

Like csi-sanity for CSI: it calls a running driver the way the provisioner sidecar does and checks
the spec's rules and what the real v0.2.2 sidecar needs (see ``../shared/cosi/SIDECAR.md``):
DriverGetInfo name rules, idempotent Create/Grant/Revoke/Delete, ALREADY_EXISTS only for a real
conflict and never from Grant, stable credentials, the credential map's format, required fields,
concurrent identical calls, a bounded sweep of malformed input, and (``--s3-check``) that the
credentials work, keep to their access mode and stop working when revoked.

From Python::

    from cosi_driver.testing.conformance import Options, run
    report = await run(Options(endpoint="unix:///run/cosi.sock", bucket_params={"tier": "gold"}))
    assert report.passed, report.summary_line()
"""

from cosi_driver.testing.conformance.framework import CHECKS, CheckResult, Options, Outcome
from cosi_driver.testing.conformance.runner import Report, run, selected

__all__ = ["CHECKS", "CheckResult", "Options", "Outcome", "Report", "run", "selected"]
