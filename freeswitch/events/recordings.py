"""FreeSWITCH events of the recordings domain (RECORD_START, RECORD_STOP): headers -> facts.

Which header means what is decided here; RecordingService gets plain facts
(the file, the channel, times, figures) and moves the recording.
"""
import logging

from freeswitch.esl.eventparse import fs_time
from services.recordings.service import RecordingService

logger = logging.getLogger(__name__)

# Channel states in which a RECORD_STOP is the hangup's, not the time limit's.
HANGUP_CHANNEL_STATES = ("CS_HANGUP", "CS_REPORTING", "CS_DESTROY")


def subscriptions(services):
    """Every recording event this service handles, and its handler: name -> fn(event, outbox)."""
    handlers = RecordingEventHandlers(services.recordings)
    return {
        "RECORD_START": handlers.on_record_start,
        "RECORD_STOP": handlers.on_record_stop,
    }


def during_hangup(event):
    """RECORD_STOP sent because the channel hung up (not because recording hit its limit)."""
    return (event.get("Answer-State") == "hangup"
            or event.get("Channel-Call-State") == "HANGUP"
            or event.get("Channel-State") in HANGUP_CHANNEL_STATES)


def int_header(event, header):
    try:
        return int(event.get(header))
    except (TypeError, ValueError):
        return None


class RecordingEventHandlers:
    """RECORD_START / RECORD_STOP handlers; each takes the parsed event and the batch's outbox."""

    def __init__(self, recordings: RecordingService):
        self.recordings = recordings

    def _recording_of(self, event):
        recording = self.recordings.recording_at(event.get("Record-File-Path"),
                                                 event.get("Unique-ID"))
        if recording is None:
            logger.debug("%s of a file not ours: %s", event.get("Event-Name"),
                         event.get("Record-File-Path"))
        return recording

    def on_record_start(self, event, outbox):
        recording = self._recording_of(event)
        if recording is None:
            return
        self.recordings.record_started(recording,
                                       started_at=fs_time(event, "Event-Date-Timestamp"),
                                       sample_rate=int_header(event, "Channel-Read-Codec-Rate"))

    def on_record_stop(self, event, outbox):
        recording = self._recording_of(event)
        if recording is None:
            return
        self.recordings.record_stopped(
            recording, outbox, stopped_at=fs_time(event, "Event-Date-Timestamp"),
            during_hangup=during_hangup(event),
            record_ms=int_header(event, "variable_record_ms"),
            completion_cause=event.get("Record-Completion-Cause"))
