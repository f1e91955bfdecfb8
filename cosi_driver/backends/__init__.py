"""Built-in storage backends. Each is registered through the ``cosi_driver.backends`` entry point."""
