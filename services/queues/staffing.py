"""Staffing: the Erlang C number of agents a queue needs to reach a service-level target.

GET /api/queues/<id>/staffing. The arrival rate (callers per planning interval)
and the average handling time come from the request or are measured over a
past range of the queue's rollups:

    arrival_rate = (offered - short_abandoned) over [from, to) x interval / (to - from)
    aht          = (talk + hold + wrap-up) / handled over [from, to)
    traffic      = arrival_rate x aht / interval            (erlangs)

agents_needed is the fewest agents whose predicted service level
(services/queues/erlang.py) reaches the target; the answer shows the
prediction for that number and for a few around it.
"""
import datetime

from models.queue import Queue
from models.queue_stats import QueueQuarterStat
from services.errors import NotFound, Unprocessable
from services.queues import buckets, erlang
from services.queues.statistics import MEASURES, Tally

PLANNING_INTERVALS = {"15m": 900, "30m": 1800, "hour": 3600}
DEFAULT_MEASURE_HOURS = 24
MAX_MEASURE_DAYS = 366
AROUND = 2  # predictions shown below and above agents_needed


def _epoch(aware):
    return int(aware.timestamp())


class Staffing:
    """Erlang C staffing for one queue from measured or given figures."""

    def measured(self, queue_id, start, end):
        """Sums of the queue's rollups over [start, end) (epoch seconds)."""
        tally = Tally()
        query = (QueueQuarterStat.select(*[getattr(QueueQuarterStat, m) for m in MEASURES])
                 .where(QueueQuarterStat.queue_id == queue_id,
                        QueueQuarterStat.bucket >= start, QueueQuarterStat.bucket < end)
                 .tuples())
        for values in query:
            tally.add(dict(zip(MEASURES, values)))
        return tally.sums

    def _range(self, args):
        zone = buckets.zone_named(args.get("tz") or "UTC")
        now = datetime.datetime.now(zone)
        end = args.get("date_to")
        end = now if end is None else buckets.to_local(end, zone)
        start = args.get("date_from")
        start = (end - datetime.timedelta(hours=DEFAULT_MEASURE_HOURS) if start is None
                 else buckets.to_local(start, zone))
        if end <= start:
            raise Unprocessable("`to` must be after `from`",
                                errors={"query": {"to": ["must be after from"]}})
        if (end - start).days > MAX_MEASURE_DAYS:
            raise Unprocessable(f"the measured range may span at most {MAX_MEASURE_DAYS} days",
                                errors={"query": {"from": ["range too long"]}})
        # Whole quarter hours: the rollups' grain.
        lo, hi = _epoch(start) // 900 * 900, -(-_epoch(end) // 900) * 900
        return zone, lo, hi

    def _basis(self, queue_id, args, interval):
        zone, lo, hi = self._range(args)
        sums = self.measured(queue_id, lo, hi)
        demand = sums["offered"] - sums["short_abandoned"]
        handled = sums["handled"]
        rate = args.get("arrival_rate")
        aht = args.get("aht")
        basis = {
            "from": datetime.datetime.fromtimestamp(lo, zone).isoformat(),
            "to": datetime.datetime.fromtimestamp(hi, zone).isoformat(),
            "offered": sums["offered"], "short_abandoned": sums["short_abandoned"],
            "handled": handled,
            "arrival_rate_source": "given" if rate is not None else "measured",
            "aht_source": "given" if aht is not None else "measured",
        }
        if rate is None:
            rate = demand * interval / (hi - lo)
        if aht is None:
            if not handled:
                raise Unprocessable(
                    "no handled calls in the measured range: give `aht` or another range",
                    errors={"query": {"aht": ["nothing measured; give a value"]}},
                    error_id="staffing_no_data")
            aht = (sums["talk_sum"] + sums["hold_sum"] + sums["wrapup_sum"]) / handled
        return basis, rate, aht

    def staffing(self, queue_id, args):
        queue = Queue.get_or_none(Queue.id == queue_id)
        if queue is None:
            raise NotFound(f"queue {queue_id} not found", error_id="queue_not_found")
        interval_name = args.get("interval") or "15m"
        interval = PLANNING_INTERVALS[interval_name]
        target = args.get("service_level", 0.8)
        threshold = args.get("threshold")
        threshold = queue.service_level_seconds if threshold is None else threshold
        basis, rate, aht = self._basis(queue_id, args, interval)
        return dict(queue_id=queue_id, interval=interval_name, basis=basis,
                    **plan(rate, aht, interval, target, threshold,
                           args.get("max_occupancy") or 1.0))


def plan(rate, aht, interval, target, threshold, max_occupancy=1.0):
    """The Erlang C answer for `rate` callers per `interval` seconds of `aht` seconds each."""
    traffic = rate * aht / interval
    try:
        needed = erlang.agents_needed(traffic, target, threshold, aht, max_occupancy)
    except ValueError as exc:
        raise Unprocessable(str(exc), errors={"query": {"arrival_rate": [str(exc)]}},
                            error_id="staffing_out_of_range") from None
    low = max(1, needed - AROUND)
    return {
        "interval_seconds": interval, "target_service_level": target, "threshold": threshold,
        "max_occupancy": max_occupancy, "arrival_rate": round(rate, 3), "aht": round(aht, 1),
        "traffic_erlangs": round(traffic, 3), "agents_needed": needed,
        "predicted": erlang.prediction(traffic, needed, threshold, aht) if needed else None,
        "around": [erlang.prediction(traffic, n, threshold, aht)
                   for n in range(low, needed + AROUND + 1)],
    }
