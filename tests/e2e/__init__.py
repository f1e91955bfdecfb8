"""End to end: the upstream COSI controller and sidecar drive ``cosi-driver serve`` through kubectl.

The machinery is plain Python (no pytest) so that ``benchmarks/e2e.py`` reuses it:
``kube`` (the kit's cluster and kubectl), ``manifests`` (deploy/examples, renamed per scenario),
``waits`` (conditions with deadlines, the claim-race workaround), ``profiles`` (one per backend),
``stack`` (cluster + our driver + the sidecar). The pytest fixtures are in
``tests/fixtures/k8s.py`` and ``tests/e2e/conftest.py``.
"""
