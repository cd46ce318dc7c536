"""Queue and agent KPIs per local bucket, read from the quarter-hour rollups.

Formulas (each bucket and the totals; a ratio with a zero denominator is null):

    offered          callers who entered the queue while it was open (closed ones apart)
    short_abandoned  abandoned within 5 s (counted in abandoned too, kept apart)
    service_level    answered within the queue's threshold / (offered - short_abandoned)
    abandon_rate     (abandoned - short_abandoned) / (offered - short_abandoned)
    asa              mean seconds from entering to answer, answered callers;
    asa_p90          its 90th percentile (nearest rank)
    wait_avg, wait_max  over every caller who was answered or left (not those still waiting)
    aht              (talk + hold + wrap-up) / handled (answered calls that have ended)
    occupancy        (on-call + wrap-up) / (logged-in - paused), agents; ringing and
                     available time count as idle

A caller counts in the bucket in which it entered the queue; "answered within
the threshold" means wait <= the queue's service_level_seconds when the rollup ran.
"""
import collections
import json
import math

from peewee import SQL, Case, fn

from models import is_sqlite
from models.agent import Agent
from models.queue import Queue
from models.queue_stats import AgentQuarterStat, QueueQuarterStat, QueueStatMeasures
from services.errors import NotFound
from services.queues import buckets

MEASURES = QueueStatMeasures.MEASURES
AGENT_TIMES = AgentQuarterStat.STATE_MEASURES


def _ratio(part, whole, digits=4):
    return round(part / whole, digits) if whole else None


def percentile(waits, share=0.9):
    """Nearest-rank percentile of a {seconds: count} histogram (None when empty)."""
    total = sum(waits.values())
    if not total:
        return None
    rank, seen = math.ceil(share * total), 0
    for seconds in sorted(waits, key=int):
        seen += waits[seconds]
        if seen >= rank:
            return int(seconds)
    return None


class Tally:
    """Sums of rollup rows for one bucket."""

    def __init__(self):
        self.sums = collections.Counter()
        self.waits = collections.Counter()

    def add(self, row):
        for name, value in row.items():
            if name == "wait_max":
                self.sums[name] = max(self.sums[name], int(value or 0))
            elif name == "answer_waits":
                self.add_waits(value)
            else:
                self.sums[name] += int(value or 0)  # PostgreSQL sums bigint as numeric

    def add_waits(self, text):
        """Add one histogram or several joined by commas ('{"12":3},{"12":1,"40":2}').

        Keys stay text until the percentile; a plain loop over the items merges several
        times faster than Counter.update per histogram: this is the hot loop."""
        if not text:
            return
        waits = self.waits
        get = waits.get
        for histogram in json.loads("[" + text + "]"):
            for seconds, callers in histogram.items():
                waits[seconds] = get(seconds, 0) + callers

    def merge(self, other):
        for name, value in other.sums.items():
            if name == "wait_max":
                self.sums[name] = max(self.sums[name], value)
            else:
                self.sums[name] += value
        self.waits.update(other.waits)

    def handling(self):
        s = self.sums
        return {
            "answered": s["answered"], "answered_in_sl": s["answered_in_sl"],
            "asa": _ratio(s["answer_wait_sum"], s["answered"], 1),
            "asa_p90": percentile(self.waits),
            "handled": s["handled"],
            "aht": _ratio(s["talk_sum"] + s["hold_sum"] + s["wrapup_sum"], s["handled"], 1),
            "talk_avg": _ratio(s["talk_sum"], s["handled"], 1),
            "hold_avg": _ratio(s["hold_sum"], s["handled"], 1),
            "wrapup_avg": _ratio(s["wrapup_sum"], s["handled"], 1),
            "transfers": s["transfers"],
        }

    def queue_figures(self):
        s = self.sums
        counted = s["offered"] - s["short_abandoned"]
        return {
            "offered": s["offered"], "abandoned": s["abandoned"],
            "short_abandoned": s["short_abandoned"], "overflowed": s["overflowed"],
            "timed_out": s["timed_out"], "closed": s["closed"],
            "service_level": _ratio(s["answered_in_sl"], counted),
            "abandon_rate": _ratio(s["abandoned"] - s["short_abandoned"], counted),
            "wait_avg": _ratio(s["wait_sum"], s["waited"], 1),
            "wait_max": s["wait_max"] if s["waited"] else None,
            **self.handling(),
        }

    def agent_figures(self):
        s = self.sums
        working = s["logged_in_seconds"] - s["paused_seconds"]
        return {
            "offers": s["offers"], **self.handling(),
            "occupancy": _ratio(s["on_call_seconds"] + s["wrap_up_seconds"], working),
            **{name: s[name] for name in AGENT_TIMES if name != "offers"},
        }


