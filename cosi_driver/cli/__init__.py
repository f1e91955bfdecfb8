"""Command line entry points.

Internal as Python: the public interface is the ``cosi-driver`` command, its sub-commands,
flags and environment variables, not these modules.
"""
