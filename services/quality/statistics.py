"""Call statistics for local date ranges: SQL sums over the rollups, the facts for ragged edges.

StatisticsService answers GET /api/calls/statistics and /api/calls/quality
from the rollups and facts of models/quality.py (see that module for the time
zone reasoning) over a LocalRange (services/quality/local_range.py); Tally adds
up rows into the figures a response shows.
"""
import dataclasses
import datetime

import gevent
from peewee import SQL, fn

from models import db, is_sqlite
from models.quality import (
    CallFact,
    DailyOutcome,
    DailyRollup,
    HalfHourOutcome,
    HalfHourRollup,
    QuarterHourOutcome,
    QuarterHourRollup,
)
from services.errors import Unprocessable
from services.quality import rollups
from services.quality.local_range import (
    EPOCH_DATE,
    LocalRange,
    next_period,
    period_start,
    zone_named,
)
from services.quality.samples import Thresholds

# Outcomes that count as a conversion unless the request names its own
# (?conversion_outcomes=sale,upsell); compared case-sensitively, as stored.
DEFAULT_CONVERSION_OUTCOMES = ("sale", "converted", "success")
DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 3660
DAY = rollups.DAY


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


def _grouped_apart(query, groups):
    with db.connection_context():  # this greenlet's own pooled connection
        return _grouped(query, groups)


def _rows(measures, outcomes, source):
    """Both queries' rows grouped by their first columns. On PostgreSQL the outcomes run at
    the same time on a second pooled connection (another core): a request waits for the
    longer query rather than the sum of both. SQLite runs in this process: one by one."""
    if is_sqlite() or db.in_transaction():
        return Rows(_grouped(measures, 1), _grouped(outcomes, 2), source)
    other = gevent.spawn(_grouped_apart, outcomes, 2)
    try:
        grouped = _grouped(measures, 1)
    finally:
        # Never killed mid-query (its connection would go back to the pool busy): a failed
        # measures query waits for the outcomes to end, then raises.
        other.join()
    return Rows(grouped, other.get(), source)


FILTER_COLUMNS = {"agent_id": CallFact.agent_id, "campaign_id": CallFact.campaign_id,
                  "gateway": CallFact.gateway}
FILTER_DIMS = {"agent_id": "agent", "campaign_id": "campaign", "gateway": "gateway"}


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
    def _named_filters(args):
        return {name: args[name] for name in FILTER_COLUMNS if args.get(name)}

    @staticmethod
    def _filters(named):
        return [FILTER_COLUMNS[name] == value for name, value in named.items()]

    # ----- queries -------------------------------------------------------------
    @staticmethod
    def _daily_rows(rng, named):
        """Sums per UTC day from the daily rollups: of the one filtered dimension's key, or
        of every gateway key (each call counts under exactly one) without a filter."""
        name, value = next(iter(named.items()), ("gateway", None))
        d, do = DailyRollup, DailyOutcome
        first, end = rng.start // DAY, rng.end // DAY
        measures = d.select(d.day, *_sums(d)).where(
            d.dim == FILTER_DIMS[name], d.day >= first, d.day < end,
            *([d.key == value] if value is not None else []))
        outcomes = do.select(do.day, do.outcome, fn.SUM(do.calls)).where(
            do.dim == FILTER_DIMS[name], do.day >= first, do.day < end,
            *([do.key == value] if value is not None else []))
        return _rows(measures, outcomes, "rollups")

    @staticmethod
    def _half_hour_rows(rng, named):
        """Sums per local day number of one agent, campaign or gateway from the half-hour
        rollups (the zone's midnights fall on half hours)."""
        (name, value), = named.items()
        h, ho = HalfHourRollup, HalfHourOutcome
        measures = h.select(rng.local_day_expr(h.bucket), *_sums(h)).where(
            h.dim == FILTER_DIMS[name], h.key == value, h.bucket >= rng.start,
            h.bucket < rng.end)
        outcomes = ho.select(rng.local_day_expr(ho.bucket), ho.outcome, fn.SUM(ho.calls)).where(
            ho.dim == FILTER_DIMS[name], ho.key == value, ho.bucket >= rng.start,
            ho.bucket < rng.end)
        return _rows(measures, outcomes, "rollups")

    def _day_rows(self, rng, named):
        """Sums per local day number over the range (rollups when they can answer exactly:
        the daily ones for UTC days and at most one filter, the quarter-hour ones for any
        zone without filters, the half-hour ones for one filter in a half-hour zone; else
        the facts, whose cost grows with the calls)."""
        if len(named) <= 1 and rng.utc_days:
            return self._daily_rows(rng, named)
        if len(named) == 1 and rng.aligned_to(rollups.HALF_HOUR):
            return self._half_hour_rows(rng, named)
        filters = self._filters(named)
        if not filters and rng.quarter_aligned:
            q, qo = QuarterHourRollup, QuarterHourOutcome
            measures = q.select(rng.local_day_expr(q.bucket), *_sums(q)).where(
                q.bucket >= rng.start, q.bucket < rng.end)
            outcomes = qo.select(rng.local_day_expr(qo.bucket), qo.outcome,
                                 fn.SUM(qo.calls)).where(qo.bucket >= rng.start,
                                                         qo.bucket < rng.end)
            return _rows(measures, outcomes, "rollups")
        f, day = CallFact, rng.local_day_expr(CallFact.created_epoch)
        in_range = (f.created_epoch >= rng.start, f.created_epoch < rng.end, *filters)
        measures = f.select(day, *_sums(f)).where(*in_range)
        outcomes = f.select(day, f.outcome, fn.SUM(f.calls)).where(*in_range, f.outcome != "")
        return _rows(measures, outcomes, "facts")

    @staticmethod
    def _fact_group_rows(column, start, end, filters):
        if end <= start:
            return Rows([], [], "facts")
        f = CallFact
        in_range = (f.created_epoch >= start, f.created_epoch < end, *filters)
        measures = f.select(column, *_sums(f)).where(*in_range)
        outcomes = f.select(column, f.outcome, fn.SUM(f.calls)).where(*in_range, f.outcome != "")
        return _rows(measures, outcomes, "facts")

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
        rows = _rows(measures, outcomes, "rollups")
        rows += self._fact_group_rows(column, rng.start, first_whole * DAY, [])
        rows += self._fact_group_rows(column, end_whole * DAY, rng.end, [])
        return rows

    def _series(self, rng, rows, period):
        buckets = {}
        day = period_start(rng.first_day, period)
        while day <= rng.last_day:
            buckets[day] = Tally()
            day = next_period(day, period)
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
        after = min(next_period(start, period), rng.last_day + datetime.timedelta(days=1))
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
        named = self._named_filters(args)
        filters = self._filters(named)
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
            rows = self._day_rows(rng, named)
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
        named = self._named_filters(args)
        filters = self._filters(named)
        period = args.get("period") or "day"
        rows = self._day_rows(rng, named)
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
