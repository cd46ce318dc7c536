"""The transcoding of one recording (run by the worker's job): processing -> ready.

Safe to run again: every output is written atomically (services/recordings/audio.py),
partial files of a killed attempt are removed first, and a recording that is no
longer `processing` is left alone.
"""
import logging
import os

from models import utcnow
from models.recording import PROCESSING, READY, Recording
from services.outbox import Outbox
from services.recordings import audio

logger = logging.getLogger(__name__)


class RecordingTranscoder:
    """Turns a stopped recording's WAV into its stored, measured formats."""

    def __init__(self, service):
        self.service = service
        self.config = service.config
        self.storage = service.storage

    def run(self, recording_id, final_attempt=True):
        """Transcode and mark ready; "skipped", "deleted" or "ready".

        A failure is raised (the job is retried); on the final attempt the
        recording is marked failed first, so that its status says why.
        """
        recording = self.claim(recording_id)
        if recording is None:
            logger.info("recording %s: nothing to transcode", recording_id)
            return "skipped"
        try:
            files, figures = self.store_formats(recording)
        except Exception as exc:
            if final_attempt:
                self.service.mark_failed(recording_id, f"transcoding failed: {exc}"[:255])
            raise
        if not self.mark_ready(recording_id, files, figures):
            # Deleted while we worked: take back what this job wrote.
            self.storage.remove([entry["path"] for entry in files.values()]
                                + [recording.source_path])
            return "deleted"
        if not (self.config.get("RECORDING_KEEP_WAV", True) or recording.format == "wav"):
            self.storage.remove([recording.source_path])
        logger.info("recording %s ready: %.1fs %s", recording_id, figures["duration"],
                    recording.format)
        return "ready"

    @staticmethod
    def claim(recording_id):
        """The recording a transcoding job should work on, or None if there is nothing to do."""
        recording = Recording.get_or_none(Recording.id == recording_id)
        if recording is None or recording.status != PROCESSING:
            return None
        return recording

    @staticmethod
    def note_truncated(recording_id):
        """Remember the cut before the cut file replaces the source (a retry cannot see it)."""
        Recording.update(truncated=True).where(Recording.id == recording_id).execute()

    def store_formats(self, recording):
        """Write the recording's format (and the normalised WAV); return (files, figures)."""
        source = self.storage.resolve(recording.source_path)
        audio.wait_for_source(source, wait=float(self.config.get("RECORDING_SOURCE_WAIT",
                                                                 audio.SOURCE_WAIT_SECONDS)))
        rate, channels = audio.probe(source)
        max_seconds = audio.wav_seconds_within(
            self.config.get("MAX_RECORDING_SIZE", 100 * 1024 ** 2), rate, channels)
        if audio.wav_seconds_within(os.path.getsize(source), rate, channels) > max_seconds:
            # Noted before a cut WAV replaces the source: a retry would no longer see the excess.
            self.note_truncated(recording.id)
        formats = [recording.format]
        if recording.format != "wav" and self.config.get("RECORDING_KEEP_WAV", True):
            formats.append("wav")  # last: the source stays intact until the main format exists
        files, figures = {}, None
        for fmt in formats:
            relpath = self.storage.output_relpath(recording.source_path, fmt)
            target = self.storage.absolute(relpath)
            self.storage.remove(self.storage.partials_of(relpath))  # left by a killed attempt
            result = audio.transcode(source, target, fmt, max_seconds=max_seconds)
            if result["truncated"]:
                self.note_truncated(recording.id)
            figures = figures or result
            size, sha256 = audio.file_digest(target)
            files[fmt] = {"path": relpath, "size": size, "sha256": sha256}
        return files, figures

    def mark_ready(self, recording_id, files, measured):
        """Store the transcoding's result; False (and nothing stored) if the recording went away."""
        outbox = Outbox()
        with outbox.atomic():
            recording = Recording.get_or_none(Recording.id == recording_id)
            if recording is None or recording.status != PROCESSING:
                return False
            main = files[recording.format]
            recording.files = files
            recording.size, recording.sha256 = main["size"], main["sha256"]
            recording.duration = round(measured["duration"], 3)
            recording.sample_rate = measured["sample_rate"]
            recording.channels = measured["channels"]
            recording.truncated = recording.truncated or measured["truncated"]
            recording.status, recording.error = READY, None
            recording.ready_at = recording.updated_at = utcnow()
            recording.save()
            self.service.notifier.recording_changed(recording, "recording.ready", outbox)
            for hook in self.service.ready_hooks:  # e.g. transcripts: queue the transcription
                hook(recording, outbox)
        return True
