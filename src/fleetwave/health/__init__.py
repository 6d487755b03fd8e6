"""Health probes: running http and tcp checks against a device, with bounded concurrency."""
