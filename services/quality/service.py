"""Call quality and statistics: live samples and alerts, per-call summaries, analytics queries.

QualityService is wired into CallService through hooks (see register()):

- "quality_sample" (PUT /api/calls/<id>/update with `quality`): stores the
  sample (MOS from the E-model of workers/mos.py when the client sent none),
  applies the alert rule and announces `call.quality_degraded` /
  `call.quality_recovered` on `calls`. The alert state after each sample is
  stored on the sample, so any web process continues from the last one.
- "ended": enqueues workers.quality.summarize_call, which writes Call.quality
  (the summary), the call's statistics fact and rollups (workers/rollups.py),
  then announces `call.quality_summary` with the call.
- "deleting": takes the call out of the rollups.

The alert rule: a sample crosses when jitter > QUALITY_JITTER_MS, loss >
QUALITY_LOSS_PCT, RTT > QUALITY_RTT_MS or MOS < QUALITY_MOS_MIN. The alert is
raised when at least 3 of the last 5 samples cross, and cleared when at most 1
of the last 5 does: the gap between the two (hysteresis) keeps a call whose
samples alternate good and bad from flapping degraded/recovered every sample.

StatisticsService answers GET /api/calls/statistics and /api/calls/quality
from the rollups and facts of models/quality.py (see that module for the time
zone reasoning).
"""
import dataclasses
import datetime
import logging
import math
import zoneinfo

from peewee import JOIN, SQL, Case, fn

from models import Call, is_sqlite, utcnow
from models.db import db_session, write_transaction
from models.quality import (
    CallFact,
    DailyOutcome,
    DailyRollup,
    QualitySample,
    QuarterHourOutcome,
    QuarterHourRollup,
)
from services.calls import state as cs
from services.errors import Conflict, Unprocessable
from services.calls.schemas import dump_call
from services.outbox import Outbox
from services.quality import rollups
from services.quality.mos import mos_from

logger = logging.getLogger(__name__)

ALERT_WINDOW = 5
ALERT_RAISE_AT = 3
ALERT_CLEAR_AT = 1
# A sample speaks for the time until the next one, but for no more than this:
# a client that stops reporting does not make the rest of the call "degraded".
SAMPLE_SPAN_MAX_SECONDS = 60.0
QUALITY_QUEUE = "quality"
# Jobs enqueued while Redis was down are lost; a periodic sweep summarizes
# recently ended calls that have no statistics fact yet.
SWEEP_INTERVAL_SECONDS = 600
SWEEP_LOOKBACK_HOURS = 48
SWEEP_LOCK_KEY = "cc:quality:sweep"

# Outcomes that count as a conversion unless the request names its own
# (?conversion_outcomes=sale,upsell); compared case-sensitively, as stored.
DEFAULT_CONVERSION_OUTCOMES = ("sale", "converted", "success")
DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 3660
DAY = rollups.DAY
EPOCH_DATE = datetime.date(1970, 1, 1)


# ----- thresholds and the alert rule (pure) ------------------------------------
@dataclasses.dataclass(frozen=True)
class Thresholds:
    jitter_ms: float = 30.0
    loss_pct: float = 1.0
    rtt_ms: float = 400.0
    mos: float = 3.5

    @classmethod
    def from_config(cls, config):
        return cls(jitter_ms=float(config.get("QUALITY_JITTER_MS", 30.0)),
                   loss_pct=float(config.get("QUALITY_LOSS_PCT", 1.0)),
                   rtt_ms=float(config.get("QUALITY_RTT_MS", 400.0)),
                   mos=float(config.get("QUALITY_MOS_MIN", 3.5)))

    def as_dict(self):
        return dataclasses.asdict(self)


def crossings(sample, limits):
    """The figures of one sample that cross their threshold: {metric: value}."""
    crossed = {}
    if sample["jitter_ms"] > limits.jitter_ms:
        crossed["jitter_ms"] = sample["jitter_ms"]
    if sample["packet_loss_pct"] > limits.loss_pct:
        crossed["packet_loss_pct"] = sample["packet_loss_pct"]
    if sample["latency_ms"] > limits.rtt_ms:
        crossed["latency_ms"] = sample["latency_ms"]
    if sample["mos"] < limits.mos:
        crossed["mos"] = sample["mos"]
    return crossed


