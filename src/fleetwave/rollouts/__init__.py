"""Rollouts: planning them from a pushed image, starting their batches, reading them."""
