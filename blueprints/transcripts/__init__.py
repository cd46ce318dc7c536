"""The transcript of a call (JSON and WebVTT) and transcript statistics."""
