"""A queue's business hours: checking them (`check_hours`) and asking whether it is open now.

    {"timezone": "Europe/Paris",
     "days": {"mon": [["09:00", "17:30"]], "sat": [["10:00", "12:00"], ["14:00", "16:00"]]},
     "closed_dates": ["2026-12-25"]}

A day left out is closed all day; each range is [start, end) in the zone's local time
(so a DST change moves it with the wall clock); "24:00" may end a range. A range never
crosses midnight: end must be after start (22:00-06:00 is written as 22:00-24:00 on one
day and 00:00-06:00 on the next). A closed date is closed all day, whatever its weekday.
`None` (no hours) means always open.
"""
import datetime
import re
import zoneinfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MAX_RANGES_PER_DAY = 24
MAX_CLOSED_DATES = 1000
_TIME = re.compile(TIME_PATTERN)
_DATE = re.compile(DATE_PATTERN)


class HoursError(ValueError):
    """The hours are malformed; the message says which part and why."""


def minutes_of(text):
    """'09:30' -> 570; '24:00' -> 1440."""
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def check_timezone(name):
    """The ZoneInfo for an IANA zone name, or HoursError."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise HoursError("timezone must be an IANA time zone name such as Europe/Paris")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown time zone {name!r}: use an IANA name such as "
                         "Europe/Paris or America/New_York") from None


def _check_range(day, pair):
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2
            and all(isinstance(t, str) and _TIME.fullmatch(t) for t in pair)):
        raise HoursError(f"days.{day}: each range is [\"HH:MM\", \"HH:MM\"] (00:00-24:00), "
                         f"got {pair!r}")
    start, end = pair
    if minutes_of(end) <= minutes_of(start):
        raise HoursError(f"days.{day}: range {start}-{end} must end after it starts (a range "
                         "never crosses midnight: split it over two days)")
    return [start, end]


def _check_days(days):
    if not isinstance(days, dict):
        raise HoursError("days must be an object of mon..sun -> list of [start, end]")
    checked = {}
    for day, ranges in days.items():
        if day not in DAYS:
            raise HoursError(f"days: unknown day {day!r}; use {', '.join(DAYS)}")
        if not isinstance(ranges, list) or len(ranges) > MAX_RANGES_PER_DAY:
            raise HoursError(f"days.{day} must be a list of at most {MAX_RANGES_PER_DAY} "
                             "[start, end] ranges")
        pairs = sorted((_check_range(day, pair) for pair in ranges), key=lambda p: p[0])
        for before, after in zip(pairs, pairs[1:]):
            if minutes_of(after[0]) < minutes_of(before[1]):
                raise HoursError(f"days.{day}: ranges {before[0]}-{before[1]} and "
                                 f"{after[0]}-{after[1]} overlap")
        checked[day] = pairs
    return {day: checked[day] for day in DAYS if day in checked}


def _check_dates(dates):
    if not isinstance(dates, list) or len(dates) > MAX_CLOSED_DATES:
        raise HoursError(f"closed_dates must be a list of at most {MAX_CLOSED_DATES} dates")
    for text in dates:
        try:
            if not (isinstance(text, str) and _DATE.fullmatch(text)):
                raise ValueError
            datetime.date.fromisoformat(text)
        except ValueError:
            raise HoursError(f"closed_dates: {text!r} is not an ISO date (YYYY-MM-DD)") from None
    return sorted(set(dates))


def check_hours(hours):
    """The hours, normalised (days in week order, ranges sorted, dates sorted), or HoursError.

    None stays None (always open).
    """
    if hours is None:
        return None
    if not isinstance(hours, dict):
        raise HoursError("hours must be an object with timezone, days and closed_dates")
    unknown = set(hours) - {"timezone", "days", "closed_dates"}
    if unknown:
        raise HoursError(f"hours: unknown keys {sorted(unknown)}; use timezone, days, "
                         "closed_dates")
    if "timezone" not in hours:
        raise HoursError("hours.timezone is required (an IANA name such as Europe/Paris)")
    check_timezone(hours["timezone"])
    days, dates = hours.get("days"), hours.get("closed_dates")
    return {"timezone": hours["timezone"], "days": _check_days({} if days is None else days),
            "closed_dates": _check_dates([] if dates is None else dates)}


def local_time(hours, now_utc):
    """now_utc (naive UTC, as stored, or aware) in the hours' time zone."""
    if now_utc.tzinfo is None:
        now_utc = now_utc.replace(tzinfo=datetime.timezone.utc)
    return now_utc.astimezone(zoneinfo.ZoneInfo(hours["timezone"]))


def is_open(hours, now_utc):
    """Whether a queue with these hours is open at now_utc; None (no hours) is always open."""
    if not hours:
        return True
    local = local_time(hours, now_utc)
    if local.date().isoformat() in (hours.get("closed_dates") or ()):
        return False
    minute = local.hour * 60 + local.minute
    for start, end in (hours.get("days") or {}).get(DAYS[local.weekday()], ()):
        if minutes_of(start) <= minute < minutes_of(end):
            return True
    return False
