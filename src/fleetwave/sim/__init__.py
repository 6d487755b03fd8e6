"""The fleet simulator: many agents on simulated runtimes in one process."""
