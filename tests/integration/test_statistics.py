"""Statistics and quality trends on a small data set counted by hand, on SQLite and PostgreSQL.

The calls are written as the events process leaves them (ended, with
FreeSWITCH's RTP figures), then the quality job runs for each, as the worker
would: the statistics come from its facts and rollups.

    call created (UTC)     Berlin       Kolkata      agent camp gw status    bill dur outcome  MOS
    H    2024-01-09 23:15  01-10 00:15  01-10 04:45  a1    c1   g1 canceled     0   4 -        -
    A    2024-01-10 10:00  01-10 11:00  01-10 15:30  a1    c1   g1 completed   60  70 sale     4.0
    I    2024-01-10 18:35  01-10 19:35  01-11 00:05  a3    c2   g3 busy         0   3 -        -
    B    2024-01-10 23:30  01-11 00:30  01-11 05:00  a1    c1   g2 completed  120 130 callback 3.0
    C    2024-01-11 08:00  01-11 09:00  01-11 13:30  a2    c2   g1 busy         0   5 -        -
    D    2024-01-11 09:00  01-11 10:00  01-11 14:30  a2    c1   g2 no-answer    0  30 -        -
    E    2024-01-12 12:00  01-12 13:00               -     -    g1 failed       0   1 -        -
    F    2024-01-12 13:00  01-12 14:00               a2    c2   g1 completed   30  40 sale     -
    G    2024-01-12 14:00  (still in progress: never counted)
    J..M around Berlin's switch to summer time, 2024-03-31 01:00 UTC (see test_dst_day)
"""
import datetime

import peewee
import pytest
from peewee import fn

from models import Call, is_sqlite
from services.calls.notifier import CallNotifier
from services.publisher import Publisher
from services.quality import rollups, statistics
from services.quality.service import QualityService
from services.quality.statistics import StatisticsService

CONFIG = {"QUALITY_JITTER_MS": 30, "QUALITY_LOSS_PCT": 1, "QUALITY_RTT_MS": 400,
          "QUALITY_MOS_MIN": 3.5}
UTC = datetime.datetime


def stats_with_mos(mos):
    return {"in_mos": mos, "in_packet_count": 3000, "in_skip_packet_count": 0,
            "in_jitter_max_variance": 4.0, "in_quality_percentage": 100.0}


ROWS = {
    "H": {"created_at": UTC(2024, 1, 9, 23, 15), "agent_id": "a1", "campaign_id": "c1",
          "gateway": "g1", "status": "canceled", "billsec": 0, "duration": 4},
    "A": {"created_at": UTC(2024, 1, 10, 10, 0), "agent_id": "a1", "campaign_id": "c1",
          "gateway": "g1", "status": "completed", "billsec": 60, "duration": 70,
          "outcome": "sale", "answered": True, "rtp_stats": stats_with_mos(4.0)},
    "I": {"created_at": UTC(2024, 1, 10, 18, 35), "agent_id": "a3", "campaign_id": "c2",
          "gateway": "g3", "status": "busy", "billsec": 0, "duration": 3},
    "B": {"created_at": UTC(2024, 1, 10, 23, 30), "agent_id": "a1", "campaign_id": "c1",
          "gateway": "g2", "status": "completed", "billsec": 120, "duration": 130,
          "outcome": "callback", "answered": True, "rtp_stats": stats_with_mos(3.0)},
    "C": {"created_at": UTC(2024, 1, 11, 8, 0), "agent_id": "a2", "campaign_id": "c2",
          "gateway": "g1", "status": "busy", "billsec": 0, "duration": 5},
    "D": {"created_at": UTC(2024, 1, 11, 9, 0), "agent_id": "a2", "campaign_id": "c1",
          "gateway": "g2", "status": "no-answer", "billsec": 0, "duration": 30},
    "E": {"created_at": UTC(2024, 1, 12, 12, 0), "gateway": "g1", "status": "failed",
          "billsec": 0, "duration": 1},
    "F": {"created_at": UTC(2024, 1, 12, 13, 0), "agent_id": "a2", "campaign_id": "c2",
          "gateway": "g1", "status": "completed", "billsec": 30, "duration": 40,
          "outcome": "sale", "answered": True},
    "G": {"created_at": UTC(2024, 1, 12, 14, 0), "agent_id": "a2", "campaign_id": "c2",
          "gateway": "g1", "status": "in-progress", "answered": True},
    # Berlin switches from +1 to +2 at 2024-03-31 01:00 UTC.
    "J": {"created_at": UTC(2024, 3, 30, 22, 59), "agent_id": "a4", "campaign_id": "c4",
          "status": "busy", "duration": 2},
    "K": {"created_at": UTC(2024, 3, 30, 23, 0), "agent_id": "a4", "campaign_id": "c4",
          "status": "busy", "duration": 2},
    "L": {"created_at": UTC(2024, 3, 31, 21, 59), "agent_id": "a4", "campaign_id": "c4",
          "status": "busy", "duration": 2},
    "M": {"created_at": UTC(2024, 3, 31, 22, 0), "agent_id": "a4", "campaign_id": "c4",
          "status": "busy", "duration": 2},
}


