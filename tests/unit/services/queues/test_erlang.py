"""Erlang C against a published worked example and an independent exact computation.

Published example (Call Centre Helper, "Erlang C Formula - Made Simple With an Easy
Worked Example", https://www.callcentrehelper.com/erlang-c-formula-example-121281.htm):
100 calls in 30 minutes, average handling time 180 s, target 80 % answered in 20 s
-> traffic intensity 10 erlangs; with 11 agents the probability of waiting is 0.6821
and the service level 39 %; 14 agents are the fewest reaching 80 % (88.8 %), with an
average speed of answer of about 8 s and an occupancy of 71.4 %.

The same figures are checked below against the textbook formula
    C(N, A) = (A^N / N! . N / (N - A)) / (sum_{k<N} A^k / k! + A^N / N! . N / (N - A))
evaluated in exact rational arithmetic (fractions), independent of the iterative code.
"""
import math
from fractions import Fraction

import pytest

from services.queues import erlang


def exact_erlang_c(traffic, agents):
    a = Fraction(traffic)
    top = a ** agents / math.factorial(agents) * Fraction(agents) / (agents - a)
    bottom = sum(a ** k / math.factorial(k) for k in range(agents)) + top
    return float(top / bottom)


def test_published_worked_example():
    traffic = 100 * 180 / 1800  # 100 calls per 30 min of 180 s each
    assert traffic == 10
    assert round(erlang.erlang_c(traffic, 11), 4) == 0.6821
    assert round(erlang.service_level(traffic, 11, 20, 180), 2) == 0.39
    assert erlang.agents_needed(traffic, 0.8, 20, 180) == 14
    p = erlang.prediction(traffic, 14, 20, 180)
    assert p["service_level"] == pytest.approx(0.888, abs=0.001)
    assert p["asa_seconds"] == pytest.approx(7.8, abs=0.1)
    assert p["occupancy"] == pytest.approx(0.7143, abs=0.0001)


@pytest.mark.parametrize("traffic,agents", [(1, 2), (2.5, 3), (10, 11), (10, 14), (45.5, 52),
                                            (100, 110), (150, 160)])
def test_iterative_equals_exact_formula(traffic, agents):
    assert erlang.erlang_c(traffic, agents) == pytest.approx(exact_erlang_c(traffic, agents),
                                                             rel=1e-9)


def test_erlang_b_known_value():
    # Erlang B table: 5 erlangs on 10 trunks block 1.84 % of calls (B(10, 5) = 0.018385).
    assert erlang.erlang_b(5, 10) == pytest.approx(0.018385, abs=1e-6)


def test_large_centres_stay_finite():
    # A^N / N! would overflow a float long before this: the recurrence does not.
    c = erlang.erlang_c(900, 950)
    assert 0 < c < 1
    assert erlang.agents_needed(900, 0.8, 20, 180) > 900


def test_overloaded_queue_has_no_finite_wait():
    assert erlang.erlang_c(10, 10) == 1.0
    assert erlang.service_level(10, 9, 20, 180) == 0.0
    assert erlang.average_speed_of_answer(10, 10, 180) is None


def test_more_agents_never_worse():
    levels = [erlang.service_level(10, n, 20, 180) for n in range(11, 25)]
    assert levels == sorted(levels)


def test_occupancy_cap_adds_agents():
    assert erlang.agents_needed(10, 0.8, 20, 180, max_occupancy=0.65) == 16  # 10/16 = 0.625


def test_no_traffic_needs_nobody():
    assert erlang.agents_needed(0, 0.8, 20, 180) == 0


def test_bad_target_rejected():
    with pytest.raises(ValueError):
        erlang.agents_needed(10, 1.5, 20, 180)
