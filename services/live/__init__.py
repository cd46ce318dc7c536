"""Live channels: WebSocket fan-out and resume (web), the metrics channel (events), alerts."""
from services.live.hub import LiveHub
from services.live.metrics import MetricsPublisher, RealtimeMetrics
from services.live.notifier import LiveNotifier


def register(services):
    """Give the web side its hub and metrics reader; give the events process the metrics task."""
    services.live_notifier = LiveNotifier(services.publisher)
    services.live_hub = LiveHub(services.redis, services.config)
    services.live_metrics = RealtimeMetrics(services.redis)
    services.background_tasks.append(MetricsPublisher(services).run)
