"""erelease.engine."""
