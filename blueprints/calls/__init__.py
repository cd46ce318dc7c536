"""Calls: start, update, end, read, delete and the call history."""
