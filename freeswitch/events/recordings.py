"""FreeSWITCH events of the recordings domain (RECORD_START, RECORD_STOP)."""


def subscriptions(services):
    """Every recording event this service handles, and its handler: name -> fn(event, outbox)."""
    recordings = services.recordings
    return {
        "RECORD_START": recordings.on_record_start,
        "RECORD_STOP": recordings.on_record_stop,
    }
