"""Benchmark: word error rate and speed of the default transcription engine; memory on long calls.

1. WER: 20 call-center sentences spoken by espeak-ng in two voices, each voice's
   sentences in one mono WAV with pauses, at 16 kHz and at 8 kHz (narrow-band
   telephony, as FreeSWITCH records a PCMU call); the whole pipeline (PyAV
   decode, webrtcvad, PocketSphinx) transcribes it in this one process (= one
   worker). WER = word edits / reference words over the whole file.
2. Speed: real-time factor (processing seconds per audio second; 0.2 = 5x faster
   than real time) of that pipeline, beside a reference measured in the same run:
   the same audio through decode + VAD alone, and its MP3 transcoding
   (services/recordings/audio.transcode).
3. Memory: peak RSS while a long recording (default 120 minutes, 8 kHz mono,
   speech every few seconds) streams through decode + VAD, and while
   --asr-minutes of it are fully transcribed.

Prints figures; asserts nothing (the goal: default engine >= 5x faster than real time).

    .venv/bin/python bench/bench_transcripts.py [--long-minutes 120] [--asr-minutes 10]
"""
import argparse
import datetime
import os
import platform
import resource
import sys
import tempfile
import time
import types
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from services.recordings.audio import transcode  # noqa: E402
from services.transcripts.audio import utterance_segments  # noqa: E402
from services.transcripts.transcriber import Transcriber  # noqa: E402
from tests.unit.services.transcripts.speech import mix, speak, write_wav  # noqa: E402

SENTENCES = [
    "thank you for calling how can i help you today",
    "i would like to check the status of my order",
    "my package never arrived",
    "can you tell me when it will be delivered",
    "i was charged twice for the same item",
    "i want a refund for my last payment",
    "please cancel my account",
    "this call is recorded for quality and training purposes",
    "let me look that up for you",
    "could you please confirm your date of birth",
    "the internet has been down for three days",
    "i have already restarted the router",
    "i am very angry this is terrible service",
    "i would like to speak to a manager",
    "i am sorry to hear that",
    "is there anything else i can help you with",
    "thank you so much that was wonderful",
    "your new card will arrive in five business days",
    "please hold while i transfer your call",
    "have a great day goodbye",
]
VOICES = ("en-us+f3", "en-us+m3")


def word_errors(reference, hypothesis):
    """Levenshtein distance over words."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        previous, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            current = min(row[j] + 1, row[j - 1] + 1, previous + (ref[i - 1] != hyp[j - 1]))
            previous, row[j] = row[j], current
    return row[len(hyp)]


def sentences_wav(path, voice, rate, pause=1.2):
    turns, at = [], 0.5
    for sentence in SENTENCES:
        samples = speak(sentence, voice, rate)
        turns.append((0, at, samples))
        at += len(samples) / rate + pause
    audio, _ = mix(turns, rate=rate, channels=1)
    write_wav(path, audio, rate)
    return len(audio) / rate


def timed(function, *args):
    started = time.process_time()
    result = function(*args)
    return result, time.process_time() - started


def vad_only(path):
    return sum(1 for _ in utterance_segments(path))


def wer_and_speed(transcriber, workdir):
    rows = []
    for voice in VOICES:
        for rate in (16000, 8000):
            path = os.path.join(workdir, f"{voice}-{rate}.wav")
            seconds = sentences_wav(path, voice, rate)
            result, asr_cpu = timed(transcriber.transcribe_file, path)
            _, vad_cpu = timed(vad_only, path)
            _, mp3_cpu = timed(transcode, path, path + ".mp3", "mp3")
            said = " ".join(u["text"] for u in result["utterances"])
            reference = " ".join(SENTENCES)
            errors = word_errors(reference, said)
            rows.append({"voice": voice, "rate": rate, "seconds": seconds,
                         "wer": errors / len(reference.split()), "rtf": asr_cpu / seconds,
                         "vad_rtf": vad_cpu / seconds, "mp3_rtf": mp3_cpu / seconds,
                         "utterances": len(result["utterances"]), "sample": said[:90]})
    return rows


def long_recording(path, minutes, rate=8000):
    """minutes of 8 kHz mono: a sentence every ~6 s, written a minute at a time."""
    block_turns, at = [], 0.3
    for sentence in SENTENCES[:8]:
        samples = speak(sentence, VOICES[0], rate)
        if at + len(samples) / rate > 59.0:
            break
        block_turns.append((0, at, samples))
        at += len(samples) / rate + 3.5
    block, _ = mix(block_turns, rate=rate, channels=1, tail=0)
    block = np.concatenate([block, np.zeros((60 * rate - len(block), 1), dtype=np.int16)])
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for _ in range(minutes):
            out.writeframes(block.tobytes())
    return minutes * 60


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(transcriber, workdir, long_minutes, asr_minutes):
    out = {"baseline_mb": peak_mb()}
    path = os.path.join(workdir, "long.wav")
    seconds = long_recording(path, long_minutes)
    out["file_mb"] = os.path.getsize(path) / 1024 ** 2
    segments, cpu = timed(vad_only, path)
    out.update(long_seconds=seconds, segments=segments, vad_rtf=cpu / seconds,
               after_vad_mb=peak_mb())
    short = os.path.join(workdir, "asr.wav")
    asr_seconds = long_recording(short, asr_minutes)
    result, cpu = timed(transcriber.transcribe_file, short)
    out.update(asr_seconds=asr_seconds, asr_rtf=cpu / asr_seconds,
               asr_utterances=len(result["utterances"]), after_asr_mb=peak_mb())
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--long-minutes", type=int, default=120)
    parser.add_argument("--asr-minutes", type=int, default=10)
    args = parser.parse_args()
    transcriber = Transcriber(types.SimpleNamespace(config={}, storage=None, notifier=None))
    transcriber.engine  # noqa: B018  (load the model before measuring)
    print(f"# {datetime.date.today()} {platform.node()} {platform.processor() or 'cpu'} "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; Python "
          f"{platform.python_version()}; CPU seconds of this process")
    with tempfile.TemporaryDirectory() as workdir:
        print("voice      rate   audio s  WER    ASR RTF (x faster)  VAD-only RTF  MP3 RTF  "
              "utterances")
        for row in wer_and_speed(transcriber, workdir):
            print(f"{row['voice']:10} {row['rate']:5}  {row['seconds']:7.1f}  "
                  f"{row['wer']:.3f}  {row['rtf']:.3f} ({1 / row['rtf']:.1f}x)"
                  f"        {row['vad_rtf']:.4f}        {row['mp3_rtf']:.4f}   "
                  f"{row['utterances']}")
            print(f"    heard: {row['sample']!r}")
        figures = memory(transcriber, workdir, args.long_minutes, args.asr_minutes)
        print(f"memory: baseline peak {figures['baseline_mb']:.0f} MB; "
              f"{figures['long_seconds'] / 60:.0f} min ({figures['file_mb']:.0f} MB WAV) through "
              f"decode+VAD -> {figures['segments']} utterances, RTF {figures['vad_rtf']:.4f}, "
              f"peak {figures['after_vad_mb']:.0f} MB; {figures['asr_seconds'] / 60:.0f} min "
              f"fully transcribed ({figures['asr_utterances']} utterances, RTF "
              f"{figures['asr_rtf']:.3f}) -> peak {figures['after_asr_mb']:.0f} MB")


if __name__ == "__main__":
    main()
