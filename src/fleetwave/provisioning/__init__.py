"""Fleet provisioning keys and device self-registration, as the iotistic agent does it."""
