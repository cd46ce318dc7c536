"""The fault soak, bounded for `make test`: calls keep their right outcome and the live feed
stays whole while the Event Socket is cut, the events process is killed and Redis stops.

The longer run (2,000 calls, Redis down 30 s) is bench/bench_fault_soak.py.
"""
import os

import pytest

from tests.esl_sim import ESLSimulator
from tests.fault_soak import Plan, Soak


@pytest.fixture
def soak_sim(tmp_path):
    simulator = ESLSimulator(host="127.0.0.1", port=0, password="ClueCon",
                             recordings_root=str(tmp_path / "recordings"))
    simulator.gateway_dir = str(tmp_path / "gateways")
    os.makedirs(simulator.gateway_dir, exist_ok=True)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.mark.slow
def test_calls_and_news_survive_cuts_kills_and_a_redis_outage(db_url, soak_sim, tmp_path):
    soak = Soak(Plan(calls=240, rate=12.0, redis_down_seconds=6.0, settle_seconds=60.0),
                db_url, soak_sim, str(tmp_path))
    try:
        figures = soak.run()
    finally:
        soak.stop()
    print(figures.report())
    assert figures.started == 240 and figures.duplicated == 0
    assert figures.stored == figures.started + figures.refused_starts
    assert figures.lost == 0, figures.lost_calls
    assert figures.trail_duplicates == 0, figures.duplicated_moves
    assert figures.still_live == 0 and figures.leaked_channels == 0
    assert not figures.wrong, figures.wrong[:10]
    assert figures.exact >= figures.started * 0.6, figures.report()
    assert not figures.feed_gaps and not figures.feed_out_of_order, figures.report()
    assert not figures.feed_missing_final, figures.feed_missing_final[:10]
    assert figures.resyncs == 0 and figures.outbox_left == 0
    assert not figures.bad_responses, figures.bad_responses
    assert all(figures.processes.values()), figures.processes
