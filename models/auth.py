"""Models for auth (filled in by its issue)."""

MODELS = []
