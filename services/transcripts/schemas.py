"""The transcript on the wire: JSON (marshmallow), WebVTT, and the summary messages carry."""
from marshmallow import Schema, fields, validate

from models.transcript import READY, SPEAKERS, STATUSES  # noqa: F401  (used by the routes)
from services.fields import UTCDateTime


class WordTimeSchema(Schema):
    word = fields.String()
    start = fields.Float()
    end = fields.Float()


class UtteranceSchema(Schema):
    speaker = fields.String(metadata={"description": "agent, customer, or unknown (mono)"})
    channel = fields.Integer(metadata={"description": "0 left / mono, 1 right"})
    start = fields.Float(metadata={"description": "seconds from the start of the recording"})
    end = fields.Float()
    text = fields.String()
    confidence = fields.Float(metadata={"description": "0..1, the engine's own estimate"})
    sentiment = fields.Float(metadata={"description": "VADER compound, -1..+1"})


class TranscriptSchema(Schema):
    id = fields.Integer()
    call_id = fields.String()
    recording_id = fields.String()
    status = fields.String(metadata={"description": "processing, ready or failed"})
    error = fields.String(allow_none=True, metadata={"description": "why it failed"})
    engine = fields.String(allow_none=True)
    channels = fields.Integer(allow_none=True)
    duration = fields.Float(allow_none=True)
    text = fields.String(allow_none=True)
    utterances = fields.List(fields.Nested(UtteranceSchema), allow_none=True)
    analysis = fields.Dict(allow_none=True, metadata={
        "description": "speakers {talk_seconds, talk_share, utterances, sentiment}, "
                       "silence_share, longest_monologue, overlaps, phrases, channel_map"})
    customer_sentiment = fields.Float(allow_none=True)
    compliance_found = fields.Boolean(allow_none=True)
    created_at = UTCDateTime()
    completed_at = UTCDateTime(allow_none=True)


class TranscriptStatisticsArgsSchema(Schema):
    group_by = fields.String(load_default="agent",
                             validate=validate.OneOf(["agent", "campaign"]),
                             metadata={"description": "agent or campaign"})
    date_from = UTCDateTime(metadata={"description": "calls created at or after (ISO-8601)"})
    date_to = UTCDateTime(metadata={"description": "calls created before (ISO-8601)"})


class TranscriptGroupSchema(Schema):
    key = fields.String(allow_none=True, metadata={"description": "the agent or campaign id"})
    transcripts = fields.Integer()
    customer_sentiment_avg = fields.Float(allow_none=True)
    compliance_rate = fields.Float(allow_none=True, metadata={
        "description": "share of transcribed calls in which a compliance phrase was said"})


class TranscriptStatisticsSchema(Schema):
    group_by = fields.String()
    groups = fields.List(fields.Nested(TranscriptGroupSchema))


def summary(transcript):
    """What `call.transcribed` / `call.transcription_failed` carry: figures, never the words."""
    analysis = transcript.analysis or {}
    call = transcript.call
    return {"id": transcript.id, "call_id": str(transcript.call_id),
            "agent_id": call.agent_id, "campaign_id": call.campaign_id,
            "recording_id": str(transcript.recording_id), "status": transcript.status,
            "error": transcript.error, "engine": transcript.engine,
            "duration": transcript.duration,
            "utterances": len(transcript.utterances or ()),
            "customer_sentiment": transcript.customer_sentiment,
            "compliance_found": transcript.compliance_found,
            "phrases": sorted({hit["list"] for hit in analysis.get("phrases", ())})}


def _timestamp(seconds):
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def webvtt(transcript):
    """The utterances as a WebVTT document, one cue each, the speaker as a voice tag."""
    lines = ["WEBVTT", ""]
    for number, utterance in enumerate(transcript.utterances or (), start=1):
        text = (utterance["text"] or "").replace("-->", "->").replace("\n", " ")
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        lines += [str(number),
                  f"{_timestamp(utterance['start'])} --> {_timestamp(utterance['end'])}",
                  f"<v {utterance['speaker']}>{text}", ""]
    return "\n".join(lines)
