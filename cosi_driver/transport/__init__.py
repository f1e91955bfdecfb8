"""The grpc.aio server, its UNIX socket, interceptors, and the mapping of core errors to gRPC status.

Internal: built by :mod:`cosi_driver.app`; nothing outside the package imports it.
"""
