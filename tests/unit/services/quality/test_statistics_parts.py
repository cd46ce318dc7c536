"""The pure parts of the statistics: local days across summer-time changes, and Tally's figures."""
import datetime
import decimal
import zoneinfo

import peewee
import pytest

from services.errors import Unprocessable
from services.quality.local_range import LocalRange, period_start
from services.quality.statistics import StatisticsService, Tally

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
UTC = datetime.UTC


def epoch(*parts):
    return int(datetime.datetime(*parts, tzinfo=UTC).timestamp())


def local_day(rng, at):
    """The local date SQL assigns to an instant, run on a real (in-memory) SQLite."""
    database = peewee.SqliteDatabase(":memory:")
    rows = database.execute(peewee.Select(columns=[rng.local_day_expr(peewee.Value(at))]))
    return rng.date_of(rows.fetchone()[0])


def test_the_day_summer_time_starts_has_23_hours():
    day = datetime.date(2024, 3, 31)  # Berlin: +1 until 01:00 UTC, +2 from then on
    rng = LocalRange.of(day, day, BERLIN)
    assert rng.start == epoch(2024, 3, 30, 23, 0)
    assert rng.end == epoch(2024, 3, 31, 22, 0)
    assert rng.end - rng.start == 23 * 3600
    assert rng.segments == ((epoch(2024, 3, 30, 23, 0), 3600), (epoch(2024, 3, 31, 1, 0), 7200))
    assert rng.quarter_aligned


def test_the_day_summer_time_ends_has_25_hours():
    day = datetime.date(2024, 10, 27)  # Berlin: +2 until 01:00 UTC, +1 from then on
    rng = LocalRange.of(day, day, BERLIN)
    assert rng.end - rng.start == 25 * 3600
    assert rng.segments[-1] == (epoch(2024, 10, 27, 1, 0), 3600)


def test_calls_near_the_change_land_on_their_local_day():
    rng = LocalRange.of(datetime.date(2024, 3, 30), datetime.date(2024, 4, 1), BERLIN)
    # 22:59 UTC is 23:59 in Berlin (+1); 23:00 UTC is already midnight.
    assert local_day(rng, epoch(2024, 3, 30, 22, 59)) == datetime.date(2024, 3, 30)
    assert local_day(rng, epoch(2024, 3, 30, 23, 0)) == datetime.date(2024, 3, 31)
    # After the change Berlin is +2: 21:59 UTC is 23:59, 22:00 UTC the next day.
    assert local_day(rng, epoch(2024, 3, 31, 21, 59)) == datetime.date(2024, 3, 31)
    assert local_day(rng, epoch(2024, 3, 31, 22, 0)) == datetime.date(2024, 4, 1)


def test_a_zone_off_the_quarter_hour_is_not_answered_from_quarter_hour_rollups():
    # Amsterdam kept its local mean time (+00:19:32, then +00:20) until 1940.
    day = datetime.date(1935, 6, 1)
    assert not LocalRange.of(day, day, zoneinfo.ZoneInfo("Europe/Amsterdam")).quarter_aligned
    assert LocalRange.of(day, day, zoneinfo.ZoneInfo("Asia/Kolkata")).quarter_aligned


@pytest.mark.parametrize("zone, half_hours", [
    ("Asia/Kolkata", True), ("America/St_Johns", True), ("Australia/Adelaide", True),
    ("Europe/Berlin", True), ("Asia/Kathmandu", False), ("Pacific/Chatham", False)])
def test_which_zones_the_half_hour_rollups_answer(zone, half_hours):
    # A range across a summer-time change in either hemisphere (St. John's and Berlin in
    # March, Adelaide and Chatham in April): every segment's offset counts.
    rng = LocalRange.of(datetime.date(2024, 3, 1), datetime.date(2024, 4, 10),
                        zoneinfo.ZoneInfo(zone))
    assert len(rng.segments) == (1 if zone in ("Asia/Kolkata", "Asia/Kathmandu") else 2)
    assert rng.aligned_to(1800) is half_hours
    assert rng.quarter_aligned


