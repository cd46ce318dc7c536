"""Quality samples as pure functions: thresholds, crossings, the alert rule, the E-model, summaries.

The alert rule: a sample crosses when jitter > QUALITY_JITTER_MS, loss >
QUALITY_LOSS_PCT, RTT > QUALITY_RTT_MS or MOS < QUALITY_MOS_MIN. The alert is
raised when at least 3 of the last 5 samples cross, and cleared when at most 1
of the last 5 does: the gap between the two (hysteresis) keeps a call whose
samples alternate good and bad from flapping degraded/recovered every sample.
"""
import dataclasses
import math

from services.quality.mos import mos_from

ALERT_WINDOW = 5
ALERT_RAISE_AT = 3
ALERT_CLEAR_AT = 1
# A sample speaks for the time until the next one, but for no more than this:
# a client that stops reporting does not make the rest of the call "degraded".
SAMPLE_SPAN_MAX_SECONDS = 60.0


# ----- thresholds and the alert rule (pure) ------------------------------------
@dataclasses.dataclass(frozen=True)
class Thresholds:
    jitter_ms: float = 30.0
    loss_pct: float = 1.0
    rtt_ms: float = 400.0
    mos: float = 3.5

    @classmethod
    def from_config(cls, config):
        return cls(jitter_ms=float(config.get("QUALITY_JITTER_MS", 30.0)),
                   loss_pct=float(config.get("QUALITY_LOSS_PCT", 1.0)),
                   rtt_ms=float(config.get("QUALITY_RTT_MS", 400.0)),
                   mos=float(config.get("QUALITY_MOS_MIN", 3.5)))

    def as_dict(self):
        return dataclasses.asdict(self)


def crossings(sample, limits):
    """The figures of one sample that cross their threshold: {metric: value}."""
    crossed = {}
    if sample["jitter_ms"] > limits.jitter_ms:
        crossed["jitter_ms"] = sample["jitter_ms"]
    if sample["packet_loss_pct"] > limits.loss_pct:
        crossed["packet_loss_pct"] = sample["packet_loss_pct"]
    if sample["latency_ms"] > limits.rtt_ms:
        crossed["latency_ms"] = sample["latency_ms"]
    if sample["mos"] < limits.mos:
        crossed["mos"] = sample["mos"]
    return crossed


def _limit_of(metric, limits):
    return {"jitter_ms": limits.jitter_ms, "packet_loss_pct": limits.loss_pct,
            "latency_ms": limits.rtt_ms, "mos": limits.mos}[metric]


@dataclasses.dataclass
class AlertDecision:
    active: bool
    event: str | None  # call.quality_degraded | call.quality_recovered | None
    details: dict


def alert_decision(was_active, window, limits, raise_at=ALERT_RAISE_AT, clear_at=ALERT_CLEAR_AT):
    """Apply the alert rule to the last samples (oldest first, the newest included).

    Returns the alert state after the newest sample, the event to announce if
    the state changed, and which thresholds the window's samples crossed.
    """
    window = list(window)[-ALERT_WINDOW:]
    per_sample = [crossings(sample, limits) for sample in window]
    bad = sum(1 for crossed in per_sample if crossed)
    active = was_active
    if not was_active and bad >= raise_at:
        active = True
    elif was_active and bad <= clear_at:
        active = False
    thresholds = {}
    for crossed in per_sample:
        for metric, value in crossed.items():
            entry = thresholds.setdefault(metric, {"threshold": _limit_of(metric, limits),
                                                   "samples": 0, "worst": value})
            entry["samples"] += 1
            entry["worst"] = min(entry["worst"], value) if metric == "mos" else max(
                entry["worst"], value)
    details = {"window": len(window), "crossing_samples": bad, "thresholds": thresholds}
    event = None
    if active != was_active:
        event = "call.quality_degraded" if active else "call.quality_recovered"
    return AlertDecision(active, event, details)


# ----- the per-call summary (pure) ----------------------------------------------
def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def freeswitch_figures(rtp_stats):
    """FreeSWITCH's end-of-call figures from Call.rtp_stats, or None when it carried no media.

    FreeSWITCH's MOS comes from its own R (received vs. flawed packets).
    `in_jitter_max_variance` is the largest variance (ms squared) of packet
    inter-arrival time around the mean interval, so its square root is the
    worst jitter in ms; FreeSWITCH exports no average. Loss is the packets
    FreeSWITCH had to skip (lost or too late) over all it expected.
    """
    if not isinstance(rtp_stats, dict):
        return None
    packets = _number(rtp_stats.get("in_packet_count")) or _number(
        rtp_stats.get("in_media_packet_count"))
    if not packets:
        return None  # no media: a MOS of 4.5 would mean nothing
    skipped = _number(rtp_stats.get("in_skip_packet_count")) or 0.0
    max_variance = _number(rtp_stats.get("in_jitter_max_variance"))
    return {
        "mos": _number(rtp_stats.get("in_mos")),
        "quality_pct": _number(rtp_stats.get("in_quality_percentage")),
        "jitter_max_ms": round(math.sqrt(max_variance), 2) if max_variance else (
            0.0 if max_variance == 0 else None),
        "loss_pct": round(100.0 * skipped / (packets + skipped), 3),
        "packets": int(packets), "skipped": int(skipped),
        "flaws": _number(rtp_stats.get("in_flaw_total")),
    }


