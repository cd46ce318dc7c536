"""Migration 0005: Queues, queue members, inbound routes, queue entries (issue 13).

Frozen copy of the tables this step creates; never edit it once released,
change the tables in a new migration.
"""
VERSION = 5
NAME = "queues"


def apply(database, migrator):
    """Nothing yet: the step is reserved (its tables land with their models)."""
