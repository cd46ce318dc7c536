"""Exports resource: the call history as a streamed CSV or NDJSON file."""
