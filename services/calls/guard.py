"""Two writers, one call: a status change is stored only over the status it started from."""
import logging
import random

import gevent
import peewee

from models.db import is_transient_conflict
from services.errors import Conflict

logger = logging.getLogger(__name__)


class CallChangedMeanwhile(Conflict):
    """Another writer moved the call first; the change is to be made again on the new state."""

    error_id = "call_changed_meanwhile"


def retried(work, attempts=3):
    """Run work() (a whole transaction) again when another writer moved the call in
    between, or when PostgreSQL chose it as a deadlock's victim (the web's request and the
    events process can lock a call and its agent in opposite orders): the other side
    went on, so the second run goes through."""
    for attempt in range(attempts):
        try:
            return work()
        except CallChangedMeanwhile:
            if attempt == attempts - 1:
                raise
            logger.info("a call changed under a request; trying again")
        except peewee.DatabaseError as exc:
            if attempt == attempts - 1 or not is_transient_conflict(exc):
                raise
            logger.info("a deadlock with another writer rolled a request back; trying again")
            gevent.sleep(random.uniform(0.005, 0.05))
