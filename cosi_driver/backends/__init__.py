"""Built-in storage backends. Each is registered through the ``cosi_driver.backends`` entry point.

Internal: used through the registry by name; a backend is configured, never imported. The
contract a backend implements is :mod:`cosi_driver.sdk`.
"""
