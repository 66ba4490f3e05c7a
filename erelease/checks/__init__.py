"""erelease.checks."""
