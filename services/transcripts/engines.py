"""Speech recognition engines behind one small interface: 16 kHz mono PCM in, words out.

- `pocketsphinx` (default): CMU PocketSphinx with the US English model inside its
  PyPI wheel; nothing is fetched at run time.
- `whisper`: used when TRANSCRIPTION_MODEL_PATH names a local model: a folder
  (a CTranslate2 model, read by faster-whisper) or a file (a ggml model, read by
  pywhispercpp). Neither package is a requirement; the engine says so when missing.
"""
import importlib
import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

RATE = 16000
# pocketsphinx's fillers and sentence marks are not words anyone said.
_NOT_WORDS = ("<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[BREATH]", "[COUGH]", "[UM]",
              "[UH]", "[SMACK]")
# Faster than real time on one core: no second (flat) pass, fewer active HMMs
# (bench/bench_transcripts.py measures both accuracy and speed).
POCKETSPHINX_OPTIONS = {"fwdflat": False, "maxhmmpf": 3000, "topn": 2, "bestpath": True}


class EngineUnavailable(RuntimeError):
    """The configured engine cannot run here (package or model missing)."""


@dataclass
class Word:
    word: str
    start: float          # seconds from the start of the audio given
    end: float
    confidence: float = 1.0


@dataclass
class Recognized:
    text: str
    confidence: float
    words: list = field(default_factory=list)


class PocketSphinxEngine:
    """CMU PocketSphinx, US English acoustic model, language model and dictionary from the wheel."""

    name = "pocketsphinx"

    def __init__(self, options=None):
        try:
            pocketsphinx = importlib.import_module("pocketsphinx")
        except ImportError as exc:
            raise EngineUnavailable(f"pocketsphinx is not installed: {exc}") from None
        settings = dict(POCKETSPHINX_OPTIONS, **(options or {}))
        self.decoder = pocketsphinx.Decoder(samprate=RATE, loglevel="FATAL", **settings)
        self.frame_rate = int(self.decoder.config["frate"])

    def transcribe(self, pcm):
        """pcm: 16 kHz mono s16 bytes of one utterance."""
        decoder = self.decoder
        decoder.start_utt()
        decoder.process_raw(bytes(pcm), no_search=False, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        if hypothesis is None:
            return Recognized("", 0.0, [])
        words = []
        for segment in decoder.seg():
            if segment.word in _NOT_WORDS:
                continue
            word = segment.word.split("(")[0].lower()  # "read(2)": a pronunciation variant
            words.append(Word(word, segment.start_frame / self.frame_rate,
                              (segment.end_frame + 1) / self.frame_rate,
                              _probability(segment.prob)))
        confidence = (sum(w.confidence for w in words) / len(words)) if words else 0.0
        return Recognized(" ".join(w.word for w in words), round(confidence, 3), words)


def _probability(value):
    """pocketsphinx gives posteriors as probabilities (5.x); keep them in [0, 1]."""
    if value is None or math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, float(value)))


class WhisperEngine:
    """Whisper from a local model: faster-whisper (model folder) or pywhispercpp (ggml file)."""

    name = "whisper"

    def __init__(self, model_path, language="en"):
        if not os.path.exists(model_path):
            raise EngineUnavailable(f"TRANSCRIPTION_MODEL_PATH {model_path} does not exist")
        self.language = language
        self.kind = "faster-whisper" if os.path.isdir(model_path) else "whisper.cpp"
        try:
            if self.kind == "faster-whisper":
                module = importlib.import_module("faster_whisper")
                self.model = module.WhisperModel(model_path, device="cpu", compute_type="int8",
                                                 local_files_only=True)
            else:
                module = importlib.import_module("pywhispercpp.model")
                self.model = module.Model(model_path, print_progress=False,
                                          print_realtime=False)
        except ImportError as exc:
            raise EngineUnavailable(f"{self.kind} is not installed for the model at "
                                    f"{model_path}: {exc}") from None

    def transcribe(self, pcm):
        audio = np.frombuffer(bytes(pcm), dtype=np.int16).astype(np.float32) / 32768.0
        if self.kind == "faster-whisper":
            return self._faster_whisper(audio)
        segments = self.model.transcribe(audio, language=self.language)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        words = [Word(w, 0.0, len(audio) / RATE) for w in text.lower().split()]
        return Recognized(text.lower(), 1.0 if text else 0.0, words)

    def _faster_whisper(self, audio):
        segments, _ = self.model.transcribe(audio, language=self.language, beam_size=1,
                                            word_timestamps=True, vad_filter=False)
        words = []
        for segment in segments:
            for word in segment.words or ():
                words.append(Word(word.word.strip().lower(), word.start, word.end,
                                  float(word.probability)))
        confidence = (sum(w.confidence for w in words) / len(words)) if words else 0.0
        return Recognized(" ".join(w.word for w in words), round(confidence, 3), words)


def make_engine(config):
    """The engine the settings ask for: whisper with TRANSCRIPTION_MODEL_PATH, else pocketsphinx."""
    model_path = config.get("TRANSCRIPTION_MODEL_PATH") or ""
    if model_path:
        return WhisperEngine(model_path, language=config.get("TRANSCRIPTION_LANGUAGE") or "en")
    return PocketSphinxEngine()
