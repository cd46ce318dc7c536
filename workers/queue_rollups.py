"""RQ jobs and CLI for the queue KPI rollups (services/queues/kpi_rollups.py).

    workers.queue_rollups.refresh_recent   enqueued every QUEUE_ROLLUP_INTERVAL by the
                                           events process (one per deployment): recomputes
                                           the quarter hours of the last QUEUE_ROLLUP_LOOKBACK
    python -m workers.queue_rollups rebuild [--database-url URL]
                                           recomputes every bucket from the first activity

Both recompute whole buckets from the trails, so running them again changes nothing.
"""
import argparse
import logging
import sys

from config import load_config
from models import db
from models.db import db_session
from services.container import build_process_services
from services.queues import kpi_rollups
from workers.context import current_services

logger = logging.getLogger(__name__)


def refresh_recent():
    """Recompute the queue and agent KPI buckets of the last QUEUE_ROLLUP_LOOKBACK seconds."""
    lookback = int(current_services().config.get("QUEUE_ROLLUP_LOOKBACK", 10800))
    with db_session():
        written = kpi_rollups.refresh_recent(lookback)
    logger.info("queue KPIs: %d queue rows, %d agent rows refreshed", *written)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m workers.queue_rollups",
                                     description="Maintain the queue KPI rollups.")
    sub = parser.add_subparsers(dest="command", required=True)
    rebuild_cmd = sub.add_parser("rebuild", help="recompute every queue and agent bucket")
    rebuild_cmd.add_argument("--database-url", help="default: DATABASE_URL")
    args = parser.parse_args(argv)
    config = dict(load_config())
    if args.database_url:
        config["DATABASE_URL"] = args.database_url
    logging.basicConfig(level=config["LOG_LEVEL"])
    build_process_services(config)  # binds the database, as every process does
    with db.connection_context():
        kpi_rollups.rebuild()
    return 0


if __name__ == "__main__":
    sys.exit(main())