def make_call(name, row):
    row = dict(row)
    answered = row.pop("answered", False)
    created = row["created_at"]
    if answered:
        row["answered_at"] = created + datetime.timedelta(seconds=row.get("duration", 0)
                                                          - row.get("billsec", 0))
    if row["status"] != "in-progress":
        row["ended_at"] = created + datetime.timedelta(seconds=row.get("duration", 0))
    return Call.create(to_number="1555000" + name, updated_at=created, **row)


@pytest.fixture(scope="module")
def quality(bound_db, redis_server):
    return QualityService(CallNotifier(Publisher(redis_server.client())), CONFIG)


@pytest.fixture(scope="module")
def calls(bound_db, quality):
    made = {name: make_call(name, row) for name, row in ROWS.items()}
    for call in made.values():
        quality.summarize(call.id)
    return made


@pytest.fixture(scope="module")
def stats(calls):
    return StatisticsService(CONFIG)


def query(service, date_from, date_to, tz="UTC", **extra):
    return service.statistics(dict(date_from=datetime.date.fromisoformat(date_from),
                                   date_to=datetime.date.fromisoformat(date_to),
                                   time_zone=tz, **extra))


def counts(series):
    return {b["period_start"]: b["calls"] for b in series}


def test_totals_in_utc(stats):
    totals = query(stats, "2024-01-10", "2024-01-12")["totals"]
    assert totals == {
        "calls": 7, "answered": 3, "answer_rate": round(3 / 7, 4), "completed": 3, "busy": 2,
        "no_answer": 1, "failed": 1, "canceled": 0, "talk_time_total": 210,
        "talk_time_avg": 70.0, "handle_time_avg": 80.0, "mos_avg": 3.5, "mos_calls": 2,
        "below_mos_share": 0.5, "outcomes": {"callback": 1, "sale": 2}, "conversions": 2,
        "conversion_rate": 0.6667,
    }


def test_a_call_at_23_30_utc_is_the_next_day_in_berlin(stats):
    utc = query(stats, "2024-01-10", "2024-01-12", period="day")
    berlin = query(stats, "2024-01-10", "2024-01-12", "Europe/Berlin", period="day")
    assert counts(utc["series"]) == {"2024-01-10": 3, "2024-01-11": 2, "2024-01-12": 2}
    # H (23:15 UTC the day before) joins Jan 10, B (23:30 UTC) moves to Jan 11.
    assert counts(berlin["series"]) == {"2024-01-10": 3, "2024-01-11": 3, "2024-01-12": 2}
    assert berlin["totals"]["calls"] == 8 and berlin["totals"]["canceled"] == 1
    jan11 = berlin["series"][1]
    assert jan11["start"] == "2024-01-11T00:00:00+01:00"
    assert jan11["end"] == "2024-01-12T00:00:00+01:00"
    assert jan11["outcomes"] == {"callback": 1} and jan11["mos_avg"] == 3.0
    assert berlin["computed_from"]["totals"] == "rollups"


def test_half_hour_zone_edges(stats):
    kolkata = query(stats, "2024-01-10", "2024-01-11", "Asia/Kolkata", period="day")
    # Jan 10 IST = [Jan 9 18:30, Jan 10 18:30) UTC: H and A; I at 18:35 UTC is Jan 11.
    assert counts(kolkata["series"]) == {"2024-01-10": 2, "2024-01-11": 4}
    assert kolkata["computed_from"]["totals"] == "rollups"


