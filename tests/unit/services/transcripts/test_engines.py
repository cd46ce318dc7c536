"""Choosing the engine: PocketSphinx from its wheel by default; Whisper only from a local model."""
import importlib.util

import pytest

from services.transcripts.engines import EngineUnavailable, PocketSphinxEngine, make_engine


def test_the_default_engine_needs_nothing_but_its_wheel():
    engine = make_engine({})
    assert isinstance(engine, PocketSphinxEngine) and engine.name == "pocketsphinx"
    heard = engine.transcribe(b"\x00\x00" * 16000)  # VAD never sends silence; no crash
    assert isinstance(heard.text, str) and 0.0 <= heard.confidence <= 1.0


def test_a_missing_whisper_model_is_refused_with_its_path(tmp_path):
    with pytest.raises(EngineUnavailable, match="does not exist"):
        make_engine({"TRANSCRIPTION_MODEL_PATH": str(tmp_path / "no-model")})


@pytest.mark.skipif(importlib.util.find_spec("faster_whisper") is not None,
                    reason="faster-whisper is installed: this checks the message without it")
def test_a_whisper_model_without_its_package_says_which_package(tmp_path):
    with pytest.raises(EngineUnavailable, match="faster-whisper is not installed"):
        make_engine({"TRANSCRIPTION_MODEL_PATH": str(tmp_path)})
