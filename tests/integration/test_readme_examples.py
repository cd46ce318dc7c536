"""The README's request examples work as written against the running service."""
import json
import re

from tests.conftest import ROOT, wait_until


def readme():
    with open(f"{ROOT}/README.md", encoding="utf-8") as fh:
        return fh.read()


def test_the_quality_sample_example_is_accepted_as_written(stack):
    example = re.search(r'`(\{"quality": \{[^`]*\}\})`', readme())
    assert example, "the README shows a quality update body"
    body = json.loads(example.group(1))
    call = stack.post("/api/calls/start", {"to": "15550009999", "gateway": "gw1"}).json()
    wait_until(lambda: stack.get(f"/api/calls/{call['id']}").json()["status"] == "in-progress",
               10, message="the call to be answered")
    updated = stack.put(f"/api/calls/{call['id']}/update", body)
    assert updated.status_code == 200, updated.text
    live = updated.json()["quality"]["live"]
    assert live["samples"] == 1 and live["last"]["latency_ms"] == body["quality"]["latency_ms"]
    stack.post(f"/api/calls/{call['id']}/end")
