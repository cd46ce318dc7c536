"""`show registrations as json` as the real switch answers it (captured), and as the simulator
answers it."""
import os
import re

import pytest

from freeswitch.esl.commands import SHOW_REGISTRATIONS, parse_registrations
from tests.conftest import ROOT
from tests.esl_sim.server import ESLSimulator

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "esl")


def captured_body(name):
    """The body of the api/response to `api show registrations as json` in a capture."""
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
        text = fh.read()
    after = text.split("api " + SHOW_REGISTRATIONS, 1)[1]
    length = int(re.search(r"Content-Length: (\d+)", after).group(1))
    start = after.index("\n\n", after.index("Content-Length")) + 2
    body = after[start:]
    if body.lstrip("\n").startswith("## "):  # the body came in its own chunk
        body = body.lstrip("\n").split("\n", 1)[1]
    return body[:length]


def test_the_real_switch_lists_its_registered_phones():
    body = captured_body("12_api_show_registrations_as_json_phones.capture")
    assert parse_registrations(body) == {("1001", "127.0.0.1"), ("1002", "127.0.0.1"),
                                         ("1003", "127.0.0.1")}


def test_the_real_switch_with_no_phones():
    body = captured_body("12_api_show_registrations_as_json_none.capture")
    assert body == '{"row_count": 0}\n'
    assert parse_registrations(body) == set()


def test_the_simulator_answers_like_the_real_switch():
    sim = ESLSimulator()
    real = captured_body("12_api_show_registrations_as_json_phones.capture")
    simulated = sim.api("show", "registrations as json")
    assert parse_registrations(simulated) == parse_registrations(real)
    assert not simulated.endswith("\n") and not real.endswith("\n")
    sim.phones.clear()
    assert sim.api("show", "registrations as json") == captured_body(
        "12_api_show_registrations_as_json_none.capture")


@pytest.mark.parametrize("body", ["-ERR no reply", "", "Registrations:\n"])
def test_anything_else_is_not_taken_for_an_empty_list(body):
    with pytest.raises(ValueError):
        parse_registrations(body)
