"""Pure rules of fleetwave: no I/O, no frameworks, nothing of ours but ``domain``."""
