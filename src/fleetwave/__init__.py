"""fleetwave: safe rolling container-image updates for fleets of IoT devices."""

__version__ = "0.1.0"
