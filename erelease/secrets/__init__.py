"""erelease.secrets."""
