"""Local date ranges of a time zone, as UTC epoch seconds (pure: no database).

LocalRange turns local days of a zone into UTC epoch seconds with the offsets in force, so
a day that changes to or from summer time has its real 23 or 25 hours; period_start and
next_period step through days, ISO weeks and months.
"""
import dataclasses
import datetime
import zoneinfo

from peewee import Case

from services.errors import Unprocessable
from services.quality import rollups

DAY = rollups.DAY
EPOCH_DATE = datetime.date(1970, 1, 1)


def zone_named(name, parameter="time_zone"):
    """The ZoneInfo for an IANA name, or Unprocessable naming the query parameter."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise Unprocessable(f"unknown time zone {name!r}",
                            errors={"query": {parameter: ["not an IANA time zone"]}}) from None


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
    def utc_days(self):
        """True when the local days are UTC days (offset 0 throughout): the daily rollups
        answer them exactly."""
        return all(offset == 0 for _, offset in self.segments) and \
            self.start % DAY == 0 and self.end % DAY == 0

    def aligned_to(self, seconds):
        """True when every local midnight falls on a UTC boundary of `seconds` (15 minutes:
        all current zones; 30 minutes: all but Nepal, the Chatham Islands and Eucla)."""
        return all(at % seconds == 0 and offset % seconds == 0
                   for at, offset in self.segments) and self.end % seconds == 0

    @property
    def quarter_aligned(self):
        return self.aligned_to(rollups.QUARTER_HOUR)

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


def next_period(day, period):
    if period == "week":
        return day + datetime.timedelta(days=7)
    if period == "month":
        return (day.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return day + datetime.timedelta(days=1)
