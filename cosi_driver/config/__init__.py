"""Settings from the environment and flags, the backends file, and assembling the driver."""