def _limit_of(metric, limits):
    return {"jitter_ms": limits.jitter_ms, "packet_loss_pct": limits.loss_pct,
            "latency_ms": limits.rtt_ms, "mos": limits.mos}[metric]


@dataclasses.dataclass
class AlertDecision:
    active: bool
    event: str | None  # call.quality_degraded | call.quality_recovered | None
    details: dict


def alert_decision(was_active, window, limits, raise_at=ALERT_RAISE_AT, clear_at=ALERT_CLEAR_AT):
    """Apply the alert rule to the last samples (oldest first, the newest included).

    Returns the alert state after the newest sample, the event to announce if
    the state changed, and which thresholds the window's samples crossed.
    """
    window = list(window)[-ALERT_WINDOW:]
    per_sample = [crossings(sample, limits) for sample in window]
    bad = sum(1 for crossed in per_sample if crossed)
    active = was_active
    if not was_active and bad >= raise_at:
        active = True
    elif was_active and bad <= clear_at:
        active = False
    thresholds = {}
    for crossed in per_sample:
        for metric, value in crossed.items():
            entry = thresholds.setdefault(metric, {"threshold": _limit_of(metric, limits),
                                                   "samples": 0, "worst": value})
            entry["samples"] += 1
            entry["worst"] = min(entry["worst"], value) if metric == "mos" else max(
                entry["worst"], value)
    details = {"window": len(window), "crossing_samples": bad, "thresholds": thresholds}
    event = None
    if active != was_active:
        event = "call.quality_degraded" if active else "call.quality_recovered"
    return AlertDecision(active, event, details)


# ----- the per-call summary (pure) ----------------------------------------------
def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def freeswitch_figures(rtp_stats):
    """FreeSWITCH's end-of-call figures from Call.rtp_stats, or None when it carried no media.

    FreeSWITCH's MOS comes from its own R (received vs. flawed packets).
    `in_jitter_max_variance` is the largest variance (ms squared) of packet
    inter-arrival time around the mean interval, so its square root is the
    worst jitter in ms; FreeSWITCH exports no average. Loss is the packets
    FreeSWITCH had to skip (lost or too late) over all it expected.
    """
    if not isinstance(rtp_stats, dict):
        return None
    packets = _number(rtp_stats.get("in_packet_count")) or _number(
        rtp_stats.get("in_media_packet_count"))
    if not packets:
        return None  # no media: a MOS of 4.5 would mean nothing
    skipped = _number(rtp_stats.get("in_skip_packet_count")) or 0.0
    max_variance = _number(rtp_stats.get("in_jitter_max_variance"))
    return {
        "mos": _number(rtp_stats.get("in_mos")),
        "quality_pct": _number(rtp_stats.get("in_quality_percentage")),
        "jitter_max_ms": round(math.sqrt(max_variance), 2) if max_variance else (
            0.0 if max_variance == 0 else None),
        "loss_pct": round(100.0 * skipped / (packets + skipped), 3),
        "packets": int(packets), "skipped": int(skipped),
        "flaws": _number(rtp_stats.get("in_flaw_total")),
    }


def _sample_spans(samples, ended_at):
    spans = []
    for index, sample in enumerate(samples):
        until = samples[index + 1].created_at if index + 1 < len(samples) else ended_at
        seconds = (until - sample.created_at).total_seconds() if until else 0.0
        spans.append(min(SAMPLE_SPAN_MAX_SECONDS, max(0.0, seconds)))
    return spans


def sample_figures(samples, ended_at, limits):
    """Figures from the live samples (oldest first): MOS, jitter, loss, RTT, time degraded."""
    if not samples:
        return None
    mos = [s.mos for s in samples]
    jitter = [s.jitter_ms for s in samples]
    loss = [s.packet_loss_pct for s in samples]
    rtt = [s.latency_ms for s in samples]
    spans = _sample_spans(samples, ended_at)
    raised = sum(1 for i, s in enumerate(samples)
                 if s.alert_active and (i == 0 or not samples[i - 1].alert_active))
    return {
        "mos_min": round(min(mos), 3), "mos_avg": round(sum(mos) / len(mos), 3),
        "jitter_avg_ms": round(sum(jitter) / len(jitter), 2),
        "jitter_max_ms": round(max(jitter), 2),
        "loss_avg_pct": round(sum(loss) / len(loss), 3), "loss_max_pct": round(max(loss), 3),
        "rtt_avg_ms": round(sum(rtt) / len(rtt), 2), "rtt_max_ms": round(max(rtt), 2),
        "seconds_below_mos": round(sum(span for s, span in zip(samples, spans)
                                       if s.mos < limits.mos), 1),
        "seconds_degraded": round(sum(span for s, span in zip(samples, spans) if s.crossed), 1),
        "samples": len(samples), "alerts": raised,
    }