def test_dst_day(stats):
    berlin = query(stats, "2024-03-30", "2024-04-01", "Europe/Berlin", period="day")
    # J 23:59 CET Mar 30; K 00:00 CET Mar 31; L 23:59 CEST Mar 31 (a 23-hour day); M Apr 1.
    assert counts(berlin["series"]) == {"2024-03-30": 1, "2024-03-31": 2, "2024-04-01": 1}
    assert berlin["series"][2]["start"] == "2024-04-01T00:00:00+02:00"
    # One filter: the half-hour rollups; two: the facts (J..M are all a4's, in c4).
    one_agent = query(stats, "2024-03-30", "2024-04-01", "Europe/Berlin", period="day",
                      agent_id="a4")
    assert one_agent["computed_from"]["totals"] == "rollups"
    from_facts = query(stats, "2024-03-30", "2024-04-01", "Europe/Berlin", period="day",
                       agent_id="a4", campaign_id="c4")
    assert from_facts["computed_from"]["totals"] == "facts"
    assert counts(from_facts["series"]) == counts(one_agent["series"]) == counts(berlin["series"])
    utc = query(stats, "2024-03-30", "2024-04-01", period="day")
    assert counts(utc["series"]) == {"2024-03-30": 2, "2024-03-31": 2, "2024-04-01": 0}


def test_utc_days_with_one_filter_come_from_the_daily_rollups_as_the_facts_say(stats):
    # a1: H (Jan 9 23:15 UTC), A and B (Jan 10); every a1 call is in campaign c1, so the
    # second query (two filters: the facts) must give the same figures.
    rolled = query(stats, "2024-01-09", "2024-01-12", period="day", agent_id="a1")
    assert rolled["computed_from"]["totals"] == "rollups"
    assert counts(rolled["series"]) == {"2024-01-09": 1, "2024-01-10": 2, "2024-01-11": 0,
                                        "2024-01-12": 0}
    from_facts = query(stats, "2024-01-09", "2024-01-12", period="day", agent_id="a1",
                       campaign_id="c1")
    assert from_facts["computed_from"]["totals"] == "facts"
    assert rolled["totals"] == from_facts["totals"] and rolled["totals"]["calls"] == 3
    assert rolled["series"] == from_facts["series"]
    assert rolled["totals"]["outcomes"] == {"callback": 1, "sale": 1}
    # No filter: every call once (E has no agent, J..M no gateway), as the quarter hours say.
    everyone = query(stats, "2024-01-09", "2024-04-01", period="month")
    assert everyone["computed_from"]["totals"] == "rollups"
    assert everyone["totals"]["calls"] == 12
    assert counts(everyone["series"]) == {"2024-01-01": 8, "2024-02-01": 0, "2024-03-01": 4,
                                          "2024-04-01": 0}


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Asia/Kolkata", "America/St_Johns"])
def test_one_filter_in_a_half_hour_zone_comes_from_the_half_hour_rollups_as_the_facts_say(
        stats, tz):
    rolled = query(stats, "2024-01-09", "2024-01-12", tz, period="day", agent_id="a1")
    assert rolled["computed_from"]["totals"] == "rollups"
    from_facts = query(stats, "2024-01-09", "2024-01-12", tz, period="day", agent_id="a1",
                       campaign_id="c1")
    assert from_facts["computed_from"]["totals"] == "facts"
    assert rolled["totals"] == from_facts["totals"] and rolled["totals"]["calls"] == 3
    assert rolled["series"] == from_facts["series"]
    assert rolled["totals"]["outcomes"] == {"callback": 1, "sale": 1}


def test_one_filter_in_a_quarter_hour_zone_comes_from_the_facts(stats):
    # Kathmandu is UTC+5:45: its midnights are not on half hours. A1's H (Jan 9 23:15 UTC)
    # is Jan 10 05:00 there, A Jan 10 15:45, B (Jan 10 23:30 UTC) Jan 11 05:15.
    nepal = query(stats, "2024-01-09", "2024-01-12", "Asia/Kathmandu", period="day",
                  agent_id="a1")
    assert nepal["computed_from"]["totals"] == "facts"
    assert counts(nepal["series"]) == {"2024-01-09": 0, "2024-01-10": 2, "2024-01-11": 1,
                                       "2024-01-12": 0}


def test_weeks_and_months(stats):
    weeks = query(stats, "2024-01-10", "2024-01-12", "Europe/Berlin", period="week")
    assert [(b["period_start"], b["start"], b["calls"]) for b in weeks["series"]] == [
        ("2024-01-08", "2024-01-10T00:00:00+01:00", 8)]
    months = query(stats, "2024-01-01", "2024-04-30", "Europe/Berlin", period="month")
    assert counts(months["series"]) == {"2024-01-01": 8, "2024-02-01": 0, "2024-03-01": 3,
                                        "2024-04-01": 1}
    assert months["series"][3]["start"] == "2024-04-01T00:00:00+02:00"


