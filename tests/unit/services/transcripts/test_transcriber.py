"""The transcription pipeline on espeak-ng speech: VAD, the default engine, speakers, times,
sentiment, talk figures and phrases; corrupt and silent audio are refused with a reason."""
import types

import numpy as np
import pytest

from services.transcripts import analysis as an
from services.transcripts.audio import VadSettings, utterance_segments
from services.transcripts.transcriber import Transcriber, TranscriptionRejected
from tests.unit.services.transcripts.speech import (
    AGENT_VOICE,
    CUSTOMER_VOICE,
    conversation,
    needs_espeak,
    write_wav,
)

pytestmark = needs_espeak

# channel 0 (left): the customer; channel 1 (right): the agent (FreeSWITCH's stereo layout)
CUSTOMER, AGENT = 0, 1
SCRIPT = [
    (AGENT, 0.5, AGENT_VOICE, "thank you for calling how can i help you"),
    (CUSTOMER, 4.0, CUSTOMER_VOICE, "i am very angry this is terrible service"),
    (AGENT, 8.0, AGENT_VOICE, "i am sorry to hear that"),
    (CUSTOMER, 10.5, CUSTOMER_VOICE, "please cancel my account"),
    # the one overlap: the agent starts before the customer is done
    (AGENT, 12.0, AGENT_VOICE, "i can do that for you now"),
    (CUSTOMER, 15.5, CUSTOMER_VOICE, "thank you so much that was wonderful"),
]
PHRASES = {"compliance": ["sorry to hear that"], "risk": ["cancel my account"]}


@pytest.fixture(scope="module")
def transcriber():
    return Transcriber(types.SimpleNamespace(config={}, storage=None, notifier=None))


@pytest.fixture(scope="module")
def call_audio(tmp_path_factory):
    path = tmp_path_factory.mktemp("speech") / "call.wav"
    spans = conversation(path, SCRIPT)
    return path, spans


@pytest.fixture(scope="module")
def transcribed(transcriber, call_audio):
    path, _ = call_audio
    return transcriber.transcribe_file(str(path))


def test_every_turn_is_one_utterance_of_the_right_speaker_at_its_time(transcribed, call_audio):
    _, spans = call_audio
    utterances = transcribed["utterances"]
    assert transcribed["channels"] == 2
    assert [u["speaker"] for u in utterances] == [
        "agent", "customer", "agent", "customer", "agent", "customer"]
    for utterance, (channel, start, end) in zip(utterances, spans, strict=True):
        assert utterance["channel"] == channel
        assert abs(utterance["start"] - start) <= 0.5, utterance
        assert abs(utterance["end"] - end) <= 0.5, utterance
        assert utterance["text"] and 0 <= utterance["confidence"] <= 1


def test_the_words_sentiment_and_phrases_come_out(transcribed):
    utterances = transcribed["utterances"]
    assert "sorry to hear that" in utterances[2]["text"]
    assert "cancel my account" in utterances[3]["text"]
    assert utterances[1]["sentiment"] < -0.05, utterances[1]   # angry
    assert utterances[5]["sentiment"] > 0.05, utterances[5]    # thankful
    figures = an.analyse(utterances, transcribed["duration"], PHRASES)
    found = {(hit["list"], hit["phrase"], hit["speaker"]) for hit in figures["phrases"]}
    assert found >= {("compliance", "sorry to hear that", "agent"),
                     ("risk", "cancel my account", "customer")}
    risk = next(hit for hit in figures["phrases"] if hit["list"] == "risk")
    assert utterances[3]["start"] - 0.1 <= risk["start"] < risk["end"] <= utterances[3]["end"] + 0.1
    assert figures["overlaps"]["count"] == 1
    overlap = figures["overlaps"]["items"][0]
    assert 11.5 <= overlap["start"] <= 12.5 and overlap["end"] > overlap["start"]
    shares = figures["speakers"]
    assert shares["agent"]["talk_share"] > 0.2 and shares["customer"]["talk_share"] > 0.2
    assert 0 < figures["silence_share"] < 0.5
    assert figures["longest_monologue"]["seconds"] >= 2.0


def test_a_mono_recording_is_transcribed_with_the_speaker_unknown(transcriber, tmp_path):
    path = tmp_path / "mono.wav"
    conversation(path, [(0, 0.5, CUSTOMER_VOICE, "please cancel my account")], channels=1)
    result = transcriber.transcribe_file(str(path))
    assert result["channels"] == 1
    assert [u["speaker"] for u in result["utterances"]] == ["unknown"]
    assert "cancel my account" in result["utterances"][0]["text"]


def test_a_silent_recording_is_refused_with_a_reason(transcriber, tmp_path):
    path = write_wav(tmp_path / "silent.wav", np.zeros((16000 * 3, 2), dtype=np.int16))
    with pytest.raises(TranscriptionRejected, match="silent"):
        transcriber.transcribe_file(str(path))


@pytest.mark.parametrize("content", [b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 20, b"",
                                     bytes(range(256)) * 64])
def test_a_corrupt_recording_is_refused_with_a_reason(transcriber, tmp_path, content):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(content)
    with pytest.raises(TranscriptionRejected, match="cannot|no audio|decoded"):
        transcriber.transcribe_file(str(path))


def test_vad_holds_at_most_one_utterance_of_audio(tmp_path):
    """Bounded memory: however long the speech, a segment is cut at max_utterance_seconds."""
    rng = np.random.default_rng(7)
    noise = (rng.standard_normal((16000 * 12, 1)) * 3000).astype(np.int16)  # 12 s, never quiet
    path = write_wav(tmp_path / "long.wav", noise)
    settings = VadSettings(aggressiveness=0, max_utterance_seconds=2.0)
    segments = list(utterance_segments(str(path), settings))
    assert len(segments) >= 5
    assert all(len(s.pcm) <= 2.0 * 16000 * 2 + 960 for s in segments)


def test_a_tone_is_not_taken_for_speech(transcriber, tmp_path):
    """Ringback, beeps, the far end's test tone: VAD may call them voiced; no words are made up."""
    t = np.arange(16000 * 4) / 16000
    tone = (np.sin(2 * np.pi * 1004 * t) * 8000).astype(np.int16).reshape(-1, 1)
    path = write_wav(tmp_path / "tone.wav", np.repeat(tone, 2, axis=1))
    with pytest.raises(TranscriptionRejected, match="no speech"):
        transcriber.transcribe_file(str(path))
