"""erelease.cli."""