def test_group_by_agent(stats):
    result = query(stats, "2024-01-10", "2024-01-12", "Europe/Berlin", group_by="agent")
    groups = {g["agent_id"]: g for g in result["groups"]}
    assert [g["agent_id"] for g in result["groups"]] == ["a1", "a2", None, "a3"]
    a1 = groups["a1"]
    assert (a1["calls"], a1["answered"], a1["canceled"]) == (3, 2, 1)
    assert a1["handle_time_avg"] == 100.0 and a1["talk_time_avg"] == 90.0
    assert a1["mos_avg"] == 3.5 and a1["outcomes"] == {"callback": 1, "sale": 1}
    assert a1["conversions"] == 1 and a1["conversion_rate"] == 0.5
    a2 = groups["a2"]
    assert (a2["calls"], a2["answered"], a2["busy"], a2["no_answer"]) == (3, 1, 1, 1)
    assert a2["conversion_rate"] == 1.0 and a2["mos_avg"] is None
    assert groups[None]["failed"] == 1 and groups["a3"]["busy"] == 1
    # Whole UTC days from the daily rollup, the ragged local edges from the facts.
    assert result["computed_from"]["groups"] == "rollups"
    # Without a series the totals are the groups' sum; they match the day rollups' totals.
    assert result["totals"] == query(stats, "2024-01-10", "2024-01-12", "Europe/Berlin")["totals"]


def test_group_by_campaign_with_custom_conversions(stats):
    result = query(stats, "2024-01-10", "2024-01-12", "Europe/Berlin", group_by="campaign",
                   conversion_outcomes=["callback"])
    groups = {g["campaign_id"]: g for g in result["groups"]}
    assert groups["c1"]["calls"] == 4 and groups["c1"]["conversions"] == 1
    assert groups["c2"]["calls"] == 3 and groups["c2"]["conversions"] == 0
    assert result["totals"]["conversions"] == 1


def test_a_short_range_groups_from_the_facts(stats):
    result = query(stats, "2024-01-11", "2024-01-11", "Europe/Berlin", group_by="agent")
    assert result["computed_from"]["groups"] == "facts"
    assert {g["agent_id"]: g["calls"] for g in result["groups"]} == {"a1": 1, "a2": 2}


def test_filters(stats):
    result = query(stats, "2024-01-10", "2024-01-12", "Europe/Berlin", period="day",
                   agent_id="a1", group_by="campaign")
    assert counts(result["series"]) == {"2024-01-10": 2, "2024-01-11": 1, "2024-01-12": 0}
    assert [(g["campaign_id"], g["calls"]) for g in result["groups"]] == [("c1", 3)]


def test_empty_range(stats):
    result = query(stats, "2023-06-01", "2023-06-03", "Europe/Berlin", period="day",
                   group_by="agent")
    totals = result["totals"]
    assert totals["calls"] == 0 and totals["answer_rate"] is None
    assert totals["mos_avg"] is None and totals["talk_time_avg"] is None
    assert totals["outcomes"] == {} and totals["conversion_rate"] is None
    assert counts(result["series"]) == {"2023-06-01": 0, "2023-06-02": 0, "2023-06-03": 0}
    assert result["groups"] == []


def test_quality_trends(stats):
    result = stats.quality({"date_from": datetime.date(2024, 1, 10),
                                "date_to": datetime.date(2024, 1, 12),
                                "time_zone": "Europe/Berlin", "period": "day"})
    assert result["overall"] == {"calls": 8, "mos_calls": 2, "mos_avg": 3.5,
                                 "below_mos_share": 0.5}
    assert [(b["period_start"], b["mos_avg"]) for b in result["series"]] == [
        ("2024-01-10", 4.0), ("2024-01-11", 3.0), ("2024-01-12", None)]
    assert [(g["gateway"], g["mos_avg"], g["below_mos_share"])
            for g in result["worst_gateways"]] == [("g2", 3.0, 1.0), ("g1", 4.0, 0.0)]


def test_live_calls_are_not_counted(quality, calls):
    assert quality.summarize(calls["G"].id) is None
    assert Call.get_by_id(calls["G"].id).quality is None


def test_the_summary_says_where_its_figures_come_from(calls):
    summary = Call.get_by_id(calls["A"].id).quality
    assert summary["mos_avg"] == 4.0 and summary["sources"]["mos"] == "freeswitch"
    assert summary["jitter_max_ms"] == 2.0  # sqrt of the 4.0 ms^2 max variance
    assert Call.get_by_id(calls["F"].id).quality["mos_avg"] is None


