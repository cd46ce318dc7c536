"""Two writers, one call: a status change is stored only over the status it started from."""
import logging

from services.errors import Conflict

logger = logging.getLogger(__name__)


class CallChangedMeanwhile(Conflict):
    """Another writer moved the call first; the change is to be made again on the new state."""

    error_id = "call_changed_meanwhile"


def retried(work, attempts=3):
    """Run work() again when another writer moved the call in between."""
    for attempt in range(attempts):
        try:
            return work()
        except CallChangedMeanwhile:
            if attempt == attempts - 1:
                raise
            logger.info("a call changed under a request; trying again")
