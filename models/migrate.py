"""`python -m models.migrate`: bring DATABASE_URL's schema to the newest version.

Safe to run any number of times (a current database is left as it is); the
Procfile's `release:` step and `make run` run it before the processes start.
"""
import argparse
import logging
import sys

from config import database_url
from models.db import make_database
from models.migrations import LATEST, current_version, upgrade


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m models.migrate", description=__doc__)
    parser.add_argument("--database-url", help="instead of DATABASE_URL")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when the database is behind the code")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    database = make_database(args.database_url or database_url())
    try:
        with database.connection_context():
            before = current_version(database)
            if args.check:
                print(f"schema version {before}; the code needs {LATEST}")
                return 0 if before >= LATEST else 1
            applied = upgrade(database)
            now = current_version(database)
    finally:
        if hasattr(database, "close_all"):  # a pooled PostgreSQL database keeps connections
            database.close_all()
    if applied:
        print(f"schema upgraded from version {before} to {now} "
              f"(applied {', '.join(f'{v:04d}' for v in applied)})")
    else:
        print(f"schema already at version {now}; nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main())
