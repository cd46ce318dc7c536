"""Streaming a recording over real HTTP: Range and conditional requests as RFC 9110 requires.

One ready recording (a real MP3 made with PyAV) is served by the running web
process; each row of the table is one request and the status, headers and
bytes RFC 9110 (sections 13 and 14) requires of the answer.
"""
import datetime
import email.utils
import hashlib
import os

import pytest
import requests

from services.recordings.audio import transcode
from services.recordings.storage import RecordingStorage
from tests.esl_sim.server import write_wav

OPEN_API = {"AUTH_ENABLED": "false", "RATELIMIT_ENABLED": "false"}


@pytest.fixture(scope="module")
def web(stack_factory, db_url, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("recordings"))
    stack = stack_factory(db_url, None, events=False, SIP_RECORDING_PATH=root, **OPEN_API)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def audio(web, bound_db):
    """A ready mp3+wav recording on disk and in the database; what a client knows of it."""
    from models import Call
    from models.recording import Recording
    root = web.env["SIP_RECORDING_PATH"]
    call = Call.create(status="completed", agent_id="agent-http")
    source = RecordingStorage.source_relpath(call.id, datetime.datetime(2024, 5, 1))
    write_wav(os.path.join(root, source), 3.0)
    files = {}
    for fmt in ("mp3", "wav"):
        relpath = source[:-4] + "." + fmt
        if fmt != "wav":
            transcode(os.path.join(root, source), os.path.join(root, relpath), fmt)
        with open(os.path.join(root, relpath), "rb") as fh:
            data = fh.read()
        files[fmt] = {"path": relpath, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()}
    Recording.create(call=call.id, status="ready", format="mp3", source_path=source, files=files,
                     size=files["mp3"]["size"], sha256=files["mp3"]["sha256"], duration=3.0)
    url = web.url(f"/api/calls/{call.id}/recording")
    first = requests.get(url, timeout=10)
    assert first.status_code == 200, first.text
    return {"url": url, "body": first.content, "size": len(first.content),
            "etag": first.headers["ETag"], "last_modified": first.headers["Last-Modified"]}


def http_date(moment):
    return email.utils.format_datetime(moment.astimezone(datetime.UTC), usegmt=True)


def fill(value, audio):
    """Placeholders in the table -> this recording's size, validators and dates."""
    size = audio["size"]
    modified = email.utils.parsedate_to_datetime(audio["last_modified"])
    return value.format(
        size=size, last=size - 1, past=size + 10, past_end=size + 20, beyond=size + 1000,
        suffix_beyond=size + 100, etag=audio["etag"], weak_etag="W/" + audio["etag"],
        other_etag='"0000"', last_modified=audio["last_modified"],
        earlier=http_date(modified - datetime.timedelta(days=1)),
        later=http_date(modified + datetime.timedelta(days=1)))


