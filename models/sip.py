"""Models for sip (filled in by its issue)."""

MODELS = []
