"""COSI ``sigs.k8s.io.cosi.v1alpha2``: generated stubs only (``make proto``); no servicer serves them yet."""