# (id, method, request headers, status, the bytes of the file the answer carries)
# 206 answers must say which bytes in Content-Range ("bytes first-last/size"); 416 answers
# "bytes */size"; HEAD answers carry the same headers (Content-Length too) and no body.
FULL, NONE = (0, None), None
MATRIX = [
    # plain
    ("no-range", "GET", {}, 200, FULL),
    ("head", "HEAD", {}, 200, FULL),
    # single ranges
    ("first-100", "GET", {"Range": "bytes=0-99"}, 206, (0, 100)),
    ("middle", "GET", {"Range": "bytes=100-199"}, 206, (100, 200)),
    ("one-byte", "GET", {"Range": "bytes=0-0"}, 206, (0, 1)),
    ("last-byte-explicit", "GET", {"Range": "bytes={last}-{last}"}, 206, (-1, None)),
    ("end-past-the-end", "GET", {"Range": "bytes=0-{beyond}"}, 206, FULL),
    ("spaces-tolerated", "GET", {"Range": "bytes= 10-19"}, 206, (10, 20)),
    # suffix ranges: the last N bytes
    ("suffix-100", "GET", {"Range": "bytes=-100"}, 206, (-100, None)),
    ("suffix-1", "GET", {"Range": "bytes=-1"}, 206, (-1, None)),
    ("suffix-longer-than-file", "GET", {"Range": "bytes=-{suffix_beyond}"}, 206, FULL),
    # open-ended ranges: from N to the end
    ("open-from-100", "GET", {"Range": "bytes=100-"}, 206, (100, None)),
    ("open-from-0", "GET", {"Range": "bytes=0-"}, 206, FULL),
    ("open-from-last", "GET", {"Range": "bytes={last}-"}, 206, (-1, None)),
    # unsatisfiable or invalid byte ranges
    ("start-at-size", "GET", {"Range": "bytes={size}-"}, 416, NONE),
    ("wholly-past-the-end", "GET", {"Range": "bytes={past}-{past_end}"}, 416, NONE),
    ("suffix-zero", "GET", {"Range": "bytes=-0"}, 416, NONE),
    ("last-before-first", "GET", {"Range": "bytes=200-100"}, 416, NONE),
    ("head-past-the-end", "HEAD", {"Range": "bytes={size}-"}, 416, NONE),
    ("not-a-byte-range", "GET", {"Range": "bytes=abc"}, 416, NONE),
    ("empty-byte-range", "GET", {"Range": "bytes="}, 416, NONE),
    # not a byte-range request (no unit, unknown unit): Range ignored, the whole file
    ("no-unit", "GET", {"Range": "0-99"}, 200, FULL),
    ("unknown-unit", "GET", {"Range": "items=0-5"}, 200, FULL),
    # several ranges: answered with the whole file (documented; RFC 9110 lets a server ignore Range)
    ("two-ranges", "GET", {"Range": "bytes=0-9,20-29"}, 200, FULL),
    ("range-and-suffix", "GET", {"Range": "bytes=0-9, -10"}, 200, FULL),
    ("overlapping-ranges", "GET", {"Range": "bytes=0-99,50-149"}, 200, FULL),
    # If-Range: the range only while the validator still matches (strong comparison)
    ("if-range-etag-match", "GET", {"Range": "bytes=0-99", "If-Range": "{etag}"}, 206, (0, 100)),
    ("if-range-etag-other", "GET", {"Range": "bytes=0-99", "If-Range": "{other_etag}"}, 200, FULL),
    ("if-range-weak-etag", "GET", {"Range": "bytes=0-99", "If-Range": "{weak_etag}"}, 200, FULL),
    ("if-range-date-match", "GET", {"Range": "bytes=0-99", "If-Range": "{last_modified}"}, 206,
     (0, 100)),
    ("if-range-date-earlier", "GET", {"Range": "bytes=0-99", "If-Range": "{earlier}"}, 200, FULL),
    ("if-range-date-later", "GET", {"Range": "bytes=0-99", "If-Range": "{later}"}, 200, FULL),
    ("if-range-without-range", "GET", {"If-Range": "{other_etag}"}, 200, FULL),
    # If-None-Match / If-Modified-Since: 304, no body
    ("if-none-match-same", "GET", {"If-None-Match": "{etag}"}, 304, NONE),
    ("if-none-match-weak-same", "GET", {"If-None-Match": "{weak_etag}"}, 304, NONE),
    ("if-none-match-star", "GET", {"If-None-Match": "*"}, 304, NONE),
    ("if-none-match-list", "GET", {"If-None-Match": '"0000", {etag}'}, 304, NONE),
    ("if-none-match-other", "GET", {"If-None-Match": "{other_etag}"}, 200, FULL),
    ("if-none-match-beats-range", "GET", {"If-None-Match": "{etag}", "Range": "bytes=0-9"}, 304,
     NONE),
    ("if-modified-since-same", "GET", {"If-Modified-Since": "{last_modified}"}, 304, NONE),
    ("if-modified-since-earlier", "GET", {"If-Modified-Since": "{earlier}"}, 200, FULL),
    ("if-none-match-beats-since", "GET", {"If-None-Match": "{other_etag}",
                                          "If-Modified-Since": "{last_modified}"}, 200, FULL),
    # HEAD answers like GET
    ("head-range", "HEAD", {"Range": "bytes=0-99"}, 206, (0, 100)),
    ("head-suffix", "HEAD", {"Range": "bytes=-10"}, 206, (-10, None)),
    ("head-if-none-match", "HEAD", {"If-None-Match": "{etag}"}, 304, NONE),
]


@pytest.mark.parametrize("method,headers,status,part", [row[1:] for row in MATRIX],
                         ids=[row[0] for row in MATRIX])
def test_range_and_conditional_requests(audio, method, headers, status, part):
    sent = {name: fill(value, audio) for name, value in headers.items()}
    response = requests.request(method, audio["url"], headers=sent, timeout=10)
    assert response.status_code == status, (sent, response.headers)
    assert response.headers["Accept-Ranges"] == "bytes"
    if status == 416:
        assert response.headers["Content-Range"] == f"bytes */{audio['size']}"
        assert method == "HEAD" or response.json()["code"] == 416
        return
    # 2xx and 304 carry the validators; 304 has no body and no Content-Range.
    assert response.headers["ETag"] == audio["etag"]
    assert "private" in response.headers["Cache-Control"]
    if status == 304:
        assert response.content == b"" and "Content-Range" not in response.headers
        return
    whole = audio["body"]
    first = part[0] % len(whole)
    expected = whole[first:part[1]]
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert response.headers["Last-Modified"] == audio["last_modified"]
    assert int(response.headers["Content-Length"]) == len(expected)
    assert response.content == (b"" if method == "HEAD" else expected)
    if status == 206:
        last = first + len(expected) - 1
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{len(whole)}"
    else:
        assert "Content-Range" not in response.headers


def test_the_matrix_covers_at_least_thirty_requests():
    assert len(MATRIX) >= 30


def test_each_stored_format_has_its_own_type_and_validator(audio):
    wav = requests.get(audio["url"], params={"format": "wav"}, timeout=10)
    assert wav.status_code == 200 and wav.headers["Content-Type"] == "audio/wav"
    assert wav.headers["ETag"] != audio["etag"]
    assert wav.content[:4] == b"RIFF"
    part = requests.get(audio["url"], params={"format": "wav"}, headers={"Range": "bytes=0-3"},
                        timeout=10)
    assert part.status_code == 206 and part.content == b"RIFF"
    assert requests.get(audio["url"], params={"format": "ogg"}, timeout=10).status_code == 404
    assert requests.get(audio["url"], params={"format": "flac"}, timeout=10).status_code == 422


def test_a_download_is_named_after_the_call(audio):
    response = requests.head(audio["url"], timeout=10)
    call_id = audio["url"].split("/")[-2]
    assert response.headers["Content-Disposition"] == f"inline; filename={call_id}.mp3"
