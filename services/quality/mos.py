"""MOS from network figures: the simplified ITU-T G.107 E-model of DESIGN.md, as a pure function.

Effective latency Le = RTT + 2*jitter + 10 ms (the 10 ms stands for codec
delay); R = R0 - Le/40 below 160 ms and R0 - (Le - 120)/10 from there on;
each percent of packet loss costs 2.5 R points; MOS = 1 + 0.035R +
7e-6*R*(R-60)*(100-R), clamped to 1..4.5.

R is clamped to 0..100 before the MOS polynomial: the cubic is not monotonic
outside that range (for very negative R it climbs back to 4.5), and a worse
network must never score better.
"""

DEFAULT_R0 = 93.2
CODEC_DELAY_MS = 10.0
MOS_MIN, MOS_MAX = 1.0, 4.5


def r_factor(latency_ms, jitter_ms, loss_pct, r0=DEFAULT_R0):
    """The transmission rating R (0..100) for a round trip, jitter and loss percentage."""
    effective_latency = latency_ms + 2.0 * jitter_ms + CODEC_DELAY_MS
    if effective_latency < 160.0:
        r = r0 - effective_latency / 40.0
    else:
        r = r0 - (effective_latency - 120.0) / 10.0
    r -= 2.5 * loss_pct
    return min(100.0, max(0.0, r))


def mos_from_r(r):
    """The MOS (1..4.5) for a transmission rating R."""
    mos = 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    return min(MOS_MAX, max(MOS_MIN, mos))


def mos_from(latency_ms, jitter_ms, loss_pct, r0=DEFAULT_R0):
    """(R, MOS) for a round trip in ms, jitter in ms and packet loss in percent."""
    r = r_factor(latency_ms, jitter_ms, loss_pct, r0)
    return r, mos_from_r(r)
