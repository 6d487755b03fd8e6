"""Devices: the registry (admin API) and the device-facing state protocol."""
