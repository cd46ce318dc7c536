"""Transcript routes: a call's transcript as JSON or WebVTT; transcript statistics."""
from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint

from blueprints.transcripts.schemas import (
    TranscriptSchema,
    TranscriptStatisticsArgsSchema,
    TranscriptStatisticsSchema,
)
from services.errors import Conflict
from services.transcripts.schemas import READY, webvtt

blp = Blueprint("transcripts", __name__, url_prefix="/api/calls",
                description="What was said in recorded calls: transcripts, sentiment, phrases.")

VTT = "text/vtt"
JSON = "application/json"


def transcripts():
    return current_app.extensions["services"].transcripts


def dump(transcript):
    data = dict(transcript.__data__)
    data["call_id"], data["recording_id"] = transcript.call_id, transcript.recording_id
    return data


@blp.route("/<uuid:call_id>/transcript")
class CallTranscript(MethodView):
    @blp.response(200, TranscriptSchema, description="The transcript (JSON); with "
                  "`Accept: text/vtt`, its utterances as WebVTT cues with the speaker as voice")
    @blp.doc(responses={"200": {"content": {VTT: {"schema": {"type": "string"}}}}})
    @blp.alt_response(404, description="No such call, or the call has no transcript")
    @blp.alt_response(409, description="WebVTT asked of a transcript not ready (or failed)")
    def get(self, call_id):
        """A call's transcript: utterances with speaker, times, text, confidence and sentiment;
        talk shares, silence, longest monologue, overlaps and the phrases found."""
        transcript = transcripts().for_call(call_id)
        if request.accept_mimetypes.best_match([JSON, VTT], default=JSON) == VTT:
            if transcript.status != READY:
                raise Conflict(f"the transcript is {transcript.status}: "
                               f"{transcript.error or 'WebVTT is served once it is ready'}",
                               error_id="transcript_not_ready")
            response = current_app.response_class(webvtt(transcript), mimetype=VTT)
            response.cache_control.private = True  # what a customer said is personal data
            return response
        return dump(transcript)


@blp.route("/transcripts/statistics")
class TranscriptStatistics(MethodView):
    @blp.arguments(TranscriptStatisticsArgsSchema, location="query")
    @blp.response(200, TranscriptStatisticsSchema)
    def get(self, args):
        """Per agent or campaign: transcribed calls, average customer sentiment, and the share
        of calls in which a compliance phrase was said."""
        return transcripts().statistics(args)
