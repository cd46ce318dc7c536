"""Staffing plans: Erlang C from a given arrival rate and handling time (the published example
of test_erlang.py: 100 calls per 30 minutes of 180 s, 80 % in 20 s -> 14 agents)."""
import pytest

from services.errors import Unprocessable
from services.queues.staffing import plan


def test_published_example_per_half_hour():
    answer = plan(rate=100, aht=180, interval=1800, target=0.8, threshold=20)
    assert answer["traffic_erlangs"] == 10
    assert answer["agents_needed"] == 14
    assert answer["predicted"]["service_level"] == pytest.approx(0.888, abs=0.001)
    assert answer["predicted"]["occupancy"] == pytest.approx(0.7143, abs=0.0001)
    assert [p["agents"] for p in answer["around"]] == [12, 13, 14, 15, 16]
    assert answer["around"][1]["service_level"] < 0.8 <= answer["around"][2]["service_level"]


def test_same_load_per_quarter_hour_needs_the_same_agents():
    # 50 callers per 15 minutes is the same 10 erlangs.
    assert plan(rate=50, aht=180, interval=900, target=0.8, threshold=20)["agents_needed"] == 14


def test_stricter_target_needs_more():
    assert plan(rate=100, aht=180, interval=1800, target=0.9, threshold=20)["agents_needed"] == 15


def test_no_callers_no_agents():
    answer = plan(rate=0, aht=180, interval=900, target=0.8, threshold=20)
    assert answer["agents_needed"] == 0 and answer["predicted"] is None


def test_absurd_load_is_refused():
    with pytest.raises(Unprocessable) as err:
        plan(rate=1e9, aht=86400, interval=900, target=0.8, threshold=20)
    assert err.value.error_id == "staffing_out_of_range"