FIGURE_GROUPS = {
    "mos": ("mos_min", "mos_avg"),
    "jitter": ("jitter_avg_ms", "jitter_max_ms"),
    "loss": ("loss_avg_pct", "loss_max_pct"),
    "rtt": ("rtt_avg_ms", "rtt_max_ms"),
    "time_below_threshold": ("seconds_below_mos", "seconds_degraded"),
}


def _from_freeswitch(fs):
    if fs is None:
        return {}
    figures = {}
    if fs["mos"] is not None:
        figures.update(mos_min=fs["mos"], mos_avg=fs["mos"])
    if fs["jitter_max_ms"] is not None:
        figures.update(jitter_avg_ms=None, jitter_max_ms=fs["jitter_max_ms"])
    figures.update(loss_avg_pct=fs["loss_pct"], loss_max_pct=fs["loss_pct"])
    return figures


def build_summary(samples, rtp_stats, ended_at, limits):
    """A call's quality summary; each figure group names its source ("samples"/"freeswitch")."""
    fs = freeswitch_figures(rtp_stats)
    from_samples = sample_figures(samples, ended_at, limits)
    from_fs = _from_freeswitch(fs)
    summary, sources = {}, {}
    for group, names in FIGURE_GROUPS.items():
        if from_samples is not None:
            source, figures = "samples", from_samples
        elif names[-1] in from_fs:
            source, figures = "freeswitch", from_fs
        else:
            source, figures = None, {}
        sources[group] = source
        summary.update({name: figures.get(name) for name in names})
    summary["samples"] = from_samples["samples"] if from_samples else 0
    summary["alerts"] = from_samples["alerts"] if from_samples else 0
    summary["sources"] = sources
    summary["freeswitch"] = fs
    summary["thresholds"] = limits.as_dict()
    return summary


# ----- database helpers -----------------------------------------------------------




def _lock_call(call_id):
    query = Call.select().where(Call.id == call_id)
    if not is_sqlite():
        query = query.for_update()
    return query.first()


def _call_dump(call):
    return dump_call(call)


class QualityService:
    """Live samples and alerts (web), the ended-call job (worker), rollup upkeep."""

    def __init__(self, notifier, config, redis=None):
        self.notifier = notifier
        self.config = config or {}
        self.redis = redis
        self.limits = Thresholds.from_config(self.config)

    # ----- live samples (inside CallService.update's transaction) --------------
    def record_sample(self, call, payload, outbox):
        """Store one sample, update the live view on the call and announce alert changes."""
        if not call.is_live:
            raise Conflict(f"call {call.id} is {call.status}; quality samples are accepted "
                           "only while a call is live")
        sample = self._new_sample(payload)
        previous = list(QualitySample.select().where(QualitySample.call == call.id)
                        .order_by(QualitySample.id.desc()).limit(ALERT_WINDOW - 1))
        window = [_sample_values(s) for s in reversed(previous)] + [sample]
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
            data = _call_dump(call)
            data["alert"] = dict(decision.details, active=decision.active)
            outbox.add(self.notifier.publish, "calls", decision.event, data)
            logger.info("call %s: %s (%s)", call.id, decision.event,
                        ", ".join(decision.details["thresholds"]) or "-")
        return stored

    def _new_sample(self, payload):
        latency, jitter, loss = (float(payload["latency_ms"]), float(payload["jitter_ms"]),
                                 float(payload["packet_loss_pct"]))
        r, computed_mos = mos_from(latency, jitter, loss)
        client_mos = payload.get("mos")
        return {"latency_ms": latency, "jitter_ms": jitter, "packet_loss_pct": loss,
                "mos": round(float(client_mos) if client_mos is not None else computed_mos, 3),
                "r_factor": round(r, 2),
                "mos_source": "client" if client_mos is not None else "e-model"}

    # ----- call hooks ------------------------------------------------------
    def on_call_ended(self, call, outbox):
        from workers.quality import summarize_call
        outbox.enqueue(self.redis, QUALITY_QUEUE, summarize_call, call.id)

    def on_call_updated(self, call, outbox):
        """An ended call's outcome may change after the fact: recount it."""
        if call.status in cs.TERMINAL:
            outbox.add(self.enqueue_summary, call.id)

    def on_call_deleting(self, call, outbox):
        QualitySample.delete().where(QualitySample.call == call.id).execute()
        rollups.apply_fact(call.id, None)

    def enqueue_summary(self, call_id):
        from workers.quality import summarize_call
        from services.jobs import enqueue
        return enqueue(self.redis, QUALITY_QUEUE, summarize_call, call_id)

    # ----- the ended-call job ------------------------------------------------
    def summarize(self, call_id):
        """Write the call's quality summary and its rollup contribution (idempotent)."""
        outbox = Outbox()
        with db_session(), write_transaction():
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
                outbox.add(self.notifier.publish, "calls", "call.quality_summary",
                           _call_dump(call))
            rollups.apply_fact(call.id, rollups.fact_from_call(call, self.limits.mos))
        outbox.flush()
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


