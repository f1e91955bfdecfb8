"""Wire adapters, one sub-package per COSI API version, over the same core.

Internal: the public interface is the COSI gRPC API itself.
"""
