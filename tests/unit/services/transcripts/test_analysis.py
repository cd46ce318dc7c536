"""The call figures, phrase lists and WebVTT, from utterances alone (no audio)."""
import json
import types

import pytest

from services.transcripts import analysis as an
from services.transcripts.schemas import webvtt


def utterance(speaker, start, end, text):
    return {"speaker": speaker, "start": start, "end": end, "text": text,
            "sentiment": an.sentiment(text)}


CALL = [
    utterance("agent", 0.0, 2.0, "thank you for calling this call is recorded"),
    utterance("customer", 2.5, 6.0, "i am furious you people are useless"),
    utterance("customer", 6.5, 9.0, "cancel my account now"),
    utterance("agent", 8.5, 10.0, "i understand"),
]


def test_figures_of_a_call():
    figures = an.analyse(CALL, 12.0, an.DEFAULT_PHRASES)
    assert figures["speakers"]["agent"]["talk_seconds"] == 3.5
    assert figures["speakers"]["customer"]["talk_share"] == round(6.0 / 12.0, 3)
    assert figures["silence_share"] == 0.25  # speech: 0-2, 2.5-6, 6.5-10
    assert figures["longest_monologue"] == {"speaker": "customer", "start": 2.5, "end": 9.0,
                                            "seconds": 6.5}
    assert figures["overlaps"] == {"count": 1, "seconds": 0.5,
                                   "items": [{"start": 8.5, "end": 9.0}]}
    assert [(p["list"], p["phrase"], p["speaker"]) for p in figures["phrases"]] == [
        ("compliance", "this call is recorded", "agent"),
        ("risk", "cancel my account", "customer")]
    assert figures["speakers"]["customer"]["sentiment"] < 0
    assert an.customer_sentiment(figures) < 0
    assert an.compliance_found(figures, an.DEFAULT_PHRASES) is True
    assert an.compliance_found(figures, {"risk": ["x"]}) is None


def test_phrases_come_from_json_or_a_file(tmp_path):
    lists = {"compliance": ["this call is recorded"], "upsell": ["premium plan"]}
    assert an.load_phrases(json.dumps(lists)) == lists
    path = tmp_path / "phrases.json"
    path.write_text(json.dumps(lists))
    assert an.load_phrases(str(path)) == lists
    assert an.load_phrases("") == an.DEFAULT_PHRASES
    for bad in ("{not json", '{"a": "not a list"}', str(tmp_path / "missing.json")):
        with pytest.raises(an.PhrasesInvalid):
            an.load_phrases(bad)


def test_sentiment_reads_angry_as_negative_and_thanks_as_positive():
    assert an.sentiment("i am very angry this is terrible service") < -0.5
    assert an.sentiment("thank you so much that was wonderful") > 0.5
    assert an.sentiment("") == 0.0


def test_webvtt_has_one_cue_per_utterance_with_its_voice():
    transcript = types.SimpleNamespace(utterances=[
        {"speaker": "agent", "start": 0.25, "end": 61.5, "text": "a <b> & --> c"},
        {"speaker": "customer", "start": 3725.0, "end": 3726.004, "text": "yes"}])
    assert webvtt(transcript) == (
        "WEBVTT\n\n1\n00:00:00.250 --> 00:01:01.500\n<v agent>a &lt;b&gt; &amp; -&gt; c\n\n"
        "2\n01:02:05.000 --> 01:02:06.004\n<v customer>yes\n")
