"""Business hours: open and closed by the zone's wall clock (DST included), closed dates,
and every malformed piece refused with a message naming it."""
import datetime
import re

import pytest

from services.queues.hours import HoursError, check_hours, is_open


def utc(*args):
    return datetime.datetime(*args)  # naive UTC, as the database stores times


PARIS = {"timezone": "Europe/Paris",
         "days": {"mon": [["09:00", "12:00"], ["13:00", "17:30"]], "sun": [["09:00", "17:00"]],
                  "sat": [["00:00", "24:00"]]},
         "closed_dates": ["2026-12-25"]}


@pytest.mark.parametrize("when, expected", [
    (utc(2026, 1, 5, 8, 0), True),      # Monday 09:00 in Paris (CET, UTC+1): opening minute
    (utc(2026, 1, 5, 7, 59), False),    # 08:59
    (utc(2026, 1, 5, 11, 30), False),   # 12:30, the lunch gap
    (utc(2026, 1, 5, 16, 29), True),    # 17:29
    (utc(2026, 1, 5, 16, 30), False),   # 17:30: the end is not included
    (utc(2026, 1, 6, 10, 0), False),    # Tuesday: not listed, closed all day
    (utc(2026, 1, 10, 0, 0), True),     # Saturday 01:00, open 00:00-24:00
    (utc(2026, 1, 10, 22, 59), True),   # Saturday 23:59
    (utc(2026, 1, 10, 23, 0), False),   # Sunday 00:00 in Paris, still Saturday in UTC
])
def test_open_by_the_local_wall_clock(when, expected):
    assert is_open(PARIS, when) is expected


def test_the_dst_change_day_moves_the_opening_with_the_wall_clock():
    # 2026-03-29 is a Sunday; Paris moves from UTC+1 to UTC+2 at 01:00 UTC.
    assert is_open(PARIS, utc(2026, 3, 29, 7, 0)) is True      # 09:00 CEST
    assert is_open(PARIS, utc(2026, 3, 29, 6, 59)) is False    # 08:59 CEST (07:59 in winter)
    assert is_open(PARIS, utc(2026, 3, 29, 14, 59)) is True    # 16:59
    assert is_open(PARIS, utc(2026, 3, 29, 15, 0)) is False    # 17:00
    # the Sunday before, in winter time, the same UTC instant is an hour earlier locally
    assert is_open(PARIS, utc(2026, 3, 22, 7, 0)) is False     # 08:00 CET
    # autumn: 2026-10-25, back to UTC+1
    assert is_open(PARIS, utc(2026, 10, 25, 7, 59)) is False   # 08:59 CET
    assert is_open(PARIS, utc(2026, 10, 25, 8, 0)) is True     # 09:00 CET


def test_a_closed_date_closes_the_whole_day_in_the_zone():
    hours = dict(PARIS, days={day: [["00:00", "24:00"]] for day in
                              ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    assert is_open(hours, utc(2026, 12, 24, 22, 59)) is True    # 24th, 23:59 in Paris
    assert is_open(hours, utc(2026, 12, 24, 23, 0)) is False    # 25th, 00:00 in Paris
    assert is_open(hours, utc(2026, 12, 25, 22, 59)) is False
    assert is_open(hours, utc(2026, 12, 25, 23, 0)) is True     # 26th


def test_aware_times_and_other_zones():
    new_york = {"timezone": "America/New_York", "days": {"mon": [["09:00", "17:00"]]}}
    aware = datetime.datetime(2026, 1, 5, 14, 0, tzinfo=datetime.timezone.utc)
    assert is_open(new_york, aware) is True                       # 09:00 EST
    assert is_open(new_york, utc(2026, 1, 5, 13, 59)) is False
    assert is_open(None, utc(2026, 1, 6, 3, 0)) is True           # no hours: always open
    assert is_open({"timezone": "UTC", "days": {}}, utc(2026, 1, 5, 12, 0)) is False


def test_check_hours_normalises():
    checked = check_hours({"timezone": "Asia/Tokyo", "days": {
        "fri": [["14:00", "18:00"], ["08:00", "12:00"]], "mon": [["09:00", "10:00"]]},
        "closed_dates": ["2027-01-01", "2026-12-31", "2027-01-01"]})
    assert checked == {"timezone": "Asia/Tokyo",
                       "days": {"mon": [["09:00", "10:00"]],
                                "fri": [["08:00", "12:00"], ["14:00", "18:00"]]},
                       "closed_dates": ["2026-12-31", "2027-01-01"]}
    assert list(checked["days"]) == ["mon", "fri"]
    assert check_hours(None) is None
    assert check_hours({"timezone": "UTC"}) == {"timezone": "UTC", "days": {},
                                                "closed_dates": []}


@pytest.mark.parametrize("hours, words", [
    ({"days": {}}, "timezone is required"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
    ({"timezone": "../../etc/passwd"}, "unknown time zone"),
    ({"timezone": ""}, "IANA"),
    ({"timezone": 5}, "IANA"),
    ({"timezone": "UTC", "days": {"monday": [["09:00", "10:00"]]}}, "unknown day 'monday'"),
    ({"timezone": "UTC", "days": {"mon": [["9:00", "10:00"]]}}, "days.mon"),
    ({"timezone": "UTC", "days": {"mon": [["09:00", "24:01"]]}}, "days.mon"),
    ({"timezone": "UTC", "days": {"mon": [["09:60", "10:00"]]}}, "days.mon"),
    ({"timezone": "UTC", "days": {"mon": [["09:00"]]}}, "days.mon"),
    ({"timezone": "UTC", "days": {"mon": ["09:00-10:00"]}}, "days.mon"),
    ({"timezone": "UTC", "days": {"mon": [["22:00", "06:00"]]}}, "never crosses midnight"),
    ({"timezone": "UTC", "days": {"mon": [["10:00", "10:00"]]}}, "must end after it starts"),
    ({"timezone": "UTC", "days": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "overlap"),
    ({"timezone": "UTC", "days": {"mon": "09:00-17:00"}}, "days.mon must be a list"),
    ({"timezone": "UTC", "days": []}, "days must be an object"),
    ({"timezone": "UTC", "closed_dates": ["2026-02-30"]}, "'2026-02-30' is not an ISO date"),
    ({"timezone": "UTC", "closed_dates": ["25/12/2026"]}, "not an ISO date"),
    ({"timezone": "UTC", "closed_dates": [20261225]}, "not an ISO date"),
    ({"timezone": "UTC", "closed_dates": "2026-12-25"}, "closed_dates must be a list"),
    ({"timezone": "UTC", "open": True}, "unknown keys ['open']"),
    ("always", "hours must be an object"),
])
def test_malformed_hours_are_refused_naming_the_part(hours, words):
    with pytest.raises(HoursError, match=re.escape(words)):
        check_hours(hours)
