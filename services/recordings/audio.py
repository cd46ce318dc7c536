"""Recording audio with PyAV: transcode FreeSWITCH's WAV, probe and digest files; no database.

`transcode()` is a pure computation (file in, file out, figures back): output
goes to a hidden temporary file in the target directory and is renamed over
the final name only once complete (os.replace is atomic), and the encoders run
bit-exact so that a retried job writes the same bytes.
"""
import hashlib
import os
import struct
import tempfile
import time
from dataclasses import dataclass

import av

from freeswitch.esl.commands import WAV_HEADER_BYTES

SOURCE_WAIT_SECONDS = 20.0   # how long a job waits for FreeSWITCH to close the WAV
SOURCE_QUIET_SECONDS = 5.0   # an unclosed WAV untouched this long is taken as it is


@dataclass(frozen=True)
class Encoding:
    codec: str
    container: str
    rates: tuple          # sample rates the encoder accepts (empty: any)
    min_rate: int         # browsers play MPEG-2 (16 kHz+) MP3, not MPEG-2.5 (8 kHz)
    bit_rate_per_channel: int
    options: dict


ENCODINGS = {
    # LAME quality 5: about 150x real time for 16 kHz mono speech on one core.
    "mp3": Encoding("libmp3lame", "mp3", (16000, 22050, 24000, 32000, 44100, 48000), 16000,
                    32000, {"compression_level": "5"}),
    # Opus in Ogg (FFmpeg's own Vorbis encoder is experimental).
    "ogg": Encoding("libopus", "ogg", (8000, 12000, 16000, 24000, 48000), 8000,
                    24000, {"application": "voip"}),
    "wav": Encoding("pcm_s16le", "wav", (), 0, 0, {}),
}


class SourceNotReady(Exception):
    """FreeSWITCH has not written (or not closed) the WAV yet; the job is retried."""


# ----- the pure computation --------------------------------------------
def output_rate(encoding, source_rate):
    """The smallest rate the encoder accepts that keeps all of the source's bandwidth."""
    wanted = max(source_rate, encoding.min_rate)
    if not encoding.rates:
        return wanted
    return next((rate for rate in encoding.rates if rate >= wanted), encoding.rates[-1])


def _truncated_frame(frame, samples):
    """The first `samples` samples of a packed s16 frame."""
    cut = av.AudioFrame(format="s16", layout=frame.layout.name, samples=samples)
    cut.planes[0].update(bytes(frame.planes[0])[:samples * 2 * len(frame.layout.channels)])
    cut.sample_rate = frame.sample_rate
    return cut


class SourceReader:
    """The source's audio as packed s16 frames at its own rate, cut after max_samples."""

    def __init__(self, container, max_samples=None):
        self.container = container
        self.stream = container.streams.audio[0]
        self.max_samples = max_samples
        self.taken = 0
        self.truncated = False

    def frames(self):
        context = self.stream.codec_context
        to_s16 = av.AudioResampler(format="s16", layout=context.layout.name,
                                   rate=context.sample_rate)
        for decoded in self.container.decode(self.stream):
            decoded.pts = None
            for frame in to_s16.resample(decoded):
                if self.max_samples is not None and self.taken + frame.samples > self.max_samples:
                    self.truncated = True
                    remaining = self.max_samples - self.taken
                    if remaining > 0:
                        self.taken += remaining
                        yield _truncated_frame(frame, remaining)
                    return
                self.taken += frame.samples
                yield frame


def transcode(source, target, fmt, max_seconds=None):
    """Encode source (any audio PyAV reads) as fmt into target, atomically; return its figures.

    The result is written to `.<target name>.<random>.part` beside target and
    renamed over it when complete, so a reader never sees a half-written file.
    max_seconds cuts the audio (truncated=True when it did). Returns a dict with
    duration (s, of the audio kept), sample_rate and channels (of the stored
    file) and truncated.
    """
    encoding = ENCODINGS[fmt]
    directory, name = os.path.split(os.path.abspath(target))
    fd, partial = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    os.close(fd)
    try:
        figures = _encode(source, partial, encoding, max_seconds)
        with open(partial, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(partial, 0o640)  # mkstemp makes 0600; the web process must read it too
        os.replace(partial, target)
    except BaseException:
        _unlink_quietly(partial)
        raise
    _fsync_directory(directory)
    return figures


def _encode(source, partial, encoding, max_seconds):
    with av.open(source) as container:
        context = container.streams.audio[0].codec_context
        source_rate = context.sample_rate
        channels = 2 if context.channels >= 2 else 1
        layout = "stereo" if channels == 2 else "mono"
        reader = SourceReader(container, None if max_seconds is None
                              else round(max_seconds * source_rate))
        rate = output_rate(encoding, source_rate)
        # bitexact: no random Ogg serial, no encoder version drift -> a retry writes the same bytes.
        with av.open(partial, "w", format=encoding.container,
                     options={"fflags": "+bitexact"}) as output:
            out = output.add_stream(encoding.codec, rate=rate, layout=layout)
            if encoding.bit_rate_per_channel:
                out.bit_rate = encoding.bit_rate_per_channel * channels
            out.codec_context.options = dict(encoding.options)
            out.codec_context.flags |= av.codec.context.Flags.bitexact
            to_encoder = av.AudioResampler(
                format=out.codec_context.format.name, layout=layout, rate=rate,
                frame_size=out.codec_context.frame_size or None)
            for frame in reader.frames():
                for resampled in to_encoder.resample(frame):
                    output.mux(out.encode(resampled))
            for resampled in to_encoder.resample(None):
                output.mux(out.encode(resampled))
            output.mux(out.encode(None))
    return {"duration": reader.taken / source_rate, "sample_rate": rate, "channels": channels,
            "truncated": reader.truncated}


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_directory(directory):
    """Make the rename itself durable (a crash right after must not resurrect the old file)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_digest(path):
    """(size, sha256 hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def wav_is_closed(path):
    """True when the RIFF header's size matches the file: the writer finished it."""
    with open(path, "rb") as fh:
        head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    return struct.unpack("<I", head[4:8])[0] + 8 == os.path.getsize(path)


def wait_for_source(path, wait=SOURCE_WAIT_SECONDS, quiet=SOURCE_QUIET_SECONDS):
    """Wait until FreeSWITCH has closed the WAV (or left it untouched for `quiet` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        if os.path.exists(path) and (wav_is_closed(path)
                                     or time.time() - os.path.getmtime(path) >= quiet):
            return
        if time.monotonic() >= deadline:
            state = "still being written" if os.path.exists(path) else "never written"
            raise SourceNotReady(f"the recording file was {state}: {os.path.basename(path)}")
        time.sleep(0.2)


def wav_seconds_within(max_bytes, sample_rate, channels):
    """Seconds of 16-bit PCM that fit in a WAV of max_bytes."""
    return max(0.0, (max_bytes - WAV_HEADER_BYTES) / (sample_rate * 2 * channels))


def probe(path):
    """(sample_rate, channels) of the first audio stream."""
    with av.open(path) as container:
        context = container.streams.audio[0].codec_context
        return context.sample_rate, context.channels
