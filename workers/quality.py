"""RQ jobs: an ended call's quality summary, statistics fact and rollups, and the missed-call sweep.

Enqueued by name ("workers.quality.summarize_call") by the "ended" and
"updated" call hooks on the `quality` queue; each takes the call's id, never
the call, and is idempotent: running it again (retries, a late FreeSWITCH
hangup after an API end) leaves the rollups counting the call once. The jobs
use the services the worker process built once (workers/context.py).
"""
import logging

from workers.context import current_services

logger = logging.getLogger(__name__)


def summarize_call(call_id):
    """Summarize one ended call's quality and count it in the rollups; returns the summary."""
    summary = current_services().quality.summarize(call_id)
    logger.info("quality summary of call %s: %s", call_id,
                "none (gone or live)" if summary is None else f"MOS {summary.get('mos_avg')}")
    return summary


def summarize_missed():
    """Summarize recently ended calls whose job never ran (Redis was down when they ended)."""
    return current_services().quality.summarize_missed()
