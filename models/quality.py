"""Models for quality (filled in by its issue)."""

MODELS = []
