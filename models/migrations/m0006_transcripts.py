"""Migration 0006: Transcripts of recorded calls (issue 17).

Frozen copy of the tables this step creates; never edit it once released,
change the tables in a new migration.
"""
VERSION = 6
NAME = "transcripts"


def apply(database, migrator):
    """Nothing yet: the step is reserved (its tables land with their models)."""
