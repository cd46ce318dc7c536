"""Local time buckets for the queue KPIs: 15 minutes, hour, day, week, month in an IANA zone.

A series is a list of bucket edges as UTC epoch seconds. 15-minute and hour
buckets step in real time from a local boundary, so the hour repeated when
summer time ends is two buckets (with their two offsets) and the hour that
does not exist when it starts is none; days, ISO weeks (Monday) and months
run from local midnight to local midnight, so they last 23 or 25 hours across
a change. Every current zone's offset is a whole number of quarter hours, so
each edge is a 15-minute UTC boundary and the quarter-hour rollups fill the
buckets exactly (edges are checked; zones that do not fit are refused).
"""
import bisect
import dataclasses
import datetime
import zoneinfo

from peewee import Case

from services.errors import Unprocessable
from services.quality import local_range
from services.quality.local_range import next_period, period_start

QUARTER = 900
INTERVALS = ("15m", "hour", "day", "week", "month")
STEP_SECONDS = {"15m": QUARTER, "hour": 3600}
# How long a range may be per interval, and the default range ending today.
MAX_DAYS = {"15m": 31, "hour": 93, "day": 366, "week": 3 * 366, "month": 3660}
DEFAULT_DAYS = {"15m": 1, "hour": 1, "day": 7, "week": 28, "month": 92}


def zone_named(name):
    """The ZoneInfo for an IANA name, or 422 naming the queues' `tz` parameter."""
    return local_range.zone_named(name, "tz")


def local_midnight(day, zone):
    return int(datetime.datetime.combine(day, datetime.time.min, tzinfo=zone).timestamp())


def to_local(value, zone):
    """A date (local midnight) or datetime (naive = local wall time) as an aware datetime."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=zone) if value.tzinfo is None else value.astimezone(zone)
    return datetime.datetime.combine(value, datetime.time.min, tzinfo=zone)


@dataclasses.dataclass(frozen=True)
class Series:
    """Bucket edges [e0, e1, ..., en] (UTC epoch seconds) of one interval in one zone."""

    zone: zoneinfo.ZoneInfo
    interval: str
    edges: tuple

    @property
    def start(self):
        return self.edges[0]

    @property
    def end(self):
        return self.edges[-1]

    def index_of(self, epoch):
        """The bucket an instant falls in, or None outside the series."""
        if epoch < self.start or epoch >= self.end:
            return None
        return bisect.bisect_right(self.edges, epoch) - 1

    def iso(self, epoch):
        return datetime.datetime.fromtimestamp(epoch, self.zone).isoformat()

    def bounds(self):
        return [(self.edges[i], self.edges[i + 1]) for i in range(len(self.edges) - 1)]

    def grouping(self, column):
        """(SQL key of an epoch column, key -> bucket index): buckets are grouped in SQL,
        one group per bucket (the key is the bucket index).

        15m and hour buckets are equal steps of real time; days and weeks count local
        days (the column plus the UTC offset in force, by its few transitions in the
        range, over 86400) from the first; months compare the column with the edges."""
        if self.interval in STEP_SECONDS:
            return (column - self.start) / STEP_SECONDS[self.interval], int
        if self.interval == "month":
            last = len(self.edges) - 2
            if not last:  # one month: every row in range is bucket 0
                return (column - self.start) / (self.end - self.start), int
            return Case(None, [(column < edge, i) for i, edge in enumerate(self.edges[1:-1])],
                        last), int
        segments = offset_segments(self.edges, self.zone)
        if len(segments) == 1:
            offset = segments[0][1]
        else:
            offset = Case(None, [(column < at, segments[i][1])
                                 for i, (at, _) in enumerate(segments[1:])], segments[-1][1])
        first_day = (self.start + _offset_at(self.start, self.zone)) // 86400
        days = (column + offset) / 86400 - first_day
        return (days / 7 if self.interval == "week" else days), int


def _day_edges(first, last_exclusive, interval, zone):
    edges, day = [], period_start(first, interval)
    while True:
        edges.append(local_midnight(day, zone))
        if day >= last_exclusive:
            return edges
        day = next_period(day, interval)


def _step_edges(start, end, step, zone):
    """Edges every `step` seconds from the local boundary at or before start, to end."""
    local = datetime.datetime.fromtimestamp(start, zone)
    if step == 3600:
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = local.replace(minute=local.minute - local.minute % 15, second=0, microsecond=0)
    first = int(local.timestamp())
    edges = list(range(first, end, step))
    edges.append(edges[-1] + step)  # the last bucket ends at or after `to`
    return edges


def _offset_at(epoch, zone):
    return int(datetime.datetime.fromtimestamp(epoch, zone).utcoffset().total_seconds())


def offset_segments(edges, zone):
    """((from_epoch, utc_offset), ...) covering [edges[0], edges[-1]); edges are local
    midnights, so an offset change between two of them is found by bisection."""
    segments = [(edges[0], _offset_at(edges[0], zone))]
    for lo, hi in zip(edges, edges[1:]):
        before = _offset_at(lo, zone)
        if _offset_at(hi, zone) == before:
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if _offset_at(mid, zone) == before else (lo, mid)
        segments.append((hi, _offset_at(hi, zone)))
    return segments


def series(interval, zone, date_from=None, date_to=None, now=None):
    """The buckets covering [from, to): dates are local days (`to` inclusive), datetimes
    local instants (naive = wall time, `to` exclusive); defaults end with today."""
    if interval not in INTERVALS:
        raise Unprocessable(f"unknown interval {interval!r}",
                            errors={"query": {"interval": [f"one of {', '.join(INTERVALS)}"]}})
    now = now or datetime.datetime.now(zone)
    today = now.astimezone(zone).date()
    if date_to is None:
        end_local = to_local(today + datetime.timedelta(days=1), zone)
    elif isinstance(date_to, datetime.datetime):
        end_local = to_local(date_to, zone)
    else:
        end_local = to_local(date_to + datetime.timedelta(days=1), zone)
    if date_from is None:
        start_local = to_local(end_local.date() - datetime.timedelta(days=DEFAULT_DAYS[interval]),
                                zone)
    else:
        start_local = to_local(date_from, zone)
    _check_range(start_local, end_local, interval)
    start, end = int(start_local.timestamp()), int(end_local.timestamp())
    if interval in STEP_SECONDS:
        edges = _step_edges(start, end, STEP_SECONDS[interval], zone)
    else:
        last = end_local.date() if end_local.time() != datetime.time.min else (
            end_local.date() - datetime.timedelta(days=1))
        edges = _day_edges(start_local.date(), next_period(period_start(last, interval),
                                                           interval), interval, zone)
    if any(edge % QUARTER for edge in edges):
        raise Unprocessable(f"time zone {zone.key} has an offset that is not a whole number "
                            "of quarter hours in this range",
                            errors={"query": {"tz": ["offset not a multiple of 15 minutes"]}})
    return Series(zone, interval, tuple(edges))


def _check_range(start_local, end_local, interval):
    if end_local <= start_local:
        raise Unprocessable("`to` must be after `from`",
                            errors={"query": {"to": ["must be after from"]}})
    if (end_local - start_local).days > MAX_DAYS[interval]:
        raise Unprocessable(f"with interval {interval} a range may span at most "
                            f"{MAX_DAYS[interval]} days",
                            errors={"query": {"from": ["range too long for the interval"]}})
    if start_local.year < 1971:
        raise Unprocessable("`from` must be after 1970", errors={"query": {"from": ["too early"]}})