def test_rollups_equal_a_full_recomputation(quality, calls, stats):
    """Re-runs, changes and deletions through the job and hooks leave what a rebuild makes."""
    berlin_before = query(stats, "2024-01-10", "2024-01-12", "Europe/Berlin", period="day",
                          group_by="agent")
    quality.summarize(calls["A"].id)  # a retry counts nothing twice
    quality.summarize(calls["A"].id)
    assert query(stats, "2024-01-10", "2024-01-12", "Europe/Berlin", period="day",
                 group_by="agent") == berlin_before

    extra = [make_call(f"X{i}", {
        "created_at": UTC(2025, 2, 1, i, 7), "agent_id": f"x{i % 3}", "campaign_id": "cx",
        "gateway": "gx", "status": "completed", "billsec": 10 * i, "duration": 10 * i + 5,
        "outcome": "sale", "answered": True, "rtp_stats": stats_with_mos(3.0 + i / 10)})
             for i in range(1, 10)]
    for call in extra:
        quality.summarize(call.id)
    # An outcome changed after the call, and FreeSWITCH's figures arriving late.
    Call.update(outcome="callback").where(Call.id == extra[0].id).execute()
    Call.update(rtp_stats=stats_with_mos(1.5)).where(Call.id == extra[1].id).execute()
    quality.summarize(extra[0].id)
    quality.summarize(extra[1].id)
    # A deleted call leaves the rollups through the deleting hook.
    deleted = Call.get_by_id(extra[2].id)
    quality.on_call_deleting(deleted, None)
    deleted.delete_instance()

    incremental = rollups.snapshot()
    rollups.rebuild(CONFIG["QUALITY_MOS_MIN"], echo=lambda *_: None)
    assert rollups.snapshot() == incremental
    assert all(incremental.values())  # every rollup table has rows to compare

    feb = query(stats, "2025-02-01", "2025-02-01", group_by="agent")
    assert feb["totals"]["calls"] == 8
    assert feb["totals"]["outcomes"] == {"callback": 1, "sale": 7}
    # Below 3.5: X1 (3.1), X2 (now FreeSWITCH's 1.5) and X4 (3.4); X3 (3.3) was deleted.
    assert feb["totals"]["mos_calls"] == 8 and feb["totals"]["below_mos_share"] == 0.375

    # A call removed behind the service's back leaves with the next rebuild.
    Call.delete().where(Call.id == extra[3].id).execute()
    report = rollups.rebuild(CONFIG["QUALITY_MOS_MIN"], echo=lambda *_: None)
    assert report["removed"] == 1
    assert query(stats, "2025-02-01", "2025-02-01")["totals"]["calls"] == 7


def test_the_sweep_counts_calls_whose_job_was_lost(quality, calls, stats):
    """A call that ended while Redis was down (no job) is summarized by the periodic sweep."""
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    lost = make_call("Z", {"created_at": now - datetime.timedelta(minutes=10), "agent_id": "z1",
                           "status": "completed", "billsec": 50, "duration": 60,
                           "answered": True, "rtp_stats": stats_with_mos(4.1)})
    assert quality.summarize_missed() == 1
    assert quality.summarize_missed() == 0
    assert Call.get_by_id(lost.id).quality["mos_avg"] == 4.1
    day = (now - datetime.timedelta(minutes=10)).date().isoformat()
    assert query(stats, day, day, agent_id="z1")["totals"]["calls"] == 1


def test_on_postgresql_the_outcome_rows_come_from_a_second_connection_meanwhile(bound_db):
    """A statistics request waits for the longer of its two queries, not their sum: the
    outcomes run on another pooled connection (another backend) while the measures run;
    inside a transaction both stay on its connection (they must see its writes)."""
    if is_sqlite():
        pytest.skip("SQLite runs in the web process: its queries go one by one")
    measures = peewee.Select(columns=[fn.pg_backend_pid()]).bind(bound_db)
    outcomes = peewee.Select(columns=[fn.pg_backend_pid(), peewee.Value("sale")]).bind(bound_db)
    rows = statistics._rows(measures, outcomes, "rollups")
    ((mine,),), ((theirs, outcome),) = rows.measures, rows.outcomes
    assert mine != theirs and outcome == "sale" and rows.source == "rollups"
    with bound_db.atomic():
        rows = statistics._rows(measures, outcomes, "rollups")
    assert rows.measures[0][0] == rows.outcomes[0][0] == mine
