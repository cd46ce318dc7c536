"""Test speech: espeak-ng says known sentences; numpy mixes them into mono or stereo WAVs.

Each sentence is trimmed to its audible part, so the times it is placed at are
the times a listener (and the transcript) would hear it.
"""
import io
import shutil
import subprocess
import wave

import av
import numpy as np
import pytest

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed "
                                  "(apt-get install espeak-ng; .ci/run installs it)")
AGENT_VOICE = "en-us+f2"
CUSTOMER_VOICE = "en-us+f3"
AUDIBLE = 300  # a sample above this is sound, not espeak's silence padding


def speak(text, voice=AGENT_VOICE, rate=16000, words_per_minute=140):
    """The sentence as int16 samples at rate, trimmed to its audible part."""
    wav = subprocess.run([ESPEAK, "-v", voice, "-s", str(words_per_minute), "--stdout", text],
                         check=True, capture_output=True).stdout
    with av.open(io.BytesIO(wav)) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        chunks = [out.to_ndarray().reshape(-1) for frame in container.decode(audio=0)
                  for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    samples = np.concatenate(chunks).astype(np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > AUDIBLE)
    return samples[loud[0]:loud[-1] + 1]


def mix(turns, rate=16000, channels=2, tail=1.0):
    """turns: [(channel, start seconds, samples)] -> (int16 array (frames, channels), spans).

    spans: [(channel, start, end)] in seconds, as placed.
    """
    length = max(int(start * rate) + len(samples) for _, start, samples in turns)
    audio = np.zeros((length + int(tail * rate), channels), dtype=np.int32)
    spans = []
    for channel, start, samples in turns:
        at = int(start * rate)
        audio[at:at + len(samples), channel] += samples
        spans.append((channel, start, start + len(samples) / rate))
    return np.clip(audio, -32768, 32767).astype(np.int16), spans


def write_wav(path, audio, rate=16000):
    """int16 (frames, channels) -> a PCM WAV file, as FreeSWITCH writes one."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(audio.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.ascontiguousarray(audio).tobytes())
    return path


def conversation(path, script, rate=16000, channels=2):
    """script: [(channel, start, voice, text)] -> the WAV at path; returns the spans."""
    turns = [(channel, start, speak(text, voice, rate)) for channel, start, voice, text in script]
    audio, spans = mix(turns, rate=rate, channels=channels)
    write_wav(path, audio, rate)
    return spans
