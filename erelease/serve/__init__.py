"""erelease.serve."""
