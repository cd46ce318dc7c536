"""live (WebSocket, metrics) domain service (filled in by its issue)."""


def register(services):
    """Wire this domain into the shared services (call hooks, etc.)."""
    return None


def event_handlers(services):
    """FreeSWITCH events this domain handles in the events process: name -> fn(event, outbox)."""
    return {}