def _sample_spans(samples, ended_at):
    spans = []
    for index, sample in enumerate(samples):
        until = samples[index + 1].created_at if index + 1 < len(samples) else ended_at
        seconds = (until - sample.created_at).total_seconds() if until else 0.0
        spans.append(min(SAMPLE_SPAN_MAX_SECONDS, max(0.0, seconds)))
    return spans


def sample_figures(samples, ended_at, limits):
    """Figures from the live samples (oldest first): MOS, jitter, loss, RTT, time degraded."""
    if not samples:
        return None
    mos = [s.mos for s in samples]
    jitter = [s.jitter_ms for s in samples]
    loss = [s.packet_loss_pct for s in samples]
    rtt = [s.latency_ms for s in samples]
    spans = _sample_spans(samples, ended_at)
    raised = sum(1 for i, s in enumerate(samples)
                 if s.alert_active and (i == 0 or not samples[i - 1].alert_active))
    return {
        "mos_min": round(min(mos), 3), "mos_avg": round(sum(mos) / len(mos), 3),
        "jitter_avg_ms": round(sum(jitter) / len(jitter), 2),
        "jitter_max_ms": round(max(jitter), 2),
        "loss_avg_pct": round(sum(loss) / len(loss), 3), "loss_max_pct": round(max(loss), 3),
        "rtt_avg_ms": round(sum(rtt) / len(rtt), 2), "rtt_max_ms": round(max(rtt), 2),
        "seconds_below_mos": round(sum(span for s, span in zip(samples, spans)
                                       if s.mos < limits.mos), 1),
        "seconds_degraded": round(sum(span for s, span in zip(samples, spans) if s.crossed), 1),
        "samples": len(samples), "alerts": raised,
    }


FIGURE_GROUPS = {
    "mos": ("mos_min", "mos_avg"),
    "jitter": ("jitter_avg_ms", "jitter_max_ms"),
    "loss": ("loss_avg_pct", "loss_max_pct"),
    "rtt": ("rtt_avg_ms", "rtt_max_ms"),
    "time_below_threshold": ("seconds_below_mos", "seconds_degraded"),
}


def _from_freeswitch(fs):
    if fs is None:
        return {}
    figures = {}
    if fs["mos"] is not None:
        figures.update(mos_min=fs["mos"], mos_avg=fs["mos"])
    if fs["jitter_max_ms"] is not None:
        figures.update(jitter_avg_ms=None, jitter_max_ms=fs["jitter_max_ms"])
    figures.update(loss_avg_pct=fs["loss_pct"], loss_max_pct=fs["loss_pct"])
    return figures


def build_summary(samples, rtp_stats, ended_at, limits):
    """A call's quality summary; each figure group names its source ("samples"/"freeswitch")."""
    fs = freeswitch_figures(rtp_stats)
    from_samples = sample_figures(samples, ended_at, limits)
    from_fs = _from_freeswitch(fs)
    summary, sources = {}, {}
    for group, names in FIGURE_GROUPS.items():
        if from_samples is not None:
            source, figures = "samples", from_samples
        elif names[-1] in from_fs:
            source, figures = "freeswitch", from_fs
        else:
            source, figures = None, {}
        sources[group] = source
        summary.update({name: figures.get(name) for name in names})
    summary["samples"] = from_samples["samples"] if from_samples else 0
    summary["alerts"] = from_samples["alerts"] if from_samples else 0
    summary["sources"] = sources
    summary["freeswitch"] = fs
    summary["thresholds"] = limits.as_dict()
    return summary


# ----- one sample ------------------------------------------------------------------
def new_sample(payload):
    """A sample's stored figures from a client's payload; MOS from the E-model when it sent none."""
    latency, jitter, loss = (float(payload["latency_ms"]), float(payload["jitter_ms"]),
                             float(payload["packet_loss_pct"]))
    r, computed_mos = mos_from(latency, jitter, loss)
    client_mos = payload.get("mos")
    return {"latency_ms": latency, "jitter_ms": jitter, "packet_loss_pct": loss,
            "mos": round(float(client_mos) if client_mos is not None else computed_mos, 3),
            "r_factor": round(r, 2),
            "mos_source": "client" if client_mos is not None else "e-model"}


def sample_values(sample):
    """The figures of a stored QualitySample that the alert rule reads."""
    return {"latency_ms": sample.latency_ms, "jitter_ms": sample.jitter_ms,
            "packet_loss_pct": sample.packet_loss_pct, "mos": sample.mos}
