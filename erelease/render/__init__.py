"""erelease.render."""
