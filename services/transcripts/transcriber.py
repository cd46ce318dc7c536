"""The transcription of one recording (run by the worker's job): processing -> ready | failed.

Input that can never be transcribed (corrupt, silent, too large) fails the
transcript at once with the reason, and the job ends normally: no retry loop.
Anything else (the database, a crash of the engine) is raised, so RQ retries;
on the final attempt the transcript is marked failed first.
"""
import logging
import os

from models import utcnow
from models.transcript import AGENT, CUSTOMER, FAILED, PROCESSING, READY, UNKNOWN, Transcript
from services.outbox import Outbox
from services.recordings.storage import OutsideRecordingRoot
from services.transcripts import analysis as an
from services.transcripts import audio
from services.transcripts.engines import make_engine
from services.transcripts.schemas import summary

logger = logging.getLogger(__name__)

# FreeSWITCH's stereo recording of the call's channel (the customer's leg) puts
# what that channel reads, the customer, on the left and what it is sent, the
# agent, on the right (checked on the real switch: tests/integration/test_transcripts.py).
STEREO_SPEAKERS = (CUSTOMER, AGENT)


class TranscriptionRejected(Exception):
    """The recording cannot be transcribed, whatever the number of tries."""


def speaker_of(channel, channels):
    return STEREO_SPEAKERS[channel] if channels == 2 else UNKNOWN


class Transcriber:
    """Turns a ready recording's audio into its stored transcript."""

    def __init__(self, service):
        self.service = service
        self.config = service.config
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:  # the model loads once per worker process
            self._engine = make_engine(self.config)
        return self._engine

    def run(self, recording_id, final_attempt=True):
        """Transcribe the recording's audio; "skipped", "failed", "deleted" or "ready"."""
        transcript = Transcript.get_or_none((Transcript.recording == recording_id)
                                            & (Transcript.status == PROCESSING))
        if transcript is None:
            return "skipped"
        try:
            result = self.transcribe_file(self.audio_path(transcript.recording))
        except TranscriptionRejected as exc:
            logger.info("transcript of recording %s failed: %s", recording_id, exc)
            self.mark_failed(transcript.id, str(exc))
            return "failed"
        except Exception as exc:
            if final_attempt:
                self.mark_failed(transcript.id, f"transcription failed: {exc}")
            raise
        if not self.store(transcript.id, result):
            return "deleted"
        logger.info("recording %s transcribed: %d utterances in %.1fs of audio", recording_id,
                    len(result["utterances"]), result["duration"])
        return "ready"

    def audio_path(self, recording):
        """The WAV kept beside the recording if any (no lossy decode), else its own format."""
        files = recording.files or {}
        entry = files.get("wav") or files.get(recording.format)
        if entry is None:
            raise TranscriptionRejected("the recording has no stored audio file")
        try:
            path = self.service.storage.resolve(entry["path"])
        except OutsideRecordingRoot:
            raise TranscriptionRejected("the recording file is outside the recording root") \
                from None
        if not os.path.isfile(path):
            raise TranscriptionRejected("the recording file is missing from storage")
        limit = self.config.get("TRANSCRIPTION_MAX_SIZE") or 0
        if limit and os.path.getsize(path) > limit:
            raise TranscriptionRejected(
                f"the recording is {os.path.getsize(path)} bytes, over TRANSCRIPTION_MAX_SIZE "
                f"({limit} bytes)")
        return path

    def transcribe_file(self, path):
        """{channels, duration, utterances} of an audio file, streamed in blocks."""
        stats, utterances = {}, []
        try:
            for segment in audio.utterance_segments(path, stats=stats):
                if audio.is_tone(segment.pcm):
                    continue
                utterance = self.recognize(segment, stats["channels"])
                if utterance["text"]:
                    utterances.append(utterance)
        except audio.AudioUnreadable as exc:
            raise TranscriptionRejected(str(exc)) from None
        if not stats.get("duration"):
            raise TranscriptionRejected("the recording holds no audio")
        if stats["silent"]:
            raise TranscriptionRejected("the recording is silent: no speech to transcribe")
        if not utterances:
            raise TranscriptionRejected("no speech was recognised in the recording")
        utterances.sort(key=lambda u: (u["start"], u["channel"]))
        return {"channels": stats["channels"], "duration": round(stats["duration"], 3),
                "utterances": utterances}

    def recognize(self, segment, channels):
        recognized = self.engine.transcribe(segment.pcm)
        text = recognized.text.strip()
        return {"speaker": speaker_of(segment.channel, channels), "channel": segment.channel,
                "start": round(segment.start, 2), "end": round(segment.end, 2), "text": text,
                "confidence": recognized.confidence, "sentiment": an.sentiment(text),
                "words": [{"word": w.word, "start": segment.start + w.start,
                           "end": segment.start + w.end} for w in recognized.words]}

    def store(self, transcript_id, result):
        """Analyse and store; False (nothing stored) when the transcript went away meanwhile."""
        phrases = an.load_phrases(self.config.get("TRANSCRIPT_PHRASES"))
        utterances = result["utterances"]
        figures = an.analyse(utterances, result["duration"], phrases)
        figures["channel_map"] = ({"0": CUSTOMER, "1": AGENT} if result["channels"] == 2
                                  else {"0": UNKNOWN})
        for utterance in utterances:
            utterance.pop("words", None)  # the phrase times are kept; word times are not
        outbox = Outbox()
        with outbox.atomic():
            transcript = Transcript.get_or_none(Transcript.id == transcript_id)
            if transcript is None or transcript.status != PROCESSING:
                return False
            transcript.status, transcript.error = READY, None
            transcript.engine = self.engine.name
            transcript.channels, transcript.duration = result["channels"], result["duration"]
            transcript.utterances, transcript.analysis = utterances, figures
            transcript.text = " ".join(u["text"] for u in utterances)
            transcript.customer_sentiment = an.customer_sentiment(figures)
            transcript.compliance_found = an.compliance_found(figures, phrases)
            transcript.completed_at = transcript.updated_at = utcnow()
            transcript.save()
            self.service.notifier.call_transcribed(summary(transcript), outbox)
        return True

    def mark_failed(self, transcript_id, reason):
        outbox = Outbox()
        with outbox.atomic():
            changed = (Transcript.update(status=FAILED, error=reason[:255], updated_at=utcnow(),
                                         completed_at=utcnow())
                       .where((Transcript.id == transcript_id)
                              & (Transcript.status == PROCESSING)).execute())
            if changed:
                self.service.notifier.transcription_failed(
                    summary(Transcript.get_by_id(transcript_id)), outbox)
        return bool(changed)
