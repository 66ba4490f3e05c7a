"""erelease.devtools."""
