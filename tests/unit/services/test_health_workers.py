"""The detailed health's `workers` part against a real Redis: a queue no running worker
serves (workers started with an older release's list of queues) is named."""
import types
import uuid

from rq import Worker

from services.health import HealthService
from services.jobs import ALL_QUEUES


def registered(redis_client, queues):
    """An RQ worker as `python -m workers <queues>` registers it (without working)."""
    worker = Worker(list(queues), connection=redis_client, name=f"w-{uuid.uuid4().hex[:8]}")
    worker.register_birth()
    return worker


def test_a_queue_no_worker_serves_is_named_until_one_does(redis_client):
    health = HealthService(types.SimpleNamespace(redis=redis_client, config={}))
    assert health.workers() == {"status": "degraded", "count": 0,
                                "detail": "no RQ worker is running: recording and quality "
                                          "jobs wait"}
    registered(redis_client, ("default", "recordings", "quality", "webhooks"))
    part = health.workers()
    assert (part["status"], part["count"], part["unserved"]) == ("degraded", 1, ["transcripts"])
    assert "no RQ worker serves transcripts" in part["detail"]

    registered(redis_client, ("transcripts",))
    assert health.workers() == {"status": "ok", "detail": None, "count": 2}
    assert "transcripts" in ALL_QUEUES
