"""Event bodies as FreeSWITCH sends them (plain and json) parse into the same dict."""
import json

from freeswitch.esl.eventparse import parse_json_event, parse_plain_event

PLAIN_BG_JOB = (
    "Event-Name: BACKGROUND_JOB\n"
    "Core-UUID: d1bb1f27-8ea5-4efe-99d7-8c2d715e33b4\n"
    "Event-Date-Local: 2026-11-24%2006%3A27%3A09\n"
    "Job-UUID: 96e9d07e-55e9-49f6-ad9f-ba2f502d1b33\n"
    "Job-Command: originate\n"
    "Job-Command-Arg: %7Borigination_caller_id_number%3D1000%7Dsofia/external/1234%40127.0.0.1\n"
    "Content-Length: 41\n"
    "\n"
    "+OK b73b06b9-8d42-4b49-87b9-8c89142fb973\n"
)


def test_plain_event_values_are_url_decoded_and_the_nested_body_is_kept():
    event = parse_plain_event(PLAIN_BG_JOB)
    assert event["Event-Name"] == "BACKGROUND_JOB"
    assert event["Event-Date-Local"] == "2026-11-24 06:27:09"
    assert event["Job-Command-Arg"].startswith("{origination_caller_id_number=1000}")
    assert event["_body"] == "+OK b73b06b9-8d42-4b49-87b9-8c89142fb973\n"
    assert "Content-Length" not in event


def test_json_event_keeps_the_body_under_underscore_body():
    body = json.dumps({"Event-Name": "BACKGROUND_JOB", "Job-UUID": "x",
                       "Content-Length": "15", "_body": "-ERR USER_BUSY\n"})
    event = parse_json_event(body)
    assert event["_body"] == "-ERR USER_BUSY\n"


def test_plain_event_without_body_has_no_body_key():
    event = parse_plain_event("Event-Name: CHANNEL_ANSWER\nUnique-ID: abc\n\n")
    assert event == {"Event-Name": "CHANNEL_ANSWER", "Unique-ID": "abc"}
