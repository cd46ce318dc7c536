"""The simplified E-model: DESIGN.md's test vectors and the properties a MOS must keep."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.quality.mos import mos_from


@pytest.mark.parametrize("rtt,jitter,loss,r,mos", [
    (0, 0, 0, 92.95, 4.404),
    (500, 0, 0, 54.20, 2.796),
    (0, 100, 0, 84.20, 4.172),
    (0, 200, 0, 64.20, 3.315),
])
def test_design_vectors(rtt, jitter, loss, r, mos):
    got_r, got_mos = mos_from(rtt, jitter, loss)
    assert round(got_r, 2) == r
    assert round(got_mos, 3) == mos


def test_loss_costs_two_and_a_half_r_points_per_percent():
    r0, _ = mos_from(0, 0, 0)
    r2, mos2 = mos_from(0, 0, 2)
    assert r2 == pytest.approx(r0 - 5.0)
    assert mos2 < 4.404


def test_the_159_160_ms_knee_is_continuous():
    # Le = RTT + 10: 150 ms RTT gives Le 160, the first point of the steeper branch.
    below, _ = mos_from(149.999, 0, 0)
    at, _ = mos_from(150, 0, 0)
    assert below == pytest.approx(at, abs=1e-3)


def test_a_hopeless_network_scores_one_not_more():
    assert mos_from(60000, 10000, 100) == (0.0, 1.0)


ms = st.floats(min_value=0, max_value=5000, allow_nan=False)
pct = st.floats(min_value=0, max_value=100, allow_nan=False)
extra_ms = st.floats(min_value=0, max_value=2000, allow_nan=False)
extra_pct = st.floats(min_value=0, max_value=50, allow_nan=False)


@settings(max_examples=500, deadline=None)
@given(ms, ms, pct)
def test_mos_stays_between_1_and_4_5(rtt, jitter, loss):
    r, mos = mos_from(rtt, jitter, loss)
    assert 1.0 <= mos <= 4.5
    assert 0.0 <= r <= 100.0


@settings(max_examples=500, deadline=None)
@given(ms, ms, pct, extra_ms, extra_ms, extra_pct)
def test_mos_never_rises_when_latency_jitter_or_loss_rise(rtt, jitter, loss, d_rtt, d_jit,
                                                          d_loss):
    _, base = mos_from(rtt, jitter, loss)
    assert mos_from(rtt + d_rtt, jitter, loss)[1] <= base
    assert mos_from(rtt, jitter + d_jit, loss)[1] <= base
    assert mos_from(rtt, jitter, min(100.0, loss + d_loss))[1] <= base
    assert mos_from(rtt + d_rtt, jitter + d_jit, min(100.0, loss + d_loss))[1] <= base
