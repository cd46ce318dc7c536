"""Migration 0007: Webhooks and their deliveries (issue 16).

Frozen copy of the tables this step creates; never edit it once released,
change the tables in a new migration.
"""
VERSION = 7
NAME = "webhooks"


def apply(database, migrator):
    """Nothing yet: the step is reserved (its tables land with their models)."""
