"""KPI building blocks: local buckets across summer-time changes, one bucket's sums and the
formulas (service level, short abandons, ASA p90, AHT, occupancy)."""
import datetime
import zoneinfo

import peewee
import pytest

from models import queue as qm
from services.errors import Unprocessable
from services.queues import buckets
from services.queues.kpi_rollups import Sums, split_seconds, state_columns, state_intervals
from services.queues.statistics import Tally, percentile

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
D = datetime.date


def lengths(series):
    return [hi - lo for lo, hi in series.bounds()]


# ----- buckets ---------------------------------------------------------------------
def test_days_around_summer_time_have_their_real_length():
    # Paris: 2026-03-29 has 23 hours, 2026-10-25 has 25.
    spring = buckets.series("day", PARIS, D(2026, 3, 28), D(2026, 3, 30))
    assert lengths(spring) == [24 * 3600, 23 * 3600, 24 * 3600]
    autumn = buckets.series("day", PARIS, D(2026, 10, 25), D(2026, 10, 25))
    assert lengths(autumn) == [25 * 3600]
    assert autumn.iso(autumn.start) == "2026-10-25T00:00:00+02:00"
    assert autumn.iso(autumn.end) == "2026-10-26T00:00:00+01:00"


def test_hours_of_the_autumn_day_repeat_two_o_clock():
    day = buckets.series("hour", PARIS, D(2026, 10, 25), D(2026, 10, 25))
    starts = [day.iso(lo) for lo, _ in day.bounds()]
    assert len(starts) == 25
    assert starts[2:4] == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00"]


def test_spring_day_has_23_hours_and_96_minus_4_quarters():
    assert len(buckets.series("hour", PARIS, D(2026, 3, 29), D(2026, 3, 29)).bounds()) == 23
    assert len(buckets.series("15m", PARIS, D(2026, 3, 29), D(2026, 3, 29)).bounds()) == 92


def test_weeks_start_on_monday_and_months_on_the_first():
    weeks = buckets.series("week", PARIS, D(2026, 3, 25), D(2026, 4, 2))
    assert [weeks.iso(lo)[:10] for lo, _ in weeks.bounds()] == ["2026-03-23", "2026-03-30"]
    assert lengths(weeks)[0] == 7 * 86400 - 3600  # the week with the spring change
    months = buckets.series("month", PARIS, D(2026, 1, 15), D(2026, 3, 2))
    assert [months.iso(lo)[:10] for lo, _ in months.bounds()] == [
        "2026-01-01", "2026-02-01", "2026-03-01"]


def test_half_hour_zone_hours_are_quarter_aligned():
    kolkata = buckets.series("hour", zoneinfo.ZoneInfo("Asia/Kolkata"), D(2026, 1, 1),
                             D(2026, 1, 1))
    assert kolkata.start % 3600 == 1800 and len(kolkata.bounds()) == 24


def test_datetime_range_is_local_wall_time():
    s = buckets.series("15m", PARIS, datetime.datetime(2026, 6, 1, 9, 0),
                       datetime.datetime(2026, 6, 1, 10, 0))
    assert s.iso(s.start) == "2026-06-01T09:00:00+02:00" and len(s.bounds()) == 4
    assert s.index_of(s.start + 899) == 0 and s.index_of(s.start + 900) == 1
    assert s.index_of(s.end) is None


@pytest.mark.parametrize("interval,first,last", [("15m", D(2026, 1, 1), D(2026, 3, 1)),
                                                 ("nope", None, None),
                                                 ("day", D(2026, 2, 1), D(2026, 1, 1))])
def test_bad_ranges_are_422(interval, first, last):
    with pytest.raises(Unprocessable):
        buckets.series(interval, PARIS, first, last)


# ----- one bucket's sums and the figures ---------------------------------------------
def test_sums_and_formulas():
    sums = Sums()
    for status, wait, handling in [
        (qm.ANSWERED, 10, (100, 20, 30, 1)),   # in SL (<= 20)
        (qm.ANSWERED, 20, (200, 0, 10, 0)),    # in SL (exactly the threshold)
        (qm.ANSWERED, 45, None),               # still talking: not handled yet
        (qm.ABANDONED, 3, None),               # short abandon
        (qm.ABANDONED, 60, None),
        (qm.CLOSED, 0, None),                  # never offered
        (qm.WAITING, None, None),              # still waiting: offered, no wait yet
    ]:
        sums.add_entry({"status": status, "wait": wait}, 20, handling)
    tally = Tally()
    tally.add(sums.row())
    f = tally.queue_figures()
    assert (f["offered"], f["answered"], f["abandoned"], f["short_abandoned"], f["closed"]) == (
        6, 3, 2, 1, 1)
    assert f["service_level"] == round(2 / (6 - 1), 4)
    assert f["abandon_rate"] == round(1 / 5, 4)
    assert f["asa"] == 25.0 and f["asa_p90"] == 45
    assert f["wait_avg"] == round((10 + 20 + 45 + 3 + 60) / 5, 1) and f["wait_max"] == 60
    assert f["handled"] == 2 and f["aht"] == (100 + 20 + 30 + 200 + 0 + 10) / 2
    assert f["transfers"] == 1


