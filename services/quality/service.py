"""QualityService: live quality samples and alerts, per-call summaries, rollup upkeep.

QualityService is wired into CallService through hooks (see register()):

- "quality_sample" (PUT /api/calls/<id>/update with `quality`): stores the
  sample (MOS from the E-model of services/quality/mos.py when the client sent
  none), applies the alert rule of services/quality/samples.py and announces
  `call.quality_degraded` / `call.quality_recovered` on `calls` through the
  CallNotifier. The alert state after each sample is stored on the sample, so
  any web process continues from the last one.
- "ended": enqueues workers.quality.summarize_call (named by its dotted path:
  services never import workers), which calls summarize(): Call.quality (the
  summary), the call's statistics fact and rollups, then `call.quality_summary`.
- "updated": an ended call's outcome may change after the fact: summarize again.
- "deleting": takes the call out of the rollups.
"""
import datetime
import logging

from peewee import JOIN

from models import Call, is_sqlite, utcnow
from models.db import db_session
from models.quality import CallFact, QualitySample
from services.calls import state as cs
from services.errors import Conflict
from services.jobs import periodic_enqueue
from services.outbox import Outbox
from services.quality import rollups
from services.quality.samples import (
    ALERT_WINDOW,
    Thresholds,
    alert_decision,
    build_summary,
    crossings,
    new_sample,
    sample_values,
)
from services.quality.statistics import StatisticsService

logger = logging.getLogger(__name__)

QUALITY_QUEUE = "quality"
SUMMARIZE_JOB = "workers.quality.summarize_call"
SWEEP_JOB = "workers.quality.summarize_missed"
# Jobs enqueued while Redis was down are lost; a periodic sweep summarizes
# recently ended calls that have no statistics fact yet.
SWEEP_INTERVAL_SECONDS = 600
SWEEP_LOOKBACK_HOURS = 48
SWEEP_LOCK_KEY = "cc:quality:sweep"


def _lock_call(call_id):
    query = Call.select().where(Call.id == call_id)
    if not is_sqlite():
        query = query.for_update()
    return query.first()


