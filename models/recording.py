"""Models for recording (filled in by its issue)."""

MODELS = []
