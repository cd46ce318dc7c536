"""RecordingNotifier: the only publisher on the `recordings` channel, always after the commit."""
from services.recordings.schemas import dump_recording

CHANNEL = "recordings"


class RecordingNotifier:
    """Announces recording changes with the same dump REST returns, through the outbox.

    The payload is dumped when the method is called (inside the transaction),
    so what is announced is what was stored, even if the row changes later.
    """

    def __init__(self, publisher):
        self.publisher = publisher

    def recording_changed(self, recording, event_type, outbox):
        """recording.started / recording.stopped / recording.ready / recording.failed."""
        outbox.publish(self.publisher, CHANNEL, event_type, dump_recording(recording))

    def recording_deleted(self, recording, outbox):
        """Call before the row goes: the message carries the last stored state."""
        outbox.publish(self.publisher, CHANNEL, "recording.deleted", dump_recording(recording))

    def call_transcribed(self, transcript_summary, outbox):
        """call.transcribed: a recording's transcript is ready (figures, never the words)."""
        outbox.publish(self.publisher, CHANNEL, "call.transcribed", transcript_summary)

    def transcription_failed(self, transcript_summary, outbox):
        """call.transcription_failed: the transcript could not be made; its error says why."""
        outbox.publish(self.publisher, CHANNEL, "call.transcription_failed", transcript_summary)
