"""COSI ``sigs.k8s.io.cosi.v1alpha2``: generated stubs (``make proto``) and the thin servicer (``servicer.ADAPTER``)."""
