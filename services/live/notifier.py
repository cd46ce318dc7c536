"""LiveNotifier: the only publisher of the `metrics` and `performance` channels.

These channels carry no database change, so there is no commit to wait for:
they go straight to the envelope publisher (no outbox), and while Redis is down
a snapshot or an alert is simply not sent (the next one replaces it).
"""


class LiveNotifier:
    """Names each `metrics` and `performance` message; returns its id, or None if Redis is down."""

    def __init__(self, publisher):
        self.publisher = publisher

    def metrics_snapshot(self, figures):
        return self.publisher.publish("metrics", "metrics.snapshot", figures)

    def slow_request(self, data):
        return self.publisher.publish("performance", "performance.slow_request", data)

    def memory_high(self, data):
        return self.publisher.publish("performance", "performance.memory_high", data)

    def queue_backlog(self, data):
        return self.publisher.publish("performance", "performance.queue_backlog", data)

    def webhook_disabled(self, data):
        """A webhook failed continuously for WEBHOOK_DISABLE_AFTER and was disabled."""
        return self.publisher.publish("performance", "performance.webhook_disabled", data)
