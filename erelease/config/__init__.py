"""erelease.config."""
