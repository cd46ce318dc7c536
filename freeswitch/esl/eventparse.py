"""Parsing of ESL event bodies (json and plain) into flat dicts, and of their timestamps."""
import datetime
import json
from urllib.parse import unquote


def parse_json_event(body):
    """A text/event-json body -> dict; BACKGROUND_JOB's result is under "_body"."""
    return json.loads(body)


def parse_plain_event(body):
    """A text/event-plain body -> dict with URL-decoded values.

    The header block ends at the first blank line; what follows is the event's
    own body (BACKGROUND_JOB's result), kept under "_body" as the json format does.
    """
    head, _, rest = body.partition("\n\n")
    event = {}
    for line in head.split("\n"):
        key, sep, value = line.partition(": ")
        if sep:
            event[key] = unquote(value)
    if "Content-Length" in event:
        length = int(event.pop("Content-Length"))
        event["_body"] = rest.encode("utf-8")[:length].decode("utf-8", "replace")
    return event


def parse_event(content_type, body):
    if content_type == "text/event-json":
        return parse_json_event(body)
    return parse_plain_event(body)


def fs_time(event, header):
    """A FreeSWITCH microsecond timestamp header -> naive UTC datetime (None if 0/absent)."""
    try:
        micros = int(event.get(header) or 0)
    except ValueError:
        return None
    if micros <= 0:
        return None
    return datetime.datetime.fromtimestamp(micros / 1e6, datetime.timezone.utc).replace(tzinfo=None)
