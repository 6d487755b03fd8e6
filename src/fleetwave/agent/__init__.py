"""The device agent: polls its target state, pulls, restarts containers, checks, reports."""