def sweep_task(services, interval=None, first_delay=30.0):
    """Background task (events process): enqueue the missed-summary sweep periodically."""
    from workers.quality import summarize_missed
    from services.jobs import periodic_enqueue
    interval = float(interval or services.config.get("QUALITY_SWEEP_INTERVAL",
                                                      SWEEP_INTERVAL_SECONDS))
    return periodic_enqueue(services.redis, SWEEP_LOCK_KEY, interval, QUALITY_QUEUE,
                            summarize_missed, first_delay=first_delay)


def _sample_values(sample):
    return {"latency_ms": sample.latency_ms, "jitter_ms": sample.jitter_ms,
            "packet_loss_pct": sample.packet_loss_pct, "mos": sample.mos}


# ----- statistics -------------------------------------------------------------------
def zone_named(name):
    """The ZoneInfo for an IANA name, or Unprocessable."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise Unprocessable(f"unknown time zone {name!r}",
                            errors={"query": {"time_zone": ["not an IANA time zone"]}}) from None


def _offset_at(epoch, zone):
    return int(datetime.datetime.fromtimestamp(epoch, zone).utcoffset().total_seconds())


def _local_midnight(day, zone):
    # A midnight that does not exist (DST starting at 00:00) resolves with the
    # offset before the gap, i.e. to the instant the day actually starts.
    return int(datetime.datetime.combine(day, datetime.time.min, tzinfo=zone).timestamp())


def _transition_between(lo, hi, zone):
    """The first second in (lo, hi] whose UTC offset differs from lo's."""
    before = _offset_at(lo, zone)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_at(mid, zone) == before:
            lo = mid
        else:
            hi = mid
    return hi


@dataclasses.dataclass(frozen=True)
class LocalRange:
    """Local days first_day..last_day of a zone as UTC epoch seconds [start, end), with offsets."""

    zone: zoneinfo.ZoneInfo
    first_day: datetime.date
    last_day: datetime.date
    start: int
    end: int
    segments: tuple  # ((from_epoch, utc_offset_seconds), ...) covering [start, end)

    @classmethod
    def of(cls, first_day, last_day, zone):
        midnights = [_local_midnight(first_day + datetime.timedelta(days=i), zone)
                     for i in range((last_day - first_day).days + 2)]
        offsets = [_offset_at(m, zone) for m in midnights]
        segments = [(midnights[0], offsets[0])]
        for i in range(1, len(midnights)):
            if offsets[i] != offsets[i - 1]:
                at = _transition_between(midnights[i - 1], midnights[i], zone)
                segments.append((at, _offset_at(at, zone)))
        return cls(zone, first_day, last_day, midnights[0], midnights[-1], tuple(segments))

    @property
    def quarter_aligned(self):
        """True when every local midnight falls on a 15-minute UTC boundary (all current zones)."""
        return all(at % rollups.QUARTER_HOUR == 0 and offset % rollups.QUARTER_HOUR == 0
                   for at, offset in self.segments) and self.end % rollups.QUARTER_HOUR == 0

    def local_day_expr(self, column):
        """SQL: the local day number (days since 1970-01-01 in the zone) of an epoch column."""
        if len(self.segments) == 1:
            offset = self.segments[0][1]
        else:
            cases = [(column < at, self.segments[i][1])
                     for i, (at, _) in enumerate(self.segments[1:])]
            offset = Case(None, cases, self.segments[-1][1])
        return (column + offset) / DAY

    def date_of(self, day_number):
        day = EPOCH_DATE + datetime.timedelta(days=int(day_number))
        return min(self.last_day, max(self.first_day, day))

    def local_iso(self, day):
        start = datetime.datetime.combine(day, datetime.time.min, tzinfo=self.zone)
        return start.isoformat()


