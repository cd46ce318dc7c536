"""The worker process: an RQ worker on every queue, with the database bound."""
import logging
import sys

from rq import Worker

from config import load_config
from models import create_tables, db, init_db
from services.auth import install_log_redaction
from services.redis_client import make_redis
from services.jobs import QUEUES


def main(argv=None):
    cfg = load_config()
    logging.basicConfig(level=cfg["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    init_db(cfg["DATABASE_URL"])
    with db.connection_context():
        create_tables()
    conn = make_redis(cfg["REDIS_URL"], socket_timeout=None)
    names = (argv or sys.argv[1:]) or list(QUEUES)
    worker = Worker(names, connection=conn)
    worker.work(with_scheduler=True)


if __name__ == "__main__":
    main()
