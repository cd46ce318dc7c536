"""The statistics rebuild command: recompute every call fact and rollup from the calls.

    python -m workers.rollups rebuild [--database-url URL] [--summarize-missing]

The same functions the quality job uses (services/quality/rollups.py), so a
rebuild is also the proof that the incremental rollups are exact. With
--summarize-missing it first runs the quality job inline for ended calls that
never got a summary (their job was lost), through the services a worker builds.
"""
import argparse
import logging
import sys

from config import load_config
from models import db
from services.container import build_process_services
from services.quality import rollups


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m workers.rollups",
                                     description="Maintain the call statistics rollups.")
    sub = parser.add_subparsers(dest="command", required=True)
    rebuild_cmd = sub.add_parser("rebuild", help="recompute facts and rollups from the calls")
    rebuild_cmd.add_argument("--database-url", help="default: DATABASE_URL")
    rebuild_cmd.add_argument("--summarize-missing", action="store_true",
                             help="first run the quality job for ended calls without a summary")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    config = dict(load_config())
    if args.database_url:
        config["DATABASE_URL"] = args.database_url
    logging.basicConfig(level=config["LOG_LEVEL"])
    services = build_process_services(config)  # binds the database, as every process does
    summarize = services.quality.summarize_unsummarized if args.summarize_missing else None
    with db.connection_context():
        rollups.rebuild(config["QUALITY_MOS_MIN"], summarize)
    return 0


if __name__ == "__main__":
    sys.exit(main())
