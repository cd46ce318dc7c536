"""Request timing: a slow HTTP request (or a web process over its memory budget) raises an alert."""
import time

import gevent
from flask import g, request

from services.live.performance import PerformanceAlerts


def install_request_timing(app):
    """Time every HTTP request of `app`; publish slow ones (and high memory) on `performance`."""
    alerts = PerformanceAlerts(app.extensions["services"].live_notifier, app.config, role="web")

    @app.before_request
    def _start_request_timer():
        g.live_request_started = time.perf_counter()

    @app.after_request
    def _report_slow_request(response):
        started = g.pop("live_request_started", None)
        # A WebSocket "request" lasts as long as the connection: not a slow request.
        if started is None or request.headers.get("Upgrade", "").lower() == "websocket":
            return response
        elapsed = time.perf_counter() - started
        if elapsed >= alerts.slow_seconds:
            # The route's pattern, never the raw URL: query strings may carry secrets.
            route = request.url_rule.rule if request.url_rule else "(no route)"
            # Off the request's path: publishing must not make a slow request slower.
            gevent.spawn(alerts.slow_request, request.method, route, response.status_code,
                         elapsed)
        if alerts.memory_check_due():
            gevent.spawn(alerts.check_own_memory)
        return response

    return alerts