def period_start(day, period):
    if period == "week":
        return day - datetime.timedelta(days=day.weekday())  # ISO weeks start on Monday
    if period == "month":
        return day.replace(day=1)
    return day


def _next_period(day, period):
    if period == "week":
        return day + datetime.timedelta(days=7)
    if period == "month":
        return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return day + datetime.timedelta(days=1)


def _ratio(part, whole, digits=4):
    return round(part / whole, digits) if whole else None


class Tally:
    """Running sums of rollup/fact rows for one bucket or group."""

    __slots__ = ("outcomes", "sums")

    def __init__(self):
        self.sums = dict.fromkeys(rollups.MEASURES, 0)
        self.outcomes = {}

    def add(self, values):
        for name, value in zip(rollups.MEASURES, values):
            self.sums[name] += int(value or 0)  # PostgreSQL sums bigint as numeric

    def add_outcome(self, outcome, calls):
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + int(calls or 0)

    @classmethod
    def combined(cls, tallies):
        total = cls()
        for tally in tallies:
            total.add([tally.sums[name] for name in rollups.MEASURES])
            for outcome, calls in tally.outcomes.items():
                total.add_outcome(outcome, calls)
        return total

    def figures(self, conversion_outcomes):
        s = self.sums
        conversions = sum(self.outcomes.get(o, 0) for o in conversion_outcomes)
        return {
            "calls": s["calls"], "answered": s["answered"],
            "answer_rate": _ratio(s["answered"], s["calls"]),
            "completed": s["completed"], "busy": s["busy"], "no_answer": s["no_answer"],
            "failed": s["failed"], "canceled": s["canceled"],
            "talk_time_total": s["billsec"],
            "talk_time_avg": _ratio(s["billsec"], s["answered"], 1),
            "handle_time_avg": _ratio(s["handle_seconds"], s["answered"], 1),
            "mos_avg": round(s["mos_milli"] / s["mos_calls"] / 1000, 3) if s["mos_calls"] else None,
            "mos_calls": s["mos_calls"],
            "below_mos_share": _ratio(s["mos_below"], s["mos_calls"]),
            "outcomes": dict(sorted(self.outcomes.items())),
            "conversions": conversions,
            "conversion_rate": _ratio(conversions, s["answered"]),
        }


@dataclasses.dataclass
class Rows:
    """Query results: measure rows (group, *sums), outcome rows (group, outcome, calls)."""

    measures: list
    outcomes: list
    source: str

    def __iadd__(self, other):
        self.measures += other.measures
        self.outcomes += other.outcomes
        return self


def _sums(model):
    return [fn.SUM(getattr(model, name)) for name in rollups.MEASURES]


def _grouped(query, groups):
    return list(query.group_by(*[SQL(str(i + 1)) for i in range(groups)]).tuples())


FILTER_COLUMNS = {"agent_id": CallFact.agent_id, "campaign_id": CallFact.campaign_id,
                  "gateway": CallFact.gateway}


