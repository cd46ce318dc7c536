"""Migration 0008: Several FreeSWITCH nodes: the node a call is on (issue 18).

Frozen copy of the column models/call.py's Call gains in this step; never edit
it once released, change the table in a new migration.
"""
import peewee

VERSION = 8
NAME = "nodes"

NODE = ("node", peewee.CharField(max_length=64, null=True))


def apply(database, migrator):
    """Add call.node (kept when already there); existing calls stay NULL (the first node)."""
    present = {column.name for column in database.get_columns("call")}
    name, field = NODE
    if name not in present:
        migrator.add_column("call", name, field).run()
