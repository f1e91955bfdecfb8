"""COSI ``cosi.v1alpha1``: generated stubs (``make proto``) and the servicers that adapt them."""