class StatisticsService:
    """Aggregates for a local date range: SQL sums over rollups, facts for the ragged edges.

    Every query groups in SQL down to the rows the answer shows (days, agents),
    so Python only adds up a few hundred rows whatever the number of calls.
    """

    def __init__(self, config=None):
        self.config = config or {}
        self.limits = Thresholds.from_config(self.config)

    # ----- request parsing ---------------------------------------------------
    def local_range(self, args):
        zone = zone_named(args.get("time_zone") or "UTC")
        today = datetime.datetime.now(zone).date()
        last_day = args.get("date_to") or today
        first_day = args.get("date_from") or last_day - datetime.timedelta(
            days=DEFAULT_RANGE_DAYS - 1)
        if last_day < first_day:
            raise Unprocessable("date_to is before date_from",
                                errors={"query": {"date_to": ["must not be before date_from"]}})
        if (last_day - first_day).days >= MAX_RANGE_DAYS:
            raise Unprocessable(f"the range may span at most {MAX_RANGE_DAYS} days",
                                errors={"query": {"date_to": ["range too long"]}})
        if first_day < EPOCH_DATE + datetime.timedelta(days=2):
            raise Unprocessable("date_from must be after 1970-01-02",
                                errors={"query": {"date_from": ["too early"]}})
        return LocalRange.of(first_day, last_day, zone)

    @staticmethod
    def _filters(args):
        return [FILTER_COLUMNS[name] == args[name] for name in FILTER_COLUMNS if args.get(name)]

    # ----- queries -------------------------------------------------------------
    @staticmethod
    def _day_rows(rng, filters):
        """Sums per local day number over the range (rollups when they can answer exactly)."""
        if not filters and rng.quarter_aligned:
            q, qo = QuarterHourRollup, QuarterHourOutcome
            measures = q.select(rng.local_day_expr(q.bucket), *_sums(q)).where(
                q.bucket >= rng.start, q.bucket < rng.end)
            outcomes = qo.select(rng.local_day_expr(qo.bucket), qo.outcome,
                                 fn.SUM(qo.calls)).where(qo.bucket >= rng.start,
                                                         qo.bucket < rng.end)
            return Rows(_grouped(measures, 1), _grouped(outcomes, 2), "rollups")
        f, day = CallFact, rng.local_day_expr(CallFact.created_epoch)
        in_range = (f.created_epoch >= rng.start, f.created_epoch < rng.end, *filters)
        measures = f.select(day, *_sums(f)).where(*in_range)
        outcomes = f.select(day, f.outcome, fn.SUM(f.calls)).where(*in_range, f.outcome != "")
        return Rows(_grouped(measures, 1), _grouped(outcomes, 2), "facts")

    @staticmethod
    def _fact_group_rows(column, start, end, filters):
        if end <= start:
            return Rows([], [], "facts")
        f = CallFact
        in_range = (f.created_epoch >= start, f.created_epoch < end, *filters)
        measures = f.select(column, *_sums(f)).where(*in_range)
        outcomes = f.select(column, f.outcome, fn.SUM(f.calls)).where(*in_range, f.outcome != "")
        return Rows(_grouped(measures, 1), _grouped(outcomes, 2), "facts")

    def _group_rows(self, dim, rng, filters):
        """Sums per agent/campaign/gateway: whole UTC days from the daily rollups, the
        partial days at either end of the local range from the facts."""
        column = getattr(CallFact, rollups.DIMENSIONS[dim])
        first_whole = -(-rng.start // DAY)
        end_whole = rng.end // DAY
        if filters or end_whole <= first_whole:
            return self._fact_group_rows(column, rng.start, rng.end, filters)
        d, do = DailyRollup, DailyOutcome
        measures = d.select(d.key, *_sums(d)).where(d.dim == dim, d.day >= first_whole,
                                                     d.day < end_whole)
        outcomes = do.select(do.key, do.outcome, fn.SUM(do.calls)).where(
            do.dim == dim, do.day >= first_whole, do.day < end_whole)
        rows = Rows(_grouped(measures, 1), _grouped(outcomes, 2), "rollups")
        rows += self._fact_group_rows(column, rng.start, first_whole * DAY, [])
        rows += self._fact_group_rows(column, end_whole * DAY, rng.end, [])
        return rows

    def _series(self, rng, rows, period):
        buckets = {}
        day = period_start(rng.first_day, period)
        while day <= rng.last_day:
            buckets[day] = Tally()
            day = _next_period(day, period)
        totals = Tally()
        for day_number, *values in rows.measures:
            totals.add(values)
            buckets[period_start(rng.date_of(day_number), period)].add(values)
        for day_number, outcome, calls in rows.outcomes:
            totals.add_outcome(outcome, calls)
            buckets[period_start(rng.date_of(day_number), period)].add_outcome(outcome, calls)
        return totals, buckets

    def _bucket_bounds(self, rng, start, period):
        first = max(start, rng.first_day)
        after = min(_next_period(start, period), rng.last_day + datetime.timedelta(days=1))
        return {"period_start": start.isoformat(), "start": rng.local_iso(first),
                "end": rng.local_iso(after)}

    @staticmethod
    def _groups(rows):
        tallies = {}
        for key, *values in rows.measures:
            tallies.setdefault(key or "", Tally()).add(values)
        for key, outcome, calls in rows.outcomes:
            tallies.setdefault(key or "", Tally()).add_outcome(outcome, calls)
        return tallies

    # ----- endpoints ---------------------------------------------------------------
    def statistics(self, args):
        """Totals, an optional series (day/week/month) and optional per-agent/campaign rows."""
        rng = self.local_range(args)
        filters = self._filters(args)
        conversion = tuple(args.get("conversion_outcomes") or DEFAULT_CONVERSION_OUTCOMES)
        period, group_by = args.get("period"), args.get("group_by")
        result = {
            "time_zone": rng.zone.key, "date_from": rng.first_day, "date_to": rng.last_day,
            "period": period, "group_by": group_by, "conversion_outcomes": list(conversion),
            "totals": None, "series": None, "groups": None, "computed_from": {},
        }
        totals = None
        if group_by:
            group_rows = self._group_rows(group_by, rng, filters)
            tallies = self._groups(group_rows)
            id_field = f"{group_by}_id"
            result["groups"] = sorted(
                ({id_field: key or None, **tally.figures(conversion)}
                 for key, tally in tallies.items()),
                key=lambda g: (-g["calls"], g[id_field] or ""))
            result["computed_from"]["groups"] = group_rows.source
            # Every call is in exactly one group (no agent is a group too), so
            # without a series the totals are the groups' sum: no second scan.
            totals = Tally.combined(tallies.values())
            result["computed_from"]["totals"] = group_rows.source
        if period or totals is None:
            rows = self._day_rows(rng, filters)
            totals, buckets = self._series(rng, rows, period or "day")
            result["computed_from"]["totals"] = rows.source
            if period:
                result["series"] = [dict(self._bucket_bounds(rng, start, period),
                                         **tally.figures(conversion))
                                    for start, tally in buckets.items()]
        result["totals"] = totals.figures(conversion)
        return result

    def quality(self, args):
        """Average MOS per bucket, the share of calls below the MOS threshold, worst gateways."""
        rng = self.local_range(args)
        filters = self._filters(args)
        period = args.get("period") or "day"
        rows = self._day_rows(rng, filters)
        totals, buckets = self._series(rng, rows, period)
        min_calls = args.get("min_calls") or 1
        gateways = []
        for key, tally in self._groups(self._group_rows("gateway", rng, filters)).items():
            figures = _quality_figures(tally)
            if figures["mos_calls"] >= min_calls:
                gateways.append({"gateway": key or None, **figures})
        gateways.sort(key=lambda g: (g["mos_avg"], -g["mos_calls"], g["gateway"] or ""))
        return {
            "time_zone": rng.zone.key, "date_from": rng.first_day, "date_to": rng.last_day,
            "period": period, "mos_threshold": self.limits.mos,
            "overall": _quality_figures(totals),
            "series": [dict(self._bucket_bounds(rng, start, period), **_quality_figures(tally))
                       for start, tally in buckets.items()],
            "worst_gateways": gateways[:args.get("limit") or 5],
            "computed_from": rows.source,
        }


def _quality_figures(tally):
    s = tally.sums
    return {"calls": s["calls"], "mos_calls": s["mos_calls"],
            "mos_avg": round(s["mos_milli"] / s["mos_calls"] / 1000, 3) if s["mos_calls"] else None,
            "below_mos_share": _ratio(s["mos_below"], s["mos_calls"])}


# ----- wiring -----------------------------------------------------------------------------
def register(services):
    """Hook quality into CallService and expose services.quality / services.statistics."""
    quality = QualityService(services.publisher, services.config, services.redis)
    services.quality = quality
    services.statistics = StatisticsService(services.config)
    services.calls.hooks.setdefault("quality_sample", []).append(quality.record_sample)
    services.calls.add_hook("ended", quality.on_call_ended)
    services.calls.add_hook("deleting", quality.on_call_deleting)
    # Runs once the lead adds run_hooks("updated", ...) to CallService.update()/end().
    services.calls.add_hook("updated", quality.on_call_updated)
    services.background_tasks.append(sweep_task(services))
