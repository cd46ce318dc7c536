"""The signed recording URL: GET /api/recordings/signed/<token>, public, the token is the
credential (services/recordings/signing.py).

A plain Flask blueprint, outside the OpenAPI spec: it is not an API operation a
client composes but a URL the API hands out (GET /api/calls/<id>/recording/url).
It streams like the audio route (Range, If-Range, ETag, HEAD); an expired or
altered token answers 403 (recording_url_expired / recording_url_invalid).
"""
from flask import Blueprint, request

from blueprints.recordings.routes import audio_response, signed_urls
from services.recordings.schemas import FORMATS

blp = Blueprint("signed_recordings", __name__, url_prefix="/api/recordings/signed")


@blp.route("/<token>", methods=["GET"])
def signed_audio(token):
    """Stream the recording (one format) that the signed token names."""
    requested = request.args.get("format")
    if requested is not None and requested not in FORMATS:
        requested = ""  # an unknown format is not the signed one: 403 below
    return audio_response(*signed_urls().audio_file(token, requested))

