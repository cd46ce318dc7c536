"""RQ job: an ended call's quality summary, statistics fact and rollups (QualityService.summarize).

Enqueued by the "ended" call hook on the `quality` queue; it takes the call's
id, never the call, and is idempotent: running it again (retries, a late
FreeSWITCH hangup after an API end) leaves the rollups counting the call once.
"""
import logging

from rq import get_current_job

from config import load_config
from services.publisher import Publisher
from services.quality.service import QualityService
from services.redis_client import make_redis

logger = logging.getLogger(__name__)


def _quality_service():
    """A QualityService for this job: the worker's Redis connection, settings from the env."""
    config = load_config()
    job = get_current_job()
    redis_conn = job.connection if job is not None else make_redis(config["REDIS_URL"])
    return QualityService(Publisher(redis_conn, history=config.get("STREAM_HISTORY", 1000)),
                          config, redis_conn)


def summarize_call(call_id):
    """Summarize one ended call's quality and count it in the rollups; returns the summary."""
    summary = _quality_service().summarize(call_id)
    logger.info("quality summary of call %s: %s", call_id,
                "none (gone or live)" if summary is None else f"MOS {summary.get('mos_avg')}")
    return summary


def summarize_missed():
    """Summarize recently ended calls whose job never ran (Redis was down when they ended)."""
    return _quality_service().summarize_missed()
