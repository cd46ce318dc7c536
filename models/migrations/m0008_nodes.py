"""Migration 0008: Several FreeSWITCH nodes: the node a call is on (issue 18).

Frozen copy of the tables this step creates; never edit it once released,
change the tables in a new migration.
"""
VERSION = 8
NAME = "nodes"


def apply(database, migrator):
    """Nothing yet: the step is reserved (its tables land with their models)."""