def joined_waits(model):
    """An aggregate: the group's answered-wait histograms joined by commas ('{..},{..}'), so
    each bucket's JSON is decoded at once, in the same pass over the rows as the sums."""
    join = fn.GROUP_CONCAT if is_sqlite() else fn.string_agg
    answered = (model.answered > 0) & (model.answer_waits != "")
    return join(Case(None, [(answered, model.answer_waits)]), ",")  # NULLs are skipped


class QueueStatistics:
    """GET /api/queues/<id>/statistics and /api/agents/<id>/statistics."""

    def series_of(self, args):
        zone = buckets.zone_named(args.get("tz") or "UTC")
        return buckets.series(args.get("interval") or "hour", zone,
                              args.get("date_from"), args.get("date_to"))

    @staticmethod
    def _tallies(model, key_column, key, series, columns):
        """One Tally per bucket: sums and joined wait histograms grouped in SQL by bucket (one
        query, one row per bucket), the histograms merged here."""
        tallies = [Tally() for _ in range(len(series.edges) - 1)]
        group, index_of = series.grouping(model.bucket)
        in_range = (key_column == key, model.bucket >= series.start, model.bucket < series.end)
        sums = [fn.MAX(model.wait_max) if c == "wait_max" else fn.SUM(getattr(model, c))
                for c in columns]
        query = (model.select(group, *sums, joined_waits(model)).where(*in_range)
                 .group_by(SQL("1")).tuples())
        for group_key, *values, waits in query:
            index = index_of(group_key)
            if 0 <= index < len(tallies):
                tallies[index].add(dict(zip(columns, values)))
                tallies[index].add_waits(waits)
        return tallies

    @staticmethod
    def _answer(series, tallies, figures, head):
        total = Tally()
        for tally in tallies:
            total.merge(tally)
        return dict(head, interval=series.interval, tz=series.zone.key,
                    start=series.iso(series.start), end=series.iso(series.end),
                    totals=figures(total),
                    series=[dict(start=series.iso(lo), end=series.iso(hi), **figures(t))
                            for (lo, hi), t in zip(series.bounds(), tallies)])

    def queue(self, queue_id, args):
        series = self.series_of(args)
        queue = Queue.get_or_none(Queue.id == queue_id)
        if queue is None and not QueueQuarterStat.select().where(
                QueueQuarterStat.queue_id == queue_id).exists():
            raise NotFound(f"queue {queue_id} not found", error_id="queue_not_found")
        columns = list(MEASURES)
        tallies = self._tallies(QueueQuarterStat, QueueQuarterStat.queue_id, queue_id, series,
                                columns)
        head = {"queue_id": queue_id,
                "service_level_seconds": queue.service_level_seconds if queue else None}
        return self._answer(series, tallies, Tally.queue_figures, head)

    def agent(self, agent_id, args):
        series = self.series_of(args)
        if Agent.get_or_none(Agent.id == agent_id) is None and not AgentQuarterStat.select(
        ).where(AgentQuarterStat.agent_id == agent_id).exists():
            raise NotFound(f"agent {agent_id} not found", error_id="agent_not_found")
        columns = list(MEASURES) + list(AGENT_TIMES)
        tallies = self._tallies(AgentQuarterStat, AgentQuarterStat.agent_id, agent_id, series,
                                columns)
        return self._answer(series, tallies, Tally.agent_figures, {"agent_id": agent_id})