class QualityService:
    """Live samples and alerts (web), the ended-call job (worker), rollup upkeep."""

    def __init__(self, notifier, config, redis=None):
        self.notifier = notifier  # the CallNotifier: the only publisher on `calls`
        self.config = config or {}
        self.redis = redis
        self.limits = Thresholds.from_config(self.config)

    # ----- live samples (inside CallService.update's transaction) --------------
    def record_sample(self, call, payload, outbox):
        """Store one sample, update the live view on the call and announce alert changes."""
        if not call.is_live:
            raise Conflict(f"call {call.id} is {call.status}; quality samples are accepted "
                           "only while a call is live", error_id="call_not_live")
        sample = new_sample(payload)
        previous = list(QualitySample.select().where(QualitySample.call == call.id)
                        .order_by(QualitySample.id.desc()).limit(ALERT_WINDOW - 1))
        window = [sample_values(s) for s in reversed(previous)] + [sample]
        was_active = previous[0].alert_active if previous else False
        decision = alert_decision(was_active, window, self.limits)
        stored = QualitySample.create(call=call.id, created_at=utcnow(), **sample,
                                      crossed=bool(crossings(sample, self.limits)),
                                      alert_active=decision.active)
        live = (call.quality or {}).get("live") if isinstance(call.quality, dict) else None
        call.quality = {"live": {
            "samples": (live or {}).get("samples", 0) + 1,
            "last": dict(sample, at=stored.created_at.isoformat(timespec="milliseconds") + "Z"),
            "alert": decision.details if decision.active else None,
        }}
        if decision.event:
            alert = dict(decision.details, active=decision.active)
            self.notifier.quality_alert(call, decision.event, alert, outbox)
            logger.info("call %s: %s (%s)", call.id, decision.event,
                        ", ".join(decision.details["thresholds"]) or "-")
        return stored

    # ----- call hooks ------------------------------------------------------
    def on_call_ended(self, call, outbox):
        outbox.enqueue(self.redis, QUALITY_QUEUE, SUMMARIZE_JOB, call.id)

    def on_call_updated(self, call, outbox):
        """An ended call's outcome may change after the fact: recount it."""
        if call.status in cs.TERMINAL:
            outbox.enqueue(self.redis, QUALITY_QUEUE, SUMMARIZE_JOB, call.id)

    def on_call_deleting(self, call, outbox):
        QualitySample.delete().where(QualitySample.call == call.id).execute()
        rollups.apply_fact(call.id, None)

    # ----- the ended-call job ------------------------------------------------
    def summarize(self, call_id):
        """Write the call's quality summary and its rollup contribution (idempotent)."""
        outbox = Outbox()
        with db_session(), outbox.atomic():
            call = _lock_call(call_id)
            if call is None or call.status not in cs.TERMINAL:
                logger.debug("no summary for call %s (gone or live)", call_id)
                return None
            samples = list(QualitySample.select().where(QualitySample.call == call.id)
                           .order_by(QualitySample.id))
            summary = build_summary(samples, call.rtp_stats, call.ended_at, self.limits)
            if summary != call.quality:
                call.quality, call.updated_at = summary, utcnow()
                Call.update(quality=summary, updated_at=call.updated_at).where(
                    Call.id == call.id).execute()
                self.notifier.quality_summary(call, outbox)
            rollups.apply_fact(call.id, rollups.fact_from_call(call, self.limits.mos))
        return summary

    def summarize_missed(self, hours=SWEEP_LOOKBACK_HOURS):
        """Summarize ended calls of about the last `hours` that the statistics do not count yet."""
        since = utcnow() - datetime.timedelta(hours=hours)
        with db_session():
            missed = [row.id for row in
                      Call.select(Call.id)
                      .join(CallFact, JOIN.LEFT_OUTER, on=(CallFact.call_id == Call.id))
                      .where(Call.created_at >= since - datetime.timedelta(days=1),
                             Call.status.in_(cs.TERMINAL), CallFact.call_id.is_null())]
        for call_id in missed:
            self.summarize(call_id)
        if missed:
            logger.info("quality sweep: summarized %d calls that had no summary", len(missed))
        return len(missed)

    def summarize_unsummarized(self, chunk=rollups.REBUILD_CHUNK):
        """Run the job inline for every ended call without a summary (the rebuild CLI's
        --summarize-missing); returns how many it summarized."""
        done, last_id = 0, ""
        while True:
            with db_session():
                batch = list(Call.select(Call.id, Call.status, Call.quality)
                             .where(Call.id > last_id).order_by(Call.id).limit(chunk)
                             .namedtuples())
            if not batch:
                return done
            for call in batch:
                if call.status in cs.TERMINAL and call.quality is None:
                    self.summarize(call.id)
                    done += 1
            last_id = batch[-1].id


def sweep_task(services, interval=None, first_delay=30.0):
    """Background task (events process): enqueue the missed-summary sweep periodically."""
    interval = float(interval or services.config.get("QUALITY_SWEEP_INTERVAL",
                                                      SWEEP_INTERVAL_SECONDS))
    return periodic_enqueue(services.redis, SWEEP_LOCK_KEY, interval, QUALITY_QUEUE,
                            SWEEP_JOB, first_delay=first_delay)


# ----- wiring -----------------------------------------------------------------------------
def register(services):
    """Hook quality into CallService and expose services.quality / services.statistics."""
    quality = QualityService(services.calls.notifier, services.config, services.redis)
    services.quality = quality
    services.statistics = StatisticsService(services.config)
    services.calls.add_hook("quality_sample", quality.record_sample)
    services.calls.add_hook("ended", quality.on_call_ended)
    services.calls.add_hook("deleting", quality.on_call_deleting)
    services.calls.add_hook("updated", quality.on_call_updated)
    services.background_tasks.append(sweep_task(services))
