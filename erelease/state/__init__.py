"""erelease.state."""