def test_percentile_nearest_rank():
    assert percentile({}) is None
    assert percentile({5: 9, 100: 1}) == 5      # 9 of 10 within 5 s
    assert percentile({5: 8, 100: 2}) == 100
    assert percentile({i: 1 for i in range(1, 11)}) == 9


def test_agent_time_split_at_quarter_edges_and_occupancy():
    t0 = 1_800_000_000 // 900 * 900
    intervals = state_intervals("logged-out", [(t0 + 600, "available"), (t0 + 1000, "on-call"),
                                               (t0 + 1300, "wrap-up"), (t0 + 1400, "paused")],
                                t0, t0 + 1800)
    split = split_seconds(intervals, t0, t0 + 1800)
    first, second = state_columns(split[t0]), state_columns(split[t0 + 900])
    assert first["logged_in_seconds"] == 300 and first["available_seconds"] == 300
    assert second["available_seconds"] == 100 and second["on_call_seconds"] == 300
    assert second["wrap_up_seconds"] == 100 and second["paused_seconds"] == 400
    tally = Tally()
    for row in (first, second):
        tally.add(dict(row, offers=0))
    # (300 on call + 100 wrap-up) / (1200 logged in - 400 paused)
    assert tally.agent_figures()["occupancy"] == 0.5


# ----- grouping in SQL -------------------------------------------------------------
class _Row(peewee.Model):
    bucket = peewee.BigIntegerField()


def _grouped(series, epochs):
    """The bucket index each epoch's row lands in when grouped by SQLite."""
    database = peewee.SqliteDatabase(":memory:")
    with database.bind_ctx([_Row]):
        database.create_tables([_Row])
        for i in range(0, len(epochs), 5000):
            _Row.insert_many([{"bucket": e} for e in epochs[i:i + 5000]]).execute()
        key, index_of = series.grouping(_Row.bucket)
        rows = _Row.select(_Row.bucket, key).tuples()
        return {bucket: index_of(k) for bucket, k in rows}


def _epoch(local):
    return int(local.replace(tzinfo=PARIS).timestamp())


def test_sql_grouping_across_the_spring_change():
    days = buckets.series("day", PARIS, D(2026, 3, 28), D(2026, 3, 30))
    at = {name: _epoch(t) for name, t in {
        "28 23:45": datetime.datetime(2026, 3, 28, 23, 45),  # +01:00
        "29 00:00": datetime.datetime(2026, 3, 29, 0, 0),
        "29 01:45": datetime.datetime(2026, 3, 29, 1, 45),   # last quarter before the change
        "29 03:00": datetime.datetime(2026, 3, 29, 3, 0),    # first after (+02:00)
        "29 23:45": datetime.datetime(2026, 3, 29, 23, 45),
        "30 00:00": datetime.datetime(2026, 3, 30, 0, 0)}.items()}
    grouped = _grouped(days, list(at.values()))
    assert [grouped[at[n]] for n in at] == [0, 1, 1, 1, 1, 2]
    weeks = buckets.series("week", PARIS, D(2026, 3, 23), D(2026, 4, 5))
    grouped = _grouped(weeks, [at["29 23:45"], at["30 00:00"]])
    assert [grouped[at["29 23:45"]], grouped[at["30 00:00"]]] == [0, 1]
    hours = buckets.series("hour", PARIS, D(2026, 3, 29), D(2026, 3, 29))
    grouped = _grouped(hours, [at["29 01:45"], at["29 03:00"]])
    assert [grouped[at["29 01:45"]], grouped[at["29 03:00"]]] == [1, 2]  # 02:00 does not exist


@pytest.mark.parametrize("interval,tz,first,last", [
    ("week", "Europe/Paris", D(2025, 12, 29), D(2026, 12, 31)),
    ("month", "Europe/Paris", D(2026, 1, 1), D(2026, 12, 31)),
    ("month", "America/New_York", D(2026, 3, 2), D(2026, 3, 20)),  # one month
    ("week", "Australia/Lord_Howe", D(2026, 3, 1), D(2026, 10, 31)),  # 30-minute change
    ("day", "Asia/Kolkata", D(2026, 1, 1), D(2026, 3, 31)),
    ("day", "America/New_York", D(2026, 10, 25), D(2026, 11, 7)),
])
def test_sql_groups_every_quarter_hour_into_its_bucket(interval, tz, first, last):
    # one SQL group per bucket, equal to the bucket found by bisecting the edges
    series = buckets.series(interval, zoneinfo.ZoneInfo(tz), first, last)
    epochs = range(series.start, series.end, buckets.QUARTER)
    assert _grouped(series, epochs) == {epoch: series.index_of(epoch) for epoch in epochs}


def test_joined_histograms_merge_like_one_by_one():
    texts = ['{"0":2,"12":1}', '{"12":3,"40":1}', '{"7":1}']
    one_by_one, joined = Tally(), Tally()
    for text in texts + [None, ""]:
        one_by_one.add_waits(text)
    joined.add_waits(",".join(texts))
    assert joined.waits == one_by_one.waits == {"0": 2, "7": 1, "12": 4, "40": 1}
    assert percentile(joined.waits) == 40  # rank 8 of 8: 0 0 7 12 12 12 12 40
