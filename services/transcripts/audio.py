"""A recording's audio as 16 kHz 16-bit blocks per channel, and utterances found by VAD.

Everything streams: PyAV decodes the file packet by packet, the resampler
emits small frames, the voice activity detector (webrtcvad) looks at 30 ms
frames, and only the audio of the utterance being spoken is held (at most
MAX_UTTERANCE_SECONDS a channel), so a two-hour call needs no more memory than
a two-minute one.
"""
from dataclasses import dataclass, field

import av
import numpy as np
import webrtcvad

RATE = 16000                      # what the engines and the VAD take
FRAME_MS = 30                     # webrtcvad accepts 10, 20 or 30 ms frames
FRAME_SAMPLES = RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
SILENT_PEAK = 64                  # a channel whose samples never pass this is silent


class AudioUnreadable(Exception):
    """The file is not audio PyAV can decode (corrupt, truncated, not a recording)."""


@dataclass
class VadSettings:
    aggressiveness: int = 2        # webrtcvad mode 0 (lenient) .. 3 (strict)
    start_frames: int = 4          # voiced frames in the window that open an utterance
    window_frames: int = 8
    hangover_ms: int = 600         # silence that closes an utterance
    min_speech_ms: int = 240       # shorter bursts are noise
    max_utterance_seconds: float = 30.0


@dataclass
class Segment:
    """One utterance's audio on one channel."""

    channel: int
    start: float                   # seconds from the start of the recording
    end: float
    pcm: bytearray = field(repr=False)


def read_blocks(path, block_seconds=1.0):
    """Yield (channels, [bytes per channel]) blocks of 16 kHz s16 audio; never the whole file.

    Raises AudioUnreadable for anything PyAV cannot open or decode.
    """
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise AudioUnreadable(f"cannot open the recording: {exc}") from None
    with container:
        if not container.streams.audio:
            raise AudioUnreadable("the file has no audio stream")
        stream = container.streams.audio[0]
        channels = 2 if stream.codec_context.channels >= 2 else 1
        layout = "stereo" if channels == 2 else "mono"
        resampler = av.AudioResampler(format="s16", layout=layout, rate=RATE,
                                      frame_size=int(RATE * block_seconds))
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    frame.pts = None
                    for out in resampler.resample(frame):
                        yield channels, _split(out, channels)
            for out in resampler.resample(None):
                yield channels, _split(out, channels)
        except (av.error.FFmpegError, ValueError) as exc:
            raise AudioUnreadable(f"the recording cannot be decoded: {exc}") from None


def _split(frame, channels):
    samples = np.frombuffer(bytes(frame.planes[0]), dtype=np.int16)[:frame.samples * channels]
    if channels == 1:
        return [samples.tobytes()]
    pairs = samples.reshape(-1, 2)
    return [np.ascontiguousarray(pairs[:, 0]).tobytes(),
            np.ascontiguousarray(pairs[:, 1]).tobytes()]


class ChannelVad:
    """Cuts one channel's stream of 30 ms frames into utterances (a small state machine)."""

    def __init__(self, channel, settings):
        self.channel = channel
        self.settings = settings
        self.vad = webrtcvad.Vad(settings.aggressiveness)
        self.frame_index = 0
        self.pending = bytearray()     # < one frame left over from the last block
        self.recent = []               # (frame, voiced) of the window before an utterance
        self.current = None            # the Segment being spoken
        self.silent_frames = 0
        self.peak = 0

    def feed(self, pcm):
        """Take a block of audio; yield the utterances it completes."""
        self.pending.extend(pcm)
        while len(self.pending) >= FRAME_BYTES:
            frame = bytes(self.pending[:FRAME_BYTES])
            del self.pending[:FRAME_BYTES]
            yield from self._frame(frame)

    def finish(self):
        """The end of the audio: the utterance still open, if any."""
        if self.current is not None:
            segment, self.current = self.current, None
            if self._long_enough(segment):
                yield segment

    def _frame(self, frame):
        peak = int(np.abs(np.frombuffer(frame, dtype=np.int16).astype(np.int32)).max())
        self.peak = max(self.peak, peak)
        voiced = peak > SILENT_PEAK and self.vad.is_speech(frame, RATE)
        self.frame_index += 1
        now = self.frame_index * FRAME_MS / 1000
        if self.current is None:
            self._before_speech(frame, voiced, now)
            return
        self.current.pcm.extend(frame)
        self.current.end = now
        self.silent_frames = 0 if voiced else self.silent_frames + 1
        too_long = now - self.current.start >= self.settings.max_utterance_seconds
        if self.silent_frames * FRAME_MS >= self.settings.hangover_ms or too_long:
            segment, self.current = self.current, None
            if not too_long:  # drop the trailing silence
                cut = self.silent_frames * FRAME_BYTES
                del segment.pcm[len(segment.pcm) - cut:]
                segment.end -= self.silent_frames * FRAME_MS / 1000
            self.recent = []
            if self._long_enough(segment):
                yield segment

    def _before_speech(self, frame, voiced, now):
        self.recent.append((frame, voiced))
        if len(self.recent) > self.settings.window_frames:
            self.recent.pop(0)
        if sum(v for _, v in self.recent) >= self.settings.start_frames:
            first = next(i for i, (_, v) in enumerate(self.recent) if v)
            kept = self.recent[max(0, first - 2):]          # 60 ms of lead-in
            start = now - len(kept) * FRAME_MS / 1000
            self.current = Segment(self.channel, start, now,
                                   bytearray(b"".join(f for f, _ in kept)))
            self.silent_frames = 0
            self.recent = []

    def _long_enough(self, segment):
        return (segment.end - segment.start) * 1000 >= self.settings.min_speech_ms


def is_tone(pcm, share=0.6):
    """True when most of a segment's energy sits at one frequency: a beep, ringback, hold
    tone or fax, which VAD may take for speech; the engine is not asked to hear words."""
    samples = np.frombuffer(bytes(pcm), dtype=np.int16).astype(np.float32)
    if samples.size < FRAME_SAMPLES:
        return False
    power = np.abs(np.fft.rfft(samples - samples.mean())) ** 2
    total = float(power.sum())
    if total <= 0:
        return True
    peak = int(power.argmax())
    width = max(2, power.size // 400)  # +-20 Hz at 16 kHz
    return float(power[max(0, peak - width):peak + width + 1].sum()) / total >= share


def utterance_segments(path, settings=None, stats=None):
    """Yield the Segments of a recording as they complete (in order of their end time).

    stats (a dict) receives channels, duration (s) and silent (no sample above the floor).
    """
    settings = settings or VadSettings()
    stats = {} if stats is None else stats
    vads = None
    samples = 0
    for channels, blocks in read_blocks(path):
        if vads is None:
            vads = [ChannelVad(index, settings) for index in range(channels)]
            stats["channels"] = channels
        samples += len(blocks[0]) // 2
        for vad, pcm in zip(vads, blocks, strict=True):
            yield from vad.feed(pcm)
    for vad in vads or ():
        yield from vad.finish()
    stats.update(channels=len(vads or ()), duration=samples / RATE,
                 silent=all(vad.peak <= SILENT_PEAK for vad in vads or ()))
