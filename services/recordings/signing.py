"""Signed recording URLs: a short-lived link to one stored format of one recording.

An `<audio src>` cannot send an Authorization header, so a caller allowed to play a
call's recording asks for a URL whose token is the credential: it names the call,
the recording and the format and when it expires, signed with SECRET_KEY
(HMAC-SHA1 through itsdangerous, a salt of its own so no other signed value of the
service can pass for it). The token is checked before its contents are trusted:
a changed token is `recording_url_invalid`, an expired one `recording_url_expired`.
"""
import datetime
import time

from itsdangerous import BadSignature, URLSafeSerializer

from services.errors import Forbidden, NotFound

SALT = "cc-recording-url"
SIGNED_PATH = "/api/recordings/signed/"
DEFAULT_TTL = 300


def _invalid(message="the recording URL is not valid: ask for a new one"):
    return Forbidden(message, error_id="recording_url_invalid")


class RecordingUrlSigner:
    """Signs and checks (call id, recording id, format, expiry) tokens."""

    def __init__(self, secret, ttl=DEFAULT_TTL, clock=time.time):
        self.serializer = URLSafeSerializer(secret, salt=SALT)
        self.ttl = ttl
        self.clock = clock

    def sign(self, call_id, recording_id, fmt):
        """(token, expires_at as an aware UTC datetime)."""
        expires = int(self.clock()) + self.ttl
        token = self.serializer.dumps({"c": str(call_id), "r": str(recording_id),
                                       "f": fmt, "e": expires})
        return token, datetime.datetime.fromtimestamp(expires, datetime.UTC)

    def verify(self, token):
        """(call id, recording id, format) of a valid, unexpired token; else Forbidden."""
        try:
            claims = self.serializer.loads(token)
        except BadSignature:
            raise _invalid() from None
        if not isinstance(claims, dict) or not all(
                isinstance(claims.get(k), t) for k, t in (("c", str), ("r", str), ("f", str),
                                                          ("e", int))):
            raise _invalid()
        if claims["e"] <= self.clock():
            raise Forbidden("the recording URL has expired: ask for a new one",
                            error_id="recording_url_expired")
        return claims["c"], claims["r"], claims["f"]

    def is_valid(self, token):
        try:
            self.verify(token)
        except Forbidden:
            return False
        return True


class SignedRecordingUrls:
    """Issue a signed URL for a call's recording, and serve the file a signed URL names."""

    def __init__(self, recordings, secret, ttl=DEFAULT_TTL, clock=time.time):
        self.recordings = recordings
        self.signer = RecordingUrlSigner(secret, ttl, clock)

    def issue(self, call_id, fmt=None):
        """{url, expires_at, expires_in, format}; the recording must be ready in that format
        (the same 404/409 answers as the audio route), so a URL that is handed out plays."""
        recording = self.recordings.for_call(call_id)
        fmt = fmt or recording.format
        self.recordings.audio_file(call_id, fmt)
        token, expires_at = self.signer.sign(call_id, recording.id, fmt)
        return {"url": SIGNED_PATH + token, "expires_at": expires_at,
                "expires_in": self.signer.ttl, "format": fmt}

    def audio_file(self, token, requested_format=None):
        """What RecordingService.audio_file gives for the token's recording and format.

        requested_format (a ?format= on the signed URL) must be the signed one; a
        recording deleted (and perhaps recorded again) since the URL was made is gone.
        """
        call_id, recording_id, fmt = self.signer.verify(token)
        if requested_format is not None and requested_format != fmt:
            raise _invalid(f"this URL plays the recording as {fmt} only")
        try:
            recording = self.recordings.for_call(call_id)
        except NotFound:
            recording = None
        if recording is None or str(recording.id) != recording_id:
            raise NotFound("the recording of this URL no longer exists",
                           error_id="recording_not_found")
        return self.recordings.audio_file(call_id, fmt)
