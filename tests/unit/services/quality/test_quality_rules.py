"""The live alert rule over sequences of samples, and the per-call quality summary (pure)."""
import datetime
import json
import os
from types import SimpleNamespace

import pytest

from freeswitch.events.calls import rtp_stats
from services.quality.samples import Thresholds, alert_decision, build_summary, crossings
from tests.conftest import ROOT

LIMITS = Thresholds(jitter_ms=30, loss_pct=1, rtt_ms=400, mos=3.5)
GOOD = {"latency_ms": 80, "jitter_ms": 5, "packet_loss_pct": 0, "mos": 4.3}
JITTERY = dict(GOOD, jitter_ms=45)
LOSSY = dict(GOOD, packet_loss_pct=3)
SLOW = dict(GOOD, latency_ms=650)
POOR_MOS = dict(GOOD, mos=3.1)
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "esl")


def run(samples):
    """Feed samples one by one as the web process does; returns the events announced per sample."""
    active, history, events = False, [], []
    for sample in samples:
        history.append(sample)
        decision = alert_decision(active, history[-5:], LIMITS)
        active = decision.active
        events.append((decision.event, decision.details))
    return events


def announced(events):
    return [(i, event) for i, (event, _) in enumerate(events) if event]


def test_three_bad_of_five_raise_the_alert_once():
    events = run([GOOD, GOOD, JITTERY, JITTERY, JITTERY, JITTERY, JITTERY, JITTERY])
    assert announced(events) == [(4, "call.quality_degraded")]


def test_two_bad_of_five_do_not_raise():
    events = run([JITTERY, GOOD, GOOD, JITTERY, GOOD, GOOD, GOOD, JITTERY, GOOD, GOOD])
    assert announced(events) == []


def test_any_threshold_counts_and_the_alert_names_them():
    events = run([JITTERY, LOSSY, SLOW, POOR_MOS])
    assert announced(events) == [(2, "call.quality_degraded")]
    details = events[2][1]
    assert details["crossing_samples"] == 3
    assert details["thresholds"] == {
        "jitter_ms": {"threshold": 30, "samples": 1, "worst": 45},
        "packet_loss_pct": {"threshold": 1, "samples": 1, "worst": 3},
        "latency_ms": {"threshold": 400, "samples": 1, "worst": 650},
    }
    assert events[3][1]["thresholds"]["mos"] == {"threshold": 3.5, "samples": 1, "worst": 3.1}


def test_recovers_once_when_the_window_clears():
    events = run([LOSSY, LOSSY, LOSSY, GOOD, GOOD, GOOD, GOOD, GOOD, GOOD, GOOD])
    # Degraded at the third; the window holds 3 bad until the 5th sample, 2 at
    # the 6th, 1 at the 7th: recovered there, and only there.
    assert announced(events) == [(2, "call.quality_degraded"), (6, "call.quality_recovered")]


def test_alternating_samples_do_not_flap():
    events = run([JITTERY, GOOD] * 8 + [JITTERY])
    assert announced(events) == [(4, "call.quality_degraded")]


def test_degrades_again_after_recovering():
    bad, good = [SLOW] * 3, [GOOD] * 4
    events = run(bad + good + bad)
    assert announced(events) == [(2, "call.quality_degraded"), (6, "call.quality_recovered"),
                                 (9, "call.quality_degraded")]


@pytest.mark.parametrize("sample", [
    dict(GOOD, jitter_ms=30), dict(GOOD, packet_loss_pct=1), dict(GOOD, latency_ms=400),
    dict(GOOD, mos=3.5)])
def test_a_figure_at_its_threshold_does_not_cross(sample):
    assert crossings(sample, LIMITS) == {}


def test_configured_thresholds_apply():
    strict = Thresholds(jitter_ms=4, loss_pct=1, rtt_ms=400, mos=3.5)
    assert crossings(GOOD, strict) == {"jitter_ms": 5}


# ----- the summary ---------------------------------------------------------------------
T0 = datetime.datetime(2024, 5, 1, 12, 0, 0)


def sample(seconds, mos, jitter=5.0, loss=0.0, rtt=80.0, crossed=False, alert=False):
    return SimpleNamespace(created_at=T0 + datetime.timedelta(seconds=seconds), mos=mos,
                           jitter_ms=jitter, packet_loss_pct=loss, latency_ms=rtt,
                           crossed=crossed, alert_active=alert)


def hangup_stats():
    with open(os.path.join(FIXTURES, "07_channel_hangup_complete_decoded_plain.json")) as fh:
        return rtp_stats(json.load(fh))


def test_summary_from_samples_says_so_and_measures_time_below_threshold():
    samples = [sample(0, 4.2), sample(10, 3.0, jitter=40, crossed=True),
               sample(20, 3.2, loss=2, crossed=True, alert=False), sample(30, 4.0)]
    summary = build_summary(samples, hangup_stats(), T0 + datetime.timedelta(seconds=35),
                            LIMITS)
    assert summary["mos_min"] == 3.0 and summary["mos_avg"] == 3.6
    assert summary["jitter_avg_ms"] == 13.75 and summary["jitter_max_ms"] == 40
    assert summary["loss_avg_pct"] == 0.5 and summary["loss_max_pct"] == 2
    assert summary["rtt_avg_ms"] == 80 and summary["rtt_max_ms"] == 80
    # Samples 2 and 3 (MOS 3.0 and 3.2) each stand for 10 s.
    assert summary["seconds_below_mos"] == 20 and summary["seconds_degraded"] == 20
    assert summary["samples"] == 4
    assert set(summary["sources"].values()) == {"samples"}
    # FreeSWITCH's own figures are kept beside them.
    assert summary["freeswitch"]["mos"] == 4.5 and summary["freeswitch"]["packets"] == 175


def test_summary_from_freeswitch_alone():
    stats = hangup_stats()  # the captured hangup: 175 packets, 3 skipped, MOS 4.50
    summary = build_summary([], stats, T0, LIMITS)
    assert summary["mos_min"] == summary["mos_avg"] == 4.5
    assert summary["loss_avg_pct"] == summary["loss_max_pct"] == round(300 / 178, 3)
    assert summary["jitter_max_ms"] == 0.0 and summary["jitter_avg_ms"] is None
    assert summary["sources"] == {"mos": "freeswitch", "jitter": "freeswitch",
                                  "loss": "freeswitch", "rtt": None,
                                  "time_below_threshold": None}
    assert summary["rtt_avg_ms"] is None and summary["seconds_below_mos"] is None


def test_summary_of_a_call_without_media_has_no_mos():
    stats = dict(hangup_stats(), in_packet_count=0, in_media_packet_count=0)
    summary = build_summary([], stats, T0, LIMITS)
    assert summary["mos_avg"] is None and summary["freeswitch"] is None
    assert summary["sources"]["mos"] is None


def test_a_silent_client_does_not_stretch_one_sample_over_the_call():
    summary = build_summary([sample(0, 2.5, crossed=True)], None,
                            T0 + datetime.timedelta(minutes=30), LIMITS)
    assert summary["seconds_below_mos"] == 60.0  # one sample speaks for at most 60 s


def test_alert_episodes_are_counted():
    samples = [sample(i, 3.0, crossed=True, alert=flag)
               for i, flag in enumerate([False, False, True, True, False, True])]
    assert build_summary(samples, None, T0, LIMITS)["alerts"] == 2
