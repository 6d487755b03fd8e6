"""Deployment rings: named, saved device selectors a policy rolls out through in order."""