def test_weeks_start_on_monday_and_months_on_the_first():
    sunday = datetime.date(2024, 3, 31)
    assert period_start(sunday, "week") == datetime.date(2024, 3, 25)
    assert period_start(sunday, "month") == datetime.date(2024, 3, 1)
    assert period_start(sunday, "day") == sunday


@pytest.mark.parametrize("args,field", [
    ({"date_from": datetime.date(2024, 1, 10), "date_to": datetime.date(2024, 1, 9)}, "date_to"),
    ({"date_from": datetime.date(1970, 1, 1), "date_to": datetime.date(1970, 1, 5)},
     "date_from"),
    ({"date_from": datetime.date(2000, 1, 1), "date_to": datetime.date(2024, 1, 1)}, "date_to"),
    ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
])
def test_a_range_that_cannot_be_answered_is_refused(args, field):
    with pytest.raises(Unprocessable) as refused:
        StatisticsService().local_range(args)
    assert field in refused.value.errors["query"]


def tally_of(*rows, outcomes=()):
    tally = Tally()
    for row in rows:
        tally.add([row.get(name, 0) for name in (
            "calls", "answered", "completed", "busy", "no_answer", "failed", "canceled",
            "billsec", "handle_seconds", "mos_milli", "mos_calls", "mos_below")])
    for outcome, calls in outcomes:
        tally.add_outcome(outcome, calls)
    return tally


def test_tally_figures():
    tally = tally_of(
        {"calls": 3, "answered": 2, "completed": 2, "busy": 1, "billsec": 180,
         "handle_seconds": 200, "mos_milli": 7000, "mos_calls": 2, "mos_below": 1},
        {"calls": 1, "failed": 1},
        outcomes=[("sale", 1), ("callback", 1)])
    figures = tally.figures(("sale", "converted"))
    assert figures["calls"] == 4 and figures["answered"] == 2
    assert figures["answer_rate"] == 0.5
    assert figures["failed"] == 1 and figures["busy"] == 1
    assert figures["talk_time_total"] == 180 and figures["talk_time_avg"] == 90.0
    assert figures["handle_time_avg"] == 100.0
    assert figures["mos_avg"] == 3.5 and figures["below_mos_share"] == 0.5
    assert figures["outcomes"] == {"callback": 1, "sale": 1}
    assert figures["conversions"] == 1 and figures["conversion_rate"] == 0.5


def test_an_empty_tally_has_no_rates_rather_than_a_division_by_zero():
    figures = Tally().figures(("sale",))
    assert figures["calls"] == 0
    assert figures["answer_rate"] is None and figures["mos_avg"] is None
    assert figures["talk_time_avg"] is None and figures["conversion_rate"] is None


def test_combined_tallies_add_up_their_groups():
    first = tally_of({"calls": 2, "answered": 1, "billsec": 30}, outcomes=[("sale", 1)])
    second = tally_of({"calls": 1, "answered": 1, "billsec": 60}, outcomes=[("sale", 1)])
    total = Tally.combined([first, second]).figures(("sale",))
    assert total["calls"] == 3 and total["talk_time_total"] == 90
    assert total["conversions"] == 2 and total["conversion_rate"] == 1.0


def test_numeric_sums_from_the_database_count_as_integers():
    """PostgreSQL returns SUM(bigint) as Decimal, and a group without rows as NULL."""
    tally = Tally()
    tally.add([decimal.Decimal(2), None] + [0] * 10)
    assert tally.figures(())["calls"] == 2 and isinstance(tally.sums["calls"], int)


def test_an_unknown_time_zone_is_a_422_naming_the_parameter_the_client_sent():
    from services.quality.local_range import zone_named
    from services.queues import buckets
    assert zone_named("Europe/Berlin").key == "Europe/Berlin"
    with pytest.raises(Unprocessable) as statistics_error:
        zone_named("Mars/Olympus")
    with pytest.raises(Unprocessable) as queues_error:
        buckets.zone_named("Mars/Olympus")
    assert list(statistics_error.value.errors["query"]) == ["time_zone"]
    assert list(queues_error.value.errors["query"]) == ["tz"]

