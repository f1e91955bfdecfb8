"""Settings from the environment and flags, the backends file, and assembling the driver.

Internal: what users rely on is the variables and the file format (docs/configuration.md).
"""
