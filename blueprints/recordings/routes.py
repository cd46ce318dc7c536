"""Recordings routes: start/stop a call's recording, stream, list and delete recordings."""
import datetime
import os

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import is_resource_modified, parse_date, parse_range_header
from werkzeug.utils import send_file

from blueprints.access.identity import scoped_to_agent
from blueprints.pagination import PeeweePage
from blueprints.recordings.schemas import (
    RecordingAudioArgsSchema,
    RecordingQueryArgsSchema,
    RecordingSchema,
    RecordingStartSchema,
    RecordingUrlSchema,
)
from services.errors import RangeNotSatisfiable
from services.recordings.schemas import MIME_TYPES
from services.recordings.signing import SignedRecordingUrls

blp = Blueprint("recordings", __name__, url_prefix="/api/calls",
                description="Record calls, stream and delete recordings.")


AUDIO_200 = ("The audio; Range, If-Range, ETag and Last-Modified are supported; "
             "several ranges are answered with the whole file")
AUDIO_206 = "One byte range of the audio, with Content-Range"
AUDIO_CONTENT = {mimetype: {"schema": {"type": "string", "format": "binary"}}
                 for mimetype in MIME_TYPES.values()}


def recordings():
    return current_app.extensions["services"].recordings


def signed_urls():
    cfg = current_app.config
    return SignedRecordingUrls(recordings(), cfg["SECRET_KEY"], cfg["RECORDING_URL_TTL"])


def range_environ(environ, size, etag, last_modified):
    """The request environ with its Range header as RFC 9110 wants werkzeug to see it.

    werkzeug parses Range and answers single ranges, 416 and If-Range itself;
    where it departs from RFC 9110 the header is adjusted first:
    - not a byte range (no or another unit) or several ranges -> Range dropped,
      the whole file is sent (werkzeug would answer 416);
    - If-None-Match / If-Modified-Since say "not modified" -> Range dropped, so
      the answer is 304 (werkzeug would send the range);
    - If-Range that cannot strongly match (a weak tag, a date other than
      Last-Modified) -> Range dropped, the whole file;
    - a suffix longer than the file -> the whole file as 206 (werkzeug: 416).
    """
    raw = environ.get("HTTP_RANGE")
    if raw is None:
        return environ
    unit, _, ranges = raw.partition("=")
    if_range = (environ.get("HTTP_IF_RANGE") or "").strip()
    ignore = (unit.strip().lower() != "bytes" or "," in ranges
              or not is_resource_modified(environ, etag, last_modified=last_modified,
                                          ignore_if_range=True)
              or if_range.startswith("W/")
              or (if_range and not if_range.startswith('"')
                  and parse_date(if_range) != last_modified))
    adjusted = dict(environ)
    if ignore:
        adjusted.pop("HTTP_RANGE", None)
        return adjusted
    parsed = parse_range_header(raw)  # None: an invalid byte range, werkzeug answers 416
    if parsed is not None:
        start, end = parsed.ranges[0]
        if end is None and start < 0 and -start > size > 0:
            adjusted["HTTP_RANGE"] = f"bytes=-{size}"
    return adjusted


def audio_response(path, mimetype, sha256, download_name):
    """Let werkzeug answer Range, If-Range, If-None-Match, If-Modified-Since and HEAD."""
    stat = os.stat(path)
    last_modified = datetime.datetime.fromtimestamp(int(stat.st_mtime), datetime.UTC)
    try:
        response = send_file(path, range_environ(request.environ, stat.st_size, sha256,
                                                   last_modified),
                             mimetype=mimetype, download_name=download_name, conditional=True,
                             etag=sha256, last_modified=last_modified,
                             response_class=current_app.response_class)
    except RequestedRangeNotSatisfiable as exc:
        raise RangeNotSatisfiable(
            f"the requested range is outside the {exc.length}-byte file",
            headers={"Content-Range": f"bytes */{exc.length}", "Accept-Ranges": "bytes"}) from None
    response.headers["Accept-Ranges"] = "bytes"
    response.cache_control.private = True  # a call recording is personal data
    return response


@blp.route("/recordings")
class RecordingList(MethodView):
    @blp.arguments(RecordingQueryArgsSchema, location="query")
    @blp.response(200, RecordingSchema(many=True))
    @blp.paginate(PeeweePage, page_size=50, max_page_size=500)
    def get(self, args):
        """List recordings, newest first, with filters; paging in X-Pagination."""
        return recordings().list_query(scoped_to_agent(args))  # agents see their own calls


@blp.route("/<uuid:call_id>/recording/start")
class RecordingStart(MethodView):
    @blp.arguments(RecordingStartSchema)
    @blp.response(201, RecordingSchema)
    @blp.alt_response(409, description="The call is not live, or already recorded")
    @blp.alt_response(503, description="FreeSWITCH unreachable")
    def post(self, args, call_id):
        """Start recording a live call (uuid_record), in mp3, wav or ogg (Opus)."""
        return recordings().start(call_id, args.get("format"))


@blp.route("/<uuid:call_id>/recording/stop")
class RecordingStop(MethodView):
    @blp.response(200, RecordingSchema)
    @blp.alt_response(409, description="The call is not being recorded")
    def post(self, call_id):
        """Stop recording; the recording is then transcoded (status processing, then ready)."""
        return recordings().stop(call_id)


@blp.route("/<uuid:call_id>/recording/url")
class RecordingUrl(MethodView):
    @blp.arguments(RecordingAudioArgsSchema, location="query")
    @blp.response(200, RecordingUrlSchema)
    @blp.alt_response(409, description="The recording is not ready yet")
    def get(self, args, call_id):
        """A signed URL that plays the recording in one format for RECORDING_URL_TTL seconds
        (default 300) with no credentials (for <audio src>); afterwards it answers 403."""
        return signed_urls().issue(call_id, args.get("format"))


@blp.route("/<uuid:call_id>/recording")
class RecordingAudio(MethodView):
    @blp.arguments(RecordingAudioArgsSchema, location="query")
    @blp.response(200, description=AUDIO_200)
    @blp.doc(responses={"200": {"description": AUDIO_200, "content": AUDIO_CONTENT},
                        "206": {"description": AUDIO_206, "content": AUDIO_CONTENT}})
    @blp.alt_response(304, description="Not modified (If-None-Match / If-Modified-Since)")
    @blp.alt_response(409, description="The recording is not ready yet")
    @blp.alt_response(416, description="Range not satisfiable; Content-Range: bytes */<size>")
    def get(self, args, call_id):
        """Stream the call's recording (?format= picks a stored format)."""
        return audio_response(*recordings().audio_file(call_id, args.get("format")))

    @blp.response(204)
    @blp.alt_response(409, description="Still recording; stop it first")
    def delete(self, call_id):
        """Delete the call's recording: every stored file and the record."""
        recordings().delete(call_id)
